// Module Tensor: fp32 compute, bf16/f16/NF4 storage, BLAS kernels with gradients, safetensors.

/// # The numeric core (module `Tensor`)
///
/// **Values.** `Tensor` is an fp32 array with a shape, over contiguous row-major storage held by a
/// reference-counted `TensorStorage`. Copying a `Tensor` value copies the *reference* (like a torch
/// tensor): views made by `reshaped(_:)`, `rows(_:)` and `subscript(i)` (leading dimension) share
/// storage and cost nothing. `copy()` makes a deep copy. `data` is the raw pointer to the first
/// element, valid while the tensor (or any view of its storage) is alive — keep locals alive with
/// `withExtendedLifetime` if a pointer outlives the last use of the value.
///
/// **Kernels** are free functions in the style of llm.c: each `xForward` sits next to its
/// `xBackward`, shapes are in the doc comments, outputs come first. Conventions:
/// - a forward *overwrites* its outputs (`out`, and any saved statistics such as `rstd`);
/// - a backward *accumulates* (`+=`) into every gradient it is given (pass `nil` to skip one), so
///   residual branches and shared weights need no extra adds; zero gradients with `zero()`.
///   Exception: `crossEntropyBackward` overwrites `dlogits` (which may alias `logits`).
/// - shape mismatches are programming errors and stop with a precondition message.
///
/// **Matrix products** (`Matmul.swift`): `sgemm(...)` (raw row-major wrapper of `cblas_sgemm`),
/// `matmul(out, a, b, transposeA:, transposeB:, alpha:, accumulate:)` for [batch..., M, K]·[batch..., K, N]
/// (b may be 2-D and shared), `matmulBackward(dA:, dB:, dOut:, a:, b:, ...)`.
///
/// **Frozen and trainable weights** (`LinearWeight.swift`): protocol `LinearWeight` (rows, cols,
/// `dequantizeRows(_:into:)`, optional direct `fp32Rows`). `Tensor` conforms (rows = shape[0]);
/// `HalfPrecisionWeight` stores bf16/f16 bits (2 bytes per value, owned or borrowed from a mapped
/// file); NF4 is added by `Quant*`. `linearForward(out:x:weight:bias:)` computes y = x·Wᵀ + b,
/// dequantizing W in tiles of rows into fp32 scratch for `sgemm`; `linearBackward(dx:dweight:dbias:
/// dout:x:weight:)` (dweight only for fp32 `Tensor` weights).
///
/// **Element-wise** (`Elementwise.swift`): `addForward`, `addInPlace` (axpy; also the backward of
/// add), `mulForward/mulBackward`, `scaleForward/scaleBackward`, `geluTanhForward/Backward` (torch
/// `gelu(approximate="tanh")`), `dropoutForward/Backward` (inverted, seeded counter-based
/// `DropoutGenerator`, keep mask reused in backward), `roundToBF16InPlace` (emulates bf16 tensors).
///
/// **Rows** (`Norms.swift`, `Softmax.swift`): `rmsNormForward/Backward` (Gemma: x·rsqrt(mean x²+eps)·(1+w)),
/// `layerNormForward/Backward` (weight+bias, biased variance), `softmaxForward/Backward` (last dim),
/// `crossEntropyForward` (ignore index -100; returns `CrossEntropyStats` = loss sum, count, argmax-
/// correct count) and `crossEntropyBackward(dlogits:logits:targets:scale:)`.
///
/// **Sequence ops**: `embeddingForward/Backward` (ids `[Int32]`, padding index gets no gradient),
/// `RotaryEmbedding` (inv_freq with linear scaling, cos/sin from fp32 positions) with
/// `ropeForward/Backward` (rotate-half, [B, L, H, D]), `attentionForward/Backward` (grouped KV heads,
/// q [B, L, H, D], k/v [B, S, KV, D], probabilities [B, H, L, S] saved, or nil to recompute them per
/// head in the backward; `AttentionMask`: causal, sliding window `q-k < window`, key padding,
/// bidirectional image groups, query offset for cached keys; `AttentionMask.gemma3(slidingWindow:
/// attentionMask:tokenTypes:batch:length:)` builds a Gemma 3 layer's mask from the collator's arrays).
///
/// **Vision** (`Vision.swift`): `patchEmbedForward/Backward` (conv stride = kernel, with bias, output
/// [N, patches, E] in row-major patch order), `avgPool2dForward/Backward` (kernel = stride, channels
/// last [N, H, W, C] so SigLIP's [N, H·W, C] output needs no transpose), `transposeLast2`.
///
/// **Storage formats** (`Half.swift`): `BFloat16Bits`/f16 conversions (f32→bf16 round-to-nearest-even
/// exactly as torch), bulk `convertBF16ToF32`, `convertF32ToBF16`, `convertF16ToF32`, `convertF32ToF16`.
///
/// **Fast math** (`FastMath.swift`): fp32 SIMD `tanhFloat4`/`tanhFloat` (≤ 1.21 ulp) and `expFloat4`/`expFloat` (≤ 1 ulp), no libm.
///
/// **Threads** (`Parallel.swift`): `Parallel.forEachChunk(count:grain:_:)` splits element/row loops
/// with `DispatchQueue.concurrentPerform` above a size threshold (`forEachFixedChunk` for reductions
/// that must not depend on the core count). OpenBLAS runs single-threaded and `sgemm` splits large
/// products across cores on the same Dispatch pool (`BLASThreads` in Matmul.swift says why).
/// **Memory**: buffers of 1 MiB and more are kept between steps by `LargeBlockCache`.
/// `BLASRuntime.reexecWithBestKernelIfNeeded()` picks the right OpenBLAS kernel at start
/// (`kernelToForce(coreName:cpuFlags:environment:)` is the pure decision, `recommendedKernel()` its
/// value for this process).
import Foundation

