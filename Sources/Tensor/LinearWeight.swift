// Weights of linear layers in any storage format, and y = x·Wᵀ + b over them.
import Foundation

/// A row-major [rows, cols] weight matrix in some storage format (fp32, bf16, f16, NF4...). Kernels
/// read it only by dequantizing ranges of rows into fp32 scratch, so a frozen bf16 weight stays
/// 2 bytes per value in memory.
public protocol LinearWeight {
    /// Output features of a linear layer (PyTorch `weight.shape[0]`).
    var rows: Int { get }
    /// Input features (product of the remaining dimensions).
    var cols: Int { get }
    /// Writes rows `rowRange` as fp32 into `dst` ([rowRange.count, cols], row-major). Must be safe to
    /// call concurrently for different destinations.
    func dequantizeRows(_ rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>)
    /// The fp32 row-major values when the weight is stored as fp32 (kernels then skip dequantizing).
    var fp32Rows: UnsafePointer<Float>? { get }
}

extension LinearWeight {
    public var fp32Rows: UnsafePointer<Float>? { nil }

    /// The whole matrix as an fp32 [rows, cols] tensor.
    public func dequantized() -> Tensor {
        let t = Tensor(uninitialized: [rows, cols])
        dequantizeRows(0..<rows, into: t.data)
        return t
    }
}

/// A trainable or fp32 weight: rows = shape[0], cols = the rest.
extension Tensor: LinearWeight {
    public var rows: Int { shape.first ?? 1 }
    public var cols: Int { rows == 0 ? 0 : count / rows }
    public func dequantizeRows(_ rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= rows, "dequantizeRows \(rowRange) of \(shape)")
        dst.update(from: data + rowRange.lowerBound * cols, count: rowRange.count * cols)
    }
    public var fp32Rows: UnsafePointer<Float>? { UnsafePointer(data) }
}

/// A frozen weight stored as bf16 or f16 bits, owned or borrowed (for example from a mapped file).
public final class HalfPrecisionWeight: LinearWeight, @unchecked Sendable {
    public enum Format: String, Sendable { case bf16, f16 }
    public let format: Format
    public let rows: Int
    public let cols: Int
    /// The [rows, cols] bit patterns, row-major.
    public let bits: UnsafePointer<UInt16>
    private let owned: UnsafeMutablePointer<UInt16>?
    private let owner: AnyObject?

    /// Copies `rows·cols` values from `source`.
    public init(format: Format, rows: Int, cols: Int, copying source: UnsafePointer<UInt16>) {
        let n = rows * cols
        let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, n))
        buffer.update(from: source, count: n)
        self.format = format; self.rows = rows; self.cols = cols
        bits = UnsafePointer(buffer); owned = buffer; owner = nil
    }

    /// Uses `source` in place; `owner` (for example the mapped file) is kept alive as long as this weight.
    public init(format: Format, rows: Int, cols: Int, borrowing source: UnsafePointer<UInt16>, owner: AnyObject?) {
        self.format = format; self.rows = rows; self.cols = cols
        bits = source; owned = nil; self.owner = owner
    }

    /// Rounds an fp32 tensor (rows = shape[0]) to `format`, nearest-even.
    public init(format: Format, rounding tensor: Tensor) {
        let n = tensor.count
        let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, n))
        switch format {
        case .bf16: convertF32ToBF16(tensor.data, buffer, count: n)
        case .f16: convertF32ToF16(tensor.data, buffer, count: n)
        }
        self.format = format; rows = tensor.rows; cols = tensor.cols
        bits = UnsafePointer(buffer); owned = buffer; owner = nil
    }

    deinit { owned?.deallocate() }

    public func dequantizeRows(_ rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= rows, "dequantizeRows \(rowRange) of [\(rows), \(cols)]")
        let src = bits + rowRange.lowerBound * cols
        switch format {
        case .bf16: convertBF16ToF32(src, dst, count: rowRange.count * cols)
        case .f16: convertF16ToF32(src, dst, count: rowRange.count * cols)
        }
    }
}

/// Rows of W dequantized per sgemm call in `linearForward/Backward`: about 2 MB of fp32 scratch.
@inline(__always) func linearTileRows(cols: Int, rows: Int) -> Int {
    min(rows, max(32, (1 << 19) / max(1, cols)))
}

