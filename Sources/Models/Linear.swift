// nn.Linear with an optional PEFT LoRA adapter, forward and backward side by side.
// y = x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ     (peft/tuners/lora/layer.py Linear.forward)
// Every product goes through the run's MatmulPrecision (BF16Linear.swift): plain sgemm in fp32 runs; under
// bf16 the rounding points of torch.autocast("cpu", bfloat16): bf16(x·Wᵀ + bf16(b)), and with LoRA
// y = bf16(y + bf16(s · bf16(bf16(xd·Aᵀ)·Bᵀ))); backward dX, dW, dA, dB each a bf16 result.
import Foundation
import Tensor

/// Seeded generator for LoRA init and dropout masks (xoshiro256**; not torch's stream).
public struct SeededRNG: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)
    public init(seed: UInt64) {
        var z = seed &+ 0x9E3779B97F4A7C15
        func next() -> UInt64 {
            z = z &+ 0x9E3779B97F4A7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58476D1CE4E5B9
            x = (x ^ (x >> 27)) &* 0x94D049BB133111EB
            return x ^ (x >> 31)
        }
        s = (next(), next(), next(), next())
    }
    public mutating func next() -> UInt64 {
        let r = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return r
    }
    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }
}

/// Per-call state a forward leaves for its backward.
final class RunContext {
    /// Tile scratch for widening frozen bf16/f16 weights (tileRows × widest input).
    let scratch: FBuf
    var rng: SeededRNG
    /// Train mode: LoRA dropout active.
    let training: Bool
    /// How the Linear products run (fp32, or bf16 emulated / native sbgemm), from the training config.
    let matmul: MatmulPrecision
    init(scratchCount: Int, rng: SeededRNG, training: Bool, bf16: BF16MatmulMode = .fp32) {
        scratch = FBuf(scratchCount, zero: false); self.rng = rng; self.training = training
        matmul = MatmulPrecision(bf16)
    }
}

/// A LoRA adapter on one linear: A (r, in) Kaiming-uniform, B (out, r) zero, scaling α/r (or α/√r).
public final class LoRAAdapter {
    public let rank: Int
    public let scaling: Float
    public let dropout: Float
    public let A: Parameter
    public let B: Parameter
    init(rank: Int, scaling: Float, dropout: Float, A: Parameter, B: Parameter) {
        self.rank = rank; self.scaling = scaling; self.dropout = dropout; self.A = A; self.B = B
    }
}

/// What one Linear forward keeps for its backward (only when an adapter is present).
final class LinearState {
    var xd: FBuf?      // dropout(x) (T, in); nil when dropout is inactive (then xd = x)
    var xa: FBuf?      // xd·Aᵀ (T, r)
    var mask: FBuf?    // dropout multipliers, 0 or 1/(1−p) (T, in)
}

final class Linear {
    /// Module name as transformers names it, e.g. model.language_model.layers.0.self_attn.q_proj
    let name: String
    let inF: Int, outF: Int
    let weight: Weight        // (out, in)
    let bias: Weight?         // (out)
    var lora: LoRAAdapter?

    init(name: String, inF: Int, outF: Int, weight: Weight, bias: Weight?) {
        self.name = name; self.inF = inF; self.outF = outF; self.weight = weight; self.bias = bias
    }

