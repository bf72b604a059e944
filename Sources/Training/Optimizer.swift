import Foundation

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
    public init(name: String, shape: [Int], inNormLayer: Bool = false,
                value: UnsafeMutableBufferPointer<Float>, grad: UnsafeMutableBufferPointer<Float>) {
        precondition(value.count == grad.count && value.count == shape.reduce(1, *), "\(name): storage/shape mismatch")
        self.name = name; self.shape = shape; self.inNormLayer = inNormLayer; self.value = value; self.grad = grad
    }
    public var count: Int { value.count }
}

/// torch.optim.AdamW with the HF Trainer's two parameter groups (decay / no decay).
/// Per element, in fp32, in the order of ATen's fused CPU kernel (`FusedAdamKernel.cpp`, ADAMW mode):
///   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1−β1);  v ← β2·v + (1−β2)·g·g;
///   p ← p − (lr/(1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
public final class AdamW {
    public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    /// Optimizer steps taken.
    public private(set) var stepCount: Int = 0
    /// torch's per-parameter `state["step"]`: a parameter whose `.grad` is None in a step (it took no part in
    /// the window's forward, e.g. the vision tower on text-only rows) is skipped by torch AdamW — no decay,
    /// no moment update, no step — so its bias correction runs on its own count.
    public private(set) var parameterSteps: [Int]
    public private(set) var expAvg: [[Float]]
    public private(set) var expAvgSq: [[Float]]
    public let decayFlags: [Bool]

    public init(parameters: [TrainableTensor], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        // Zeroed moments. Touching ~2× the trainable bytes is most of the trainer's start-up (page faults),
        // so the buffers are filled on every core, largest first.
        let counts = parameters.map(\.count)
        let order = counts.indices.sorted { counts[$0] > counts[$1] }
        var m = [[Float]](repeating: [], count: counts.count), v = [[Float]](repeating: [], count: counts.count)
        m.withUnsafeMutableBufferPointer { mp in
            v.withUnsafeMutableBufferPointer { vp in
                let mp = mp, vp = vp
                DispatchQueue.concurrentPerform(iterations: 2 * order.count) { k in
                    let i = order[k / 2]
                    if k % 2 == 0 { mp[i] = [Float](repeating: 0, count: counts[i]) } else { vp[i] = [Float](repeating: 0, count: counts[i]) }
                }
            }
        }
        expAvg = m
        expAvgSq = v
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

    /// One optimizer step with learning rate `lr` over `parameters` (same order as at init). `hasGradient`
    /// (nil: all) marks the parameters torch would see with a `.grad`; the others are skipped.
    public func step(_ parameters: [TrainableTensor], lr: Double, hasGradient: [Bool]? = nil) {
        precondition(parameters.count == expAvg.count, "AdamW: parameter list changed")
        precondition(hasGradient == nil || hasGradient!.count == parameters.count, "AdamW: gradient mask size")
        stepCount += 1
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), epsF = Float(eps)
        let small = abs(w1) < 0.5
        for (k, p) in parameters.enumerated() {
            if let mask = hasGradient, !mask[k] { continue }
            parameterSteps[k] += 1
            let t = Double(parameterSteps[k])
            let biasCorrection1 = 1 - pow(beta1, t)
            let biasCorrection2 = 1 - pow(beta2, t)
            let stepSize = Float(lr / biasCorrection1)
            let bc2Sqrt = Float(biasCorrection2.squareRoot())
            let decay = decayFlags[k] && weightDecay != 0
            let decayFactor = Float(1 - lr * weightDecay)
            let value = p.value, grad = p.grad
            expAvg[k].withUnsafeMutableBufferPointer { m in
                expAvgSq[k].withUnsafeMutableBufferPointer { v in
                    // Elementwise, so chunks of large tensors run on every core with identical results.
                    let chunk = 1 << 16
                    let chunks = (value.count + chunk - 1) / chunk
                    let df = decay ? decayFactor : 1
                    func run(_ c: Int) {
                        let lo = c * chunk, hi = min(lo + chunk, value.count)
                        AdamW.update(value: UnsafeMutableBufferPointer(rebasing: value[lo..<hi]),
                                     grad: UnsafeMutableBufferPointer(rebasing: grad[lo..<hi]),
                                     m: UnsafeMutableBufferPointer(rebasing: m[lo..<hi]), v: UnsafeMutableBufferPointer(rebasing: v[lo..<hi]),
                                     decayFactor: df, w1: w1, small: small, b2: b2, w2: w2, bc2Sqrt: bc2Sqrt, eps: epsF, stepSize: stepSize)
                    }
                    if chunks > 4 { DispatchQueue.concurrentPerform(iterations: chunks, execute: run) }
                    else { for c in 0..<chunks { run(c) } }
                }
            }
        }
    }

