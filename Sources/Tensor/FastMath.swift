// Fast, accurate fp32 transcendental functions for the element-wise kernels.

/// tanh for fp32, evaluated in Double and rounded once: correctly rounded except within ~1e-12
/// (relative) of a rounding tie, so never more than 1 ulp from the exact value (libm `tanhf` costs
/// ~19 ns here; this is a few ns and vectorises).
/// - |x| < 0.05: Taylor series x − x³/3 + 2x⁵/15 − 17x⁷/315 (next term < 1e-12 relative).
/// - otherwise:  1 − 2/(e^{2|x|} + 1), with e^y = 2ⁿ·p(r), y = n·ln2 + r, |r| ≤ ln2/2, p = Taylor
///   series of degree 11 (truncation < 1e-14 relative); |x| is clamped to 9.1, beyond which tanh
///   rounds to ±1 in fp32.
@inlinable @inline(__always)
public func tanhFloat(_ x: Float) -> Float {
    let a = Double(Swift.min(abs(x), 9.1))
    // small arguments
    let s = a * a
    let small = a * (1 + s * (-1.0 / 3 + s * (2.0 / 15 + s * (-17.0 / 315))))
    // e^{2a}
    let y = 2 * a
    let magic = 6_755_399_441_055_744.0                 // 1.5·2^52: adding it rounds to an integer
    let kd = y * 1.442_695_040_888_963_4 + magic        // n = round(y / ln2) in the low bits
    let n = kd - magic
    let r = (y - n * 0.693_147_180_369_123_8) - n * 1.908_214_929_270_587_7e-10   // ln2 = hi + lo
    var p = 1.0 / 39_916_800
    p = p * r + 1.0 / 3_628_800
    p = p * r + 1.0 / 362_880
    p = p * r + 1.0 / 40_320
    p = p * r + 1.0 / 5_040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let twoPowN = Double(bitPattern: (kd.bitPattern &- magic.bitPattern &+ 1023) << 52)
    let e = p * twoPowN
    let big = 1 - 2 / (e + 1)
    let t = Float(a < 0.05 ? small : big)
    return Float(bitPattern: t.bitPattern | (x.bitPattern & 0x8000_0000))   // t ≥ 0: copy the sign (keeps −0)
}
