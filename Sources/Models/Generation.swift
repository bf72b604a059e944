// Text generation with a KV cache. Sliding layers keep only the last sliding_window − 1 keys between
// steps (what the next query may still see); full layers keep everything. The prefill sees the prompt's
// image blocks bidirectionally, as transformers' generate passes token_type_ids on the first step only.
import Foundation
import Tensor

public struct SamplingOptions: Sendable {
    /// 0 = greedy.
    public var temperature: Double = 0
    public var topP: Double = 1
    /// 0 = off.
    public var topK: Int = 0
    public var seed: UInt64 = 0
    public init(temperature: Double = 0, topP: Double = 1, topK: Int = 0, seed: UInt64 = 0) {
        self.temperature = temperature; self.topP = topP; self.topK = topK; self.seed = seed
    }
}

/// Per-layer keys and values (post-RoPE), rows of KV·D floats, for positions start..<start+count, in
/// buffers that grow by doubling (viewed as [1, count, KV, D] Tensors for the attention kernel).
final class LayerKVCache {
    private(set) var keys = FBuf(0), values = FBuf(0)
    var start = 0
    var count = 0
    let kvHeads: Int, headDim: Int
    var width: Int { kvHeads * headDim }
    init(kvHeads: Int, headDim: Int) { self.kvHeads = kvHeads; self.headDim = headDim }
    func append(_ k: CFPtr, _ v: CFPtr, rows: Int) {
        if (count + rows) * width > keys.count {
            var capacity = max(keys.count, 64 * width)
            while capacity < (count + rows) * width { capacity *= 2 }
            let nk = FBuf(capacity, zero: false), nv = FBuf(capacity, zero: false)
            nk.p.update(from: keys.p, count: count * width); nv.p.update(from: values.p, count: count * width)
            keys = nk; values = nv
        }
        (keys.p + count * width).update(from: k, count: rows * width)
        (values.p + count * width).update(from: v, count: rows * width)
        count += rows
    }
    /// Keep only the last `keep` rows.
    func trim(keep: Int) {
        guard count > keep else { return }
        let drop = count - keep
        memmove(keys.p, keys.p + drop * width, keep * width * 4)        // overlapping: memmove
        memmove(values.p, values.p + drop * width, keep * width * 4)
        start += drop; count = keep
    }
    var keyTensor: Tensor { Tensor(storage: keys, offset: 0, shape: [1, count, kvHeads, headDim]) }
    var valueTensor: Tensor { Tensor(storage: values, offset: 0, shape: [1, count, kvHeads, headDim]) }
}

public final class GenerationSession {
    let model: Gemma3Model
    var caches: [LayerKVCache]
    public private(set) var position = 0
    let ctx: RunContext

    public init(model: Gemma3Model) {
        self.model = model
        caches = model.layers.map { LayerKVCache(kvHeads: $0.KV, headDim: $0.D) }
        let t = model.text
        let maxIn = max(t.hiddenSize, t.intermediateSize, t.numAttentionHeads * t.headDim,
                        model.vision.map { max($0.K, $0.cfg.intermediateSize) } ?? 0)
        ctx = RunContext(scratchCount: MatrixKernels.tileRows * maxIn, rng: SeededRNG(seed: 0), training: false)
    }

