// Scaled dot-product attention with grouped KV heads and Gemma 3's masks. Forward next to backward.
import Foundation

/// Which keys each query may see. Positions are absolute: query row i is position `queryOffset + i`,
/// key column j is position j (S keys). The predicate, as transformers 5.x builds it:
/// `allowed = (causal ? k ≤ q : true) OR (imageGroups[q] ≥ 0 AND imageGroups[q] == imageGroups[k])`,
/// then AND `q − k < slidingWindow` (when set), then AND `keyPadding[k] != 0` (when set).
/// Masked scores become a large finite negative (like torch's `finfo.min`): a row with no allowed key
/// gets a uniform distribution (what eager torch gives), never NaN.
public struct AttentionMask: Sendable {
    public var causal: Bool
    /// Sliding-window size W: keys with q − k ≥ W are hidden (Gemma 3's local layers, W = 1024).
    public var slidingWindow: Int?
    /// [B, S] `attention_mask`: nonzero marks a real token, 0 padding.
    public var keyPadding: [Int32]?
    /// [B, S] image group id of each position (≥ 0 for image soft tokens, −1 otherwise); tokens of one
    /// image attend to each other bidirectionally. Build with `imageGroupIDs(tokenTypes:batch:length:)`.
    public var imageGroups: [Int32]?
    /// Absolute position of query row 0 (for generation with cached keys); 0 in training.
    public var queryOffset: Int

    public init(causal: Bool = true, slidingWindow: Int? = nil, keyPadding: [Int32]? = nil,
                imageGroups: [Int32]? = nil, queryOffset: Int = 0) {
        self.causal = causal; self.slidingWindow = slidingWindow; self.keyPadding = keyPadding
        self.imageGroups = imageGroups; self.queryOffset = queryOffset
    }

    /// No mask at all (SigLIP).
    public static let none = AttentionMask(causal: false)

    /// Group ids from `token_type_ids` [B, L] (1 = image token): a group starts at each image token whose
    /// predecessor in the row is not an image token; `group = cumsum(starts) − 1` on image tokens, −1 elsewhere.
    public static func imageGroupIDs(tokenTypes: [Int32], batch: Int, length: Int) -> [Int32] {
        precondition(tokenTypes.count == batch * length, "imageGroupIDs: \(tokenTypes.count) types for [\(batch), \(length)]")
        var groups = [Int32](repeating: -1, count: batch * length)
        for b in 0..<batch {
            var next: Int32 = 0
            var previousIsImage = false
            for t in 0..<length {
                let isImage = tokenTypes[b * length + t] == 1
                if isImage {
                    if !previousIsImage { next += 1 }
                    groups[b * length + t] = next - 1
                }
                previousIsImage = isImage
            }
        }
        return groups
    }

    /// Gemma 3's mask for one layer type from the collator's `attention_mask` and `token_type_ids`
    /// (both [B, L]): causal OR same-image block, AND the window on sliding layers, AND key padding.
    public static func gemma3(slidingWindow: Int?, attentionMask: [Int32]?, tokenTypes: [Int32]?, batch: Int, length: Int) -> AttentionMask {
        AttentionMask(causal: true, slidingWindow: slidingWindow, keyPadding: attentionMask,
                      imageGroups: tokenTypes.map { imageGroupIDs(tokenTypes: $0, batch: batch, length: length) })
    }

    /// The [B, Lq, S] table of the predicate (1 = may attend), for inspection and tests.
    public func allowedTable(batch: Int, queries: Int, keys: Int) -> [UInt8] {
        var table = [UInt8](repeating: 0, count: batch * queries * keys)
        table.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { fill(p, batch: batch, queries: queries, keys: keys) } }
        return table
    }

    /// Writes the [B, Lq, S] allowed table (1 = may attend).
    func fill(_ allowed: UnsafeMutablePointer<UInt8>, batch: Int, queries: Int, keys: Int) {
        if let keyPadding { precondition(keyPadding.count == batch * keys, "AttentionMask: keyPadding has \(keyPadding.count) values for [\(batch), \(keys)]") }
        if let imageGroups {
            precondition(imageGroups.count == batch * keys, "AttentionMask: imageGroups has \(imageGroups.count) values for [\(batch), \(keys)]")
            precondition(queryOffset + queries <= keys, "AttentionMask: image groups need query positions inside the keys")
        }
        for b in 0..<batch {
            for i in 0..<queries {
                let q = queryOffset + i
                let row = allowed + (b * queries + i) * keys
                let gq = imageGroups.map { $0[b * keys + q] } ?? -1
                for k in 0..<keys {
                    var ok = causal ? k <= q : true
                    if gq >= 0, let g = imageGroups, g[b * keys + k] == gq { ok = true }
                    if let w = slidingWindow, q - k >= w { ok = false }
                    if let p = keyPadding, p[b * keys + k] == 0 { ok = false }
                    row[k] = ok ? 1 : 0
                }
            }
        }
    }
}

