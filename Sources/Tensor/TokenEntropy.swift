import Foundation

// MARK: - predictive entropy of next-token distributions (TRL's `entropy` metric)

/// Σ over the rows whose target is valid (≥ 0; −100 is ignored) of the entropy of softmax(row):
///   H = −Σ_v p_v log p_v = log Σ_v e^(z_v − m) − Σ_v e^(z_v − m)(z_v − m) / Σ_v e^(z_v − m),  m = max_v z_v
/// TRL 1.16's chunked log-prob kernel computes the same quantity as `log_z − Σ e·z / Σ e` on the shifted
/// label mask (`labels[:, 1:] != −100`); subtracting the row max first keeps every exponent ≤ 0 and the two
/// sums of the same magnitude, so nothing cancels catastrophically in fp32.
///
/// logits: (N, V) row-major, read only — call it before a kernel that overwrites logits with their gradient.
/// targets: N shifted labels. Each row's entropy is computed in fp32 (as torch does) and the rows are summed
/// in row order in Double, so the result does not depend on how many threads ran.
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
    var m = -Float.infinity
    for v in 0..<V where z[v] > m { m = z[v] }
    guard m.isFinite else { return .nan }    // an overflowed (or all −inf) row: let the caller see it, as torch would
    var s: Float = 0, w: Float = 0
    for v in 0..<V {
        let d = z[v] - m
        let e = expf(d)
        s += e
        w += e * d
    }
    return logf(s) - w / s
}
