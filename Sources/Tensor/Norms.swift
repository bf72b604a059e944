// Row-wise normalisations: Gemma RMSNorm (1 + w) and LayerNorm (weight + bias). Forward next to backward.
import Foundation

/// Rows per parallel chunk for a row-wise kernel over rows of `d` values.
@inline(__always) func rowGrain(_ d: Int) -> Int { max(1, ParallelGrain.elementwise / max(1, d)) }

/// Fixed chunk count for deterministic weight-gradient reductions over rows.
let reductionChunks = 8

// MARK: RMSNorm (Gemma) — y = x · rsqrt(mean(x²) + eps) · (1 + w), all in fp32

/// - out, x: [N, D] (any leading shape); weight: [D] (stored as an offset from 1) or nil for no scale;
///   rstd: [N] saved for the backward (1 / sqrt(mean(x²) + eps)), or nil. out may alias x.
public func rmsNormForward(out: Tensor, rstd: Tensor?, _ x: Tensor, weight: Tensor?, eps: Float) {
    let d = x.lastDim, n = x.rowCount
    precondition(out.count == x.count, "rmsNormForward: out \(out.shape) vs x \(x.shape)")
    if let weight { precondition(weight.count == d, "rmsNormForward: weight \(weight.shape) vs last dim \(d)") }
    if let rstd { precondition(rstd.count == n, "rmsNormForward: rstd \(rstd.shape) should have \(n) values") }
    rmsNormForward(out: out.data, rstd: rstd?.data, x.data, weight: weight?.data, rows: n, dim: d, eps: eps)
}

/// Pointer form of `rmsNormForward` for callers holding raw storage (Models' memory-mapped weights):
/// out, x: `rows` rows of `dim` contiguous values; weight: [dim] or nil; rstd: [rows] or nil.
public func rmsNormForward(out po: UnsafeMutablePointer<Float>, rstd pr: UnsafeMutablePointer<Float>?, _ px: UnsafePointer<Float>,
                           weight pw: UnsafePointer<Float>?, rows n: Int, dim d: Int, eps: Float) {
    Parallel.forEachChunk(count: n, grain: rowGrain(d)) { rows in
        for r in rows {
            let xr = px + r * d, yr = po + r * d
            let variance = Float(rowSumOfSquares(xr, d) / Double(d))
            let s = 1 / (variance + eps).squareRoot()
            pr?[r] = s
            if let pw {
                for j in 0..<d { yr[j] = (xr[j] * s) * (1 + pw[j]) }
            } else {
                for j in 0..<d { yr[j] = xr[j] * s }
            }
        }
    }
}

/// dx += ∂L/∂x, dweight += Σ_rows dout · x · rstd.
/// With g = 1 + w and s = rstd: dx_i = s·g_i·dy_i − x_i · s³/D · Σ_j dy_j·g_j·x_j.
public func rmsNormBackward(dx: Tensor?, dweight: Tensor?, dout: Tensor, _ x: Tensor, weight: Tensor?, rstd: Tensor) {
    let d = x.lastDim, n = x.rowCount
    precondition(dout.count == x.count && rstd.count == n, "rmsNormBackward: dout \(dout.shape), x \(x.shape), rstd \(rstd.shape)")
    if let dx { precondition(dx.count == x.count, "rmsNormBackward: dx \(dx.shape) vs x \(x.shape)") }
    if let dweight { precondition(weight != nil && dweight.count == d, "rmsNormBackward: dweight \(dweight.shape) needs a weight of \(d)") }
    rmsNormBackward(dx: dx?.data, dweight: dweight?.data, dout: dout.data, x.data, weight: weight?.data, rstd: rstd.data, rows: n, dim: d)
}

