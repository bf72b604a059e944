import XCTest
@testable import Tensor

/// A tiny Gemma-style block, composed from the kernels forward and then backward by hand:
///   h = rmsnorm(x); q,k,v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ; q,k = rope(q), rope(k);
///   a = attention(q, k, v; GQA 2 heads on 1 kv head, causal + window 3 + image block);
///   r = x + a·Woᵀ; m = gelu(r·Wgᵀ) ⊙ (r·Wuᵀ); y = r + m·Wdᵀ; logits = y·Wlmᵀ;
///   loss = 0.5 · CE_sum(logits, targets with -100).
/// Every parameter's gradient and the input's are checked against central finite differences of the
/// same graph written with the Double reference ops (tolerance Tol.backward, normalized max error).
final class EndToEndGradientTests: XCTestCase {
    let l = 5, c = 6, h = 2, kv = 1, d = 4, ff = 7, vocab = 9
    let targets: [Int32] = [3, -100, 8, 0, 5]
    let types: [Int32] = [0, 1, 1, 0, 0]
    let lossScale = 0.5

    func testTinyAttentionBlockGradients() {
        let names = ["x", "norm", "wq", "wk", "wv", "wo", "wg", "wu", "wd", "wlm"]
        let shapes: [[Int]] = [[l, c], [c], [h * d, c], [kv * d, c], [kv * d, c], [c, h * d], [ff, c], [ff, c], [c, ff], [vocab, c]]
        let params = zip(shapes, 0...).map { Tensor.randomNormal($0.0, seed: 100 + UInt64($0.1), std: $0.1 == 0 ? 1 : 0.5) }
        let rope = RotaryEmbedding(headDim: d, base: 100)
        let (cos, sin) = rope.cosSin(length: l)
        let mask = AttentionMask(slidingWindow: 3, imageGroups: AttentionMask.imageGroupIDs(tokenTypes: types, batch: 1, length: l))

        // forward (fp32 kernels), keeping what the backward needs
        let (x, nw, wq, wk, wv, wo, wg, wu, wd, wlm) = (params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7], params[8], params[9])
        let hN = Tensor(zeros: [l, c]), rstd = Tensor(zeros: [l])
        rmsNormForward(out: hN, rstd: rstd, x, weight: nw, eps: 1e-6)
        let q0 = Tensor(zeros: [1, l, h, d]), k0 = Tensor(zeros: [1, l, kv, d]), v = Tensor(zeros: [1, l, kv, d])
        linearForward(out: q0, x: hN, weight: wq); linearForward(out: k0, x: hN, weight: wk); linearForward(out: v, x: hN, weight: wv)
        let q = Tensor(zeros: q0.shape), k = Tensor(zeros: k0.shape)
        ropeForward(out: q, q0, cos: cos, sin: sin); ropeForward(out: k, k0, cos: cos, sin: sin)
        let a = Tensor(zeros: [1, l, h, d]), probs = Tensor(zeros: [1, h, l, l])
        let scale: Float = 0.5
        attentionForward(out: a, probs: probs, q: q, k: k, v: v, scale: scale, mask: mask)
        let r = Tensor(zeros: [l, c])
        linearForward(out: r, x: a, weight: wo)
        addInPlace(r, x)
        let gPre = Tensor(zeros: [l, ff]), up = Tensor(zeros: [l, ff]), gAct = Tensor(zeros: [l, ff]), m = Tensor(zeros: [l, ff])
        linearForward(out: gPre, x: r, weight: wg); linearForward(out: up, x: r, weight: wu)
        geluTanhForward(out: gAct, gPre); mulForward(out: m, gAct, up)
        let y = r.copy()
        linearForward(out: y, x: m, weight: wd, accumulate: true)
        let logits = Tensor(zeros: [l, vocab])
        linearForward(out: logits, x: y, weight: wlm)
        let stats = crossEntropyForward(logits: logits, targets: targets)
        let loss = lossScale * stats.lossSum

