// SigLIP vision tower (transformers models/siglip/modeling_siglip.py) and the Gemma 3 multimodal projector
// (modeling_gemma3.py Gemma3MultiModalProjector), forward and backward side by side.
import Foundation
import Tensor

final class SiglipLayer {
    let C: Int, I: Int, H: Int
    let ln1w: Weight, ln1b: Weight, ln2w: Weight, ln2b: Weight
    let q: Linear, k: Linear, v: Linear, o: Linear, fc1: Linear, fc2: Linear
    let eps: Float

    init(_ p: String, _ cfg: SiglipVisionConfig, _ w: WeightBinder) {
        C = cfg.hiddenSize; I = cfg.intermediateSize; H = cfg.numAttentionHeads; eps = Float(cfg.layerNormEps)
        func lin(_ n: String, _ i: Int, _ o: Int) -> Linear {
            Linear(name: p + n, inF: i, outF: o, weight: w.bind(p + n + ".weight", [o, i]), bias: w.bind(p + n + ".bias", [o]))
        }
        ln1w = w.bind(p + "layer_norm1.weight", [C]); ln1b = w.bind(p + "layer_norm1.bias", [C])
        ln2w = w.bind(p + "layer_norm2.weight", [C]); ln2b = w.bind(p + "layer_norm2.bias", [C])
        q = lin("self_attn.q_proj", C, C); k = lin("self_attn.k_proj", C, C); v = lin("self_attn.v_proj", C, C)
        o = lin("self_attn.out_proj", C, C); fc1 = lin("mlp.fc1", C, I); fc2 = lin("mlp.fc2", I, C)
    }
    var linears: [Linear] { [q, k, v, o, fc1, fc2] }

    final class Cache {
        var xIn, mean1, rstd1, xn1, q, k, v, attn, h1, mean2, rstd2, xn2, f1, g: FBuf
        var st: [LinearState?] = []
        init(T: Int, C: Int, I: Int) {
            xIn = FBuf(T * C); mean1 = FBuf(T); rstd1 = FBuf(T); xn1 = FBuf(T * C)
            q = FBuf(T * C); k = FBuf(T * C); v = FBuf(T * C); attn = FBuf(T * C); h1 = FBuf(T * C)
            mean2 = FBuf(T); rstd2 = FBuf(T); xn2 = FBuf(T * C); f1 = FBuf(T * I); g = FBuf(T * I)
        }
    }

