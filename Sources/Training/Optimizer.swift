import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// AdamW, learning-rate schedules and gradient clipping, each written to reproduce the PyTorch /
// transformers code the HF Trainer runs (torch.optim.AdamW(fused=True) on CPU, transformers 5.24
// `optimization.py`, `torch.nn.utils.clip_grad_norm_`).

/// One trainable tensor as the trainer sees it: a name (for decay grouping and checkpoints), a shape,
/// and fp32 value/grad storage owned by the model (valid for the model's lifetime).
public struct TrainableTensor {
    public let name: String
    public let shape: [Int]
    /// The parameter lives in a layer the Trainer excludes from decay by type (nn.LayerNorm and friends);
    /// name patterns (bias, norm) are applied on top of this, see `AdamW.usesWeightDecay`.
    public let inNormLayer: Bool
    public let value: UnsafeMutableBufferPointer<Float>
    public let grad: UnsafeMutableBufferPointer<Float>
    /// Non-nil: only these rows of `grad` ([rows, width]) may be nonzero, the others are exact zeros
    /// (an embedding table's gradient). The clip norm and AdamW then skip the zero rows, with the same bits.
    public let gradientRows: GradientRows?
    public init(name: String, shape: [Int], inNormLayer: Bool = false,
                value: UnsafeMutableBufferPointer<Float>, grad: UnsafeMutableBufferPointer<Float>, gradientRows: GradientRows? = nil) {
        precondition(value.count == grad.count && value.count == shape.reduce(1, *), "\(name): storage/shape mismatch")
        precondition(gradientRows == nil || gradientRows!.rows * gradientRows!.width == value.count, "\(name): gradient rows do not cover the tensor")
        self.name = name; self.shape = shape; self.inNormLayer = inNormLayer; self.value = value; self.grad = grad
        self.gradientRows = gradientRows
    }
    public var count: Int { value.count }
}

/// torch.optim.AdamW with the HF Trainer's two parameter groups (decay / no decay).
/// Per element, in fp32, in the order of ATen's fused CPU kernel (`FusedAdamKernel.cpp`, ADAMW mode):
///   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1−β1);  v ← β2·v + (1−β2)·g·g;
///   p ← p − (lr/(1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
///
/// The moments live in one anonymous memory map (`ZeroPagedFloats`): the kernel supplies them zero-filled, so
/// building the optimizer writes one word per page instead of filling 2× the trainable bytes with zeros, and
/// a parameter's first step computes from m = v = 0 without reading them.
public final class AdamW {
    public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    /// Optimizer steps taken.
    public private(set) var stepCount: Int = 0
    /// torch's per-parameter `state["step"]`: a parameter whose `.grad` is None in a step (it took no part in
    /// the window's forward, e.g. the vision tower on text-only rows) is skipped by torch AdamW — no decay,
    /// no moment update, no step — so its bias correction runs on its own count.
    public private(set) var parameterSteps: [Int]
    public let decayFlags: [Bool]
    /// Element counts of the parameters (init order) and where each one's m and v start in `moments`.
    private let counts: [Int]
    private let mOffsets: [Int], vOffsets: [Int]
    private let moments: ZeroPagedFloats
    /// Per parameter: m and v are still all zero (no step and no restore wrote them).
    private var momentsZero: [Bool]
    /// Per row-tracked parameter (`TrainableTensor.gradientRows`): every row that ever had a gradient, so the
    /// only rows whose m and v may be nonzero. A step updates these rows only: elsewhere g = m = v = 0 and,
    /// without weight decay, the update is the identity.
    private var momentRows: [GradientRows?]

    /// `exp_avg` of each parameter (a copy out of the optimizer's storage).
    public var expAvg: MomentTensors { MomentTensors(storage: moments, offsets: mOffsets, counts: counts) }
    /// `exp_avg_sq` of each parameter (a copy out of the optimizer's storage).
    public var expAvgSq: MomentTensors { MomentTensors(storage: moments, offsets: vOffsets, counts: counts) }

