import XCTest
import Tensor
@testable import Models

/// Under bf16 autocast the SigLIP patch conv and the Gemma 3 projector's matmul run like the Linears:
/// bf16 operands, fp32 sums, bf16 results (the conv's bias rounded in once, the fp32 position embedding
/// added after). Checked bit for bit against the rule written out here with the same sgemm call on rounded
/// copies (`bf16_matmul: emulate`), on the committed multimodal fixture; fp32 runs are covered by the
/// parity tests.
final class BF16VisionProductsTests: XCTestCase {
    func rounded(_ p: UnsafePointer<Float>, _ n: Int) -> [Float] { (0..<n).map { roundedToBF16(p[$0]) } }

    func randoms(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var g = SeededRNG(seed: seed)
        return (0..<n).map { _ in (g.uniform() * 2 - 1) * scale }
    }

    func assertSameBits(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        if let i = a.indices.first(where: { $0 < b.count && a[$0].bitPattern != b[$0].bitPattern }) {
            XCTFail("\(what): element \(i) is \(a[i]), the rule gives \(b[i])", file: file, line: line)
        }
    }

    func testPatchConvAndProjectorFollowTheAutocastRule() throws {
        let model = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        model.enableFullFineTuning()   // so that the projector's weight gradient is made
        let vt = try XCTUnwrap(model.vision), pr = try XCTUnwrap(model.projector)
        let ctx = RunContext(scratchCount: MatrixKernels.tileRows * 4096, rng: SeededRNG(seed: 1), training: false, bf16: .emulated)
        let fp32 = RunContext(scratchCount: MatrixKernels.tileRows * 4096, rng: SeededRNG(seed: 1), training: false)
        let S = vt.cfg.imageSize, C = vt.cfg.hiddenSize, P = vt.P, K = vt.K
        let pixels = randoms(3 * S * S, seed: 7)

        // patch embedding: the first layer's input, kept by a checkpointed forward
        let out = FBuf(P * C, zero: false)
        let cache = try XCTUnwrap(pixels.withUnsafeBufferPointer { vt.forward(out.p, pixels: $0.baseAddress!, N: 1, ctx: ctx, keep: true, checkpoint: true) })
        let embedded = Array(UnsafeBufferPointer(start: cache.layerInputs[0].p, count: P * C))
        let patches = pixels.withUnsafeBufferPointer { vt.im2col($0.baseAddress!, N: 1) }
        let pa = rounded(patches.p, P * K), wa = rounded(vt.patchW.f32, C * K)
        var conv = [Float](repeating: 0, count: P * C)
        sgemm(transposeA: false, transposeB: true, m: P, n: C, k: K, alpha: 1, a: pa, lda: K, b: wa, ldb: K, beta: 0, c: &conv, ldc: C)
        let b = vt.patchB.f32, pe = vt.pos.f32
        let want = (0..<(P * C)).map { i in roundedToBF16(conv[i] + roundedToBF16(b[i % C])) + pe[(i / C % P) * C + i % C] }
        assertSameBits(embedded, want, "patch embedding")
        let cacheFP32 = try XCTUnwrap(pixels.withUnsafeBufferPointer { vt.forward(out.p, pixels: $0.baseAddress!, N: 1, ctx: fp32, keep: true, checkpoint: true) })
        XCTAssertNotEqual(Array(UnsafeBufferPointer(start: cacheFP32.layerInputs[0].p, count: P * C)), embedded, "the bf16 rule is active")

        // projector: forward, then the weight and input gradients of its matmul
        let Cv = pr.Cv, Ct = pr.Ct, M = pr.pooledSide * pr.pooledSide
        let vision = FBuf(randoms(P * Cv, seed: 8))
        let feats = FBuf(M * Ct, zero: false)
        let pc = pr.forward(feats.p, vision, N: 1, precision: ctx.matmul)
        let na = rounded(pc.normed.p, M * Cv), pw = rounded(pr.inputProjection.f32, Cv * Ct)
        var proj = [Float](repeating: 0, count: M * Ct)
        sgemm(transposeA: false, transposeB: false, m: M, n: Ct, k: Cv, alpha: 1, a: na, lda: Cv, b: pw, ldb: Ct, beta: 0, c: &proj, ldc: Ct)
        assertSameBits(Array(UnsafeBufferPointer(start: feats.p, count: M * Ct)), proj.map(roundedToBF16), "projector output")

        let dOut = randoms(M * Ct, seed: 9, scale: 1e-2)
        let dVision = FBuf(P * Cv)
        dOut.withUnsafeBufferPointer { pr.backward(dVision, $0.baseAddress!, N: 1, cache: pc, precision: ctx.matmul) }
        let da = dOut.map(roundedToBF16)
        var dW = [Float](repeating: 0, count: Cv * Ct)
        sgemm(transposeA: true, transposeB: false, m: Cv, n: Ct, k: M, alpha: 1, a: na, lda: Cv, b: da, ldb: Ct, beta: 0, c: &dW, ldc: Ct)
        assertSameBits(Array(UnsafeBufferPointer(start: try XCTUnwrap(pr.inputProjection.grad), count: Cv * Ct)), dW.map(roundedToBF16),
                       "projector weight gradient")
    }
}