/// Owns one aligned fp32 buffer. Views of a tensor share it. Buffers of 1 MiB and more come from
/// `LargeBlockCache` (activations, caches and gradients of a training step, re-made every step).
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let capacity: Int
    /// Bytes of the `LargeBlockCache` block behind `base`; 0 for a heap allocation.
    let blockBytes: Int

    /// `populate: false` (large zeroed buffers only): a fresh mapping's pages are left for the first touch, so
    /// pages never written cost nothing (a row-tracked embedding gradient, see `GradientRows`).
    public init(capacity: Int, zeroed: Bool = true, populate: Bool = true) {
        precondition(capacity >= 0, "TensorStorage: negative capacity")
        let bytes = max(1, capacity) * 4
        self.capacity = capacity
        if bytes >= LargeBlockCache.minimumBytes, let block = LargeBlockCache.shared.take(bytes, populate: populate) {
            base = block.pointer.bindMemory(to: Float.self, capacity: max(1, capacity))
            blockBytes = block.bytes
            if zeroed && !block.fresh { memset(block.pointer, 0, bytes) }   // a fresh mapping is zero already
            return
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(1, capacity))
        blockBytes = 0
        if zeroed { memset(raw, 0, bytes) }
    }

    deinit {
        if blockBytes > 0 { LargeBlockCache.shared.give(UnsafeMutableRawPointer(base), bytes: blockBytes) } else { base.deallocate() }
    }
}

/// Keeps the large buffers a training step frees for the next step's allocations of about the same size.
///
/// A step allocates and frees the same few hundred buffers (per-layer activations, caches, gradients)
/// every time. Through malloc, those of more than glibc's mmap threshold (or trimmed off the top of its
/// heap) come back as fresh pages each step: a profile of a Gemma-3-shaped step showed ~5% of its CPU in
/// page faults and the kernel's zero-filling. Here a freed block (its own mmap) is kept and handed to a
/// later request that it fits with at most 25% to spare. Mapped bytes (live + kept) never exceed the
/// largest live total seen so far: a request that finds no fit first unmaps kept blocks (least recently
/// freed first) until the new mapping fits under that mark, so caching never raises peak memory.
public final class LargeBlockCache: @unchecked Sendable {
    public static let shared = LargeBlockCache()
    /// Requests below this go to malloc.
    public static let minimumBytes = 1 << 20

