// Matrix products through cblas_sgemm, forward and backward.
import COpenBLAS

/// Row-major C = alpha·op(A)·op(B) + beta·C, with op(A) [m, k], op(B) [k, n], C [m, n] and leading
/// dimensions (row strides) lda, ldb, ldc — a thin wrapper over `cblas_sgemm` (multithreaded by OpenBLAS).
@inline(__always)
public func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {   // BLAS leaves C untouched for k = 0 only when beta = 1
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