/// Pointer form of `rmsNormBackward` (shapes as the pointer `rmsNormForward`; dweight needs a weight).
public func rmsNormBackward(dx pdx: UnsafeMutablePointer<Float>?, dweight pdw: UnsafeMutablePointer<Float>?, dout pg: UnsafePointer<Float>,
                            _ px: UnsafePointer<Float>, weight pw: UnsafePointer<Float>?, rstd pr: UnsafePointer<Float>, rows n: Int, dim d: Int) {
    if let pdx {
        Parallel.forEachChunk(count: n, grain: rowGrain(d)) { rows in
            for r in rows {
                let xr = px + r * d, gr = pg + r * d, dr = pdx + r * d
                let s = pr[r]
                // Σ dy·(1 + w)·x = Σ dy·x + Σ dy·w·x
                let dot = pw.map { rowDot(gr, xr, d) + rowDot3(gr, $0, xr, d) } ?? rowDot(gr, xr, d)
                let c = dot * s * s * s / Float(d)
                if let pw {
                    for j in 0..<d { dr[j] += s * (1 + pw[j]) * gr[j] - xr[j] * c }
                } else {
                    for j in 0..<d { dr[j] += s * gr[j] - xr[j] * c }
                }
            }
        }
    }
    if let pdw {
        precondition(pw != nil, "rmsNormBackward: dweight needs a weight")
        reduceRows(into: pdw, rows: n, cols: d) { r, acc in
            let xr = px + r * d, gr = pg + r * d, s = pr[r]
            for j in 0..<d { acc[j] += gr[j] * xr[j] * s }
        }
    }
}

/// dst[0..<cols] += Σ_r rowTerm(r) where `rowTerm(r, acc)` adds row r's contribution into acc. Rows are
/// split into a fixed number of chunks whose partial sums are added in chunk order (deterministic).
func reduceRows(into dst: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                _ rowTerm: (Int, UnsafeMutablePointer<Float>) -> Void) {
    if rows == 0 { return }
    let chunks = rows * cols >= ParallelGrain.elementwise ? min(reductionChunks, rows) : 1
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * cols)
    defer { partial.deallocate() }
    partial.initialize(repeating: 0, count: chunks * cols)
    Parallel.forEachFixedChunk(count: rows, chunks: chunks) { c, rr in
        let acc = partial + c * cols
        for r in rr { rowTerm(r, acc) }
    }
    for c in 0..<chunks {
        let acc = partial + c * cols
        for j in 0..<cols { dst[j] += acc[j] }
    }
}

// MARK: LayerNorm — y = (x − mean)·rstd·w + b, biased variance, all in fp32

/// - out, x: [N, D]; weight, bias: [D] or nil; mean, rstd: [N] saved for the backward, or nil.
public func layerNormForward(out: Tensor, mean: Tensor?, rstd: Tensor?, _ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) {
    let d = x.lastDim, n = x.rowCount
    precondition(out.count == x.count, "layerNormForward: out \(out.shape) vs x \(x.shape)")
    if let weight { precondition(weight.count == d, "layerNormForward: weight \(weight.shape) vs last dim \(d)") }
    if let bias { precondition(bias.count == d, "layerNormForward: bias \(bias.shape) vs last dim \(d)") }
    if let mean { precondition(mean.count == n, "layerNormForward: mean \(mean.shape) should have \(n) values") }
    if let rstd { precondition(rstd.count == n, "layerNormForward: rstd \(rstd.shape) should have \(n) values") }
    layerNormForward(out: out.data, mean: mean?.data, rstd: rstd?.data, x.data, weight: weight?.data, bias: bias?.data,
                     rows: n, dim: d, eps: eps)
}