    public struct Block { public let pointer: UnsafeMutableRawPointer; public let bytes: Int; public let fresh: Bool }

    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []   // oldest first
    private var freeBytes = 0
    private var liveBytes = 0
    private var peakBytes = 0

    /// Bytes held in kept (free) blocks and in live ones, and the live high-water mark (for tests and benches).
    public var statistics: (kept: Int, live: Int, peak: Int) { lock.lock(); defer { lock.unlock() }; return (freeBytes, liveBytes, peakBytes) }

    func take(_ bytes: Int, populate: Bool = true) -> Block? {
        lock.lock()
        // best fit within 25%
        var best = -1
        for (i, f) in free.enumerated() where f.bytes >= bytes && f.bytes - bytes <= bytes / 4 {
            if best < 0 || f.bytes < free[best].bytes { best = i }
        }
        if best >= 0 {
            let f = free.remove(at: best)
            freeBytes -= f.bytes; liveBytes += f.bytes
            lock.unlock()
            return Block(pointer: f.pointer, bytes: f.bytes, fresh: false)
        }
        let size = AnonymousMemory.roundedSize(bytes)
        var evicted: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
        while !free.isEmpty && liveBytes + freeBytes + size > peakBytes {
            let f = free.removeFirst()
            freeBytes -= f.bytes; evicted.append(f)
        }
        liveBytes += size
        peakBytes = max(peakBytes, liveBytes + freeBytes)
        lock.unlock()
        for f in evicted { AnonymousMemory.unmap(f.pointer, bytes: f.bytes) }
        // Populated at once unless asked not to (a step writes every page of its buffers); huge pages only with
        // SFTDECK_HUGE_PAGES=1 (`AnonymousMemory` has the figures).
        guard let p = AnonymousMemory.map(bytes: size, populate: populate) else {
            lock.lock(); liveBytes -= size; lock.unlock()
            return nil   // the caller falls back to malloc (which reports exhaustion its own way)
        }
        return Block(pointer: p, bytes: size, fresh: true)
    }

    func give(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        lock.lock()
        liveBytes -= bytes
        free.append((pointer, bytes)); freeBytes += bytes
        lock.unlock()
    }

    /// Unmaps every kept block (end of a training run: the dashboard may stay open for hours).
    public func releaseKept() {
        lock.lock()
        let all = free
        free = []; freeBytes = 0; peakBytes = liveBytes
        lock.unlock()
        for f in all { AnonymousMemory.unmap(f.pointer, bytes: f.bytes) }
    }
}