    public init(parameters: [TrainableTensor], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        counts = parameters.map(\.count)
        // Each tensor's m and v start on a 64-byte boundary (16 floats).
        var m: [Int] = [], v: [Int] = [], end = 0
        for c in counts {
            m.append(end); end += (c + 15) & ~15
            v.append(end); end += (c + 15) & ~15
        }
        mOffsets = m; vOffsets = v
        // a row-tracked parameter's moments are written only where its rows get gradients: not faulted in now
        var dense: [Range<Int>] = []   // m and v of neighbouring dense parameters, merged into one range
        for (k, p) in parameters.enumerated() where p.gradientRows == nil {
            let r = m[k]..<(v[k] + counts[k])
            if let last = dense.last, last.upperBound + 16 >= r.lowerBound { dense[dense.count - 1] = last.lowerBound..<r.upperBound }
            else { dense.append(r) }
        }
        moments = ZeroPagedFloats(count: end, prefault: dense)
        momentsZero = Array(repeating: true, count: counts.count)
        momentRows = parameters.map { p in p.gradientRows.map { GradientRows(rows: $0.rows, width: $0.width) } }
        decayFlags = parameters.map { AdamW.usesWeightDecay($0) }
        parameterSteps = Array(repeating: 0, count: parameters.count)
    }

    /// transformers `Trainer.get_decay_parameter_names`: no decay inside LayerNorm-type modules, nor for
    /// names matching bias / layernorm / rmsnorm / `(^|.)norm($|.)` / `_norm($|.)` (lower-cased).
    public static func usesWeightDecay(_ p: TrainableTensor) -> Bool {
        !p.inNormLayer && !nameExcludedFromDecay(p.name)
    }

    public static func nameExcludedFromDecay(_ name: String) -> Bool {
        let n = name.lowercased()
        if n.contains("bias") || n.contains("layernorm") || n.contains("rmsnorm") { return true }
        let parts = n.split(separator: ".", omittingEmptySubsequences: false)
        if parts.contains("norm") { return true }
        // `_norm` followed by end or a dot: some dotted component ends with "_norm".
        return parts.contains { $0.hasSuffix("_norm") }
    }

    /// The scalars of one parameter's update in a step (fp32, as torch's fused kernel receives them).
    struct UpdateScalars {
        var decayFactor: Float, w1: Float, small: Bool, b2: Float, w2: Float, bc2Sqrt: Float, eps: Float, stepSize: Float
    }

    /// Elements per work item of a step: 256 KiB of each stream, large enough to amortise the dispatch,
    /// small enough that both cores get a balanced share of the ~35M elements of a LoRA + modules_to_save run.
    static let chunkElements = 1 << 16