    /// Runs `ids` (a prompt chunk or one new token) through the decoder, extending the cache; returns the
    /// logits (V) of the last position. Image features fill the image-token positions of this chunk.
    public func step(_ ids: [Int32], tokenTypeIDs: [Int32]? = nil, pixelValues: [Float]? = nil, numImages: Int = 0) throws -> [Float] {
        let n = ids.count, C = model.text.hiddenSize, V = model.text.vocabSize
        let x = FBuf(n * C, zero: false)
        model.embed(ids, into: x.p)
        if let mm = model.multimodal, let px = pixelValues, numImages > 0, let vt = model.vision, let pr = model.projector {
            let pos = (0..<n).filter { Int(ids[$0]) == mm.imageTokenIndex }
            guard pos.count == numImages * mm.mmTokensPerImage else {
                throw ModelError("Image features and image tokens do not match, tokens: \(pos.count), features: \(numImages * mm.mmTokensPerImage)")
            }
            let S = mm.visionConfig.imageSize
            guard px.count == numImages * mm.visionConfig.numChannels * S * S else {
                throw ModelError("pixel_values has \(px.count) values for \(numImages) images of \(S)×\(S)")
            }
            let vout = FBuf(numImages * vt.P * mm.visionConfig.hiddenSize, zero: false)
            _ = px.withUnsafeBufferPointer { vt.forward(vout.p, pixels: $0.baseAddress!, N: numImages, ctx: ctx, keep: false, checkpoint: false) }
            let feats = FBuf(numImages * mm.mmTokensPerImage * C, zero: false)
            _ = pr.forward(feats.p, vout, N: numImages, precision: ctx.matmul)
            for (k, t) in pos.enumerated() { (x.p + t * C).update(from: feats.p + k * C, count: C) }
        }
        // image groups within this chunk (the prefill); later single tokens are plain causal
        let chunkGroups: [Int32]? = model.multimodal != nil ? tokenTypeIDs.map {
            AttentionMask.imageGroupIDs(tokenTypes: $0, batch: 1, length: n)
        } : nil
        let rope = model.ropeTables(maxPosition: position + n)
        let window = model.text.slidingWindow
        for (li, l) in model.layers.enumerated() {
            let c = Gemma3DecoderLayer.Cache(T: n, C: C, I: l.I, H: l.H, KV: l.KV, D: l.D)
            let r = (l.sliding ? rope.local : rope.global).rows(position..<(position + n))
            l.projectQKV(c, x.p, B: 1, L: n, rope: r, ctx: ctx, keep: false)
            let kv = caches[li]
            kv.append(c.k.p, c.v.p, rows: n)
            // Mask positions are key-column indices: the cache's oldest kept key is column 0, so this chunk's
            // queries sit at columns count − n ..< count (causality and the window only see differences).
            let mask = AttentionMask(causal: true, slidingWindow: l.sliding ? window : nil,
                                     imageGroups: chunkGroups.map { [Int32](repeating: -1, count: kv.count - n) + $0 },
                                     queryOffset: kv.count - n)
            attentionForward(out: c.attn.view([1, n, l.H, l.D]), probs: nil, q: c.q.view([1, n, l.H, l.D]),
                             k: kv.keyTensor, v: kv.valueTensor, scale: l.scale, mask: mask)
            l.finish(c, x.p, T: n, ctx: ctx, keep: false)
            if l.sliding, let w = window { kv.trim(keep: max(w - 1, 0)) }
        }
        position += n
        let h = FBuf(C, zero: false)
        rmsNormForward(out: h.p, rstd: nil, x.p + (n - 1) * C, weight: model.finalNorm.f32, rows: 1, dim: C, eps: Float(model.text.rmsNormEps))
        let logits = FBuf(V, zero: false)
        MatrixKernels.forward(logits.p, h.p, model.headForward, T: 1, inF: C, outF: V, scratch: ctx.scratch)
        return logits.array
    }
}

extension Gemma3Model {
    /// End-of-sequence ids from the config (top-level eos_token_id of a multimodal config, else the text one).
    public var eosTokenIDs: [Int] { multimodal?.eosTokenID?.ids ?? text.eosTokenID.ids }

    /// Generates up to maxNewTokens after the prompt, calling onToken for each (return false to stop).
    /// Stops after emitting a token in stopIDs. Returns the new tokens (the stop token included, as
    /// transformers' generate returns it).
    public func generate(prompt: [Int32], tokenTypeIDs: [Int32]? = nil, pixelValues: [Float]? = nil, numImages: Int = 0,
                         maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(), stopIDs: Set<Int>? = nil,
                         onToken: (Int32) -> Bool = { _ in true }) throws -> [Int32] {
        guard !prompt.isEmpty else { throw ModelError("generate: empty prompt") }
        let session = GenerationSession(model: self)
        let stops = stopIDs ?? Set(eosTokenIDs)
        var rng = SeededRNG(seed: sampling.seed)
        var logits = try session.step(prompt, tokenTypeIDs: tokenTypeIDs, pixelValues: pixelValues, numImages: numImages)
        var out: [Int32] = []
        for _ in 0..<maxNewTokens {
            let tok = Int32(Sampler.pick(logits, sampling, &rng))
            out.append(tok)
            if !onToken(tok) || stops.contains(Int(tok)) { break }
            if out.count == maxNewTokens { break }
            logits = try session.step([tok])
        }
        return out
    }
}

/// Greedy, or transformers' warper order: temperature → top-k → top-p, then a categorical draw.
enum Sampler {
    static func pick(_ logits: [Float], _ o: SamplingOptions, _ rng: inout SeededRNG) -> Int {
        if o.temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        let t = Float(o.temperature)
        var idx = Array(0..<logits.count)
        idx.sort { logits[$0] > logits[$1] }
        if o.topK > 0 && o.topK < idx.count { idx = Array(idx.prefix(o.topK)) }
        let mx = logits[idx[0]] / t
        var p = idx.map { expf(logits[$0] / t - mx) }
        let s = p.reduce(0, +)
        p = p.map { $0 / s }
        if o.topP < 1 {
            // keep the smallest prefix whose mass reaches top_p (at least one token)
            var cum: Float = 0, keep = 0
            for (i, v) in p.enumerated() { cum += v; keep = i + 1; if Double(cum) >= o.topP { break } }
            idx = Array(idx.prefix(keep)); p = Array(p.prefix(keep))
            let s2 = p.reduce(0, +); p = p.map { $0 / s2 }
        }
        var u = rng.uniform(), acc: Float = 0
        for (i, v) in p.enumerated() { acc += v; if u < acc { return idx[i] } }
        u = 0
        return idx[p.count - 1]
    }
}