/// Pointer form of `layerNormForward`: out, x: `rows` rows of `dim` values; weight, bias: [dim] or nil;
/// mean, rstd: [rows] or nil.
public func layerNormForward(out po: UnsafeMutablePointer<Float>, mean pm: UnsafeMutablePointer<Float>?, rstd pr: UnsafeMutablePointer<Float>?,
                             _ px: UnsafePointer<Float>, weight pw: UnsafePointer<Float>?, bias pb: UnsafePointer<Float>?,
                             rows n: Int, dim d: Int, eps: Float) {
    Parallel.forEachChunk(count: n, grain: rowGrain(d)) { rows in
        for r in rows {
            let xr = px + r * d, yr = po + r * d
            let mu = rowSum(xr, d) / Double(d)
            let sq = rowCenteredSumOfSquares(xr, d, mean: mu)
            let m = Float(mu)
            let s = 1 / (Float(sq / Double(d)) + eps).squareRoot()
            pm?[r] = m
            pr?[r] = s
            for j in 0..<d {
                var v = (xr[j] - m) * s
                if let pw { v *= pw[j] }
                if let pb { v += pb[j] }
                yr[j] = v
            }
        }
    }
}

/// dx += ∂L/∂x, dweight += Σ dout·x̂, dbias += Σ dout, with x̂ = (x − mean)·rstd:
/// dx = rstd · (dy·w − mean(dy·w) − x̂ · mean(dy·w·x̂)).
public func layerNormBackward(dx: Tensor?, dweight: Tensor?, dbias: Tensor?, dout: Tensor, _ x: Tensor,
                              weight: Tensor?, mean: Tensor, rstd: Tensor) {
    let d = x.lastDim, n = x.rowCount
    precondition(dout.count == x.count && mean.count == n && rstd.count == n,
                 "layerNormBackward: dout \(dout.shape), x \(x.shape), mean \(mean.shape), rstd \(rstd.shape)")
    if let dx { precondition(dx.count == x.count, "layerNormBackward: dx \(dx.shape) vs x \(x.shape)") }
    if let dweight { precondition(dweight.count == d, "layerNormBackward: dweight \(dweight.shape) vs last dim \(d)") }
    if let dbias { precondition(dbias.count == d, "layerNormBackward: dbias \(dbias.shape) vs last dim \(d)") }
    layerNormBackward(dx: dx?.data, dweight: dweight?.data, dbias: dbias?.data, dout: dout.data, x.data, weight: weight?.data,
                      mean: mean.data, rstd: rstd.data, rows: n, dim: d)
}

/// Pointer form of `layerNormBackward` (shapes as the pointer `layerNormForward`).
public func layerNormBackward(dx pdx: UnsafeMutablePointer<Float>?, dweight pdw: UnsafeMutablePointer<Float>?,
                              dbias pdb: UnsafeMutablePointer<Float>?, dout pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>,
                              weight pw: UnsafePointer<Float>?, mean pm: UnsafePointer<Float>, rstd pr: UnsafePointer<Float>,
                              rows n: Int, dim d: Int) {
    if let pdx {
        Parallel.forEachChunk(count: n, grain: rowGrain(d)) { rows in
            for r in rows {
                let xr = px + r * d, gr = pg + r * d, dr = pdx + r * d
                let m = pm[r], s = pr[r]
                var meanG: Float = 0, meanGX: Float = 0
                for j in 0..<d {
                    let g = pw.map { gr[j] * $0[j] } ?? gr[j]
                    meanG += g
                    meanGX += g * (xr[j] - m) * s
                }
                meanG /= Float(d); meanGX /= Float(d)
                for j in 0..<d {
                    let g = pw.map { gr[j] * $0[j] } ?? gr[j]
                    let xhat = (xr[j] - m) * s
                    dr[j] += s * (g - meanG - xhat * meanGX)
                }
            }
        }
    }
    if let pdw {
        reduceRows(into: pdw, rows: n, cols: d) { r, acc in
            let xr = px + r * d, gr = pg + r * d, m = pm[r], s = pr[r]
            for j in 0..<d { acc[j] += gr[j] * (xr[j] - m) * s }
        }
    }
    if let pdb {
        reduceRows(into: pdb, rows: n, cols: d) { r, acc in
            let gr = pg + r * d
            for j in 0..<d { acc[j] += gr[j] }
        }
    }
}
