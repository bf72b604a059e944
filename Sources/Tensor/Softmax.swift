// Softmax over the last dimension and cross-entropy over logits. Forward next to backward.
import Foundation

// MARK: softmax — y = exp(x − max) / Σ exp(x − max) over the last dimension

/// out, x: [N, D]; out may alias x.
public func softmaxForward(out: Tensor, _ x: Tensor) {
    let d = x.lastDim, n = x.rowCount
    precondition(out.count == x.count, "softmaxForward: out \(out.shape) vs x \(x.shape)")
    let px = x.data, po = out.data
    Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.transcendental / max(1, d))) { rows in
        for r in rows { softmaxRow(po + r * d, px + r * d, d) }
    }
}

@inline(__always) func softmaxRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ d: Int) {
    if d == 0 { return }
    let m = rowMax(x, d)
    var sum: Float = 0
    for j in 0..<d { let e = expf(x[j] - m); y[j] = e; sum += e }
    let inv = 1 / sum
    for j in 0..<d { y[j] *= inv }
}

/// dx += y ⊙ (dy − Σ_j dy_j·y_j), from the forward's output y.
public func softmaxBackward(dx: Tensor, dout: Tensor, out: Tensor) {
    let d = out.lastDim, n = out.rowCount
    precondition(dx.count == out.count && dout.count == out.count, "softmaxBackward: dx \(dx.shape), dout \(dout.shape), out \(out.shape)")
    let py = out.data, pg = dout.data, pd = dx.data
    Parallel.forEachChunk(count: n, grain: rowGrain(d)) { rows in
        for r in rows {
            let yr = py + r * d, gr = pg + r * d, dr = pd + r * d
            let dot = rowDot(gr, yr, d)
            for j in 0..<d { dr[j] += yr[j] * (gr[j] - dot) }
        }
    }
}

// MARK: cross-entropy — loss_i = logsumexp(logits_i) − logits_i[target_i], rows with ignoreIndex skipped

/// What `crossEntropyForward` returns: the caller picks the reduction (mean = lossSum / count).
public struct CrossEntropyStats: Sendable, Equatable {
    /// Σ of per-token losses over counted rows.
    public var lossSum: Double
    /// Rows whose target is not the ignore index.
    public var count: Int
    /// Counted rows whose argmax (first maximum, as torch) equals the target.
    public var correct: Int
    public init(lossSum: Double = 0, count: Int = 0, correct: Int = 0) { self.lossSum = lossSum; self.count = count; self.correct = correct }
    /// Mean loss (NaN when nothing was counted, as torch's mean reduction).
    public var mean: Double { lossSum / Double(count) }
}

/// - logits: [N, V]; targets: N ids in 0..<V or `ignoreIndex`; losses: [N] per-row loss (0 where
///   ignored), or nil.
public func crossEntropyForward(logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100, losses: Tensor? = nil) -> CrossEntropyStats {
    let v = logits.lastDim, n = logits.rowCount
    precondition(targets.count == n, "crossEntropyForward: \(targets.count) targets for \(n) rows of logits \(logits.shape)")
    if let losses { precondition(losses.count == n, "crossEntropyForward: losses \(losses.shape) should have \(n) values") }
    return crossEntropyForward(logits: logits.data, rows: n, vocab: v, targets: targets, ignoreIndex: ignoreIndex, losses: losses?.data)
}

/// Pointer form of `crossEntropyForward` (for a chunk of logits rows in a caller's buffer): logits
/// `rows` × `vocab`, one target per row, losses [rows] or nil.
public func crossEntropyForward(logits pl: UnsafePointer<Float>, rows n: Int, vocab v: Int, targets: [Int32],
                                ignoreIndex: Int32 = -100, losses plosses: UnsafeMutablePointer<Float>? = nil) -> CrossEntropyStats {
    precondition(targets.count == n, "crossEntropyForward: \(targets.count) targets for \(n) rows")
    if n == 0 { return CrossEntropyStats() }
    let rowLoss = UnsafeMutablePointer<Double>.allocate(capacity: n)
    let rowCorrect = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
    defer { rowLoss.deallocate(); rowCorrect.deallocate() }
    targets.withUnsafeBufferPointer { tb in
        let pt = tb.baseAddress!
        Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.transcendental / max(1, v))) { rows in
            for r in rows {
                let t = pt[r]
                rowLoss[r] = 0; rowCorrect[r] = 0
                if t == ignoreIndex { plosses?[r] = 0; continue }
                precondition(t >= 0 && Int(t) < v, "crossEntropyForward: target \(t) at row \(r) outside 0..<\(v)")
                let x = pl + r * v
                var m = x[0], arg = 0
                for j in 1..<max(1, v) where x[j] > m { m = x[j]; arg = j }
                var sum: Double = 0
                for j in 0..<v { sum += Double(expf(x[j] - m)) }
                let loss = Double(m) + Foundation.log(sum) - Double(x[Int(t)])
                rowLoss[r] = loss
                rowCorrect[r] = arg == Int(t) ? 1 : 0
                plosses?[r] = Float(loss)
            }
        }
    }
    var stats = CrossEntropyStats()
    for (r, t) in targets.enumerated() where t != ignoreIndex {
        stats.lossSum += rowLoss[r]; stats.count += 1; stats.correct += Int(rowCorrect[r])
    }
    return stats
}

/// dlogits = scale · (softmax(logits) − onehot(target)) for counted rows, 0 for ignored rows.
/// Overwrites dlogits, which may alias logits (saves a [N, V] buffer). For a mean over the counted
/// tokens pass scale = 1 / count; for a sum pass 1.
public func crossEntropyBackward(dlogits: Tensor, logits: Tensor, targets: [Int32], scale: Float, ignoreIndex: Int32 = -100) {
    let v = logits.lastDim, n = logits.rowCount
    precondition(targets.count == n && dlogits.count == logits.count,
                 "crossEntropyBackward: \(targets.count) targets, logits \(logits.shape), dlogits \(dlogits.shape)")
    crossEntropyBackward(dlogits: dlogits.data, logits: logits.data, rows: n, vocab: v, targets: targets, scale: scale,
                         ignoreIndex: ignoreIndex)
}

/// Pointer form of `crossEntropyBackward` (dlogits may be the logits buffer itself).
public func crossEntropyBackward(dlogits pd: UnsafeMutablePointer<Float>, logits pl: UnsafePointer<Float>, rows n: Int, vocab v: Int,
                                 targets: [Int32], scale: Float, ignoreIndex: Int32 = -100) {
    precondition(targets.count == n, "crossEntropyBackward: \(targets.count) targets for \(n) rows")
    if n == 0 { return }
    targets.withUnsafeBufferPointer { tb in
        let pt = tb.baseAddress!
        Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.transcendental / max(1, v))) { rows in
            for r in rows {
                let t = pt[r]
                let x = pl + r * v, g = pd + r * v
                if t == ignoreIndex { for j in 0..<v { g[j] = 0 }; continue }
                precondition(t >= 0 && Int(t) < v, "crossEntropyBackward: target \(t) at row \(r) outside 0..<\(v)")
                let m = rowMax(x, v)
                var sum: Double = 0
                for j in 0..<v { let e = expf(x[j] - m); g[j] = e; sum += Double(e) }   // g may alias x
                let factor = Float(Double(scale) / sum)
                for j in 0..<v { g[j] *= factor }
                g[Int(t)] -= scale
            }
        }
    }
}
