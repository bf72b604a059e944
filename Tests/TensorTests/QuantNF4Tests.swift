import Foundation
import XCTest
@testable import Tensor

/// NF4 + double quantisation against bitsandbytes 0.50.2 on CPU (Scripts/fixtures/gen_nf4.py):
/// every byte, code and scale bit-identical, and a Linear4bit layer's output reproduced.
final class QuantNF4Tests: XCTestCase {
    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("nf4") }
    static let file = try! SafeTensorsFile(url: fixtures.appendingPathComponent("nf4.safetensors"))
    static let cases = ["w64x128", "w96x256", "w3x96", "spec2x64_bf16", "edges2x64"]

    func bits(_ name: String) throws -> [UInt32] { try Self.file.floats(name).map(\.bitPattern) }
    func bytes(_ name: String) throws -> [UInt8] { Array(try Self.file.rawBytes(name)) }

    /// Quantises the fixture's input weight (fp32, or bf16 bits for the bf16 case) in Swift.
    func quantize(_ name: String) throws -> NF4Weight {
        let info = try Self.file.info("\(name).weight")
        let (rows, cols) = (info.shape[0], info.shape[1])
        if info.dtype == .BF16 {
            let raw = try Self.file.rawBytes("\(name).weight")
            let halfBits = (0..<info.elementCount).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
            return halfBits.withUnsafeBufferPointer { NF4Weight(quantizingHalf: $0.baseAddress!, format: .bf16, rows: rows, cols: cols) }
        }
        let w = try Self.file.floats("\(name).weight")
        return w.withUnsafeBufferPointer { NF4Weight(quantizing: $0, rows: rows, cols: cols) }
    }

    func testCodeBooksAreBitsAndBytes() throws {
        XCTAssertEqual(BitsAndBytesMaps.nf4.map(\.bitPattern), try bits("nf4.code"))
        XCTAssertEqual(BitsAndBytesMaps.dynamicSigned.map(\.bitPattern), try bits("dynamic.code"))
        XCTAssertEqual(BitsAndBytesMaps.dynamicSigned[127], 0)
        XCTAssertEqual(BitsAndBytesMaps.dynamicSigned[255], 1)
    }

    /// Packed codes, absmax codes, nested absmax and offset equal bitsandbytes' to the bit.
    func testQuantisationIsBitExact() throws {
        for name in Self.cases {
            let q = try quantize(name)
            XCTAssertEqual(q.packed, try bytes("\(name).packed"), name)
            guard case .nested(let codes, let absmax2, let offset, let code) = q.scales else { return XCTFail("not nested") }
            XCTAssertEqual(codes, try bytes("\(name).absmax_q"), name)
            XCTAssertEqual(absmax2.map(\.bitPattern), try bits("\(name).absmax2"), name)
            XCTAssertEqual(offset.bitPattern, try bits("\(name).offset")[0], name)
            XCTAssertEqual(code.map(\.bitPattern), try bits("dynamic.code"))
        }
    }

    /// Dequantised weights equal bitsandbytes' `dequantize_4bit` to the bit (fp32, and bf16 for the
    /// bf16 checkpoint case), from our own quantisation and from bitsandbytes' stored state, for the
    /// whole matrix and for row ranges whose 64-blocks straddle rows.
    func testDequantisationIsBitExact() throws {
        for name in Self.cases {
            let expected = try bits("\(name).dequant")
            let q = try quantize(name)
            XCTAssertEqual(q.dequantizedValues().map(\.bitPattern), expected, name)

            let info = try Self.file.info("\(name).weight")
            let stored = NF4Weight(rows: info.shape[0], cols: info.shape[1], dtype: info.dtype == .BF16 ? .bf16 : .f32,
                                   packed: try bytes("\(name).packed"),
                                   scales: .nested(codes: try bytes("\(name).absmax_q"), absmax2: try Self.file.floats("\(name).absmax2"),
                                                   offset: try Self.file.floats("\(name).offset")[0], code: try Self.file.floats("dynamic.code")))
            XCTAssertEqual(stored.dequantizedValues().map(\.bitPattern), expected, name)

            if q.rows >= 3 {
                let cols = q.cols
                var part = [Float](repeating: .nan, count: 2 * cols)
                part.withUnsafeMutableBufferPointer { q.dequantizeRows(1..<3, into: $0.baseAddress!) }
                XCTAssertEqual(part.map(\.bitPattern), Array(expected[cols..<(3 * cols)]), "\(name) rows 1..<3")
            }
        }
        // The reference notes' hand-computed vector (bf16 weight, 2 blocks): scales and first values.
        let spec = try quantize("spec2x64_bf16")
        XCTAssertEqual(spec.blockScales(), [0.349609375, 0.3457168638706207])
        XCTAssertEqual(Array(spec.packed.prefix(8)), [0x79, 0xbd, 0xee, 0xe8, 0x76, 0x31, 0x10, 0x65])
        XCTAssertEqual(Array(spec.dequantizedValues().prefix(8)),
                       [0.0, 0.05615234375, 0.1181640625, 0.1962890625, 0.251953125, 0.251953125, 0.251953125, 0.02783203125])
    }

    /// `quantize_blockwise` probes at the 65,536-bin table's edges, code midpoints and near zero.
    func testBlockwise8bitMatchesNativeLookup() throws {
        let x = try Self.file.floats("blockwise.x")
        let q = x.withUnsafeBufferPointer { Blockwise8bitQuantizer.dynamic.quantize($0, blockSize: 256) }
        XCTAssertEqual(q.codes, try bytes("blockwise.codes"))
        XCTAssertEqual(q.absmax.map(\.bitPattern), try bits("blockwise.absmax"))
        // Near zero the table is not nearest-code: in the absmax-1 probe block, 1e-6 is nearest to code
        // 128 (5.5e-7) but lands in the table bin at -1 + 2·32768/65535 ≈ 1.53e-5, i.e. code 131.
        let k = x.firstIndex(of: 1e-6)!
        XCTAssertLessThan(k, 256)
        XCTAssertEqual(try bytes("blockwise.codes")[k], 131)
        let nearest = BitsAndBytesMaps.dynamicSigned.indices.min { abs(BitsAndBytesMaps.dynamicSigned[$0] - 1e-6) < abs(BitsAndBytesMaps.dynamicSigned[$1] - 1e-6) }!
        XCTAssertEqual(nearest, 128)
    }

    /// torch's fp32 mean order, single- and multi-threaded, to the bit.
    func testTorchMeanOrder() throws {
        let rows = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("means.json"))) as! [[String: Any]]
        for r in rows {
            let n = r["n"] as! Int, threads = r["threads"] as! Int
            let v: [Float] = (0..<n).map { k in Float(Double((UInt64(k) * 2654435761) % (1 << 32)) / 4294967296.0) }
            let m = v.withUnsafeBufferPointer { TorchReduction.meanF32($0, threads: threads) }
            XCTAssertEqual(m.bitPattern, (r["mean_bits"] as! NSNumber).uint32Value, "n=\(n) threads=\(threads)")
        }
    }

    /// bnb.nn.Linear4bit (CPU, compute_dtype fp32, eval) on a fixed input equals x·dequant(W)ᵀ + b
    /// through SFTDeck's linear kernel. This machine lacks AVX512-BF16, so bnb honours fp32 compute
    /// (its generator asserts that) and its own output equals F.linear(x, dequant(W), b) exactly; the
    /// remaining difference is only the two sgemm summation orders (K = 128).
    func testLinear4bitLayerOutput() throws {
        let q = try quantize("w64x128")
        let x = Tensor(shape: [5, 128], try Self.file.floats("linear.x"))
        let bias = Tensor(shape: [64], try Self.file.floats("linear.bias"))
        let expected = try Self.file.floats("linear.out")
        let out = Tensor(zeros: [5, 64])
        linearForward(out: out, x: x, weight: q, bias: bias)
        let got = out.toArray()
        var worst: Float = 0
        for (a, b) in zip(got, expected) { worst = max(worst, abs(a - b) / (1 + abs(b))) }
        print("Linear4bit parity: max |diff| / (1 + |ref|) = \(worst)")
        XCTAssertLessThan(worst, 1e-6, "max |diff| / (1 + |ref|) = \(worst)")
        // Not trivially satisfied: the unquantised weight gives a visibly different output.
        let dense = Tensor(shape: [64, 128], try Self.file.floats("w64x128.weight"))
        let outDense = Tensor(zeros: [5, 64])
        linearForward(out: outDense, x: x, weight: dense, bias: bias)
        XCTAssertGreaterThan(zip(outDense.toArray(), expected).map { abs($0 - $1) }.max()!, 1e-2)
    }

    /// Filling from pieces (the streaming path) and an odd element count behave like bnb's padding.
    func testStreamingFillAndOddCount() {
        let n = 3 * 67
        let values: [Float] = (0..<n).map { Float(sin(Double($0) * 0.7)) }
        let whole = values.withUnsafeBufferPointer { NF4Weight(quantizing: $0, rows: 3, cols: 67) }
        let streamed = NF4Weight(rows: 3, cols: 67) { range, dst in
            for (k, i) in range.enumerated() { dst[k] = values[i] }
        }
        XCTAssertEqual(whole.packed, streamed.packed)
        XCTAssertEqual(whole.packed.count, (n + 1) / 2)
        XCTAssertEqual(whole.packed.last! & 15, 7, "padding nibble is the code of 0")
        XCTAssertEqual(whole.dequantizedValues().count, n)
        // Dequantised values are within half a code step of the input (NF4 steps are at most 0.31 of absmax).
        let deq = whole.dequantizedValues()
        for b in 0..<whole.blockCount {
            let r = (b * 64)..<min(n, b * 64 + 64)
            let am = r.map { abs(values[$0]) }.max()!
            for i in r { XCTAssertLessThanOrEqual(abs(deq[i] - values[i]), 0.17 * am + 1e-3 * am, "element \(i)") }
        }
    }

    /// Quantising straight from the mapped checkpoint bytes gives the same NF4 state, and a mapped
    /// bf16 weight is borrowed for the kernels without a copy.
    func testWeightsFromMappedFile() throws {
        for name in ["w96x256", "spec2x64_bf16"] {
            let mapped = try Self.file.nf4Weight("\(name).weight")
            XCTAssertEqual(mapped.packed, try bytes("\(name).packed"), name)
            XCTAssertEqual(mapped.dequantizedValues().map(\.bitPattern), try bits("\(name).dequant"), name)
        }
        let frozen = try Self.file.frozenWeight("spec2x64_bf16.weight")
        XCTAssertTrue(frozen is HalfPrecisionWeight)
        var out = [Float](repeating: 0, count: 128)
        out.withUnsafeMutableBufferPointer { frozen.dequantizeRows(0..<2, into: $0.baseAddress!) }
        XCTAssertEqual(out, try Self.file.floats("spec2x64_bf16.weight"))
        XCTAssertThrowsError(try Self.file.nf4Weight("nf4.code")) { XCTAssertTrue("\($0)".contains("not a matrix"), "\($0)") }
    }

    /// bitsandbytes' saved 4-bit state (a Linear4bit state_dict with a bf16 weight): loaded, it
    /// dequantises exactly as bitsandbytes does; re-made from the bf16 weight and written, it is the
    /// same file byte for byte.
    func testBitsAndBytesStateDictRoundTrip() throws {
        let stateURL = Self.fixtures.appendingPathComponent("nf4_state.safetensors")
        let state = try SafeTensorsFile(url: stateURL)
        let loaded = try NF4Weight(bitsAndBytesState: state, name: "layer.weight")
        XCTAssertEqual(loaded.dtype, .bf16)
        XCTAssertEqual(loaded.dequantizedValues().map(\.bitPattern), try bits("state.dequant"))

        let mine = try Self.file.nf4Weight("state.weight")
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        try mine.addBitsAndBytesState(to: &writer, name: "layer.weight")
        try writer.add("layer.bias", floats: try Self.file.floats("state.bias"), shape: [64])
        XCTAssertEqual(try writer.serialize(), [UInt8](try Data(contentsOf: stateURL)))
        XCTAssertThrowsError(try NF4Weight(bitsAndBytesState: state, name: "layer.bias")) {
            XCTAssertTrue("\($0)".contains("not an NF4 bitsandbytes weight"), "\($0)")
        }
    }

    /// The fast code lookup (bin guess + two comparisons) equals the plain threshold count on every
    /// threshold and bin edge (and their fp32 neighbours) and on random values.
    func testFastCodeLookupEqualsThresholdCount() {
        let t = BitsAndBytesMaps.nf4Thresholds
        var probes: [Float] = [-1, 1, 0, -0.0]
        for v in t + (0...512).map({ Float(-1 + Double($0) / 256) }) {
            var a = v, b = v
            for _ in 0..<3 { probes += [a, b]; a = a.nextUp; b = b.nextDown }
        }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { probes.append(Float.random(in: -1...1, using: &g)) }
        t.withUnsafeBufferPointer { tp in
            NF4Weight.codeGuess.withUnsafeBufferPointer { gp in
                for v in probes where v >= -1 && v <= 1 {
                    let exact = UInt8(t.filter { $0 < v }.count)
                    XCTAssertEqual(NF4Weight.nf4Code(v, tp.baseAddress!), exact, "\(v)")
                    XCTAssertEqual(NF4Weight.nf4CodeFast(v, tp.baseAddress!, gp.baseAddress!), exact, "\(v)")
                }
            }
        }
    }
}
