// The Gemma 3 text decoder (transformers models/gemma3/modeling_gemma3.py), forward and backward side by
// side: sandwich (1+w) RMSNorms, q/k norms before RoPE, query_pre_attn_scalar, grouped KV heads, sliding
// and full layers with their own RoPE tables, GELU-tanh gated MLP.
import Foundation
import Tensor

/// cos/sin [positions, headDim] from module Tensor's `RotaryEmbedding` (inv_freq with "linear" scaling,
/// fp32 angles, as transformers computes them); `rows` gives the [L, headDim] views a layer applies.
struct RopeTable {
    let cos: Tensor, sin: Tensor
    var maxPos: Int { cos.shape[0] }
    init(cos: Tensor, sin: Tensor) { self.cos = cos; self.sin = sin }
    init(headDim: Int, base: Double, linearFactor: Double?, maxPositions: Int) {
        let rotary = RotaryEmbedding(headDim: headDim, base: Float(base), linearScalingFactor: Float(linearFactor ?? 1))
        (cos, sin) = rotary.cosSin(length: maxPositions)
    }
    func rows(_ positions: Range<Int>) -> RopeTable { RopeTable(cos: cos.rows(positions), sin: sin.rows(positions)) }
}

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

    /// q, k, v (after q/k norm and RoPE) of input x (B·L, C) — shared by the training forward and the KV-cache
    /// path; rope: the [L, D] table rows of these L positions (the same for every sequence of the batch).
    func projectQKV(_ c: Cache, _ x: CFPtr, B: Int, L: Int, rope: RopeTable, ctx: RunContext, keep: Bool) {
        let T = B * L
        c.xIn.p.update(from: x, count: T * C)
        rmsNormForward(out: c.xn1.p, rstd: c.rstd1.p, x, weight: inNorm.f32, rows: T, dim: C, eps: eps)
        let sq = q.forward(c.qRaw.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sk = k.forward(c.kRaw.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sv = v.forward(c.v.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        rmsNormForward(out: c.q.p, rstd: c.rstdQ.p, c.qRaw.p, weight: qNorm.f32, rows: T * H, dim: D, eps: eps)
        rmsNormForward(out: c.k.p, rstd: c.rstdK.p, c.kRaw.p, weight: kNorm.f32, rows: T * KV, dim: D, eps: eps)
        let q4 = c.q.view([B, L, H, D]), k4 = c.k.view([B, L, KV, D])
        ropeForward(out: q4, q4, cos: rope.cos, sin: rope.sin)
        ropeForward(out: k4, k4, cos: rope.cos, sin: rope.sin)
        c.st = [sq, sk, sv]
    }

    /// After attention (c.attn filled): o_proj, sandwich norms, MLP; writes the layer output into x.
    func finish(_ c: Cache, _ x: FPtr, T: Int, ctx: RunContext, keep: Bool) {
        let so = o.forward(c.oOut.p, c.attn.p, T: T, ctx: ctx, keep: keep)
        rmsNormForward(out: c.h1.p, rstd: c.rstd2.p, c.oOut.p, weight: postAttnNorm.f32, rows: T, dim: C, eps: eps)
        for i in 0..<(T * C) { c.h1.p[i] += c.xIn.p[i] }
        rmsNormForward(out: c.xn3.p, rstd: c.rstd3.p, c.h1.p, weight: preFFNorm.f32, rows: T, dim: C, eps: eps)
        let sg = gate.forward(c.g.p, c.xn3.p, T: T, ctx: ctx, keep: keep)
        let su = up.forward(c.u.p, c.xn3.p, T: T, ctx: ctx, keep: keep)
        geluTanhGatedForward(out: c.mid.view([T * I]), gate: c.g.view([T * I]), up: c.u.view([T * I]))
        let sd = down.forward(c.dn.p, c.mid.p, T: T, ctx: ctx, keep: keep)
        rmsNormForward(out: x, rstd: c.rstd4.p, c.dn.p, weight: postFFNorm.f32, rows: T, dim: C, eps: eps)
        for i in 0..<(T * C) { x[i] += c.h1.p[i] }
        c.st += [so, sg, su, sd]
    }

    // x (B·L, C) in place
    func forward(_ x: FPtr, B: Int, L: Int, rope: RopeTable, mask: AttentionMask,
                 ctx: RunContext, keep: Bool) -> Cache? {
        let T = B * L
        let c = Cache(T: T, C: C, I: I, H: H, KV: KV, D: D)
        projectQKV(c, x, B: B, L: L, rope: rope, ctx: ctx, keep: keep)
        // probabilities not kept: the backward recomputes them per head instead of holding B·H·L² floats
        attentionForward(out: c.attn.view([B, L, H, D]), probs: nil, q: c.q.view([B, L, H, D]), k: c.k.view([B, L, KV, D]),
                         v: c.v.view([B, L, KV, D]), scale: scale, mask: mask, precision: ctx.matmul.attention)
        finish(c, x, T: T, ctx: ctx, keep: keep)
        return keep ? c : nil
    }

    // dx (B·L, C) in place: dOut → dIn. needInputGrad false (the first layer when neither the embeddings
    // nor the image features train): the q/k/v products' dX and input_layernorm's backward are skipped.
    func backward(_ dx: FPtr, B: Int, L: Int, rope: RopeTable, mask: AttentionMask,
                  cache c: Cache, ctx: RunContext, needInputGrad: Bool = true) {
        let T = B * L
        // post_feedforward_layernorm, down, gated GELU, gate/up, pre_feedforward_layernorm (residual kept in dx)
        let ddn = FBuf(T * C)
        rmsNormBackward(dx: ddn.p, dweight: postFFNorm.grad, dout: dx, c.dn.p, weight: postFFNorm.f32, rstd: c.rstd4.p, rows: T, dim: C)
        let dmid = FBuf(T * I)
        down.backward(dmid.p, ddn.p, c.mid.p, T: T, state: c.st[6], ctx: ctx)
        let dg = FBuf(T * I), du = FBuf(T * I)
        geluTanhGatedBackward(dgate: dg.view([T * I]), dup: du.view([T * I]), dout: dmid.view([T * I]),
                              gate: c.g.view([T * I]), up: c.u.view([T * I]))
        let dxn3 = FBuf(T * C)
        gate.backward(dxn3.p, dg.p, c.xn3.p, T: T, state: c.st[4], ctx: ctx)
        up.backward(dxn3.p, du.p, c.xn3.p, T: T, state: c.st[5], ctx: ctx)
        rmsNormBackward(dx: dx, dweight: preFFNorm.grad, dout: dxn3.p, c.h1.p, weight: preFFNorm.f32, rstd: c.rstd3.p, rows: T, dim: C)
        // dx = dh1. post_attention_layernorm, o_proj
        let doo = FBuf(T * C)
        rmsNormBackward(dx: doo.p, dweight: postAttnNorm.grad, dout: dx, c.oOut.p, weight: postAttnNorm.f32, rstd: c.rstd2.p, rows: T, dim: C)
        let dattn = FBuf(T * H * D)
        o.backward(dattn.p, doo.p, c.attn.p, T: T, state: c.st[3], ctx: ctx)
        let dq = FBuf(T * H * D), dk = FBuf(T * KV * D), dv = FBuf(T * KV * D)
        attentionBackward(dq: dq.view([B, L, H, D]), dk: dk.view([B, L, KV, D]), dv: dv.view([B, L, KV, D]),
                          dout: dattn.view([B, L, H, D]), probs: nil, q: c.q.view([B, L, H, D]), k: c.k.view([B, L, KV, D]),
                          v: c.v.view([B, L, KV, D]), scale: scale, mask: mask, precision: ctx.matmul.attention)
        // through RoPE to the q/k norm outputs, then the norms to the projections
        let dqn = FBuf(T * H * D), dkn = FBuf(T * KV * D)
        ropeBackward(dx: dqn.view([B, L, H, D]), dout: dq.view([B, L, H, D]), cos: rope.cos, sin: rope.sin)
        ropeBackward(dx: dkn.view([B, L, KV, D]), dout: dk.view([B, L, KV, D]), cos: rope.cos, sin: rope.sin)
        let dqr = FBuf(T * H * D), dkr = FBuf(T * KV * D)
        rmsNormBackward(dx: dqr.p, dweight: qNorm.grad, dout: dqn.p, c.qRaw.p, weight: qNorm.f32, rstd: c.rstdQ.p, rows: T * H, dim: D)
        rmsNormBackward(dx: dkr.p, dweight: kNorm.grad, dout: dkn.p, c.kRaw.p, weight: kNorm.f32, rstd: c.rstdK.p, rows: T * KV, dim: D)
        let inputGrad = needInputGrad || inNorm.trainable
        let dxn1 = inputGrad ? FBuf(T * C) : nil
        q.backward(dxn1?.p, dqr.p, c.xn1.p, T: T, state: c.st[0], ctx: ctx)
        k.backward(dxn1?.p, dkr.p, c.xn1.p, T: T, state: c.st[1], ctx: ctx)
        v.backward(dxn1?.p, dv.p, c.xn1.p, T: T, state: c.st[2], ctx: ctx)
        guard let dxn1 else { return }
        rmsNormBackward(dx: dx, dweight: inNorm.grad, dout: dxn1.p, c.xIn.p, weight: inNorm.f32, rstd: c.rstd1.p, rows: T, dim: C)
    }
}
