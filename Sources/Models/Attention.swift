// Multi-head (grouped-query) attention over a batch of sequences, forward and backward.
// q: (B·L, H, D), k/v: (B·L, KV, D) row-major; query head h reads kv head h / (H/KV) (repeat_kv order).
// The backward recomputes the probabilities from q and k instead of keeping B·H·L² floats.
import Foundation
import Tensor

/// "May attend" masks per sequence, (L, L) row = query, column = key.
struct AttentionMasks {
    let L: Int
    var perSequence: [[Bool]]   // B entries of L·L
}

enum MultiHeadAttention {
    // out (B·L, H·D)
    static func forward(_ out: FPtr, q: CFPtr, k: CFPtr, v: CFPtr, B: Int, L: Int, H: Int, KV: Int, D: Int,
                        scale: Float, masks: AttentionMasks?) {
        let P = FBuf(L * L, zero: false)
        let group = H / KV
        for b in 0..<B {
            let body = { (m: UnsafePointer<Bool>?) in
                for h in 0..<H {
                    let kv = h / group
                    attentionHeadForward(out + b * L * H * D + h * D, H * D, P.p,
                                         q + b * L * H * D + h * D, H * D,
                                         k + b * L * KV * D + kv * D, v + b * L * KV * D + kv * D, KV * D,
                                         L, L, D, scale, m)
                }
            }
            if let ms = masks { ms.perSequence[b].withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
        }
    }

    // dq (=), dk, dv (=) from dout
    static func backward(dq: FPtr, dk: FPtr, dv: FPtr, dout: CFPtr, q: CFPtr, k: CFPtr, v: CFPtr,
                         B: Int, L: Int, H: Int, KV: Int, D: Int, scale: Float, masks: AttentionMasks?) {
        let P = FBuf(L * L, zero: false), dP = FBuf(L * L, zero: false), tmp = FBuf(L * D, zero: false)
        let group = H / KV
        dk.update(repeating: 0, count: B * L * KV * D)
        dv.update(repeating: 0, count: B * L * KV * D)
        for b in 0..<B {
            let body = { (m: UnsafePointer<Bool>?) in
                for h in 0..<H {
                    let kv = h / group
                    let qo = b * L * H * D + h * D, ko = b * L * KV * D + kv * D
                    // recompute P (the output written to tmp is discarded)
                    attentionHeadForward(tmp.p, D, P.p, q + qo, H * D, k + ko, v + ko, KV * D, L, L, D, scale, m)
                    attentionHeadBackward(dq + qo, H * D, dk + ko, dv + ko, KV * D, dP.p, dout + qo, H * D,
                                          P.p, q + qo, k + ko, v + ko, L, L, D, scale)
                }
            }
            if let ms = masks { ms.perSequence[b].withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
        }
    }
}

/// Gemma 3 masks (transformers 5.24 masking_utils + create_masks_for_vision_model):
/// full layers: (k ≤ q ∨ same image block) ∧ key not padding;
/// sliding layers: k > q − window ∧ (k ≤ q ∨ same image block) ∧ key not padding.
/// Image blocks exist only when token_type_ids are given: a block is a maximal run of type-1 tokens.
func gemma3Masks(B: Int, L: Int, attentionMask: [Int32]?, tokenTypeIDs: [Int32]?, window: Int?) -> AttentionMasks {
    var out: [[Bool]] = []
    for b in 0..<B {
        var group = [Int](repeating: -1, count: L)
        if let tt = tokenTypeIDs {
            var g = -1
            for l in 0..<L {
                let img = tt[b * L + l] == 1
                if img && (l == 0 || tt[b * L + l - 1] != 1) { g += 1 }
                if img { group[l] = g }
            }
        }
        var m = [Bool](repeating: false, count: L * L)
        for qi in 0..<L {
            for ki in 0..<L {
                var ok = ki <= qi || (group[qi] >= 0 && group[qi] == group[ki])
                if let w = window, !(ki > qi - w) { ok = false }
                if let am = attentionMask, am[b * L + ki] == 0 { ok = false }
                m[qi * L + ki] = ok
            }
        }
        out.append(m)
    }
    return AttentionMasks(L: L, perSequence: out)
}
