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
    let sum = expShiftedRow(x, d, max: m, store: y, double: false, float: true, weighted: false).float
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

// MARK: the exp pass shared by softmax, attention, cross-entropy and the token entropy

/// The sums one pass of e_j = e^(x_j − m) over a row gives (only those asked for are computed).
struct ExpRowSums {
    /// Σ e_j in Double (cross-entropy's normaliser).
    var double: Double = 0
    /// Σ e_j in fp32 (softmax's normaliser, the entropy's Σe).
    var float: Float = 0
    /// Σ e_j·(x_j − m) in fp32 (the entropy's second sum).
    var weighted: Float = 0
}

/// e_j = e^(x_j − m) for j in 0..<n with `expFloat4`, written to `store` when given (which may alias x),
/// and the requested sums. Every element, the tail included, goes through the same 4-lane arithmetic
/// and lands in lane j mod 4 of the accumulators, which are combined in a fixed order at the end, so a
/// row's e_j and sums are the same whichever kernel asks for them (the fused loss pass relies on this)
/// and however rows are split across threads. m is the row max (every exponent ≤ 0: no overflow); −inf
/// entries give e_j = 0 exactly (how attention masks a score).
@inline(__always)
func expShiftedRow(_ x: UnsafePointer<Float>, _ n: Int, max m: Float, store y: UnsafeMutablePointer<Float>?,
                   double: Bool, float: Bool, weighted: Bool) -> ExpRowSums {
    let mv = SIMD4<Float>(repeating: m)
    var sd0 = SIMD2<Double>(), sd1 = SIMD2<Double>(), sf = SIMD4<Float>(), sw = SIMD4<Float>()
    @inline(__always) func accumulate(_ e: SIMD4<Float>, _ d: SIMD4<Float>) {
        if double { sd0 += SIMD2<Double>(e.lowHalf); sd1 += SIMD2<Double>(e.highHalf) }
        if float { sf += e }
        if weighted { sw += e * d }
    }
    var j = 0
    while j + 4 <= n {
        let d = load4(x + j) - mv
        let e = expFloat4(d)
        if let y { UnsafeMutableRawPointer(y + j).storeBytes(of: e, as: SIMD4<Float>.self) }
        accumulate(e, d)
        j += 4
    }
    if j < n {   // the last 1–3 elements in the same lanes, the unused lanes zeroed
        let k = n - j
        var v = SIMD4<Float>(repeating: 0)
        for l in 0..<k { v[l] = x[j + l] }
        let live = laneLess(SIMD4<Int32>(0, 1, 2, 3), SIMD4(repeating: Int32(k)))
        let d = laneSelect(live, v - mv, SIMD4(repeating: 0))
        let e = laneSelect(live, expFloat4(d), SIMD4(repeating: 0))
        if let y { for l in 0..<k { y[j + l] = e[l] } }
        accumulate(e, d)
    }
    var out = ExpRowSums()
    if double { let s = sd0 + sd1; out.double = s[0] + s[1] }
    if float { let s = sf.lowHalf + sf.highHalf; out.float = s[0] + s[1] }
    if weighted { let s = sw.lowHalf + sw.highHalf; out.weighted = s[0] + s[1] }
    return out
}

/// (max, index of its first occurrence) over x[0..<n], n > 0: what the loop `m = x[0]; for j in 1..<n
/// where x[j] > m { m = x[j]; arg = j }` gives on rows without NaN (a row with a NaN has a NaN loss either
/// way). The max is `rowMax`'s 8-lane pass; the index a scan for the first x[j] == m, which stops early.
@inline(__always)
func rowMaxAndArgmax(_ x: UnsafePointer<Float>, _ n: Int) -> (max: Float, index: Int) {
    let m = rowMax(x, n)
    var j = 0
    while j + 4 <= n {
        if x[j] == m || x[j + 1] == m || x[j + 2] == m || x[j + 3] == m { break }
        j += 4
    }
    while j < n && x[j] != m { j += 1 }
    return (m, j < n ? j : 0)
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
                let (m, arg) = rowMaxAndArgmax(x, v)
                let sum = expShiftedRow(x, v, max: m, store: nil, double: true, float: false, weighted: false).double
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
                let m = rowMax(x, v)   // the forward's max (rowMaxAndArgmax takes it from rowMax too)
                let sum = expShiftedRow(x, v, max: m, store: g, double: true, float: false, weighted: false).double   // g may alias x
                let factor = Float(Double(scale) / sum)
                for j in 0..<v { g[j] *= factor }
                g[Int(t)] -= scale
            }
        }
    }
}
