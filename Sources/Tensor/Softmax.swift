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
    let m = rowMaxAndArgmax(x, d).max
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
    /// Σ e_j in Double (cross-entropy's normaliser, the entropy's Σe): fp32 partial sums over blocks of 32
    /// elements (8 per lane, relative error < 5e−7 each), added in Double.
    var double: Double = 0
    /// Σ e_j in fp32, 4 lanes over the row (softmax's normaliser).
    var float: Float = 0
    /// Σ e_j·(x_j − m) in fp32, 4 lanes over the row (the entropy's second sum).
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
    var block = SIMD4<Float>()
    @inline(__always) func step(_ j: Int) {
        let d = load4(x + j) - mv
        let e = expFloat4(d)
        if let y { UnsafeMutableRawPointer(y + j).storeBytes(of: e, as: SIMD4<Float>.self) }
        if double { block += e }
        if float { sf += e }
        if weighted { sw += e * d }
    }
    @inline(__always) func flush() {
        if double { sd0 += SIMD2<Double>(block.lowHalf); sd1 += SIMD2<Double>(block.highHalf); block = SIMD4() }
    }
    var j = 0
    while j + 32 <= n {
        for k in 0..<8 { step(j + 4 * k) }
        flush()
        j += 32
    }
    while j + 4 <= n { step(j); j += 4 }
    if j < n {   // the last 1–3 elements in the same lanes, the unused lanes zeroed
        let k = n - j
        var v = SIMD4<Float>(repeating: 0)
        for l in 0..<k { v[l] = x[j + l] }
        let live = laneLess(SIMD4<Int32>(0, 1, 2, 3), SIMD4(repeating: Int32(k)))
        let d = laneSelect(live, v - mv, SIMD4(repeating: 0))
        let e = laneSelect(live, expFloat4(d), SIMD4(repeating: 0))
        if let y { for l in 0..<k { y[j + l] = e[l] } }
        if double { block += e }
        if float { sf += e }
        if weighted { sw += e * d }
    }
    flush()
    var out = ExpRowSums()
    if double { let s = sd0 + sd1; out.double = s[0] + s[1] }
    if float { let s = sf.lowHalf + sf.highHalf; out.float = s[0] + s[1] }
    if weighted { let s = sw.lowHalf + sw.highHalf; out.weighted = s[0] + s[1] }
    return out
}

/// A monotone Int32 key of fp32 bits: for non-NaN a, b, a < b ⇔ key(a) < key(b) (−0 sorts just below +0;
/// +NaN above +inf, −NaN below −inf). Its own inverse.
@inline(__always) func orderKey(_ b: SIMD4<Int32>) -> SIMD4<Int32> { b ^ ((b &>> 31) & SIMD4(repeating: 0x7FFF_FFFF)) }
@inline(__always) func orderKey(_ b: Int32) -> Int32 { b ^ ((b >> 31) & 0x7FFF_FFFF) }

/// All-ones in the lanes where a < b for any Int32 values (the sign of a − b, corrected for overflow).
@inline(__always) func laneLessSigned(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> {
    let d = a &- b
    return (d ^ ((a ^ b) & (d ^ a))) &>> 31
}

/// (max, index of its first occurrence) over x[0..<n], n > 0: what the loop `m = x[0]; for j in 1..<n
/// where x[j] > m { m = x[j]; arg = j }` gives, except that a +0 after an equal −0 counts as larger and a
/// +NaN is the maximum (its row's loss is NaN either way). 2×4 lanes of (order key, index) with integer
/// SIMD only (fp32 compares would go through SIMDMask, see FastMath.swift); ties between lanes go to the
/// smaller index.
@inline(__always)
func rowMaxAndArgmax(_ x: UnsafePointer<Float>, _ n: Int) -> (max: Float, index: Int) {
    var bestKey = orderKey(Int32(bitPattern: x[0].bitPattern)), arg = 0
    var j = 1
    if n >= 16 {
        @inline(__always) func keys(_ p: UnsafePointer<Float>) -> SIMD4<Int32> { orderKey(laneBits(load4(p))) }
        var b0 = keys(x), b1 = keys(x + 4)
        var i0 = SIMD4<Int32>(0, 1, 2, 3), i1 = SIMD4<Int32>(4, 5, 6, 7)
        var c0 = i0, c1 = i1
        j = 8
        while j + 8 <= n {
            c0 &+= 8; c1 &+= 8
            let k0 = keys(x + j), k1 = keys(x + j + 4)
            let g0 = laneLessSigned(b0, k0), g1 = laneLessSigned(b1, k1)
            b0 = (k0 & g0) | (b0 & ~g0); i0 = (c0 & g0) | (i0 & ~g0)
            b1 = (k1 & g1) | (b1 & ~g1); i1 = (c1 & g1) | (i1 & ~g1)
            j += 8
        }
        let lanes = SIMD8(lowHalf: b0, highHalf: b1), lanesIndex = SIMD8(lowHalf: i0, highHalf: i1)
        bestKey = lanes[0]; arg = Int(lanesIndex[0])
        for l in 1..<8 where lanes[l] > bestKey || (lanes[l] == bestKey && Int(lanesIndex[l]) < arg) {
            bestKey = lanes[l]; arg = Int(lanesIndex[l])
        }
    }
    while j < n {
        let k = orderKey(Int32(bitPattern: x[j].bitPattern))
        if k > bestKey { bestKey = k; arg = j }
        j += 1
    }
    return (Float(bitPattern: UInt32(bitPattern: orderKey(bestKey))), arg)
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
                let m = rowMaxAndArgmax(x, v).max   // the forward's max
                let sum = expShiftedRow(x, v, max: m, store: g, double: true, float: false, weighted: false).double   // g may alias x
                let factor = Float(Double(scale) / sum)
                for j in 0..<v { g[j] *= factor }
                g[Int(t)] -= scale
            }
        }
    }
}