    // x (T, in) → y (T, out)
    func forward(_ y: FPtr, _ x: CFPtr, T: Int, ctx: RunContext, keep: Bool) -> LinearState? {
        let mp = ctx.matmul
        MatrixKernels.forward(y, x, weight, T: T, inF: inF, outF: outF, scratch: ctx.scratch, precision: mp,
                              roundOutput: bias == nil)
        if let b = bias {
            let bp = b.f32
            if mp.autocast {   // addmm in bf16: the bias is a bf16 operand, the sum rounded once
                for t in 0..<T { let row = y + t * outF; for j in 0..<outF { row[j] = roundedToBF16(row[j] + roundedToBF16(bp[j])) } }
            } else {
                for t in 0..<T { addInPlace(y + t * outF, bp, outF) }
            }
        }
        guard let a = lora else { return nil }
        let st = LinearState()
        var xin = x
        if ctx.training && a.dropout > 0 {
            let xd = FBuf(T * inF, zero: false), m = FBuf(T * inF, zero: false)
            let keepP = 1 - a.dropout, inv = 1 / keepP
            for i in 0..<(T * inF) { m.p[i] = ctx.rng.uniform() < keepP ? inv : 0; xd.p[i] = x[i] * m.p[i] }
            xin = CFPtr(xd.p); st.xd = xd; st.mask = m
        }
        let xa = FBuf(T * a.rank, zero: false)
        mp.nt(T, a.rank, inF, xin, inF, a.A.valueBuf.p, inF, xa.p, a.rank, roundOutput: true)
        if mp.autocast {   // lora_B output (bf16) · scaling (bf16), added to the bf16 base output
            let lb = mp.workspace.floats(4, T * outF)
            mp.nt(T, outF, a.rank, xa.p, a.rank, a.B.valueBuf.p, a.rank, lb, outF, roundOutput: true)
            let s = a.scaling
            for i in 0..<(T * outF) { y[i] = roundedToBF16(y[i] + roundedToBF16(s * lb[i])) }
        } else {
            mp.nt(T, outF, a.rank, xa.p, a.rank, a.B.valueBuf.p, a.rank, y, outF, alpha: a.scaling, beta: 1, roundOutput: false)
        }
        if keep { st.xa = xa; return st }
        return nil
    }

    // dy (T, out), x (T, in) → dx (T, in) +=, parameter grads +=
    func backward(_ dx: FPtr?, _ dy: CFPtr, _ x: CFPtr, T: Int, state: LinearState?, ctx: RunContext) {
        let mp = ctx.matmul
        if let g = weight.grad { mp.tn(outF, inF, T, dy, outF, x, inF, g, inF, beta: 1, roundOutput: true) }
        if let b = bias, let g = b.grad {
            if mp.autocast {   // bf16 bias grad: the sum of the bf16 dy (fp32 accumulation), rounded
                let s = mp.workspace.floats(4, outF)
                s.update(repeating: 0, count: outF)
                for t in 0..<T { let row = dy + t * outF; for j in 0..<outF { s[j] += roundedToBF16(row[j]) } }
                for j in 0..<outF { g[j] += roundedToBF16(s[j]) }
            } else {
                for t in 0..<T { addInPlace(g, dy + t * outF, outF) }
            }
        }
        if let dx { MatrixKernels.backwardInput(dx, dy, weight, T: T, inF: inF, outF: outF, scratch: ctx.scratch, precision: mp) }
        guard let a = lora, let st = state, let xa = st.xa else { return }
        let r = a.rank
        // dB += s·dyᵀ·xa ; dxa = s·dy·B ; dA += dxaᵀ·xd ; dxd = dxa·A
        // (bf16: with a power-of-two scaling, bf16(s·dy) = s·bf16(dy), so these equal torch's order exactly)
        mp.tn(outF, r, T, dy, outF, xa.p, r, a.B.gradBuf.p, r, alpha: a.scaling, beta: 1, roundOutput: true)
        let dxa = FBuf(T * r, zero: false)
        mp.nn(T, r, outF, dy, outF, a.B.valueBuf.p, r, dxa.p, r, alpha: a.scaling, roundOutput: true)
        let xin = st.xd.map { CFPtr($0.p) } ?? x
        mp.tn(r, inF, T, dxa.p, r, xin, inF, a.A.gradBuf.p, inF, beta: 1, roundOutput: true)
        guard let dx else { return }
        if let m = st.mask {
            let dxd = FBuf(T * inF, zero: false)
            mp.nn(T, inF, r, dxa.p, r, a.A.valueBuf.p, inF, dxd.p, inF, roundOutput: true)
            for i in 0..<(T * inF) { dx[i] += dxd.p[i] * m.p[i] }
        } else {
            mp.nn(T, inF, r, dxa.p, r, a.A.valueBuf.p, inF, dx, inF, beta: 1, roundOutput: true)
        }
    }
}