    // x (N·P, C) in place: x = x + attn(LN1 x); x = x + fc2(gelu(fc1(LN2 x)))
    func forward(_ x: FPtr, N: Int, P: Int, ctx: RunContext, keep: Bool) -> Cache? {
        let T = N * P
        let c = Cache(T: T, C: C, I: I)
        c.xIn.p.update(from: x, count: T * C)
        layerNormForward(out: c.xn1.p, mean: c.mean1.p, rstd: c.rstd1.p, x, weight: ln1w.f32, bias: ln1b.f32, rows: T, dim: C, eps: eps)
        let sq = q.forward(c.q.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sk = k.forward(c.k.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let sv = v.forward(c.v.p, c.xn1.p, T: T, ctx: ctx, keep: keep)
        let D = C / H
        let scale = Float(pow(Double(D), -0.5))
        attentionForward(out: c.attn.view([N, P, H, D]), probs: nil, q: c.q.view([N, P, H, D]), k: c.k.view([N, P, H, D]),
                         v: c.v.view([N, P, H, D]), scale: scale, mask: .none, precision: ctx.matmul.attention)
        let oo = FBuf(T * C, zero: false)
        let so = o.forward(oo.p, c.attn.p, T: T, ctx: ctx, keep: keep)
        for i in 0..<(T * C) { c.h1.p[i] = c.xIn.p[i] + oo.p[i] }
        layerNormForward(out: c.xn2.p, mean: c.mean2.p, rstd: c.rstd2.p, c.h1.p, weight: ln2w.f32, bias: ln2b.f32, rows: T, dim: C, eps: eps)
        let s1 = fc1.forward(c.f1.p, c.xn2.p, T: T, ctx: ctx, keep: keep)
        geluTanhForward(out: c.g.view([T * I]), c.f1.view([T * I]))
        let f2 = FBuf(T * C, zero: false)
        let s2 = fc2.forward(f2.p, c.g.p, T: T, ctx: ctx, keep: keep)
        for i in 0..<(T * C) { x[i] = c.h1.p[i] + f2.p[i] }
        c.st = [sq, sk, sv, so, s1, s2]
        return keep ? c : nil
    }

    // dx (N·P, C) in place: dOut → dIn
    /// needInputGrad false (the first layer when nothing below it trains): the q/k/v products' dX and the
    /// first LayerNorm's backward are skipped — only the adapters' and this layer's weight gradients are made.
    func backward(_ dx: FPtr, N: Int, P: Int, cache c: Cache, ctx: RunContext, needInputGrad: Bool = true) {
        let T = N * P, D = C / H
        let dg = FBuf(T * I)
        fc2.backward(dg.p, dx, c.g.p, T: T, state: c.st[5], ctx: ctx)
        let df1 = FBuf(T * I)
        geluTanhBackward(dx: df1.view([T * I]), dout: dg.view([T * I]), c.f1.view([T * I]))
        let dxn2 = FBuf(T * C)
        fc1.backward(dxn2.p, df1.p, c.xn2.p, T: T, state: c.st[4], ctx: ctx)
        layerNormBackward(dx: dx, dweight: ln2w.grad, dbias: ln2b.grad, dout: dxn2.p, c.h1.p, weight: ln2w.f32, mean: c.mean2.p, rstd: c.rstd2.p, rows: T, dim: C)
        // dx now holds dh1
        let dattn = FBuf(T * C)
        o.backward(dattn.p, dx, c.attn.p, T: T, state: c.st[3], ctx: ctx)
        let dq = FBuf(T * C), dk = FBuf(T * C), dv = FBuf(T * C)
        attentionBackward(dq: dq.view([N, P, H, D]), dk: dk.view([N, P, H, D]), dv: dv.view([N, P, H, D]),
                          dout: dattn.view([N, P, H, D]), probs: nil, q: c.q.view([N, P, H, D]), k: c.k.view([N, P, H, D]),
                          v: c.v.view([N, P, H, D]), scale: Float(pow(Double(D), -0.5)), mask: .none,
                          precision: ctx.matmul.attention)
        let inputGrad = needInputGrad || ln1w.trainable || ln1b.trainable
        let dxn1 = inputGrad ? FBuf(T * C) : nil
        q.backward(dxn1?.p, dq.p, c.xn1.p, T: T, state: c.st[0], ctx: ctx)
        k.backward(dxn1?.p, dk.p, c.xn1.p, T: T, state: c.st[1], ctx: ctx)
        v.backward(dxn1?.p, dv.p, c.xn1.p, T: T, state: c.st[2], ctx: ctx)
        guard let dxn1 else { return }
        layerNormBackward(dx: dx, dweight: ln1w.grad, dbias: ln1b.grad, dout: dxn1.p, c.xIn.p, weight: ln1w.f32, mean: c.mean1.p, rstd: c.rstd1.p, rows: T, dim: C)
    }
}

final class SiglipVisionTower {
    let cfg: SiglipVisionConfig
    let prefix: String
    let patchW: Weight, patchB: Weight, pos: Weight, postW: Weight, postB: Weight
    let layers: [SiglipLayer]
    var P: Int { cfg.patchesPerSide * cfg.patchesPerSide }
    var K: Int { cfg.numChannels * cfg.patchSize * cfg.patchSize }

    init(prefix p: String, _ cfg: SiglipVisionConfig, _ w: WeightBinder) {
        self.cfg = cfg; prefix = p
        let C = cfg.hiddenSize, ps = cfg.patchSize
        patchW = w.bind(p + "embeddings.patch_embedding.weight", [C, cfg.numChannels, ps, ps])
        patchB = w.bind(p + "embeddings.patch_embedding.bias", [C])
        pos = w.bind(p + "embeddings.position_embedding.weight", [cfg.patchesPerSide * cfg.patchesPerSide, C])
        layers = (0..<cfg.numHiddenLayers).map { SiglipLayer(p + "encoder.layers.\($0).", cfg, w) }
        postW = w.bind(p + "post_layernorm.weight", [C]); postB = w.bind(p + "post_layernorm.bias", [C])
    }

    final class Cache {
        var patches: FBuf
        var layerCaches: [SiglipLayer.Cache?] = []
        var layerInputs: [FBuf] = []   // gradient checkpointing: inputs only
        var preNorm: FBuf, mean: FBuf, rstd: FBuf
        var rngStates: [SeededRNG] = []
        init(patches: FBuf, T: Int, C: Int) { self.patches = patches; preNorm = FBuf(T * C); mean = FBuf(T); rstd = FBuf(T) }
    }

    /// pixels (N, 3, S, S) → im2col patches (N·P, 3·ps·ps) in conv-weight order (c, ky, kx).
    func im2col(_ px: CFPtr, N: Int) -> FBuf {
        let ps = cfg.patchSize, side = cfg.patchesPerSide, S = cfg.imageSize, ch = cfg.numChannels
        let out = FBuf(N * P * K, zero: false)
        for n in 0..<N {
            for pr in 0..<side {
                for pc in 0..<side {
                    let row = out.p + ((n * P) + pr * side + pc) * K
                    var i = 0
                    for c in 0..<ch {
                        for ky in 0..<ps {
                            let src = px + ((n * ch + c) * S + pr * ps + ky) * S + pc * ps
                            for kx in 0..<ps { row[i] = src[kx]; i += 1 }
                        }
                    }
                }
            }
        }
        return out
    }

    // pixels (N, 3, S, S) → last hidden state (N·P, C)
    func forward(_ out: FPtr, pixels: CFPtr, N: Int, ctx: RunContext, keep: Bool, checkpoint: Bool) -> Cache? {
        let C = cfg.hiddenSize, T = N * P
        let patches = im2col(pixels, N: N)
        let x = FBuf(T * C, zero: false)
        let mp = ctx.matmul
        MatrixKernels.forward(x.p, patches.p, patchW, T: T, inF: K, outF: C, scratch: ctx.scratch, precision: mp)
        let b = patchB.f32, pe = pos.f32
        if mp.autocast {
            // conv2d under autocast: bf16 operands and bias, the biased sum rounded once (as a Linear with a
            // bias); the fp32 position embedding is then added to it in fp32 (type promotion).
            for t in 0..<T { for c in 0..<C { x.p[t * C + c] = roundedToBF16(x.p[t * C + c] + roundedToBF16(b[c])) + pe[(t % P) * C + c] } }
        } else {
            for t in 0..<T { for c in 0..<C { x.p[t * C + c] += b[c] + pe[(t % P) * C + c] } }
        }
        let cache = Cache(patches: patches, T: T, C: C)
        for l in layers {
            if keep && checkpoint {
                cache.layerInputs.append(FBuf(copying: x.p, count: T * C)); cache.rngStates.append(ctx.rng)
                _ = l.forward(x.p, N: N, P: P, ctx: ctx, keep: false)
            } else {
                cache.layerCaches.append(l.forward(x.p, N: N, P: P, ctx: ctx, keep: keep))
            }
        }
        cache.preNorm.p.update(from: x.p, count: T * C)
        layerNormForward(out: out, mean: cache.mean.p, rstd: cache.rstd.p, x.p, weight: postW.f32, bias: postB.f32, rows: T, dim: C, eps: Float(cfg.layerNormEps))
        return keep ? cache : nil
    }

    // dOut (N·P, C) → parameter grads (the pixels need no gradient)
    func backward(_ dOut: CFPtr, N: Int, cache: Cache, ctx: RunContext) {
        let C = cfg.hiddenSize, T = N * P
        let dx = FBuf(T * C)
        layerNormBackward(dx: dx.p, dweight: postW.grad, dbias: postB.grad, dout: dOut, cache.preNorm.p, weight: postW.f32, mean: cache.mean.p, rstd: cache.rstd.p, rows: T, dim: C)
        // Below the first layer: the patch embedding and position table (frozen under LoRA: no gradient to make)
        let embeddingsTrain = patchW.trainable || patchB.trainable || pos.trainable
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[li]
            let needInputGrad = li > 0 || embeddingsTrain
            if !cache.layerInputs.isEmpty {
                let saved = ctx.rng
                ctx.rng = cache.rngStates[li]
                let x = FBuf(copying: cache.layerInputs[li].p, count: T * C)
                let c = l.forward(x.p, N: N, P: P, ctx: ctx, keep: true)!
                ctx.rng = saved
                l.backward(dx.p, N: N, P: P, cache: c, ctx: ctx, needInputGrad: needInputGrad)
            } else {
                l.backward(dx.p, N: N, P: P, cache: cache.layerCaches[li]!, ctx: ctx, needInputGrad: needInputGrad)
            }
        }
        // patch embedding (a conv with stride = kernel is a matmul over im2col patches)
        if let g = patchW.grad { ctx.matmul.tn(C, K, T, dx.p, C, cache.patches.p, K, g, K, beta: 1, roundOutput: true) }
        if let g = patchB.grad { for t in 0..<T { addInPlace(g, dx.p + t * C, C) } }
        if let g = pos.grad { for t in 0..<T { addInPlace(g + (t % P) * C, dx.p + t * C, C) } }
    }
}

/// Average-pool to mm_tokens_per_image, Gemma RMSNorm (1+w), then x · W with W (vision, text) input-major.
final class Gemma3Projector {
    let inputProjection: Weight   // (Cv, Ct)
    let norm: Weight              // (Cv)
    let Cv: Int, Ct: Int, side: Int, pooledSide: Int, kernel: Int
    let eps: Float
    init(prefix p: String, _ cfg: Gemma3Config, _ w: WeightBinder) {
        Cv = cfg.visionConfig.hiddenSize; Ct = cfg.textConfig.hiddenSize
        side = cfg.visionConfig.patchesPerSide
        pooledSide = Int(Double(cfg.mmTokensPerImage).squareRoot())
        kernel = side / pooledSide
        eps = Float(cfg.visionConfig.layerNormEps)
        inputProjection = w.bind(p + "mm_input_projection_weight", [Cv, Ct])
        norm = w.bind(p + "mm_soft_emb_norm.weight", [Cv])
    }
    final class Cache { var pooled: FBuf; var normed: FBuf; var rstd: FBuf
        init(_ a: FBuf, _ b: FBuf, _ c: FBuf) { pooled = a; normed = b; rstd = c } }