/// The value a masked score takes before the softmax (torch's additive mask uses finfo(fp32).min).
public let attentionMaskedScore: Float = -Float.greatestFiniteMagnitude

extension AttentionMask {
    /// True when every query may see every key (SigLIP): no mask table is built.
    var allowsEverything: Bool { !causal && slidingWindow == nil && keyPadding == nil }
}

/// The precision of attention's four matrix products (q·kᵀ, P·v and, in backward, dO·vᵀ, Pᵀ·dO, dS·k, dSᵀ·q).
///
/// `.fp32` (default) is plain sgemm. Under bf16 autocast (`.emulated` / `.sbgemm`) they follow what
/// `torch.autocast("cpu", bfloat16)` does to eager attention, whose two `torch.matmul`s it runs in bf16:
/// - scores S = R(R(q·kᵀ)·scale): the matmul's bf16 output times the Python-float scaling, itself a bf16
///   op (torch computes it in fp32 and rounds); the mask is added and the softmax run in fp32;
/// - out = R(P·v), P rounded at the product's operand cast;
/// - backward: dP = R(dO·vᵀ) and dv += R(Pᵀ·dO) per query head; dS = P ⊙ (dP − rowsum(P ⊙ dP)) in fp32,
///   then R(R(dS)·scale) (the gradient reaching the bf16 scores is cast to bf16, the scaling's backward
///   is a bf16 multiply); dq += R(dS'·k), dk += R(dS'ᵀ·q) per query head, so a kv head's gradient is
///   the fp32 sum of its query heads' bf16 terms, as autograd sums repeat_kv's expanded fp32 gradient.
/// R rounds to bf16 (nearest even); every product sums bf16 operands in fp32 (see `bf16Gemm`).
public struct AttentionPrecision {
    public var mode: BF16MatmulMode
    /// Operand scratch of the bf16 modes (never touched under `.fp32`).
    public var workspace: BF16Workspace
    public init(mode: BF16MatmulMode = .fp32, workspace: BF16Workspace = BF16Workspace()) {
        self.mode = mode; self.workspace = workspace
    }
    public static let fp32 = AttentionPrecision()
    var bf16: Bool { mode != .fp32 }

    /// C = beta·C + R(alpha·op(A)·op(B)) under bf16; `bf16Gemm` is plain sgemm under `.fp32`.
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        bf16Gemm(mode, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, roundOutput: true, workspace: workspace)
    }
}

/// P [L, S] = softmax(scale·q_h·k_kvᵀ masked) for one (batch, head); `allowed` is the batch's [L, S]
/// table or nil for no mask.
func attentionProbabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                            l: Int, s: Int, d: Int, ldq: Int, ldk: Int, scale: Float, allowed: UnsafePointer<UInt8>?,
                            precision: AttentionPrecision = .fp32) {
    let bf16 = precision.bf16
    // fp32: the scale rides in sgemm's alpha; bf16: R(R(q·kᵀ)·scale), the scaling after the rounded product
    precision.gemm(transposeA: false, transposeB: true, m: l, n: s, k: d, alpha: bf16 ? 1 : scale, a: q, lda: ldq, b: k, ldb: ldk,
                   beta: 0, c: p, ldc: s)
    Parallel.forEachChunk(count: l, grain: max(1, ParallelGrain.transcendental / max(1, s))) { rows in
        for i in rows {
            let row = p + i * s
            if bf16 { for j in 0..<s { row[j] = roundedToBF16(row[j] * scale) } }
            guard let allowed else { softmaxRow(row, row, s); continue }
            let a = allowed + i * s
            var m = -Float.infinity
            for j in 0..<s { if a[j] != 0 { m = max(m, row[j]) } else { row[j] = -.infinity } }
            if m == -Float.infinity {            // fully masked: all scores equal the mask value -> uniform
                let u = 1 / Float(s)
                for j in 0..<s { row[j] = u }
                continue
            }
            // masked scores are −inf now: their e^(score − m) is exactly 0, as e^(finfo.min − m) in torch
            let sum = expShiftedRow(row, s, max: m, store: row, double: false, float: true, weighted: false).float
            let inv = 1 / sum
            for j in 0..<s { row[j] *= inv }
        }
    }
}

