// The Linear products of one run in the precision the training config chose (Tensor.BF16MatmulMode),
// following what torch.autocast("cpu", dtype=torch.bfloat16) does for nn.Linear: input and weight in
// bf16, fp32 accumulation, the output a bf16 tensor; in backward the incoming gradient is bf16 and
// dX, dW come out as bf16 tensors that autograd casts back to the fp32 input / master weight. The
// SigLIP patch conv and the Gemma 3 projector's matmul run the same way (autocast lists conv2d and
// matmul too), and so do eager attention's score and value products (`AttentionPrecision` has the rule).
// Norms, the softmax, loss, optimizer states and master weights stay fp32.
import Foundation
import Tensor

/// Per-run matmul precision: the mode and the scratch its operand packing uses.
final class MatmulPrecision {
    let mode: BF16MatmulMode
    let workspace = BF16Workspace()
    init(_ mode: BF16MatmulMode) { self.mode = mode }
    /// bf16 rounding points are active (autocast-like run).
    var autocast: Bool { mode != .fp32 }
    /// Attention's products in the same mode, sharing the operand scratch (the calls never overlap).
    var attention: AttentionPrecision { AttentionPrecision(mode: mode, workspace: workspace) }

    /// C[M,N] = alpha·A[M,K]·B[N,K]ᵀ + beta·C   (x · Wᵀ)
    func nt(_ M: Int, _ N: Int, _ K: Int, _ A: CFPtr, _ lda: Int, _ B: CFPtr, _ ldb: Int, _ C: FPtr, _ ldc: Int,
            alpha: Float = 1, beta: Float = 0, roundOutput: Bool) {
        bf16Gemm(mode, transposeA: false, transposeB: true, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
                 beta: beta, c: C, ldc: ldc, roundOutput: roundOutput, workspace: workspace)
    }
    /// C[M,N] = alpha·A[M,K]·B[K,N] + beta·C   (dy · W)
    func nn(_ M: Int, _ N: Int, _ K: Int, _ A: CFPtr, _ lda: Int, _ B: CFPtr, _ ldb: Int, _ C: FPtr, _ ldc: Int,
            alpha: Float = 1, beta: Float = 0, roundOutput: Bool) {
        bf16Gemm(mode, transposeA: false, transposeB: false, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
                 beta: beta, c: C, ldc: ldc, roundOutput: roundOutput, workspace: workspace)
    }
    /// C[M,N] = alpha·A[K,M]ᵀ·B[K,N] + beta·C   (dyᵀ · x)
    func tn(_ M: Int, _ N: Int, _ K: Int, _ A: CFPtr, _ lda: Int, _ B: CFPtr, _ ldb: Int, _ C: FPtr, _ ldc: Int,
            alpha: Float = 1, beta: Float = 0, roundOutput: Bool) {
        bf16Gemm(mode, transposeA: true, transposeB: false, m: M, n: N, k: K, alpha: alpha, a: A, lda: lda, b: B, ldb: ldb,
                 beta: beta, c: C, ldc: ldc, roundOutput: roundOutput, workspace: workspace)
    }

    /// Rounds n contiguous values to bf16 when autocast is on (a bf16 tensor of the reference).
    func round(_ p: FPtr, _ n: Int) {
        if autocast { roundToBF16InPlace(p, rows: 1, cols: n, ld: n) }
    }

    /// dx (T, in) += R(dy (T, out) · W) for a weight read in row tiles of `tileRows`: the tiles split the
    /// summed dimension, so under autocast their fp32 partial sums meet in scratch and are rounded once.
    func backwardInputTiled(_ dx: FPtr, _ dy: CFPtr, _ w: Weight, T: Int, inF: Int, outF: Int, tileRows: Int, scratch: FBuf) {
        let acc = autocast ? workspace.sum(T * inF) : dx
        var r0 = 0
        while r0 < outF {
            let r1 = min(outF, r0 + tileRows)
            let wp = w.rowsF32(r0, r1, cols: inF, scratch: scratch.p)
            nn(T, inF, r1 - r0, dy + r0, outF, wp, inF, acc, inF, beta: autocast && r0 == 0 ? 0 : 1, roundOutput: false)
            r0 = r1
        }
        if autocast { for i in 0..<(T * inF) { dx[i] += roundedToBF16(acc[i]) } }
    }
}

extension BF16Workspace {
    /// A scratch sum buffer separate from the slots bf16Gemm packs its operands into.
    func sum(_ n: Int) -> FPtr { floats(3, n) }
}
