// Kernels the Gemma 3 / SigLIP layers need, written in the model helper's own file (the Tensor module's
// kernels were not on main when this was written). Style as llm.c: each forward next to its backward,
// outputs first, shapes in comments; backward functions ACCUMULATE (+=) into parameter gradients and
// write (=) input gradients unless stated. All math fp32; row-major.
import Foundation
import Tensor

typealias FPtr = UnsafeMutablePointer<Float>
typealias CFPtr = UnsafePointer<Float>

/// Models' flat fp32 buffers (activations, caches, parameters and their gradients) are module Tensor's
/// `TensorStorage` (one owned, 64-byte-aligned allocation), so any of them is viewed as a `Tensor` for the
/// Tensor kernels at no cost (`view(_:)`). The short spellings below are what the layer code takes once
/// outside its loops.
typealias FBuf = TensorStorage

extension TensorStorage {
    convenience init(_ count: Int, zero: Bool = true) { self.init(capacity: count, zeroed: zero) }
    convenience init(copying src: UnsafePointer<Float>, count: Int) {
        self.init(capacity: count, zeroed: false)
        base.update(from: src, count: count)
    }
    convenience init(_ values: [Float]) {
        self.init(capacity: values.count, zeroed: false)
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { base.update(from: b, count: values.count) } }
    }
    var p: FPtr { base }
    var count: Int { capacity }
    func zero() { base.update(repeating: 0, count: capacity) }
    var array: [Float] { Array(UnsafeBufferPointer(start: base, count: capacity)) }
    /// The whole buffer as a Tensor of `shape` (element count = capacity), sharing the storage.
    func view(_ shape: [Int]) -> Tensor { Tensor(storage: self, offset: 0, shape: shape) }
}

// Matrix products: sgemmNT / sgemmNN / sgemmTN live in module Tensor (Matmul.swift).

// MARK: - Gemma RMSNorm: y = x · rsqrt(mean(x²) + eps) · (1 + w)

/// out, x: (N, C); w: (C); rstd: (N) saved for backward.
func rmsnormForward(_ out: FPtr, _ rstd: FPtr?, _ x: CFPtr, _ w: CFPtr, _ N: Int, _ C: Int, _ eps: Float) {
    for i in 0..<N {
        let xi = x + i * C, oi = out + i * C
        var ss: Float = 0
        for c in 0..<C { ss += xi[c] * xi[c] }
        let r = 1 / (ss / Float(C) + eps).squareRoot()
        rstd?[i] = r
        for c in 0..<C { oi[c] = (xi[c] * r) * (1 + w[c]) }
    }
}

/// dx (=, or += if accumulate), dw (+=, optional): the gradient of rmsnormForward.
func rmsnormBackward(_ dx: FPtr, _ dw: FPtr?, _ dout: CFPtr, _ x: CFPtr, _ w: CFPtr, _ rstd: CFPtr,
                     _ N: Int, _ C: Int, accumulate: Bool = false) {
    for i in 0..<N {
        let xi = x + i * C, di = dout + i * C, dxi = dx + i * C
        let r = rstd[i]
        // n = x·r; y = n·(1+w); dn = dy·(1+w); dx = r·(dn − n·mean(dn·n))
        var dot: Float = 0
        for c in 0..<C { dot += di[c] * (1 + w[c]) * xi[c] * r }
        let m = dot / Float(C)
        for c in 0..<C {
            let n = xi[c] * r
            let g = r * (di[c] * (1 + w[c]) - n * m)
            if accumulate { dxi[c] += g } else { dxi[c] = g }
        }
        if let dw { for c in 0..<C { dw[c] += di[c] * xi[c] * r } }
    }
}

// MARK: - LayerNorm (SigLIP): y = (x − mean)·rstd·w + b, biased variance

func layernormForward(_ out: FPtr, _ mean: FPtr, _ rstd: FPtr, _ x: CFPtr, _ w: CFPtr, _ b: CFPtr,
                      _ N: Int, _ C: Int, _ eps: Float) {
    for i in 0..<N {
        let xi = x + i * C, oi = out + i * C
        var m: Float = 0
        for c in 0..<C { m += xi[c] }
        m /= Float(C)
        var v: Float = 0
        for c in 0..<C { let d = xi[c] - m; v += d * d }
        v /= Float(C)
        let r = 1 / (v + eps).squareRoot()
        mean[i] = m; rstd[i] = r
        for c in 0..<C { oi[c] = (xi[c] - m) * r * w[c] + b[c] }
    }
}