/// An fp32 array with a shape over contiguous row-major storage (reference semantics; views share storage).
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: TensorStorage
    /// Index of the first element inside `storage`.
    public let offset: Int
    public let shape: [Int]
    /// Number of elements (product of `shape`; 1 for a 0-rank tensor).
    public let count: Int

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        let n = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(capacity: n), offset: 0, shape: shape)
    }

    /// A tensor whose contents are unspecified (for outputs that a kernel overwrites).
    public init(uninitialized shape: [Int]) {
        let n = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(capacity: n, zeroed: false), offset: 0, shape: shape)
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        fill(value)
    }

    public init(shape: [Int], _ values: [Float]) {
        self.init(uninitialized: shape)
        precondition(values.count == count, "Tensor(shape: \(shape)): \(values.count) values for \(count) elements")
        values.withUnsafeBufferPointer { src in
            if count > 0 { data.update(from: src.baseAddress!, count: count) }
        }
    }

    /// A view over existing storage.
    public init(storage: TensorStorage, offset: Int, shape: [Int]) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= storage.capacity || n == 0,
                     "Tensor view \(shape) at offset \(offset) exceeds storage of \(storage.capacity)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = n
    }

    @inline(__always) static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { precondition(d >= 0, "Tensor: negative dimension in \(shape)"); n *= d }
        return n
    }

    /// Pointer to the first element.
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.base + offset }
    public var rank: Int { shape.count }

    /// Size of dimension `i`; negative `i` counts from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// Product of all dimensions but the last (the number of rows of a row-wise kernel).
    public var rowCount: Int { shape.isEmpty ? 1 : (shape.last! == 0 ? 0 : count / shape.last!) }
    /// The last dimension (1 for a 0-rank tensor).
    public var lastDim: Int { shape.last ?? 1 }

    /// A view with another shape and the same element count; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let rest = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(rest > 0 && count % rest == 0, "reshape \(shape) -> \(newShape): not divisible")
            s[i] = count / rest
        }
        precondition(Tensor.elementCount(s) == count, "reshape \(shape) -> \(newShape): element count differs")
        return Tensor(storage: storage, offset: offset, shape: s)
    }

    /// View of entries `range` along the leading dimension.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(!shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "rows \(range) out of \(shape)")
        let inner = shape[0] == 0 ? 0 : count / shape[0]
        var s = shape
        s[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * inner, shape: s)
    }

    /// View of entry `i` along the leading dimension (rank drops by one).
    public subscript(_ i: Int) -> Tensor {
        precondition(!shape.isEmpty && i >= 0 && i < shape[0], "index \(i) out of \(shape)")
        let inner = count / shape[0]
        return Tensor(storage: storage, offset: offset + i * inner, shape: Array(shape.dropFirst()))
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        if count > 0 { t.data.update(from: data, count: count) }
        return t
    }

    /// Copies `source` (same element count) into this tensor's elements.
    public func copy(from source: Tensor) {
        precondition(source.count == count, "copy(from:): \(source.shape) into \(shape)")
        if count > 0 { data.update(from: source.data, count: count) }
    }

    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func zero() { if count > 0 { memset(data, 0, count * 4) } }

    public func fill(_ value: Float) { if count > 0 { data.update(repeating: value, count: count) } }

    /// Element at a multi-index (slow; for tests and debugging).
    public func value(at index: [Int]) -> Float {
        precondition(index.count == shape.count, "value(at:) rank mismatch")
        var flat = 0
        for (i, d) in zip(index, shape) { precondition(i >= 0 && i < d, "value(at:) \(index) out of \(shape)"); flat = flat * d + i }
        return data[flat]
    }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Double { rowSum(data, count) }

    /// Sum of squares, accumulated in Double (for gradient norms).
    public func sumOfSquares() -> Double { rowSumOfSquares(data, count) }

    /// Deterministic pseudo-random normal values (mean 0, standard deviation `std`), for tests and init.
    public static func randomNormal(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        var g = SeededGenerator(seed: seed)
        for i in 0..<t.count { t.data[i] = g.nextNormal() * std }
        return t
    }

    /// Deterministic pseudo-random uniform values in [low, high).
    public static func randomUniform(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        var g = SeededGenerator(seed: seed)
        for i in 0..<t.count { t.data[i] = low + (high - low) * g.nextUniform() }
        return t
    }

    public var description: String {
        let head = (0..<min(count, 6)).map { String(data[$0]) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 6 ? ", ..." : "")])"
    }
}

/// splitmix64-seeded xoshiro256** generator: deterministic across platforms and runs.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        s0 = splitMix64(&x); s1 = splitMix64(&x); s2 = splitMix64(&x); s3 = splitMix64(&x)
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box–Muller).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(max(u1, 1e-300))).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

@inline(__always) func splitMix64(_ x: inout UInt64) -> UInt64 {
    x &+= 0x9E37_79B9_7F4A_7C15
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
