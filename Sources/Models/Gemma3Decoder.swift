// The Gemma 3 text decoder (transformers models/gemma3/modeling_gemma3.py), forward and backward side by
// side: sandwich (1+w) RMSNorms, q/k norms before RoPE, query_pre_attn_scalar, grouped KV heads, sliding
// and full layers with their own RoPE tables, GELU-tanh gated MLP.
import Foundation
import Tensor

final class Gemma3DecoderLayer {
    let C: Int, I: Int, H: Int, KV: Int, D: Int
    let sliding: Bool
    let eps: Float
    let scale: Float
    let inNorm: Weight, postAttnNorm: Weight, preFFNorm: Weight, postFFNorm: Weight, qNorm: Weight, kNorm: Weight
    let q: Linear, k: Linear, v: Linear, o: Linear, gate: Linear, up: Linear, down: Linear

    init(_ p: String, index: Int, _ cfg: Gemma3TextConfig, _ w: WeightBinder) {
        C = cfg.hiddenSize; I = cfg.intermediateSize; H = cfg.numAttentionHeads; KV = cfg.numKeyValueHeads
        D = cfg.headDim; sliding = cfg.isSliding(index); eps = Float(cfg.rmsNormEps)
        scale = Float(pow(cfg.queryPreAttnScalar, -0.5))
        func lin(_ n: String, _ i: Int, _ o: Int) -> Linear {
            Linear(name: p + n, inF: i, outF: o, weight: w.bind(p + n + ".weight", [o, i]),
                   bias: cfg.attentionBias && n.hasPrefix("self_attn") ? w.bind(p + n + ".bias", [o]) : nil)
        }
        inNorm = w.bind(p + "input_layernorm.weight", [C])
        postAttnNorm = w.bind(p + "post_attention_layernorm.weight", [C])
        preFFNorm = w.bind(p + "pre_feedforward_layernorm.weight", [C])
        postFFNorm = w.bind(p + "post_feedforward_layernorm.weight", [C])
        qNorm = w.bind(p + "self_attn.q_norm.weight", [D]); kNorm = w.bind(p + "self_attn.k_norm.weight", [D])
        q = lin("self_attn.q_proj", C, H * D); k = lin("self_attn.k_proj", C, KV * D)
        v = lin("self_attn.v_proj", C, KV * D); o = lin("self_attn.o_proj", H * D, C)
        gate = lin("mlp.gate_proj", C, I); up = lin("mlp.up_proj", C, I); down = lin("mlp.down_proj", I, C)
    }
    var linears: [Linear] { [q, k, v, o, gate, up, down] }

    final class Cache {
        let xIn, rstd1, xn1, qRaw, kRaw, rstdQ, rstdK, q, k, v, attn, oOut, rstd2, h1, rstd3, xn3, g, u, mid, dn, rstd4: FBuf
        var st: [LinearState?] = []
        init(T: Int, C: Int, I: Int, H: Int, KV: Int, D: Int) {
            xIn = FBuf(T * C, zero: false); rstd1 = FBuf(T); xn1 = FBuf(T * C, zero: false)
            qRaw = FBuf(T * H * D, zero: false); kRaw = FBuf(T * KV * D, zero: false)
            rstdQ = FBuf(T * H); rstdK = FBuf(T * KV)
            q = FBuf(T * H * D, zero: false); k = FBuf(T * KV * D, zero: false); v = FBuf(T * KV * D, zero: false)
            attn = FBuf(T * H * D, zero: false); oOut = FBuf(T * C, zero: false); rstd2 = FBuf(T)
            h1 = FBuf(T * C, zero: false); rstd3 = FBuf(T); xn3 = FBuf(T * C, zero: false)
            g = FBuf(T * I, zero: false); u = FBuf(T * I, zero: false); mid = FBuf(T * I, zero: false)
            dn = FBuf(T * C, zero: false); rstd4 = FBuf(T)
        }
    }