    /// The per-element update, 8 lanes at a time (SIMD lanes run the same IEEE operations in the same order
    /// as the scalar tail, so results do not depend on the vector width).
    @inline(__always)
    static func update(value: UnsafeMutableBufferPointer<Float>, grad: UnsafeMutableBufferPointer<Float>,
                       m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>, decayFactor: Float,
                       w1: Float, small: Bool, b2: Float, w2: Float, bc2Sqrt: Float, eps: Float, stepSize: Float) {
        let n = value.count
        if n == 0 { return }
        let pv = value.baseAddress!, pg = grad.baseAddress!, pm = m.baseAddress!, pq = v.baseAddress!
        let decays = decayFactor != 1
        var i = 0
        typealias V8 = SIMD8<Float>
        while i + 8 <= n {
            let g = UnsafeRawPointer(pg + i).loadUnaligned(as: V8.self)
            var x = UnsafeRawPointer(pv + i).loadUnaligned(as: V8.self)
            if decays { x = x * decayFactor }
            var mi = UnsafeRawPointer(pm + i).loadUnaligned(as: V8.self)
            // torch.lerp: a + w·(b − a) when |w| < 0.5, else b − (b − a)·(1 − w)
            mi = small ? mi + w1 * (g - mi) : g - (g - mi) * (1 - w1)
            var vi = UnsafeRawPointer(pq + i).loadUnaligned(as: V8.self) * b2
            vi = vi + w2 * g * g
            let denom = vi.squareRoot() / bc2Sqrt + eps
            x = x - stepSize * mi / denom
            UnsafeMutableRawPointer(pm + i).storeBytes(of: mi, as: V8.self)
            UnsafeMutableRawPointer(pq + i).storeBytes(of: vi, as: V8.self)
            UnsafeMutableRawPointer(pv + i).storeBytes(of: x, as: V8.self)
            i += 8
        }
        while i < n {
            let g = pg[i]
            var x = pv[i]
            if decays { x = x * decayFactor }
            var mi = pm[i]
            mi = small ? mi + w1 * (g - mi) : g - (g - mi) * (1 - w1)
            var vi = pq[i] * b2
            vi = vi + w2 * g * g
            let denom = vi.squareRoot() / bc2Sqrt + eps
            pm[i] = mi; pq[i] = vi
            pv[i] = x - stepSize * mi / denom
            i += 1
        }
    }

    /// Restores moments and step count (from a checkpoint).
    public func restore(stepCount: Int, expAvg: [[Float]], expAvgSq: [[Float]], parameterSteps: [Int]? = nil) throws {
        guard expAvg.count == self.expAvg.count, expAvgSq.count == self.expAvgSq.count,
              zip(expAvg, self.expAvg).allSatisfy({ $0.count == $1.count }),
              zip(expAvgSq, self.expAvgSq).allSatisfy({ $0.count == $1.count }),
              parameterSteps == nil || parameterSteps!.count == expAvg.count
        else { throw TrainingError("optimizer state does not match the model's trainable parameters") }
        self.stepCount = stepCount; self.expAvg = expAvg; self.expAvgSq = expAvgSq
        self.parameterSteps = parameterSteps ?? Array(repeating: stepCount, count: expAvg.count)
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
    /// Total L2 norm of all gradients (norm of the per-tensor fp32 norms, as torch `_get_total_norm`).
    public static func totalNorm(_ parameters: [TrainableTensor]) -> Float {
        var sumSquares: Float = 0
        for p in parameters {
            var s: Double = 0
            let g = p.grad
            // four Double partial sums (vectorisable); the per-tensor norm is rounded to fp32 as torch's is
            var acc = SIMD4<Double>(repeating: 0)
            var i = 0
            while i + 4 <= g.count {
                let x = SIMD4<Double>(Double(g[i]), Double(g[i + 1]), Double(g[i + 2]), Double(g[i + 3]))
                acc += x * x
                i += 4
            }
            s = acc.sum()
            while i < g.count { s += Double(g[i]) * Double(g[i]); i += 1 }
            let n = Float(s.squareRoot())
            sumSquares += n * n
        }
        return sumSquares.squareRoot()
    }

    /// `torch.nn.utils.clip_grad_norm_`: coef = min(max_norm / (norm + 1e-6), 1), grads *= coef (always
    /// applied, also when coef is 1). Returns the pre-clip norm (what the Trainer logs as grad_norm).
    @discardableResult
    public static func clip(_ parameters: [TrainableTensor], maxNorm: Double) -> Float {
        let norm = totalNorm(parameters)
        var coef = Float(maxNorm) / (norm + 1e-6)
        if coef > 1 { coef = 1 }
        if coef.isNaN { coef = .nan }
        for p in parameters {
            let g = p.grad
            for i in 0..<g.count { g[i] *= coef }
        }
        return norm
    }
}

/// A failure of the training engine the user can act on; its text is one readable line.
public struct TrainingError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}