/// out = softmax(scale·q·kᵀ + mask)·v per head; query head j reads kv head j / (H / KV).
/// - q: [B, L, H, D]; k, v: [B, S, KV, D]; out: [B, L, H, D];
/// - probs: [B, H, L, S] to keep the attention probabilities for the backward, or nil to use a
///   one-head [L, S] scratch instead (the backward then recomputes them: one more q·kᵀ per head, but
///   SigLIP's 4096² × 16 heads need no 1 GB buffer per layer).
public func attentionForward(out: Tensor, probs: Tensor?, q: Tensor, k: Tensor, v: Tensor, scale: Float, mask: AttentionMask,
                             precision: AttentionPrecision = .fp32) {
    let (b, l, h, kvh, s, d) = attentionDims(q: q, k: k, v: v, probs: probs)
    precondition(out.count == q.count, "attentionForward: out \(out.shape) vs q \(q.shape)")
    let group = h / kvh
    let pq = q.data, pk = k.data, pv = v.data, po = out.data
    let allowed: UnsafeMutablePointer<UInt8>? = mask.allowsEverything ? nil : .allocate(capacity: max(1, b * l * s))
    let scratch: UnsafeMutablePointer<Float>? = probs == nil ? .allocate(capacity: max(1, l * s)) : nil
    defer { allowed?.deallocate(); scratch?.deallocate() }
    if let allowed { mask.fill(allowed, batch: b, queries: l, keys: s) }
    for bi in 0..<b {
        for hi in 0..<h {
            let p = probs.map { $0.data + (bi * h + hi) * l * s } ?? scratch!
            let qOff = bi * l * h * d + hi * d, kvOff = bi * s * kvh * d + (hi / group) * d
            attentionProbabilities(p, q: pq + qOff, k: pk + kvOff, l: l, s: s, d: d, ldq: h * d, ldk: kvh * d,
                                   scale: scale, allowed: allowed.map { UnsafePointer($0 + bi * l * s) }, precision: precision)
            // out_h [L, D] = P [L, S] · v_kv [S, D]
            precision.gemm(transposeA: false, transposeB: false, m: l, n: d, k: s, a: p, lda: s,
                           b: pv + kvOff, ldb: kvh * d, beta: 0, c: po + qOff, ldc: h * d)
        }
    }
}