    /// q, k, v (after q/k norm and RoPE) of input x (T, C) — shared by the training forward and the KV-cache path.
    func projectQKV(_ c: Cache, _ x: CFPtr, T: Int, positions: [Int], rope: RopeTable, ctx: RunContext, keep: Bool) {
        c.xIn.p.update(from: x, count: T * C)
        rmsnormForward(c.xn1.p, c.rstd1.p, x, inNorm.f32, T, C, eps)
        let sq = q.forward(c.qRaw.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sk = k.forward(c.kRaw.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sv = v.forward(c.v.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        rmsnormForward(c.q.p, c.rstdQ.p, c.qRaw.p, qNorm.f32, T * H, D, eps)
        rmsnormForward(c.k.p, c.rstdK.p, c.kRaw.p, kNorm.f32, T * KV, D, eps)
        ropeForward(c.q.p, T, H, D, positions, rope.cos.p, rope.sin.p)
        ropeForward(c.k.p, T, KV, D, positions, rope.cos.p, rope.sin.p)
        c.st = [sq, sk, sv]
    }

    /// After attention (c.attn filled): o_proj, sandwich norms, MLP; writes the layer output into x.
    func finish(_ c: Cache, _ x: FPtr, T: Int, ctx: RunContext, keep: Bool) {
        let so = o.forward(c.oOut.p, c.attn.p, T: T, ctx: ctx, keep: keep)
        rmsnormForward(c.h1.p, c.rstd2.p, c.oOut.p, postAttnNorm.f32, T, C, eps)
        for i in 0..<(T * C) { c.h1.p[i] += c.xIn.p[i] }
        rmsnormForward(c.xn3.p, c.rstd3.p, c.h1.p, preFFNorm.f32, T, C, eps)
        let sg = gate.forward(c.g.p, c.xn3.p, T: T, ctx: ctx, keep: keep)
        let su = up.forward(c.u.p, c.xn3.p, T: T, ctx: ctx, keep: keep)
        for i in 0..<(T * I) { c.mid.p[i] = geluTanh(c.g.p[i]) * c.u.p[i] }
        let sd = down.forward(c.dn.p, c.mid.p, T: T, ctx: ctx, keep: keep)
        rmsnormForward(x, c.rstd4.p, c.dn.p, postFFNorm.f32, T, C, eps)
        for i in 0..<(T * C) { x[i] += c.h1.p[i] }
        c.st += [so, sg, su, sd]
    }

    // x (B·L, C) in place
    func forward(_ x: FPtr, B: Int, L: Int, positions: [Int], rope: RopeTable, masks: AttentionMasks,
                 ctx: RunContext, keep: Bool) -> Cache? {
        let T = B * L
        let c = Cache(T: T, C: C, I: I, H: H, KV: KV, D: D)
        projectQKV(c, x, T: T, positions: positions, rope: rope, ctx: ctx, keep: keep)
        MultiHeadAttention.forward(c.attn.p, q: c.q.p, k: c.k.p, v: c.v.p, B: B, L: L, H: H, KV: KV, D: D,
                                   scale: scale, masks: masks)
        finish(c, x, T: T, ctx: ctx, keep: keep)
        return keep ? c : nil
    }

    // dx (B·L, C) in place: dOut → dIn
    func backward(_ dx: FPtr, B: Int, L: Int, positions: [Int], rope: RopeTable, masks: AttentionMasks,
                  cache c: Cache, ctx: RunContext) {
        let T = B * L
        // post_feedforward_layernorm, down, gated GELU, gate/up, pre_feedforward_layernorm (residual kept in dx)
        let ddn = FBuf(T * C, zero: false)
        rmsnormBackward(ddn.p, postFFNorm.grad, dx, c.dn.p, postFFNorm.f32, c.rstd4.p, T, C)
        let dmid = FBuf(T * I)
        down.backward(dmid.p, ddn.p, c.mid.p, T: T, state: c.st[6], ctx: ctx)
        let dg = FBuf(T * I, zero: false), du = FBuf(T * I, zero: false)
        for i in 0..<(T * I) {
            let gv = c.g.p[i]
            du.p[i] = dmid.p[i] * geluTanh(gv)
            dg.p[i] = dmid.p[i] * c.u.p[i] * geluTanhGrad(gv)
        }
        let dxn3 = FBuf(T * C)
        gate.backward(dxn3.p, dg.p, c.xn3.p, T: T, state: c.st[4], ctx: ctx)
        up.backward(dxn3.p, du.p, c.xn3.p, T: T, state: c.st[5], ctx: ctx)
        rmsnormBackward(dx, preFFNorm.grad, dxn3.p, c.h1.p, preFFNorm.f32, c.rstd3.p, T, C, accumulate: true)
        // dx = dh1. post_attention_layernorm, o_proj
        let doo = FBuf(T * C, zero: false)
        rmsnormBackward(doo.p, postAttnNorm.grad, dx, c.oOut.p, postAttnNorm.f32, c.rstd2.p, T, C)
        let dattn = FBuf(T * H * D)
        o.backward(dattn.p, doo.p, c.attn.p, T: T, state: c.st[3], ctx: ctx)
        let dq = FBuf(T * H * D, zero: false), dk = FBuf(T * KV * D, zero: false), dv = FBuf(T * KV * D, zero: false)
        MultiHeadAttention.backward(dq: dq.p, dk: dk.p, dv: dv.p, dout: dattn.p, q: c.q.p, k: c.k.p, v: c.v.p,
                                    B: B, L: L, H: H, KV: KV, D: D, scale: scale, masks: masks)
        ropeBackward(dq.p, T, H, D, positions, rope.cos.p, rope.sin.p)
        ropeBackward(dk.p, T, KV, D, positions, rope.cos.p, rope.sin.p)
        let dqr = FBuf(T * H * D, zero: false), dkr = FBuf(T * KV * D, zero: false)
        rmsnormBackward(dqr.p, qNorm.grad, dq.p, c.qRaw.p, qNorm.f32, c.rstdQ.p, T * H, D)
        rmsnormBackward(dkr.p, kNorm.grad, dk.p, c.kRaw.p, kNorm.f32, c.rstdK.p, T * KV, D)
        let dxn1 = FBuf(T * C)
        q.backward(dxn1.p, dqr.p, c.xn1.p, T: T, state: c.st[0], ctx: ctx)
        k.backward(dxn1.p, dkr.p, c.xn1.p, T: T, state: c.st[1], ctx: ctx)
        v.backward(dxn1.p, dv.p, c.xn1.p, T: T, state: c.st[2], ctx: ctx)
        rmsnormBackward(dx, inNorm.grad, dxn1.p, c.xIn.p, inNorm.f32, c.rstd1.p, T, C, accumulate: true)
    }
}