/// dx (+=), dw/db (+=, optional).
func layernormBackward(_ dx: FPtr, _ dw: FPtr?, _ db: FPtr?, _ dout: CFPtr, _ x: CFPtr, _ w: CFPtr,
                       _ mean: CFPtr, _ rstd: CFPtr, _ N: Int, _ C: Int) {
    for i in 0..<N {
        let xi = x + i * C, di = dout + i * C, dxi = dx + i * C
        let m = mean[i], r = rstd[i]
        var dnMean: Float = 0, dnDot: Float = 0
        for c in 0..<C {
            let n = (xi[c] - m) * r
            let dn = w[c] * di[c]
            dnMean += dn; dnDot += dn * n
        }
        dnMean /= Float(C); dnDot /= Float(C)
        for c in 0..<C {
            let n = (xi[c] - m) * r
            let dn = w[c] * di[c]
            dxi[c] += (dn - dnMean - n * dnDot) * r
            dw?[c] += n * di[c]
            db?[c] += di[c]
        }
    }
}

// MARK: - GELU (tanh approximation), as torch gelu(approximate="tanh") and its backward

let geluBeta: Float = Float(2.0.squareRoot() * (2 / Double.pi.squareRoot()) * 0.5)  // √(2/π)
let geluKappa: Float = 0.044715

@inline(__always) func geluTanh(_ x: Float) -> Float {
    let inner = geluBeta * (x + geluKappa * x * x * x)
    return 0.5 * x * (1 + tanhf(inner))
}

@inline(__always) func geluTanhGrad(_ x: Float) -> Float {
    let x2 = x * x
    let inner = geluBeta * (x + geluKappa * x2 * x)
    let t = tanhf(inner)
    let left = 0.5 * x, right = 1 + t
    return 0.5 * right + left * (1 - t * t) * geluBeta * (1 + 3 * geluKappa * x2)
}

// MARK: - RoPE (rotate-half): q' = q·cos + rotate_half(q)·sin, per head of width D, tables (L, D/2)

/// x: (T, H, D) in place; pos: position of each of the T rows; cos/sin: (maxPos, D/2).
func ropeForward(_ x: FPtr, _ T: Int, _ H: Int, _ D: Int, _ pos: [Int], _ cos: CFPtr, _ sin: CFPtr) {
    let h2 = D / 2
    for t in 0..<T {
        let c = cos + pos[t] * h2, s = sin + pos[t] * h2
        for h in 0..<H {
            let v = x + (t * H + h) * D
            for i in 0..<h2 {
                let a = v[i], b = v[i + h2]
                v[i] = a * c[i] - b * s[i]
                v[i + h2] = b * c[i] + a * s[i]
            }
        }
    }
}

/// In place on the gradient: the transpose of the rotation.
func ropeBackward(_ dx: FPtr, _ T: Int, _ H: Int, _ D: Int, _ pos: [Int], _ cos: CFPtr, _ sin: CFPtr) {
    let h2 = D / 2
    for t in 0..<T {
        let c = cos + pos[t] * h2, s = sin + pos[t] * h2
        for h in 0..<H {
            let v = dx + (t * H + h) * D
            for i in 0..<h2 {
                let a = v[i], b = v[i + h2]
                v[i] = a * c[i] + b * s[i]
                v[i + h2] = b * c[i] - a * s[i]
            }
        }
    }
}

/// RoPE tables as transformers computes them (fp32 throughout): inv_freq = 1/base^(2i/D) (/ factor for
/// "linear" scaling), angle = pos·inv_freq, cos/sin in fp32.
struct RopeTable {
    let half: Int
    let cos: FBuf, sin: FBuf
    let maxPos: Int
    init(headDim D: Int, base: Double, linearFactor: Double?, maxPositions: Int) {
        half = D / 2
        maxPos = maxPositions
        var inv = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let e = Float(2 * i) / Float(D)
            var f: Float = 1 / powf(Float(base), e)
            if let k = linearFactor { f = f / Float(k) }
            inv[i] = f
        }
        cos = FBuf(maxPositions * half, zero: false)
        sin = FBuf(maxPositions * half, zero: false)
        for p in 0..<maxPositions {
            for i in 0..<half {
                let a = Float(p) * inv[i]
                cos.p[p * half + i] = Foundation.cos(a)
                sin.p[p * half + i] = Foundation.sin(a)
            }
        }
    }
}

// MARK: - softmax cross-entropy on one chunk of logits rows

