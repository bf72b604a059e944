import Foundation

// MARK: - predictive entropy of next-token distributions (TRL's `entropy` metric)

/// Σ over the rows whose target is valid (≥ 0; −100 is ignored) of the entropy of softmax(row):
///   H = −Σ_v p_v log p_v = log Σ_v e^(z_v − m) − Σ_v e^(z_v − m)(z_v − m) / Σ_v e^(z_v − m),  m = max_v z_v
/// TRL 1.16's chunked log-prob kernel computes the same quantity as `log_z − Σ e·z / Σ e` on the shifted
/// label mask (`labels[:, 1:] != −100`); subtracting the row max first keeps every exponent ≤ 0 and the two
/// sums of the same magnitude, so nothing cancels catastrophically in fp32.
///
/// logits: (N, V) row-major, read only — call it before a kernel that overwrites logits with their gradient.
/// targets: N shifted labels. Each row's entropy is computed in fp32 (as torch does; Σe comes from the shared
/// exp pass, fp32 blocks summed in Double, then rounded to fp32) and the rows are summed in row order in
/// Double, so the result does not depend on how many threads ran.
/// Returns (Σ entropy over valid rows, number of valid rows).
public func tokenEntropySum(logits: UnsafePointer<Float>, targets: UnsafeBufferPointer<Int32>, rows N: Int, vocab V: Int) -> (sum: Double, count: Int) {
    precondition(targets.count >= N, "tokenEntropySum: \(targets.count) targets for \(N) rows")
    guard N > 0, V > 0 else { return (0, 0) }
    let perRow = UnsafeMutablePointer<Float>.allocate(capacity: N)
    defer { perRow.deallocate() }
    let grain = max(1, ParallelGrain.transcendental / V)
    Parallel.forEachChunk(count: N, grain: grain) { range in
        for i in range {
            guard targets[i] >= 0 else { perRow[i] = 0; continue }
            perRow[i] = rowEntropy(logits + i * V, V)
        }
    }
    var sum: Double = 0, count = 0
    for i in 0..<N where targets[i] >= 0 { sum += Double(perRow[i]); count += 1 }
    return (sum, count)
}

/// Entropy of softmax(z) for one row of V logits (fp32, max-shifted log-sum-exp).
@inline(__always)
func rowEntropy(_ z: UnsafePointer<Float>, _ V: Int) -> Float {
    let m = rowMaxAndArgmax(z, V).max
    guard m.isFinite else { return .nan }    // an overflowed (or all −inf) row: let the caller see it, as torch would
    let sums = expShiftedRow(z, V, max: m, store: nil, double: true, float: false, weighted: true)
    let total = Float(sums.double)
    return logf(total) - sums.weighted / total
}

// MARK: - fused loss pass: cross-entropy, its gradient and the entropy metric from one exp pass per row

/// What `crossEntropyWithEntropy` returns.
public struct CrossEntropyEntropyStats: Sendable, Equatable {
    /// Cross-entropy sums and counts, as `crossEntropyForward` returns them.
    public var crossEntropy: CrossEntropyStats
    /// Σ over the counted rows of the entropy of softmax(row), as `tokenEntropySum` returns it.
    public var entropySum: Double
    public init(crossEntropy: CrossEntropyStats = CrossEntropyStats(), entropySum: Double = 0) {
        self.crossEntropy = crossEntropy; self.entropySum = entropySum
    }
}

/// One pass over a chunk of logits rows that gives what `tokenEntropySum`, `crossEntropyForward` and (when
/// `computeGrad`) `crossEntropyBackward(dlogits: logits, …, scale:)` give when run one after another, with the
/// same fp32/fp64 accumulations in the same order, so the results are bit-identical to those three calls;
/// but each row's e^(z − m) is evaluated once instead of three times (the loss path's second-largest cost
/// after the lm_head products when the vocabulary is large).
///
/// logits: (N, V) row-major; with `computeGrad` it is overwritten by scale · (softmax − onehot(target)) on
/// counted rows and 0 on ignored ones, as `crossEntropyBackward` does in place. targets: N ids or `ignoreIndex`.
public func crossEntropyWithEntropy(logits pl: UnsafeMutablePointer<Float>, rows n: Int, vocab v: Int,
                                    targets: UnsafeBufferPointer<Int32>, scale: Float, computeGrad: Bool,
                                    ignoreIndex: Int32 = -100) -> CrossEntropyEntropyStats {
    precondition(targets.count >= n, "crossEntropyWithEntropy: \(targets.count) targets for \(n) rows")
    guard n > 0, v > 0 else { return CrossEntropyEntropyStats() }
    let rowLoss = UnsafeMutablePointer<Double>.allocate(capacity: n)
    let rowEntropyValue = UnsafeMutablePointer<Float>.allocate(capacity: n)
    let rowCorrect = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
    defer { rowLoss.deallocate(); rowEntropyValue.deallocate(); rowCorrect.deallocate() }
    let pt = targets.baseAddress!
    Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.transcendental / v)) { rows in
        for r in rows {
            let t = pt[r]
            let x = pl + r * v
            rowLoss[r] = 0; rowCorrect[r] = 0; rowEntropyValue[r] = 0
            if t == ignoreIndex {
                if computeGrad { x.update(repeating: 0, count: v) }
                continue
            }
            precondition(t >= 0 && Int(t) < v, "crossEntropyWithEntropy: target \(t) at row \(r) outside 0..<\(v)")
            let (m, arg) = rowMaxAndArgmax(x, v)
            let target = x[Int(t)]
            // cross-entropy's (and its gradient's) normaliser Σe as crossEntropyForward (the entropy takes it
            // rounded to fp32) and the entropy's Σe·d as tokenEntropySum: the same lanes and order as both
            let sums = expShiftedRow(x, v, max: m, store: computeGrad ? x : nil, double: true, float: false, weighted: true)
            let sum = sums.double, s = Float(sums.double), w = sums.weighted
            let loss = Double(m) + Foundation.log(sum) - Double(target)
            rowLoss[r] = loss
            rowCorrect[r] = arg == Int(t) ? 1 : 0
            rowEntropyValue[r] = m.isFinite ? logf(s) - w / s : .nan
            if computeGrad {
                let factor = Float(Double(scale) / sum)
                for j in 0..<v { x[j] *= factor }
                x[Int(t)] -= scale
            }
        }
    }
    var out = CrossEntropyEntropyStats()
    for r in 0..<n where pt[r] != ignoreIndex {
        out.crossEntropy.lossSum += rowLoss[r]; out.crossEntropy.count += 1
        out.crossEntropy.correct += Int(rowCorrect[r])
        out.entropySum += Double(rowEntropyValue[r])
    }
    return out
}