        // backward, in reverse order
        let grads = params.map { Tensor(zeros: $0.shape) }
        let (dx, dnw, dwq, dwk, dwv, dwo, dwg, dwu, dwd, dwlm) = (grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], grads[6], grads[7], grads[8], grads[9])
        let dlogits = Tensor(zeros: logits.shape)
        crossEntropyBackward(dlogits: dlogits, logits: logits, targets: targets, scale: Float(lossScale))
        let dy = Tensor(zeros: [l, c])
        linearBackward(dx: dy, dweight: dwlm, dbias: nil, dout: dlogits, x: y, weight: wlm)
        let dr = dy.copy()                               // y = r + m·Wdᵀ
        let dm = Tensor(zeros: [l, ff])
        linearBackward(dx: dm, dweight: dwd, dbias: nil, dout: dy, x: m, weight: wd)
        let dgAct = Tensor(zeros: [l, ff]), dup = Tensor(zeros: [l, ff]), dgPre = Tensor(zeros: [l, ff])
        mulBackward(da: dgAct, db: dup, dout: dm, gAct, up)
        geluTanhBackward(dx: dgPre, dout: dgAct, gPre)
        linearBackward(dx: dr, dweight: dwg, dbias: nil, dout: dgPre, x: r, weight: wg)
        linearBackward(dx: dr, dweight: dwu, dbias: nil, dout: dup, x: r, weight: wu)
        addInPlace(dx, dr)                               // r = x + a·Woᵀ
        let da = Tensor(zeros: a.shape)
        linearBackward(dx: da, dweight: dwo, dbias: nil, dout: dr, x: a, weight: wo)
        let dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        attentionBackward(dq: dq, dk: dk, dv: dv, dout: da, probs: probs, q: q, k: k, v: v, scale: scale, mask: mask)
        let dq0 = Tensor(zeros: q.shape), dk0 = Tensor(zeros: k.shape)
        ropeBackward(dx: dq0, dout: dq, cos: cos, sin: sin); ropeBackward(dx: dk0, dout: dk, cos: cos, sin: sin)
        let dh = Tensor(zeros: [l, c])
        linearBackward(dx: dh, dweight: dwq, dbias: nil, dout: dq0, x: hN, weight: wq)
        linearBackward(dx: dh, dweight: dwk, dbias: nil, dout: dk0, x: hN, weight: wk)
        linearBackward(dx: dh, dweight: dwv, dbias: nil, dout: dv, x: hN, weight: wv)
        rmsNormBackward(dx: dx, dweight: dnw, dout: dh, x, weight: nw, rstd: rstd)

        // the same graph in Double
        let cd = doubles(cos), sd = doubles(sin)
        let allowedTable = UnsafeMutablePointer<UInt8>.allocate(capacity: l * l)
        defer { allowedTable.deallocate() }
        mask.fill(allowedTable, batch: 1, queries: l, keys: l)
        func lossRef(_ p: [[Double]]) -> Double {
            let hN = Ref.rmsNorm(p[0], p[1], d: c, eps: 1e-6)
            let q = Ref.rope(Ref.matmul(hN, p[2], m: l, n: h * d, k: c, ta: false, tb: true), cd, sd, b: 1, l: l, h: h, d: d)
            let k = Ref.rope(Ref.matmul(hN, p[3], m: l, n: kv * d, k: c, ta: false, tb: true), cd, sd, b: 1, l: l, h: kv, d: d)
            let v = Ref.matmul(hN, p[4], m: l, n: kv * d, k: c, ta: false, tb: true)
            let a = Ref.attention(q, k, v, b: 1, l: l, s: l, h: h, kv: kv, d: d, scale: Double(scale)) { _, i, j in allowedTable[i * l + j] != 0 }
            let r = zip(Ref.matmul(a, p[5], m: l, n: c, k: h * d, ta: false, tb: true), p[0]).map(+)
            let g = Ref.gelu(Ref.matmul(r, p[6], m: l, n: ff, k: c, ta: false, tb: true))
            let u = Ref.matmul(r, p[7], m: l, n: ff, k: c, ta: false, tb: true)
            let y = zip(r, Ref.matmul(zip(g, u).map(*), p[8], m: l, n: c, k: ff, ta: false, tb: true)).map(+)
            let logits = Ref.matmul(y, p[9], m: l, n: vocab, k: c, ta: false, tb: true)
            return lossScale * Ref.crossEntropy(logits, targets, v: vocab).sum
        }
        let pd = params.map(doubles)
        XCTAssertEqual(loss, lossRef(pd), accuracy: 1e-6 * abs(loss), "loss: fp32 graph vs Double graph, 1e-6 relative")
        for (i, name) in names.enumerated() {
            let fd = finiteDifferenceGradient(pd[i]) { xi in var p = pd; p[i] = xi; return lossRef(p) }
            assertClose(grads[i], fd, tol: Tol.backward, "end-to-end d\(name)")
        }
    }
}