    /// One optimizer step with learning rate `lr` over `parameters` (same order as at init). `hasGradient`
    /// (nil: all) marks the parameters torch would see with a `.grad`; the others are skipped.
    /// Every element is updated in one pass (read p, g, m, v; write p, m, v), the work split into fixed chunks
    /// over all parameters and run on every core; elementwise, so the result does not depend on the split.
    ///
    /// `gradScale` (clip_grad_norm_'s coefficient, see `GradientClipping.coefficient`) multiplies each gradient
    /// element as it is read — the same fp32 product `clip` stores — so clipping costs no pass of its own; the
    /// gradient buffers keep the unscaled values (the Trainer zeroes them next).
    public func step(_ parameters: [TrainableTensor], lr: Double, hasGradient: [Bool]? = nil, gradScale: Float = 1) {
        precondition(parameters.count == counts.count, "AdamW: parameter list changed")
        precondition(hasGradient == nil || hasGradient!.count == parameters.count, "AdamW: gradient mask size")
        for (k, p) in parameters.enumerated() { precondition(p.count == counts[k], "AdamW: \(p.name) changed size") }
        stepCount += 1
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), epsF = Float(eps)
        let small = abs(w1) < 0.5
        var scalars: [UpdateScalars] = []
        var fresh: [Bool] = []
        var work: [(k: Int, ranges: [Range<Int>])] = []
        var active: [Int] = []
        scalars.reserveCapacity(parameters.count); fresh.reserveCapacity(parameters.count)
        for k in parameters.indices {
            let skip = hasGradient.map { !$0[k] } ?? false
            if !skip {
                parameterSteps[k] += 1
                active.append(k)
            }
            let t = Double(max(parameterSteps[k], 1))
            let biasCorrection1 = 1 - pow(beta1, t)
            let biasCorrection2 = 1 - pow(beta2, t)
            let decay = decayFlags[k] && weightDecay != 0
            scalars.append(UpdateScalars(decayFactor: decay ? Float(1 - lr * weightDecay) : 1, w1: w1, small: small, b2: b2, w2: w2,
                                         bc2Sqrt: Float(biasCorrection2.squareRoot()), eps: epsF, stepSize: Float(lr / biasCorrection1)))
            fresh.append(momentsZero[k])
            if skip { continue }
            let n = counts[k]
            if let rows = parameters[k].gradientRows, let ever = momentRows[k] {
                rows.merge(into: ever)
                // Rows never marked: g = m = v = 0 there, and the update is the identity unless it decays the
                // parameter or scales the gradient by a non-finite clip coefficient (NaN · 0 = NaN).
                if !decay && gradScale.isFinite {
                    AdamW.appendWork(&work, k, ever.elementRuns())
                    continue
                }
                if !gradScale.isFinite { ever.markAll() }   // NaN moments everywhere from now on, as in torch
            }
            AdamW.appendWork(&work, k, [0..<n])
        }
        let base = moments.base
        let mOff = mOffsets, vOff = vOffsets
        func run(_ item: (k: Int, ranges: [Range<Int>])) {
            let p = parameters[item.k], s = scalars[item.k]
            for r in item.ranges {
                let n = r.count
                let pv = p.value.baseAddress! + r.lowerBound, pg = p.grad.baseAddress! + r.lowerBound
                let pm = base + mOff[item.k] + r.lowerBound, pq = base + vOff[item.k] + r.lowerBound
                switch (fresh[item.k], gradScale != 1) {
                case (true, false): AdamW.update(pv, pg, pm, pq, n, s, fresh: true, scaled: false, gradScale: 1)
                case (false, false): AdamW.update(pv, pg, pm, pq, n, s, fresh: false, scaled: false, gradScale: 1)
                case (true, true): AdamW.update(pv, pg, pm, pq, n, s, fresh: true, scaled: true, gradScale: gradScale)
                case (false, true): AdamW.update(pv, pg, pm, pq, n, s, fresh: false, scaled: true, gradScale: gradScale)
                }
            }
        }
        if work.count > 2 {
            work.withUnsafeBufferPointer { items in DispatchQueue.concurrentPerform(iterations: items.count) { run(items[$0]) } }
        } else {
            for item in work { run(item) }
        }
        for k in active { momentsZero[k] = false }
    }

    /// Splits parameter `k`'s element ranges (ascending, disjoint) into work items of about `chunkElements`
    /// elements each: a long range in pieces, short ones (an embedding's marked rows) gathered together.
    static func appendWork(_ work: inout [(k: Int, ranges: [Range<Int>])], _ k: Int, _ ranges: [Range<Int>]) {
        var item: [Range<Int>] = [], size = 0
        for r in ranges {
            var lo = r.lowerBound
            while lo < r.upperBound {
                let hi = min(r.upperBound, lo + (chunkElements - size))
                item.append(lo..<hi); size += hi - lo; lo = hi
                if size >= chunkElements { work.append((k, item)); item = []; size = 0 }
            }
        }
        if !item.isEmpty { work.append((k, item)) }
    }

    /// The per-element update, 8 lanes at a time (SIMD lanes run the same IEEE operations in the same order
    /// as the scalar tail, so results do not depend on the vector width). `scaled`: g ← g·gradScale first.
    /// `fresh`: m and v are known to be
    /// zero (the parameter's first step), so they are not read — the same arithmetic runs on constant zeros,
    /// giving the bits a read of the zero moments would.
    @inline(__always)
    static func update(_ pv: UnsafeMutablePointer<Float>, _ pg: UnsafeMutablePointer<Float>, _ pm: UnsafeMutablePointer<Float>,
                       _ pq: UnsafeMutablePointer<Float>, _ n: Int, _ s: UpdateScalars, fresh: Bool, scaled: Bool, gradScale: Float) {
        if n <= 0 { return }
        let decayFactor = s.decayFactor, w1 = s.w1, b2 = s.b2, w2 = s.w2, bc2Sqrt = s.bc2Sqrt, eps = s.eps, stepSize = s.stepSize
        let decays = decayFactor != 1, small = s.small
        var i = 0
        typealias V8 = SIMD8<Float>
        while i + 8 <= n {
            var g = UnsafeRawPointer(pg + i).loadUnaligned(as: V8.self)
            if scaled { g = g * gradScale }
            var x = UnsafeRawPointer(pv + i).loadUnaligned(as: V8.self)
            if decays { x = x * decayFactor }
            var mi = fresh ? V8(repeating: 0) : UnsafeRawPointer(pm + i).loadUnaligned(as: V8.self)
            // torch.lerp: a + w·(b − a) when |w| < 0.5, else b − (b − a)·(1 − w)
            mi = small ? mi + w1 * (g - mi) : g - (g - mi) * (1 - w1)
            var vi = (fresh ? V8(repeating: 0) : UnsafeRawPointer(pq + i).loadUnaligned(as: V8.self)) * b2
            vi = vi + w2 * g * g
            let denom = sqrt8(vi) / bc2Sqrt + eps
            x = x - stepSize * mi / denom
            UnsafeMutableRawPointer(pm + i).storeBytes(of: mi, as: V8.self)
            UnsafeMutableRawPointer(pq + i).storeBytes(of: vi, as: V8.self)
            UnsafeMutableRawPointer(pv + i).storeBytes(of: x, as: V8.self)
            i += 8
        }
        while i < n {
            var g = pg[i]
            if scaled { g = g * gradScale }
            var x = pv[i]
            if decays { x = x * decayFactor }
            var mi: Float = fresh ? 0 : pm[i]
            mi = small ? mi + w1 * (g - mi) : g - (g - mi) * (1 - w1)
            var vi = (fresh ? 0 : pq[i]) * b2
            vi = vi + w2 * g * g
            let denom = vi.squareRoot() / bc2Sqrt + eps
            pm[i] = mi; pq[i] = vi
            pv[i] = x - stepSize * mi / denom
            i += 1
        }
    }

    /// Lane-wise IEEE square root. SIMD8's `squareRoot()` becomes eight scalar `sqrtss` with a libm `sqrtf`
    /// fallback each (errno), which spilled every register and made the step compute-bound (2.6× torch's
    /// time); SSE's `sqrtps` gives the same correctly rounded results four lanes at a time.
    @inline(__always)
    static func sqrt8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64)
        return SIMD8(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
        #else
        return v.squareRoot()
        #endif
    }

    /// Restores moments and step count (from a checkpoint).
    public func restore(stepCount: Int, expAvg: [[Float]], expAvgSq: [[Float]], parameterSteps: [Int]? = nil) throws {
        guard expAvg.count == counts.count, expAvgSq.count == counts.count,
              zip(expAvg, counts).allSatisfy({ $0.count == $1 }),
              zip(expAvgSq, counts).allSatisfy({ $0.count == $1 }),
              parameterSteps == nil || parameterSteps!.count == counts.count
        else { throw TrainingError("optimizer state does not match the model's trainable parameters") }
        for k in counts.indices {
            expAvg[k].withUnsafeBufferPointer { if let b = $0.baseAddress { (moments.base + mOffsets[k]).update(from: b, count: counts[k]) } }
            expAvgSq[k].withUnsafeBufferPointer { if let b = $0.baseAddress { (moments.base + vOffsets[k]).update(from: b, count: counts[k]) } }
            momentsZero[k] = false
            if let ever = momentRows[k] {
                // the rows whose restored moments are not all zero are the ones a step must keep updating
                for r in 0..<ever.rows {
                    let lo = r * ever.width, hi = lo + ever.width
                    if expAvg[k][lo..<hi].contains(where: { $0 != 0 }) || expAvgSq[k][lo..<hi].contains(where: { $0 != 0 }) { ever.mark(r) }
                }
            }
        }
        self.stepCount = stepCount
        self.parameterSteps = parameterSteps ?? Array(repeating: stepCount, count: counts.count)
    }
}

