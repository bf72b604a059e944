// nn.Linear with an optional PEFT LoRA adapter, forward and backward side by side.
// y = x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ     (peft/tuners/lora/layer.py Linear.forward)
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
    init(scratchCount: Int, rng: SeededRNG, training: Bool) {
        scratch = FBuf(scratchCount, zero: false); self.rng = rng; self.training = training
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
        MatrixKernels.forward(y, x, weight, T: T, inF: inF, outF: outF, scratch: ctx.scratch)
        if let b = bias {
            let bp = b.f32
            for t in 0..<T { addInPlace(y + t * outF, bp, outF) }
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
        sgemmNT(T, a.rank, inF, xin, inF, a.A.valueBuf.p, inF, xa.p, a.rank)
        sgemmNT(T, outF, a.rank, xa.p, a.rank, a.B.valueBuf.p, a.rank, y, outF, alpha: a.scaling, beta: 1)
        if keep { st.xa = xa; return st }
        return nil
    }

    // dy (T, out), x (T, in) → dx (T, in) +=, parameter grads +=
    func backward(_ dx: FPtr?, _ dy: CFPtr, _ x: CFPtr, T: Int, state: LinearState?, ctx: RunContext) {
        if let g = weight.grad { sgemmTN(outF, inF, T, dy, outF, x, inF, g, inF, beta: 1) }
        if let b = bias, let g = b.grad {
            for t in 0..<T { addInPlace(g, dy + t * outF, outF) }
        }
        if let dx { MatrixKernels.backwardInput(dx, dy, weight, T: T, inF: inF, outF: outF, scratch: ctx.scratch) }
        guard let a = lora, let st = state, let xa = st.xa else { return }
        let r = a.rank
        // dB += s·dyᵀ·xa ; dxa = s·dy·B ; dA += dxaᵀ·xd ; dxd = dxa·A
        sgemmTN(outF, r, T, dy, outF, xa.p, r, a.B.gradBuf.p, r, alpha: a.scaling, beta: 1)
        let dxa = FBuf(T * r, zero: false)
        sgemmNN(T, r, outF, dy, outF, a.B.valueBuf.p, r, dxa.p, r, alpha: a.scaling)
        let xin = st.xd.map { CFPtr($0.p) } ?? x
        sgemmTN(r, inF, T, dxa.p, r, xin, inF, a.A.gradBuf.p, inF, beta: 1)
        guard let dx else { return }
        if let m = st.mask {
            let dxd = FBuf(T * inF, zero: false)
            sgemmNN(T, inF, r, dxa.p, r, a.A.valueBuf.p, inF, dxd.p, inF)
            for i in 0..<(T * inF) { dx[i] += dxd.p[i] * m.p[i] }
        } else {
            sgemmNN(T, inF, r, dxa.p, r, a.A.valueBuf.p, inF, dx, inF, beta: 1)
        }
    }
}
