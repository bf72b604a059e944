import XCTest
@testable import Tensor

/// Forward values against torch 2.x / transformers 5.x, from Scripts/fixtures/gen_tensor.py
/// (Fixtures/tensor/reference.json). Tolerances are per element: |ours − torch| ≤ atol + rtol·|torch|.
final class TorchReferenceTests: XCTestCase {
    struct Array_: Decodable { let shape: [Int]; let data: [Double] }
    struct File: Decodable { let torch: String; let tensors: [String: Array_] }

    static let file: File = {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("tensor/reference.json")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try! decoder.decode(File.self, from: Data(contentsOf: url))
    }()

    func ref(_ name: String) -> Array_ {
        guard let a = Self.file.tensors[name] else { fatalError("fixture \(name) missing: rerun Scripts/fixtures/gen_tensor.py") }
        return a
    }
    func tensor(_ name: String) -> Tensor { let a = ref(name); return Tensor(shape: a.shape, a.data.map(Float.init)) }
    func ints(_ name: String) -> [Int32] { ref(name).data.map { Int32($0) } }

    func assertElementwise(_ ours: Tensor, _ name: String, rtol: Double, atol: Double, file: StaticString = #filePath, line: UInt = #line) {
        let expect = ref(name).data
        XCTAssertEqual(ours.count, expect.count, "\(name): count", file: file, line: line)
        var worst = 0.0, worstAt = -1
        for i in 0..<min(ours.count, expect.count) {
            let excess = abs(Double(ours.data[i]) - expect[i]) - (atol + rtol * abs(expect[i]))
            if excess > worst { worst = excess; worstAt = i }
        }
        var maxAbs = 0.0
        for i in 0..<min(ours.count, expect.count) { maxAbs = max(maxAbs, abs(Double(ours.data[i]) - expect[i])) }
        print("vs torch \(name): max |diff| \(maxAbs) (allowed \(atol) + \(rtol)·|ref|)")
        XCTAssertEqual(worstAt, -1, "\(name): element \(worstAt) = \(worstAt >= 0 ? ours.data[worstAt] : 0) vs torch \(worstAt >= 0 ? expect[worstAt] : 0)", file: file, line: line)
    }

    func testGeluTanhMatchesTorch() {
        let x = tensor("gelu.x"), y = Tensor(zeros: x.shape)
        geluTanhForward(out: y, x)
        // 1 + tanh(u) cancels for u ≪ 0, so a 1-ulp tanh difference shows as ~1e-7 absolute.
        assertElementwise(y, "gelu.y", rtol: 1e-6, atol: 2e-7)
    }

    func testRMSNormMatchesGemma3RMSNorm() {
        let x = tensor("rmsnorm.x"), y = Tensor(zeros: x.shape)
        rmsNormForward(out: y, rstd: nil, x, weight: tensor("rmsnorm.w"), eps: 1e-6)
        assertElementwise(y, "rmsnorm.y", rtol: 2e-6, atol: 1e-7)
    }

    func testLayerNormMatchesTorch() {
        let x = tensor("layernorm.x"), y = Tensor(zeros: x.shape)
        layerNormForward(out: y, mean: nil, rstd: nil, x, weight: tensor("layernorm.w"), bias: tensor("layernorm.b"), eps: 1e-6)
        assertElementwise(y, "layernorm.y", rtol: 2e-6, atol: 1e-6)
    }

    func testRotaryMatchesGemma3RotaryEmbedding() {
        let q = tensor("rope.q")                          // [B, L, H, D]
        let b = q.shape[0], l = q.shape[1], d = q.shape[3]
        let positions = ref("rope.positions").data.map(Float.init)
        let variants: [(String, Float, Float)] = [("sliding_attention", 10_000, 1), ("full_attention", 1_000_000, 8)]
        for (lt, base, factor) in variants {
            let rope = RotaryEmbedding(headDim: d, base: base, linearScalingFactor: factor)
            assertElementwise(Tensor(shape: [d / 2], rope.inverseFrequencies), "rope.\(lt).inv_freq", rtol: 1e-7, atol: 0)
            let (cos, sin) = rope.cosSin(positions: positions)   // [B·L, D], per-row positions
            // cos/sin of angles up to 3e4 rad: fp32 argument reduction differences stay at ulp level.
            assertElementwise(cos, "rope.\(lt).cos", rtol: 0, atol: 2e-7)
            assertElementwise(sin, "rope.\(lt).sin", rtol: 0, atol: 2e-7)
            let out = Tensor(zeros: q.shape)
            ropeForward(out: out, q, cos: cos.reshaped([b, l, d]), sin: sin.reshaped([b, l, d]))
            assertElementwise(out, "rope.\(lt).q_embedded", rtol: 1e-6, atol: 1e-6)
        }
    }