/// Per-parameter AdamW moments (`exp_avg` or `exp_avg_sq`) in init order; each element is a copy.
public struct MomentTensors: RandomAccessCollection {
    let storage: ZeroPagedFloats
    let offsets: [Int], counts: [Int]
    public var startIndex: Int { 0 }
    public var endIndex: Int { counts.count }
    public subscript(k: Int) -> [Float] { Array(UnsafeBufferPointer(start: storage.base + offsets[k], count: counts[k])) }
}

/// fp32 storage that starts out zero without being written: an anonymous private memory map, whose pages
/// the kernel supplies zero-filled (calloc's trick for large blocks; `AnonymousMemory`). The `prefault` ranges
/// are populated at once, on every core: the faults are the whole cost; the old `[Float](repeating: 0)` paid
/// them plus a fill of 2× the trainable bytes.
final class ZeroPagedFloats: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    private let mappedBytes: Int   // 0: heap memory

    /// `prefault`: the element ranges whose pages are faulted in now (nil: all); the others wait for their
    /// first write (AdamW's row-tracked embedding moments, most rows of which no batch ever names).
    init(count: Int, prefault: [Range<Int>]? = nil) {
        self.count = count
        let length = max(count, 1) * MemoryLayout<Float>.size
        if let m = AnonymousMemory.map(bytes: length, populate: false) {
            mappedBytes = length
            base = m.bindMemory(to: Float.self, capacity: max(count, 1))
            for r in prefault ?? [0..<count] where !r.isEmpty {
                AnonymousMemory.populate(UnsafeMutableRawPointer(base + r.lowerBound), bytes: r.count * 4, cores: Parallel.coreCount)
            }
        } else {
            // No map (address space exhausted?): ordinary zeroed memory.
            mappedBytes = 0
            base = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            base.initialize(repeating: 0, count: max(count, 1))
        }
    }

    deinit {
        if mappedBytes > 0 { AnonymousMemory.unmap(UnsafeMutableRawPointer(base), bytes: mappedBytes) } else { base.deallocate() }
    }
}

