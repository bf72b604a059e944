import XCTest
@testable import Tensor

/// Attention's matrix products under bf16 autocast (`AttentionPrecision`, `bf16_matmul: emulate`), checked
/// against the rule written out here per head: the same sgemm calls on dense bf16-rounded copies (so the
/// fp32 sums are the same bits) and every rounding point spelled out. The softmax is compared in Double
/// (≤ 1e-6 absolute on probabilities); everything after it bit for bit. Each check also shows it can fail:
/// the rule without one of its rounding points gives different numbers. The model-level comparison with
/// torch is BF16TrainingTests.
final class BF16AttentionTests: XCTestCase {
    let b = 2, l = 7, h = 4, kv = 2, d = 8
    let scale: Float = 0.3   // not a power of two: R(R(x)·scale) differs from R(x)·scale

    func R(_ x: Float) -> Float { roundedToBF16(x) }

    /// Dense rounded [rows, d] copy of head `head` of a [b, rows, heads, d] tensor, batch `bi`.
    func head(_ t: Tensor, _ bi: Int, _ head: Int, heads: Int, rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * d)
        for i in 0..<rows { for j in 0..<d { out[i * d + j] = R(t.data[((bi * rows + i) * heads + head) * d + j]) } }
        return out
    }

    /// C [m, n] = op(A)·op(B) with plain sgemm on dense operands.
    func product(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: [Float], _ b: [Float]) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
              beta: 0, c: &c, ldc: n)
        return c
    }

    func assertSameBits(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
            XCTFail("\(what): element \(i) is \(got[i]), the rule gives \(want[i])", file: file, line: line)
        }
    }

    func testEmulatedAttentionFollowsTheAutocastRule() {
        let padding: [Int32] = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1]   // batch 1: keys 0 and 5 are padding
        let mask = AttentionMask(slidingWindow: 5, keyPadding: padding)
        let allowed = UnsafeMutablePointer<UInt8>.allocate(capacity: b * l * l)
        defer { allowed.deallocate() }
        mask.fill(allowed, batch: b, queries: l, keys: l)
        let q = Tensor.randomNormal([b, l, h, d], seed: 71), k = Tensor.randomNormal([b, l, kv, d], seed: 72)
        let v = Tensor.randomNormal([b, l, kv, d], seed: 73), dout = Tensor.randomNormal([b, l, h, d], seed: 74)
        let precision = AttentionPrecision(mode: .emulated, workspace: BF16Workspace())

        let out = Tensor(zeros: q.shape), probs = Tensor(zeros: [b, h, l, l])
        attentionForward(out: out, probs: probs, q: q, k: k, v: v, scale: scale, mask: mask, precision: precision)
        let dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        attentionBackward(dq: dq, dk: dk, dv: dv, dout: dout, probs: nil, q: q, k: k, v: v, scale: scale, mask: mask, precision: precision)

        var wantOut = [Float](repeating: 0, count: q.count), wantDq = wantOut
        var wantDk = [Float](repeating: 0, count: k.count), wantDv = wantDk
        var worstP = 0.0, worstUnscaledRounding = 0.0
        var dqWithoutDSRounding = [Float](repeating: 0, count: q.count)
        for bi in 0..<b {
            for hi in 0..<h {
                let g = hi / (h / kv)
                let qh = head(q, bi, hi, heads: h, rows: l), kh = head(k, bi, g, heads: kv, rows: l)
                let vh = head(v, bi, g, heads: kv, rows: l), dOh = head(dout, bi, hi, heads: h, rows: l)
                let sum = product(false, true, l, l, d, qh, kh)
                // forward: scores R(R(q·kᵀ)·scale), softmax over allowed keys (Double), out = R(R(P)·R(v))
                let p = Array(UnsafeBufferPointer(start: probs.data + (bi * h + hi) * l * l, count: l * l))
                for i in 0..<l {
                    func softmax(_ score: (Int) -> Double) -> [Double] {
                        let keys = (0..<l).filter { allowed[(bi * l + i) * l + $0] != 0 }
                        // a query that sees no key (batch 1's first, key 0 being padding): uniform, as torch
                        if keys.isEmpty { return [Double](repeating: 1 / Double(l), count: l) }
                        let m = keys.map(score).max() ?? 0
                        let e = keys.map { exp(score($0) - m) }, z = e.reduce(0, +)
                        var row = [Double](repeating: 0, count: l)
                        for (n, j) in keys.enumerated() { row[j] = e[n] / z }
                        return row
                    }
                    let rule = softmax { Double(self.R(self.R(sum[i * self.l + $0]) * self.scale)) }
                    let unscaledRounding = softmax { Double(self.R(sum[i * self.l + $0]) * self.scale) }
                    for j in 0..<l {
                        worstP = max(worstP, abs(Double(p[i * l + j]) - rule[j]))
                        worstUnscaledRounding = max(worstUnscaledRounding, abs(Double(p[i * l + j]) - unscaledRounding[j]))
                    }
                }
                let pr = p.map(R)
                let o = product(false, false, l, d, l, pr, vh)
                for i in 0..<l { for j in 0..<d { wantOut[((bi * l + i) * h + hi) * d + j] = R(o[i * d + j]) } }

                // backward: dv += R(Pᵀ·dO); dP = R(dO·vᵀ); dS = P ⊙ (dP − rowsum(P ⊙ dP)); dS' = R(R(dS)·scale);
                // dq += R(dS'·k), dk += R(dS'ᵀ·q)
                let dvh = product(true, false, l, d, l, pr, dOh)
                for i in 0..<l { for j in 0..<d { wantDv[((bi * l + i) * kv + g) * d + j] += R(dvh[i * d + j]) } }
                let dP = product(false, true, l, l, d, dOh, vh).map(R)
                var dS = [Float](repeating: 0, count: l * l), dSUnrounded = dS
                for i in 0..<l {
                    let dot = p.withUnsafeBufferPointer { pp in dP.withUnsafeBufferPointer { rowDot(pp.baseAddress! + i * l, $0.baseAddress! + i * l, l) } }
                    for j in 0..<l where allowed[(bi * l + i) * l + j] != 0 {
                        let s = p[i * l + j] * (dP[i * l + j] - dot)
                        dS[i * l + j] = R(R(s) * scale); dSUnrounded[i * l + j] = R(s * scale)
                    }
                }
                let dqh = product(false, false, l, d, l, dS, kh), dqAlt = product(false, false, l, d, l, dSUnrounded, kh)
                for i in 0..<l {
                    for j in 0..<d {
                        wantDq[((bi * l + i) * h + hi) * d + j] = R(dqh[i * d + j])
                        dqWithoutDSRounding[((bi * l + i) * h + hi) * d + j] = R(dqAlt[i * d + j])
                    }
                }
                let dkh = product(true, false, l, d, l, dS, qh)
                for i in 0..<l { for j in 0..<d { wantDk[((bi * l + i) * kv + g) * d + j] += R(dkh[i * d + j]) } }
            }
        }
        XCTAssertLessThan(worstP, 1e-6, "probabilities from the bf16 scores")
        XCTAssertGreaterThan(worstUnscaledRounding, 1e-4, "without rounding after the scale the probabilities differ (the check can fail)")
        assertSameBits(out.toArray(), wantOut, "out")
        assertSameBits(dv.toArray(), wantDv, "dv")
        assertSameBits(dq.toArray(), wantDq, "dq")
        assertSameBits(dk.toArray(), wantDk, "dk")
        XCTAssertNotEqual(dqWithoutDSRounding, wantDq, "without rounding dS before the scale dq differs (the check can fail)")
        // The fp32 path is another computation: the bf16 rule is active.
        let out32 = Tensor(zeros: q.shape)
        attentionForward(out: out32, probs: nil, q: q, k: k, v: v, scale: scale, mask: mask)
        XCTAssertNotEqual(out32.toArray(), out.toArray())
        // Recomputed probabilities (probs nil) give the same forward.
        let out2 = Tensor(zeros: q.shape)
        attentionForward(out: out2, probs: nil, q: q, k: k, v: v, scale: scale, mask: mask, precision: precision)
        assertSameBits(out2.toArray(), out.toArray(), "forward without kept probabilities")
    }

    /// Through a real cblas_sbgemm (SFTDECK_SBGEMM_LIBRARY=…, e.g. from Scripts/build-openblas-bf16.sh): the
    /// same products as the emulation up to fp32 summation order, so within one bf16 step of the tensor's scale.
    func testNativeSbgemmAttentionMatchesEmulated() throws {
        try XCTSkipUnless(BF16Capabilities.current.libraryHasSbgemm, "no cblas_sbgemm in this process (set SFTDECK_SBGEMM_LIBRARY)")
        let mask = AttentionMask(slidingWindow: 5)
        let q = Tensor.randomNormal([b, l, h, d], seed: 81), k = Tensor.randomNormal([b, l, kv, d], seed: 82)
        let v = Tensor.randomNormal([b, l, kv, d], seed: 83), dout = Tensor.randomNormal([b, l, h, d], seed: 84)
        func run(_ mode: BF16MatmulMode) -> [[Float]] {
            let p = AttentionPrecision(mode: mode, workspace: BF16Workspace())
            let out = Tensor(zeros: q.shape), dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
            attentionForward(out: out, probs: nil, q: q, k: k, v: v, scale: scale, mask: mask, precision: p)
            attentionBackward(dq: dq, dk: dk, dv: dv, dout: dout, probs: nil, q: q, k: k, v: v, scale: scale, mask: mask, precision: p)
            return [out.toArray(), dq.toArray(), dk.toArray(), dv.toArray()]
        }
        let native = run(.sbgemm), emulated = run(.emulated)
        for (name, (a, e)) in zip(["out", "dq", "dk", "dv"], zip(native, emulated)) {
            let scaleOf = e.map { abs($0) }.max() ?? 1
            for (x, y) in zip(a, e) { XCTAssertEqual(x, y, accuracy: scaleOf / 128, name) }
        }
    }
}