    func testAttentionGQASlidingImageBlocksMatchesEager() {
        let q = tensor("attention.q"), k = tensor("attention.k"), v = tensor("attention.v")
        let b = q.shape[0], l = q.shape[1], h = q.shape[2]
        let groups = AttentionMask.imageGroupIDs(tokenTypes: ints("attention.token_types"), batch: b, length: l)
        XCTAssertEqual(groups, ints("attention.block_ids"), "image group ids as get_block_sequence_ids_for_mask")
        let padding = ints("attention.attention_mask")
        let masks: [(String, AttentionMask)] = [
            ("full_attention", AttentionMask(keyPadding: padding, imageGroups: groups)),
            ("sliding_attention", AttentionMask(slidingWindow: 3, keyPadding: padding, imageGroups: groups)),
        ]
        for (lt, mask) in masks {
            // the predicate equals transformers' boolean mask exactly
            let allowed = UnsafeMutablePointer<UInt8>.allocate(capacity: b * l * l)
            defer { allowed.deallocate() }
            mask.fill(allowed, batch: b, queries: l, keys: l)
            XCTAssertEqual((0..<(b * l * l)).map { Int32(allowed[$0]) }, ints("attention.\(lt).allowed"), "\(lt) mask")
            let viaGemma = AttentionMask.gemma3(slidingWindow: mask.slidingWindow, attentionMask: padding,
                                                tokenTypes: ints("attention.token_types"), batch: b, length: l)
            XCTAssertEqual(viaGemma.allowedTable(batch: b, queries: l, keys: l).map(Int32.init), ints("attention.\(lt).allowed"), "\(lt) gemma3 mask")
            let out = Tensor(zeros: q.shape), probs = Tensor(zeros: [b, h, l, l])
            attentionForward(out: out, probs: probs, q: q, k: k, v: v, scale: 0.3, mask: mask)
            assertElementwise(probs, "attention.\(lt).probs", rtol: 2e-6, atol: 1e-7)
            assertElementwise(out, "attention.\(lt).out", rtol: 2e-6, atol: 1e-6)
        }
    }

    func testCrossEntropyMatchesTorch() {
        let logits = tensor("ce.logits"), targets = ints("ce.targets")
        let stats = crossEntropyForward(logits: logits, targets: targets)
        let sum = ref("ce.loss_sum").data[0], mean = ref("ce.loss_mean").data[0]
        XCTAssertEqual(stats.lossSum, sum, accuracy: 1e-6 * abs(sum), "loss sum, 1e-6 relative")
        XCTAssertEqual(stats.mean, mean, accuracy: 1e-6 * abs(mean), "loss mean, 1e-6 relative")
        XCTAssertEqual(stats.count, targets.filter { $0 != -100 }.count)
        XCTAssertEqual(stats.correct, Int(ref("ce.correct").data[0]))
        let d = Tensor(zeros: logits.shape)
        crossEntropyBackward(dlogits: d, logits: logits, targets: targets, scale: 0.2)
        // torch forms p − 1 from an fp32 p ≈ 1 (ulp 6e-8, times the 0.2 scale): 3e-8 absolute.
        assertElementwise(d, "ce.dlogits_scale0.2", rtol: 1e-5, atol: 3e-8)
    }

    func testSoftmaxAvgPoolPatchEmbedMatchTorch() {
        let xs = tensor("softmax.x"), ys = Tensor(zeros: xs.shape)
        softmaxForward(out: ys, xs)
        assertElementwise(ys, "softmax.y", rtol: 2e-6, atol: 1e-9)

        // torch pools NCHW; ours is channels-last: transpose in, transpose out.
        let xp = tensor("avgpool.x_nchw")                     // [2, 3, 8, 8]
        let nhwc = Tensor(zeros: [2, 8 * 8, 3])
        transposeLast2(out: nhwc, xp.reshaped([2, 3, 64]))
        let pooled = Tensor(zeros: [2, 2, 2, 3])
        avgPool2dForward(out: pooled, nhwc.reshaped([2, 8, 8, 3]), kernel: 4)
        let nchw = Tensor(zeros: [2, 3, 4])
        transposeLast2(out: nchw, pooled.reshaped([2, 4, 3]))
        assertElementwise(nchw, "avgpool.y_nchw", rtol: 1e-6, atol: 1e-7)

        let w = tensor("patch.weight"), out = Tensor(zeros: ref("patch.out").shape)
        patchEmbedForward(out: out, pixels: tensor("patch.pixels"), weight: w, bias: tensor("patch.bias"), patchSize: 4)
        assertElementwise(out, "patch.out", rtol: 1e-5, atol: 1e-6)
    }

    func testBF16AndF16RoundingMatchesTorch() {
        let x = tensor("round.x")
        let bf = x.copy(); roundToBF16InPlace(bf)
        assertElementwise(bf, "round.bf16", rtol: 0, atol: 0)
        let h = x.copy(); roundToF16InPlace(h)
        assertElementwise(h, "round.f16", rtol: 0, atol: 0)
    }

    /// f16 <-> f32 against Swift's own Float16 (hardware-exact): every one of the 65536 bit patterns,
    /// and f32 -> f16 rounding on values around every f16 boundary.
    func testF16ConversionExhaustive() {
        for bits in 0...UInt16.max {
            let ours = float(fromF16Bits: bits), swift = Float(Float16(bitPattern: bits))
            if swift.isNaN { XCTAssertTrue(ours.isNaN); continue }
            XCTAssertEqual(ours.bitPattern, swift.bitPattern, "f16 \(bits)")
            // round trip, and the midpoints to the next value up (ties to even)
            XCTAssertEqual(f16Bits(fromFloat: ours), Float16(ours).bitPattern, "f16 round trip \(bits)")
            let next = Float(Float16(bitPattern: bits &+ 1))
            if next.isFinite && (bits & 0x7FFF) < 0x7BFF {
                for probe in [(ours + next) / 2, (ours + next) / 2 + (next - ours) / 1024, (ours + next) / 2 - (next - ours) / 1024] {
                    XCTAssertEqual(f16Bits(fromFloat: probe), Float16(probe).bitPattern, "f16 rounding near \(probe)")
                }
            }
        }
    }
}