    // vision (N·P, Cv) = (N, side, side, Cv) channels-last → features (N·M, Ct).
    // The projection is a torch.matmul: under bf16 autocast, bf16 operands and a bf16 result, like a Linear.
    func forward(_ out: FPtr, _ x: FBuf, N: Int, precision mp: MatmulPrecision) -> Cache {
        let M = pooledSide * pooledSide
        let pooled = FBuf(N * M * Cv, zero: false)
        avgPool2dForward(out: pooled.view([N, pooledSide, pooledSide, Cv]), x.view([N, side, side, Cv]), kernel: kernel)
        let normed = FBuf(N * M * Cv, zero: false), rstd = FBuf(N * M)
        rmsNormForward(out: normed.p, rstd: rstd.p, pooled.p, weight: norm.f32, rows: N * M, dim: Cv, eps: eps)
        mp.nn(N * M, Ct, Cv, normed.p, Cv, inputProjection.f32, Ct, out, Ct, roundOutput: true)
        return Cache(pooled, normed, rstd)
    }

    // dFeatures (N·M, Ct) → dVision (N·P, Cv) (+=)
    func backward(_ dx: FBuf, _ dOut: CFPtr, N: Int, cache: Cache, precision mp: MatmulPrecision) {
        let M = pooledSide * pooledSide
        if let g = inputProjection.grad { mp.tn(Cv, Ct, N * M, cache.normed.p, Cv, dOut, Ct, g, Ct, beta: 1, roundOutput: true) }
        let dn = FBuf(N * M * Cv, zero: false)
        mp.nt(N * M, Cv, Ct, dOut, Ct, inputProjection.f32, Ct, dn.p, Cv, roundOutput: true)
        let dp = FBuf(N * M * Cv)
        rmsNormBackward(dx: dp.p, dweight: norm.grad, dout: dn.p, cache.pooled.p, weight: norm.f32, rstd: cache.rstd.p, rows: N * M, dim: Cv)
        avgPool2dBackward(dx: dx.view([N, side, side, Cv]), dout: dp.view([N, pooledSide, pooledSide, Cv]), kernel: kernel)
    }
}