/// Backward of `attentionForward` (accumulates into dq, dk, dv; pass the same `probs`, or nil to
/// recompute them):
/// dP = dO·vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)) (0 on masked entries, whose score is a constant),
/// dq += scale·dS·k, dk += scale·dSᵀ·q, dv += Pᵀ·dO — kv-head gradients summed over their query heads.
public func attentionBackward(dq: Tensor?, dk: Tensor?, dv: Tensor?, dout: Tensor, probs: Tensor?,
                              q: Tensor, k: Tensor, v: Tensor, scale: Float, mask: AttentionMask,
                              precision: AttentionPrecision = .fp32) {
    let (b, l, h, kvh, s, d) = attentionDims(q: q, k: k, v: v, probs: probs)
    let bf16 = precision.bf16
    precondition(dout.count == q.count, "attentionBackward: dout \(dout.shape) vs q \(q.shape)")
    if let dq { precondition(dq.count == q.count, "attentionBackward: dq \(dq.shape) vs q \(q.shape)") }
    if let dk { precondition(dk.count == k.count, "attentionBackward: dk \(dk.shape) vs k \(k.shape)") }
    if let dv { precondition(dv.count == v.count, "attentionBackward: dv \(dv.shape) vs v \(v.shape)") }
    let group = h / kvh
    let pq = q.data, pk = k.data, pv = v.data, pg = dout.data
    let allowed: UnsafeMutablePointer<UInt8>? = mask.allowsEverything ? nil : .allocate(capacity: max(1, b * l * s))
    let ds = UnsafeMutablePointer<Float>.allocate(capacity: max(1, l * s))
    let scratch: UnsafeMutablePointer<Float>? = probs == nil ? .allocate(capacity: max(1, l * s)) : nil
    defer { allowed?.deallocate(); ds.deallocate(); scratch?.deallocate() }
    if let allowed { mask.fill(allowed, batch: b, queries: l, keys: s) }
    for bi in 0..<b {
        let allowedB = allowed.map { UnsafePointer($0 + bi * l * s) }
        for hi in 0..<h {
            let qOff = bi * l * h * d + hi * d, kvOff = bi * s * kvh * d + (hi / group) * d
            let p: UnsafePointer<Float>
            if let probs {
                p = UnsafePointer(probs.data + (bi * h + hi) * l * s)
            } else {
                attentionProbabilities(scratch!, q: pq + qOff, k: pk + kvOff, l: l, s: s, d: d, ldq: h * d, ldk: kvh * d,
                                       scale: scale, allowed: allowedB, precision: precision)
                p = UnsafePointer(scratch!)
            }
            if let dv {   // dv_kv [S, D] += Pᵀ [S, L] · dO_h [L, D]
                precision.gemm(transposeA: true, transposeB: false, m: s, n: d, k: l, a: p, lda: s,
                               b: pg + qOff, ldb: h * d, beta: 1, c: dv.data + kvOff, ldc: kvh * d)
            }
            if dq == nil && dk == nil { continue }
            // dP [L, S] = dO_h [L, D] · v_kvᵀ
            precision.gemm(transposeA: false, transposeB: true, m: l, n: s, k: d, a: pg + qOff, lda: h * d,
                           b: pv + kvOff, ldb: kvh * d, beta: 0, c: ds, ldc: s)
            Parallel.forEachChunk(count: l, grain: rowGrain(s)) { rows in
                for i in rows {
                    let pr = p + i * s, dr = ds + i * s
                    let dot = rowDot(pr, dr, s)
                    if let allowedB {
                        let a = allowedB + i * s
                        for j in 0..<s { dr[j] = a[j] != 0 ? pr[j] * (dr[j] - dot) : 0 }
                    } else {
                        for j in 0..<s { dr[j] = pr[j] * (dr[j] - dot) }
                    }
                    // bf16: dS' = R(R(dS)·scale), the scale then leaves the two products' alpha
                    if bf16 { for j in 0..<s { dr[j] = roundedToBF16(roundedToBF16(dr[j]) * scale) } }
                }
            }
            let alpha: Float = bf16 ? 1 : scale
            if let dq {   // dq_h [L, D] += scale · dS [L, S] · k_kv [S, D]
                precision.gemm(transposeA: false, transposeB: false, m: l, n: d, k: s, alpha: alpha, a: ds, lda: s,
                               b: pk + kvOff, ldb: kvh * d, beta: 1, c: dq.data + qOff, ldc: h * d)
            }
            if let dk {   // dk_kv [S, D] += scale · dSᵀ [S, L] · q_h [L, D]
                precision.gemm(transposeA: true, transposeB: false, m: s, n: d, k: l, alpha: alpha, a: ds, lda: s,
                               b: pq + qOff, ldb: h * d, beta: 1, c: dk.data + kvOff, ldc: kvh * d)
            }
        }
    }
}

func attentionDims(q: Tensor, k: Tensor, v: Tensor, probs: Tensor?) -> (Int, Int, Int, Int, Int, Int) {
    precondition(q.rank == 4 && k.rank == 4 && v.rank == 4,
                 "attention: q \(q.shape), k \(k.shape), v \(v.shape) should be [B, L, H, D] and [B, S, KV, D]")
    let b = q.shape[0], l = q.shape[1], h = q.shape[2], d = q.shape[3]
    let s = k.shape[1], kvh = k.shape[2]
    precondition(k.shape == v.shape && k.shape[0] == b && k.shape[3] == d,
                 "attention: k \(k.shape) and v \(v.shape) should be [\(b), S, KV, \(d)]")
    precondition(kvh > 0 && h % kvh == 0, "attention: \(h) query heads not a multiple of \(kvh) kv heads")
    if let probs { precondition(probs.count == b * h * l * s, "attention: probs \(probs.shape) should be [\(b), \(h), \(l), \(s)]") }
    return (b, l, h, kvh, s, d)
}