/// y = x·Wᵀ + b (+ y when `accumulate`).
/// - out: [N, O], x: [N, I] (any shapes holding N·O and N·I values, e.g. [B, L, H, D] views),
///   weight: [O, I], bias: [O] or nil.
public func linearForward(out: Tensor, x: Tensor, weight: any LinearWeight, bias: Tensor? = nil, accumulate: Bool = false) {
    let inF = weight.cols, outF = weight.rows
    precondition(inF > 0 && x.count % inF == 0, "linearForward: x \(x.shape) is not rows of \(inF) (weight [\(outF), \(inF)])")
    let n = x.count / inF
    precondition(out.count == n * outF, "linearForward: out \(out.shape) should hold [\(n), \(outF)]")
    if n == 0 || outF == 0 { return }
    let beta: Float = accumulate ? 1 : 0
    if let w = weight.fp32Rows {
        sgemm(transposeA: false, transposeB: true, m: n, n: outF, k: inF, alpha: 1, a: x.data, lda: inF,
              b: w, ldb: inF, beta: beta, c: out.data, ldc: outF)
    } else {
        let tile = linearTileRows(cols: inF, rows: outF)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * inF)
        defer { scratch.deallocate() }
        var r0 = 0
        while r0 < outF {
            let r1 = min(outF, r0 + tile)
            weight.dequantizeRows(r0..<r1, into: scratch)
            sgemm(transposeA: false, transposeB: true, m: n, n: r1 - r0, k: inF, alpha: 1, a: x.data, lda: inF,
                  b: scratch, ldb: inF, beta: beta, c: out.data + r0, ldc: outF)
            r0 = r1
        }
    }
    if let bias {
        precondition(bias.count == outF, "linearForward: bias \(bias.shape) should have \(outF) values")
        let pb = bias.data, po = out.data
        Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.elementwise / outF)) { rows in
            for r in rows {
                let row = po + r * outF
                for j in 0..<outF { row[j] += pb[j] }
            }
        }
    }
}

/// Backward of `linearForward`: dx += dout·W, dweight += doutᵀ·x, dbias += Σ_rows dout.
/// dweight needs an fp32 weight (trainable); frozen weights pass nil.
/// - dout: [N, O], x: [N, I], dx: [N, I], dweight: [O, I], dbias: [O].
public func linearBackward(dx: Tensor?, dweight: Tensor?, dbias: Tensor?, dout: Tensor, x: Tensor, weight: any LinearWeight) {
    let inF = weight.cols, outF = weight.rows
    let n = dout.count / max(1, outF)
    precondition(dout.count == n * outF && x.count == n * inF, "linearBackward: dout \(dout.shape) / x \(x.shape) vs weight [\(outF), \(inF)]")
    if n == 0 { return }
    if let dx {
        precondition(dx.count == n * inF, "linearBackward: dx \(dx.shape) should have \(n * inF) values")
        if let w = weight.fp32Rows {
            sgemm(transposeA: false, transposeB: false, m: n, n: inF, k: outF, alpha: 1, a: dout.data, lda: outF,
                  b: w, ldb: inF, beta: 1, c: dx.data, ldc: inF)
        } else {
            let tile = linearTileRows(cols: inF, rows: outF)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * inF)
            defer { scratch.deallocate() }
            var r0 = 0
            while r0 < outF {
                let r1 = min(outF, r0 + tile)
                weight.dequantizeRows(r0..<r1, into: scratch)
                sgemm(transposeA: false, transposeB: false, m: n, n: inF, k: r1 - r0, alpha: 1, a: dout.data + r0,
                      lda: outF, b: scratch, ldb: inF, beta: 1, c: dx.data, ldc: inF)
                r0 = r1
            }
        }
    }
    if let dweight {
        precondition(dweight.count == outF * inF, "linearBackward: dweight \(dweight.shape) should be [\(outF), \(inF)]")
        sgemm(transposeA: true, transposeB: false, m: outF, n: inF, k: n, alpha: 1, a: dout.data, lda: outF,
              b: x.data, ldb: inF, beta: 1, c: dweight.data, ldc: inF)
    }
    if let dbias {
        precondition(dbias.count == outF, "linearBackward: dbias \(dbias.shape) should have \(outF) values")
        addColumnSums(into: dbias.data, dout.data, rows: n, cols: outF)
    }
}

/// dst[j] += Σ_r src[r, j] (parallel over column ranges, deterministic order within a column).
func addColumnSums(into dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, cols: Int) {
    Parallel.forEachChunk(count: cols, grain: max(16, ParallelGrain.elementwise / max(1, rows))) { cr in
        for r in 0..<rows {
            let row = src + r * cols
            for j in cr { dst[j] += row[j] }
        }
    }
}
