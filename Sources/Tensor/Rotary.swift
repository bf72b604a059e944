// Rotary position embeddings (rotate-half convention, as Hugging Face `apply_rotary_pos_emb`).
import Foundation

/// inv_freq[i] = 1 / base^(2i/d) / linearScalingFactor (fp32, as HF's default and "linear" rope types),
/// and cos/sin tables from fp32 positions: angle = pos · inv_freq, emb = concat(angle, angle).
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    public let base: Float
    public let linearScalingFactor: Float
    /// [headDim / 2]
    public let inverseFrequencies: [Float]

    public init(headDim: Int, base: Float, linearScalingFactor: Float = 1) {
        precondition(headDim > 0 && headDim % 2 == 0, "RotaryEmbedding: head dim \(headDim) must be even")
        self.headDim = headDim; self.base = base; self.linearScalingFactor = linearScalingFactor
        inverseFrequencies = (0..<(headDim / 2)).map { i in
            (1 / powf(base, Float(2 * i) / Float(headDim))) / linearScalingFactor
        }
    }

    /// cos, sin: [positions.count, headDim].
    public func cosSin(positions: [Float]) -> (cos: Tensor, sin: Tensor) {
        let half = headDim / 2
        let c = Tensor(uninitialized: [positions.count, headDim]), s = Tensor(uninitialized: [positions.count, headDim])
        let pc = c.data, ps = s.data
        for (p, pos) in positions.enumerated() {
            for i in 0..<half {
                let angle = pos * inverseFrequencies[i]
                let cv = cosf(angle), sv = sinf(angle)
                pc[p * headDim + i] = cv; pc[p * headDim + i + half] = cv
                ps[p * headDim + i] = sv; ps[p * headDim + i + half] = sv
            }
        }
        return (c, s)
    }

    /// Positions 0..<length as fp32.
    public func cosSin(length: Int) -> (cos: Tensor, sin: Tensor) { cosSin(positions: (0..<length).map(Float.init)) }
}

/// out = x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x[D/2:], x[:D/2]).
/// - x, out: [B, L, H, D]; cos, sin: [L, D] (shared by the batch) or [B, L, D]. out may alias x.
public func ropeForward(out: Tensor, _ x: Tensor, cos: Tensor, sin: Tensor) {
    ropeApply(out: out, x, cos: cos, sin: sin, inverse: false, accumulate: false)
}

/// dx += cos·dout + rotate_halfᵀ(sin·dout), rotate_halfᵀ(z) = concat(z[D/2:], −z[:D/2]).
public func ropeBackward(dx: Tensor, dout: Tensor, cos: Tensor, sin: Tensor) {
    ropeApply(out: dx, dout, cos: cos, sin: sin, inverse: true, accumulate: true)
}

func ropeApply(out: Tensor, _ x: Tensor, cos: Tensor, sin: Tensor, inverse: Bool, accumulate: Bool) {
    precondition(x.rank == 4 && out.count == x.count, "rope: x \(x.shape) should be [B, L, H, D] like out \(out.shape)")
    let b = x.shape[0], l = x.shape[1], h = x.shape[2], d = x.shape[3], half = d / 2
    precondition(d % 2 == 0 && cos.count == sin.count && (cos.count == l * d || cos.count == b * l * d),
                 "rope: cos \(cos.shape) / sin \(sin.shape) should be [L, D] or [B, L, D] for x \(x.shape)")
    let perBatch = cos.count == b * l * d
    let px = x.data, po = out.data, pc = cos.data, ps = sin.data
    Parallel.forEachChunk(count: b * l, grain: rowGrain(h * d)) { tokens in
        for tok in tokens {
            let c = pc + (perBatch ? tok : tok % l) * d, s = ps + (perBatch ? tok : tok % l) * d
            for head in 0..<h {
                let xr = px + (tok * h + head) * d, yr = po + (tok * h + head) * d
                for i in 0..<half {
                    let x1 = xr[i], x2 = xr[i + half]
                    // forward:  y1 = x1·c1 − x2·s1,  y2 = x2·c2 + x1·s2
                    // backward: g1 = x1·c1 + x2·s2,  g2 = x2·c2 − x1·s1   (x = dout here)
                    let y1: Float, y2: Float
                    if !inverse {
                        y1 = x1 * c[i] - x2 * s[i]
                        y2 = x2 * c[i + half] + x1 * s[i + half]
                    } else {
                        y1 = x1 * c[i] + x2 * s[i + half]
                        y2 = x2 * c[i + half] - x1 * s[i]
                    }
                    if accumulate { yr[i] += y1; yr[i + half] += y2 } else { yr[i] = y1; yr[i + half] = y2 }
                }
            }
        }
    }
}
