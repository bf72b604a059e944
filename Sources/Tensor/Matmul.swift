// Matrix products through cblas_sgemm, forward and backward.
import COpenBLAS
import Foundation

/// Row-major C = alpha·op(A)·op(B) + beta·C, with op(A) [m, k], op(B) [k, n], C [m, n] and leading
/// dimensions (row strides) lda, ldb, ldc — a thin wrapper over `cblas_sgemm`. Large products are split
/// into one part per core by `BLASThreads` (OpenBLAS itself runs single-threaded, see there).
@inline(__always)
public func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {   // BLAS leaves C untouched for k = 0 only when beta = 1
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    BLASThreads.forEachPart(m: m, n: n, k: k) { part in
        switch part {
        case .whole:
            sgemmCall(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        case .columns(let lo, let hi):
            sgemmCall(transposeA, transposeB, m, hi - lo, k, alpha, a, lda, transposeB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
        case .rows(let lo, let hi):
            sgemmCall(transposeA, transposeB, hi - lo, n, k, alpha, transposeA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
        }
    }
}

@inline(__always)
func sgemmCall(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
               _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Who runs the threads of a matrix product.
///
/// OpenBLAS's pthread build (Debian's) keeps its worker threads spinning on `sched_yield` between calls
/// for 2²⁸ cycles by default, and a training step makes a BLAS call every few milliseconds, so they never
/// sleep: a profile of a step showed ~14% of all CPU samples in `sched_yield`, competing with the Dispatch
/// threads of the element-wise kernels for the same cores. It reads its spin time only when it loads, so:
/// - `sftdeck` re-executes itself with `OPENBLAS_THREAD_TIMEOUT=4` (BLASRuntime), and OpenBLAS threads
///   the products (its threads share packed panels; measured 5–10% faster per step than the split below);
/// - anywhere else (tests, a host that cannot re-execute), OpenBLAS is set to one thread and `sgemm`
///   splits large products across cores itself, on the Dispatch pool (whose idle threads block).
/// `SFTDECK_BLAS_THREADS=split` or `=openblas` chooses either way.
public enum BLASThreads {
    public static let environmentVariable = "SFTDECK_BLAS_THREADS"

    /// true: products are split by `sgemm` (OpenBLAS single-threaded); false: OpenBLAS threads them.
    public static let splitBySFTDeck: Bool = {
        let env = ProcessInfo.processInfo.environment
        let split: Bool
        switch env[environmentVariable] {
        case "split": split = true
        case "openblas": split = false
        default: split = env["OPENBLAS_THREAD_TIMEOUT"] == nil
        }
        if split { openblas_set_num_threads(1) }
        return split
    }()

    /// One line for benchmark headers: who threads the products.
    public static var summary: String {
        splitBySFTDeck ? "OpenBLAS single-threaded, products split over \(Parallel.coreCount) cores by sgemm"
                       : "OpenBLAS's own \(BLASRuntime.threadCount) threads, OPENBLAS_THREAD_TIMEOUT=\(ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? "default (they spin between calls)")"
    }

    /// Below ~2 MFLOP a product is not worth a dispatch (a few µs).
    static let minimumWork = 1 << 20

    /// One core's share of a product C[m, n]: all of it, the rows lo..<hi of C (and of op(A)), or its
    /// columns lo..<hi (and the columns of op(B)).
    public enum Part { case whole, rows(Int, Int), columns(Int, Int) }

    /// Runs `body` once per part of the product, in parallel when it is large enough. It cuts the
    /// dimension whose other operand is the smaller one to pack twice: cutting rows repacks op(B) (k×n) in
    /// every part, cutting columns repacks op(A) (m×k). Cuts fall on multiples of 16 (the widest kernel
    /// unroll), so every part but the last runs full micro-tiles. Each C element is still one thread's
    /// whole k-loop, so the result does not depend on the number of parts.
    @inline(__always)
    public static func forEachPart(m: Int, n: Int, k: Int, _ body: (Part) -> Void) {
        let parts = count(m: m, n: n, k: k)
        if parts <= 1 { body(.whole); return }
        let byColumns = m <= n
        let len = byColumns ? n : m
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let lo = (len * i / parts) & ~15, hi = i == parts - 1 ? len : (len * (i + 1) / parts) & ~15
            guard hi > lo else { return }
            body(byColumns ? .columns(lo, hi) : .rows(lo, hi))
        }
    }

    @inline(__always)
    static func count(m: Int, n: Int, k: Int) -> Int {
        guard splitBySFTDeck, Parallel.coreCount > 1 else { return 1 }
        let work = m * n * k
        if work < minimumWork { return 1 }
        return max(1, min(Parallel.coreCount, work / minimumWork, max(m, n) / 32))
    }
}

// MARK: the three row-major shapes the model layers call (names and signatures as Models uses them)

/// C[M,N] = alpha·A[M,K]·B[N,K]ᵀ + beta·C   (the nn.Linear shape: x·Wᵀ)
@inlinable @inline(__always)
public func sgemmNT(_ M: Int, _ N: Int, _ K: Int, _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
                    _ C: UnsafeMutablePointer<Float>, _ ldc: Int, alpha: Float = 1, beta: Float = 0) {
    sgemm(transposeA: false, transposeB: true, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
          beta: beta, c: C, ldc: ldc)
}

/// C[M,N] = alpha·A[M,K]·B[K,N] + beta·C   (input gradients: dY·W)
@inlinable @inline(__always)
public func sgemmNN(_ M: Int, _ N: Int, _ K: Int, _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
                    _ C: UnsafeMutablePointer<Float>, _ ldc: Int, alpha: Float = 1, beta: Float = 0) {
    sgemm(transposeA: false, transposeB: false, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
          beta: beta, c: C, ldc: ldc)
}

/// C[M,N] = alpha·A[K,M]ᵀ·B[K,N] + beta·C   (weight gradients: dYᵀ·X)
@inlinable @inline(__always)
public func sgemmTN(_ M: Int, _ N: Int, _ K: Int, _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
                    _ C: UnsafeMutablePointer<Float>, _ ldc: Int, alpha: Float = 1, beta: Float = 0) {
    sgemm(transposeA: true, transposeB: false, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
          beta: beta, c: C, ldc: ldc)
}

/// Batched matrix product: out[i] = alpha·op(a[i])·op(b[i]) (+ out[i] when `accumulate`).
/// - a: [batch..., M, K] ([batch..., K, M] when `transposeA`)
/// - b: [batch..., K, N] ([batch..., N, K] when `transposeB`); a or b may be 2-D (shared by every batch entry)
/// - out: [batch..., M, N], or 2-D [M, N] to sum the products over the batch
/// All batch dimensions are flattened; the batch counts of the operands must agree (or be 1 for b / out).
public func matmul(_ out: Tensor, _ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                   alpha: Float = 1, accumulate: Bool = false) {
    precondition(a.rank >= 2 && b.rank >= 2 && out.rank >= 2, "matmul: operands need rank >= 2 (a \(a.shape), b \(b.shape), out \(out.shape))")
    let aRows = a.dim(-2), aCols = a.dim(-1)
    let m = transposeA ? aCols : aRows, k = transposeA ? aRows : aCols
    let bRows = b.dim(-2), bCols = b.dim(-1)
    let kb = transposeB ? bCols : bRows, n = transposeB ? bRows : bCols
    precondition(k == kb, "matmul: inner dimensions differ (a \(a.shape)\(transposeA ? "ᵀ" : ""), b \(b.shape)\(transposeB ? "ᵀ" : ""))")
    precondition(out.dim(-2) == m && out.dim(-1) == n, "matmul: out \(out.shape) should end in [\(m), \(n)]")
    let batchA = a.count / max(1, aRows * aCols), batchB = b.count / max(1, bRows * bCols)
    let batchOut = out.count / max(1, m * n)
    let batch = max(batchA, batchB)
    precondition(a.count == 0 || batchA == batch || batchA == 1, "matmul: batch of a \(a.shape) differs from b \(b.shape)")
    precondition(b.count == 0 || batchB == batch || batchB == 1, "matmul: batch of b \(b.shape) differs from a \(a.shape)")
    precondition(out.count == 0 || batchOut == batch || batchOut == 1, "matmul: batch of out \(out.shape) differs")
    if m == 0 || n == 0 { return }
    let beta0: Float = accumulate ? 1 : 0
    let pa = a.data, pb = b.data, pc = out.data
    let lda = aCols, ldb = bCols, ldc = n

    if batch == 1 {
        sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
              a: pa, lda: lda, b: pb, ldb: ldb, beta: beta0, c: pc, ldc: ldc)
        return
    }
    // Shared b and a stacked along M: one large product [batch·M, K]·op(B).
    if batchB == 1 && !transposeA && batchOut == batch {
        sgemm(transposeA: false, transposeB: transposeB, m: batch * m, n: n, k: k, alpha: alpha,
              a: pa, lda: lda, b: pb, ldb: ldb, beta: beta0, c: pc, ldc: ldc)
        return
    }
    // Summed over the batch with both operands stacked along K: aᵀ [M, batch·K] · b [batch·K, N].
    if batchOut == 1 && transposeA && !transposeB && batchA == batch && batchB == batch {
        sgemm(transposeA: true, transposeB: false, m: m, n: n, k: batch * k, alpha: alpha,
              a: pa, lda: lda, b: pb, ldb: ldb, beta: beta0, c: pc, ldc: ldc)
        return
    }
    for i in 0..<batch {
        let beta: Float = (batchOut == 1 && i > 0) ? 1 : beta0
        sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
              a: pa + (batchA == 1 ? 0 : i * aRows * aCols), lda: lda, b: pb + (batchB == 1 ? 0 : i * bRows * bCols), ldb: ldb,
              beta: beta, c: pc + (batchOut == 1 ? 0 : i * m * n), ldc: ldc)
    }
}

/// Backward of `matmul(out, a, b, ...)`: dA += alpha·dOut·op(B)ᵀ (transposed back when `transposeA`),
/// dB += alpha·op(A)ᵀ·dOut (transposed back when `transposeB`; summed over the batch when b is shared).
public func matmulBackward(dA: Tensor?, dB: Tensor?, dOut: Tensor, a: Tensor, b: Tensor,
                           transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1) {
    if let dA {
        if !transposeA {   // dA [M, K] = dC [M, N] · op(B)ᵀ
            matmul(dA, dOut, b, transposeA: false, transposeB: !transposeB, alpha: alpha, accumulate: true)
        } else {           // dA [K, M] = op(B) [K, N] · dCᵀ
            matmul(dA, b, dOut, transposeA: transposeB, transposeB: true, alpha: alpha, accumulate: true)
        }
    }
    if let dB {
        if !transposeB {   // dB [K, N] = op(A)ᵀ [K, M] · dC
            matmul(dB, a, dOut, transposeA: !transposeA, transposeB: false, alpha: alpha, accumulate: true)
        } else {           // dB [N, K] = dCᵀ [N, M] · op(A)
            matmul(dB, dOut, a, transposeA: true, transposeB: transposeA, alpha: alpha, accumulate: true)
        }
    }
}