/// transformers `SchedulerType`s SFTDeck implements (LambdaLR multipliers of `optimization.py`).
public enum LRSchedulerType: String, CaseIterable, Codable, Sendable {
    case linear, cosine, constant
    case constantWithWarmup = "constant_with_warmup"
}

public struct LRSchedule: Sendable, Equatable {
    public var type: LRSchedulerType
    public var baseLR: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    /// `TrainingArguments.get_warmup_steps`: a value ≥ 1 is a step count (truncated), below 1 a ratio
    /// of the total (ceil).
    public static func warmupSteps(_ warmup: Double, totalSteps: Int) -> Int {
        warmup >= 1 ? Int(warmup) : Int((Double(totalSteps) * warmup).rounded(.up))
    }

    public init(type: LRSchedulerType, baseLR: Double, warmupSteps: Int, totalSteps: Int) {
        self.type = type; self.baseLR = baseLR; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// Learning rate used by optimizer step `step` (0-based), i.e. `base_lr · λ(step)`.
    public func learningRate(atStep step: Int) -> Double { baseLR * multiplier(step) }

    public func multiplier(_ s: Int) -> Double {
        let w = warmupSteps, T = totalSteps
        switch type {
        case .constant: return 1
        case .constantWithWarmup:
            return s < w ? Double(s) / max(1.0, Double(w)) : 1
        case .linear:
            if s < w { return Double(s) / Double(max(1, w)) }
            return max(0, Double(T - s) / Double(max(1, T - w)))
        case .cosine:
            if s < w { return Double(s) / Double(max(1, w)) }
            let progress = Double(s - w) / Double(max(1, T - w))
            return max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }
}

public enum GradientClipping {
    /// Fixed work items (elements) for both passes, so the per-tensor sums do not depend on the core count.
    static let chunkElements = 1 << 16

    /// Total L2 norm of all gradients (norm of the per-tensor fp32 norms, as torch `_get_total_norm`).
    /// Each tensor's sum of squares is taken in Double (four lanes per chunk of `chunkElements`, chunk sums
    /// added in order), rounded to an fp32 norm as torch's is; the chunks run on every core.
    public static func totalNorm(_ parameters: [TrainableTensor]) -> Float {
        var work: [(k: Int, lo: Int, hi: Int)] = []
        for (k, p) in parameters.enumerated() {
            var lo = 0
            repeat { work.append((k, lo, min(lo + chunkElements, p.count))); lo += chunkElements } while lo < p.count
        }
        // row-tracked gradients: only the groups of four that hold a marked row are read (see sumOfSquares(_:_:only:))
        let runs: [[Range<Int>]?] = parameters.map { $0.gradientRows?.elementRuns() }
        var partial = [Double](repeating: 0, count: work.count)
        partial.withUnsafeMutableBufferPointer { out in
            let out = out
            func run(_ w: Int) {
                let item = work[w]
                let g = parameters[item.k].grad.baseAddress.map { UnsafePointer($0) + item.lo }
                if let r = runs[item.k], let g {
                    out[w] = sumOfSquares(g, item.hi - item.lo, only: clippedRuns(r, item.lo, item.hi))
                } else {
                    out[w] = sumOfSquares(g, item.hi - item.lo)
                }
            }
            if work.count > 2 { DispatchQueue.concurrentPerform(iterations: work.count, execute: run) }
            else { for w in work.indices { run(w) } }
        }
        var sumSquares: Float = 0
        var w = 0
        for k in parameters.indices {
            var s: Double = 0
            while w < work.count && work[w].k == k { s += partial[w]; w += 1 }
            let n = Float(s.squareRoot())
            sumSquares += n * n
        }
        return sumSquares.squareRoot()
    }

    /// Σ x² in Double over n floats (x² is exact in Double): four partial sums, then the tail.
    @inline(__always)
    static func sumOfSquares(_ g: UnsafePointer<Float>?, _ n: Int) -> Double {
        guard let g, n > 0 else { return 0 }
        var acc = SIMD4<Double>(repeating: 0)
        var i = 0
        while i + 4 <= n {
            let x = SIMD4<Double>(UnsafeRawPointer(g + i).loadUnaligned(as: SIMD4<Float>.self))
            acc += x * x
            i += 4
        }
        var s = acc.sum()
        while i < n { s += Double(g[i]) * Double(g[i]); i += 1 }
        return s
    }

    /// `sumOfSquares(g, n)` when every element outside `runs` (ascending, disjoint, relative to g) is zero,
    /// reading only the groups of four that hold an element of a run: the same lanes take the same nonzero
    /// squares in the same order, and a skipped group would have added exact zeros — identical bits.
    static func sumOfSquares(_ g: UnsafePointer<Float>, _ n: Int, only runs: [Range<Int>]) -> Double {
        guard n > 0 else { return 0 }
        var acc = SIMD4<Double>(repeating: 0)
        let full = n / 4 * 4
        var next = 0   // groups before this were added
        for r in runs {
            var i = max(next, r.lowerBound / 4 * 4)
            let end = min(full, (r.upperBound + 3) / 4 * 4)
            while i < end {
                let x = SIMD4<Double>(UnsafeRawPointer(g + i).loadUnaligned(as: SIMD4<Float>.self))
                acc += x * x
                i += 4
            }
            next = max(next, end)
        }
        var s = acc.sum()
        var i = full
        while i < n { s += Double(g[i]) * Double(g[i]); i += 1 }   // the tail (< 4 elements), as the dense sum
        return s
    }

    /// clip_grad_norm_'s scale for a total norm: min(max_norm / (norm + 1e-6), 1) in fp32 (NaN stays NaN).
    /// `AdamW.step(…, gradScale:)` applies it inside the update instead of a separate pass over the gradients.
    public static func coefficient(norm: Float, maxNorm: Double) -> Float {
        var coef = Float(maxNorm) / (norm + 1e-6)
        if coef > 1 { coef = 1 }
        if coef.isNaN { coef = .nan }
        return coef
    }

    /// `torch.nn.utils.clip_grad_norm_`: coef = min(max_norm / (norm + 1e-6), 1), grads *= coef (always
    /// applied in torch, also when coef is 1 — a multiplication by 1 that changes no bit, so skipped here).
    /// Returns the pre-clip norm (what the Trainer logs as grad_norm).
    @discardableResult
    public static func clip(_ parameters: [TrainableTensor], maxNorm: Double) -> Float {
        let norm = totalNorm(parameters)
        let coef = coefficient(norm: norm, maxNorm: maxNorm)
        if coef == 1 { return norm }
        var work: [(k: Int, lo: Int, hi: Int)] = []
        for (k, p) in parameters.enumerated() {
            if let rows = p.gradientRows {
                // zero rows stay zero under a finite scale; NaN · 0 = NaN makes every row written
                if coef.isFinite {
                    for r in rows.elementRuns() {
                        var lo = r.lowerBound
                        while lo < r.upperBound { work.append((k, lo, min(lo + chunkElements, r.upperBound))); lo += chunkElements }
                    }
                    continue
                }
                rows.markAll()
            }
            var lo = 0
            while lo < p.count { work.append((k, lo, min(lo + chunkElements, p.count))); lo += chunkElements }
        }
        func run(_ w: Int) {
            let item = work[w]
            let g = parameters[item.k].grad.baseAddress! + item.lo, n = item.hi - item.lo
            var i = 0
            while i + 8 <= n {
                let x = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self) * coef
                UnsafeMutableRawPointer(g + i).storeBytes(of: x, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { g[i] *= coef; i += 1 }
        }
        if work.count > 2 { DispatchQueue.concurrentPerform(iterations: work.count, execute: run) }
        else { for w in work.indices { run(w) } }
        return norm
    }
}

/// A failure of the training engine the user can act on; its text is one readable line.
public struct TrainingError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