/// logits (N, V) → in place becomes dlogits·scale for rows with a valid target; rows with target −100 get 0.
/// Returns (sum of CE over valid rows, valid count, argmax-correct count).
func crossEntropyForwardBackward(_ logits: FPtr, _ targets: [Int32], _ N: Int, _ V: Int, gradScale: Float,
                                 computeGrad: Bool) -> (Double, Int, Int) {
    var lossSum: Double = 0
    var count = 0, correct = 0
    for i in 0..<N {
        let row = logits + i * V
        let t = Int(targets[i])
        if t < 0 {
            if computeGrad { row.update(repeating: 0, count: V) }
            continue
        }
        var mx = -Float.infinity, arg = 0
        for v in 0..<V where row[v] > mx { mx = row[v]; arg = v }
        var s: Float = 0
        for v in 0..<V { s += expf(row[v] - mx) }
        let lse = mx + logf(s)
        lossSum += Double(lse - row[t])
        count += 1
        if arg == t { correct += 1 }
        if computeGrad {
            let inv = 1 / s
            for v in 0..<V { row[v] = expf(row[v] - mx) * inv * gradScale }
            row[t] -= gradScale
        }
    }
    return (lossSum, count, correct)
}

// MARK: - attention for one (batch, head): scores → masked softmax → ·V, and the backward

/// Scaled dot-product attention for one query head over L keys, with an L×L "may attend" mask
/// (nil = no mask). q: (L, D) stride ldq; k, v: (L, D) stride ldk; out: (L, D) stride ldo; P: (L, L) scratch
/// left holding the probabilities (masked entries exactly 0, as exp(finfo.min − max) is in fp32).
func attentionHeadForward(_ out: FPtr, _ ldo: Int, _ P: FPtr, _ q: CFPtr, _ ldq: Int, _ k: CFPtr, _ v: CFPtr,
                          _ ldk: Int, _ Lq: Int, _ Lk: Int, _ D: Int, _ scale: Float, _ allowed: UnsafePointer<Bool>?) {
    sgemmNT(Lq, Lk, D, q, ldq, k, ldk, P, Lk, alpha: scale)
    for i in 0..<Lq {
        let row = P + i * Lk
        var mx = -Float.infinity
        if let m = allowed {
            let mr = m + i * Lk
            for j in 0..<Lk where mr[j] && row[j] > mx { mx = row[j] }
            // fully masked row (a right-pad query inside a sliding window of pads): eager torch adds
            // finfo.min to every score, which absorbs the scores, so softmax is uniform over all keys
            if mx == -Float.infinity { row.update(repeating: 1 / Float(Lk), count: Lk); continue }
            var s: Float = 0
            for j in 0..<Lk {
                if mr[j] { let e = expf(row[j] - mx); row[j] = e; s += e } else { row[j] = 0 }
            }
            let inv = 1 / s
            for j in 0..<Lk { row[j] *= inv }
        } else {
            for j in 0..<Lk where row[j] > mx { mx = row[j] }
            var s: Float = 0
            for j in 0..<Lk { let e = expf(row[j] - mx); row[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<Lk { row[j] *= inv }
        }
    }
    sgemmNN(Lq, D, Lk, P, Lk, v, ldk, out, ldo)
}

/// Backward of attentionHeadForward given the probabilities P (recomputed by the caller).
/// dq (=), dk (+=), dv (+=); dP: (Lq, Lk) scratch.
func attentionHeadBackward(_ dq: FPtr, _ ldq: Int, _ dk: FPtr, _ dv: FPtr, _ ldk: Int, _ dP: FPtr,
                           _ dout: CFPtr, _ ldo: Int, _ P: CFPtr, _ q: CFPtr, _ k: CFPtr, _ v: CFPtr,
                           _ Lq: Int, _ Lk: Int, _ D: Int, _ scale: Float) {
    // dV += Pᵀ·dO ; dP = dO·Vᵀ
    sgemmTN(Lk, D, Lq, P, Lk, dout, ldo, dv, ldk, beta: 1)
    sgemmNT(Lq, Lk, D, dout, ldo, v, ldk, dP, Lk)
    // dS = P ∘ (dP − rowsum(dP ∘ P))
    for i in 0..<Lq {
        let pr = P + i * Lk, dr = dP + i * Lk
        var dot: Float = 0
        for j in 0..<Lk { dot += pr[j] * dr[j] }
        for j in 0..<Lk { dr[j] = pr[j] * (dr[j] - dot) }
    }
    // dQ = scale·dS·K ; dK += scale·dSᵀ·Q
    sgemmNN(Lq, D, Lk, dP, Lk, k, ldk, dq, ldq, alpha: scale)
    sgemmTN(Lk, D, Lq, dP, Lk, q, ldq, dk, ldk, alpha: scale, beta: 1)
}
