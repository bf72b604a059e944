// Models-side glue to module Tensor's kernels, which hold every numeric kernel the Gemma 3 / SigLIP
// layers use (each forward next to its backward, each checked against a finite-difference reference in
// TensorTests). What stays here belongs to Models: the short pointer and buffer spellings of its layer
// code, and the loss path's chunk call with the signature its callers use.
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

// RMSNorm (Gemma, (1 + w)) and LayerNorm: module Tensor, Norms.swift (pointer forms for raw weights).

// GELU (tanh) and the gated GELU of the Gemma MLP: module Tensor, Elementwise.swift.

// RoPE (rotate-half) and its tables: module Tensor, Rotary.swift.

// Softmax cross-entropy: module Tensor, Softmax.swift. This is the loss path's call (Gemma3Model's
// chunked lm_head loop), kept with its signature: one chunk of rows in a raw buffer, gradient in place.

/// logits (N, V) → in place becomes dlogits·gradScale for rows with a valid target; rows with target −100 get 0.
/// Returns (sum of CE over valid rows, valid count, argmax-correct count).
func crossEntropyForwardBackward(_ logits: FPtr, _ targets: [Int32], _ N: Int, _ V: Int, gradScale: Float,
                                 computeGrad: Bool) -> (Double, Int, Int) {
    let stats = crossEntropyForward(logits: logits, rows: N, vocab: V, targets: targets)
    if computeGrad { crossEntropyBackward(dlogits: logits, logits: logits, rows: N, vocab: V, targets: targets, scale: gradScale) }
    return (stats.lossSum, stats.count, stats.correct)
}

// Attention (grouped KV heads, Gemma 3 masks, recomputed probabilities): module Tensor, Attention.swift.
