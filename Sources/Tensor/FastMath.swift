// Fast, accurate fp32 transcendental functions for the element-wise kernels, in 4-lane fp32 SIMD.
//
// The build is baseline x86-64 (SSE2: no FMA, no blendv, no roundps), so everything here is written
// for that: one SIMD4<Float> is one xmm register, selects are and/andnot/or, rounding to an integer is
// the 1.5·2²³ "magic number" addition, and 2ⁿ is built in the exponent bits with integer SIMD. No libm
// call, no branch, no Double. A lane's long dependency chain limits how many elements the core overlaps
// (llvm-mca -mcpu=znver2: latency-bound), so polynomials use Estrin's scheme, not Horner's (20–25 %
// faster here). `sftdeck-bench fastmath` measures them against libm expf and the previous Double tanh:
// ~2.8 ns (tanh) and ~1.7 ns (exp) per element on one core, 2.2–2.7x less than what they replaced;
// the remaining cost is instruction count (~20 SSE instructions per tanh element without FMA or AVX).
//
// Accuracy (FastMathTests and the bench: sweeps of fp32 bit patterns against the Double functions):
//   expFloat4   ≤ 0.99 ulp on [−104, 104] (subnormal results included), never more than one fp32 step
//               from the correctly rounded value; 0 below −103.97, +inf above 88.7228, NaN → NaN.
//   tanhFloat4  ≤ 1.21 ulp on [−10, 10] (worst just above the 0.875 branch point), never more than one fp32 step from the correctly rounded value
//               (~0.2 % of arguments are one step off); ±1 for |x| ≥ 9.01, NaN → NaN, tanh(−0) = −0.

// Lane masks are SIMD4<Int32> of all-ones/zero lanes built with integer arithmetic (the sign bit of a
// difference, spread by an arithmetic shift), never SIMDMask: the standard library's float comparisons
// against a scalar and `replacing(with:where:)` are per-lane loops, which LLVM legalises on SSE2 as
// `<4 x i1>` round trips through general registers and, inside a long kernel, as one branch per lane
// that computes the chosen side of a select in scalar code (3x slower than the arithmetic).

/// The bits of 4 fp32 lanes as Int32 lanes.
@inlinable @inline(__always)
func laneBits(_ x: SIMD4<Float>) -> SIMD4<Int32> { unsafeBitCast(x, to: SIMD4<Int32>.self) }

/// 4 fp32 lanes from their bits.
@inlinable @inline(__always)
func laneFloats(_ b: SIMD4<Int32>) -> SIMD4<Float> { unsafeBitCast(b, to: SIMD4<Float>.self) }

/// All-ones in the lanes where a < b (as Int32, no overflow: both operands in [0, 2³¹) here), else 0.
/// For fp32 values ≥ 0 (NaN included) the bit patterns are in the same order as the values.
@inlinable @inline(__always)
func laneLess(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> { (a &- b) &>> 31 }

/// mask ? a : b per lane (mask lanes all-ones or zero), as and/andnot/or.
@inlinable @inline(__always)
func laneSelect(_ mask: SIMD4<Int32>, _ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    laneFloats((laneBits(a) & mask) | (laneBits(b) & ~mask))
}

/// All-ones in the NaN lanes of x: |x|'s bits above those of +inf.
@inlinable @inline(__always)
func laneIsNaN(_ x: SIMD4<Float>) -> SIMD4<Int32> {
    laneLess(SIMD4(repeating: 0x7F80_0000), laneBits(x) & SIMD4(repeating: 0x7FFF_FFFF))
}

/// e^x of 4 fp32 lanes (the scheme of Cephes `expf`): x = n·ln2 + r with n = round(x·log₂e), r by a
/// Cody–Waite two-constant reduction (ln2 = 0.693359375 − 2.12194440e−4; n·0.693359375 is exact for
/// |n| < 2¹⁵, so |r| ≤ ln2/2 + tiny), e^r = 1 + r + r²·P(r) with Cephes' degree-5 minimax P, and 2ⁿ
/// applied as 2^⌊n/2⌋·2^(n−⌊n/2⌋) so that results in the subnormal range (x < −87.34) round once and
/// overflow (x > 88.72) gives +inf.
@inlinable @inline(__always)
public func expFloat4(_ x: SIMD4<Float>) -> SIMD4<Float> {
    // The core runs on x as it is; lanes outside [−104, 88.8], where its integer n would leave the
    // exponent field's range, get their limit (0 or +inf) from a select at the end, and NaN lanes get x
    // back. The masks are off the critical path: the sign bit of x + 104 and of 88.8 − x (neither can
    // be −0 for an fp32 x; a NaN's sign is arbitrary, so the NaN select comes last).
    let low = laneBits(x + SIMD4(repeating: 104)) &>> 31, high = laneBits(SIMD4(repeating: 88.8) - x) &>> 31
    let e = expReduced4(x, splitScale: true)
    let limited = laneFloats(laneBits(e) & ~(low | high) | (high & laneBits(SIMD4(repeating: .infinity))))
    return laneSelect(laneIsNaN(x), x, limited)
}

/// e^x of one fp32 value: the same arithmetic as `expFloat4` (a scalar tail gets the lanes' bits).
@inlinable @inline(__always)
public func expFloat(_ x: Float) -> Float { expFloat4(SIMD4(repeating: x))[0] }

/// The core of `expFloat4`, valid for x in [−104, 88.8] with `splitScale`, or in [−87, 88] without
/// (then 2ⁿ is one normal power of two, one multiply fewer); outside, n leaves the exponent field.
@inlinable @inline(__always)
func expReduced4(_ x: SIMD4<Float>, splitScale: Bool) -> SIMD4<Float> {
    let magic: Float = 12_582_912                       // 1.5·2²³: adding it rounds to an integer
    let kd = x * SIMD4(repeating: 1.442_695_04) + SIMD4(repeating: magic)
    let n = kd - SIMD4(repeating: magic)
    let r = (x - n * SIMD4(repeating: 0.693_359_375)) - n * SIMD4(repeating: -2.121_944_4e-4)
    // P(r) = p0 + p1·r + … + p5·r⁵ by Estrin's scheme (pairs, then r², r⁴): half Horner's dependency
    // chain, which is what bounds this code's speed (the lanes of independent elements overlap freely)
    let r2 = r * r, r4 = r2 * r2
    let p01 = SIMD4<Float>(repeating: 5.000_000_120_1e-1) + r * SIMD4(repeating: 1.666_666_545_9e-1)
    let p23 = SIMD4<Float>(repeating: 4.166_579_589_4e-2) + r * SIMD4(repeating: 8.333_451_907_3e-3)
    let p45 = SIMD4<Float>(repeating: 1.398_199_950_7e-3) + r * SIMD4(repeating: 1.987_569_15e-4)
    let p = (p01 + r2 * p23) + r4 * p45
    let er = 1 + (r2 * p + r)
    // n as an Int32 from kd's low mantissa bits, then 2ⁿ = (n + 127) << 23 in the exponent field
    let ni = unsafeBitCast(kd, to: SIMD4<Int32>.self) &- SIMD4(repeating: Int32(bitPattern: magic.bitPattern))
    if !splitScale { return er * unsafeBitCast((ni &+ 127) &<< 23, to: SIMD4<Float>.self) }
    let n1 = ni &>> 1, n2 = ni &- n1
    return (er * unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD4<Float>.self))
        * unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD4<Float>.self)
}

/// tanh of 4 fp32 lanes, in fp32 (no libm, no Double; accuracy in the header above).
/// - |x| < 0.875: tanh(a) = a + a·s·P(s), s = a², P the degree-6 Chebyshev fit of (tanh(a) − a)/a³ on
///   s ∈ [0, 0.875²] (mpmath `chebyfit`, truncation 4.1e−9, which moves t by < 0.07 ulp).
/// - otherwise:  1 − 2/(e^{2a} + 1) with `expReduced4` (2a ≤ 18.2 after clamping a to 9.1, beyond which
///   tanh rounds to 1 in fp32); at a ≥ 0.875, e ≥ 5.75, so the exp and division errors shrink by
///   2/(e+1) < 0.3 before the final subtraction.
/// Both branches run on every lane and a select picks one; the sign bit of x is copied onto the result
/// (keeps −0), and NaN lanes return x.
@inlinable @inline(__always)
public func tanhFloat4(_ x: SIMD4<Float>) -> SIMD4<Float> {
    let aBits = laneBits(x) & SIMD4(repeating: 0x7FFF_FFFF)
    let a = laneFloats(aBits)
    // small arguments
    let s = a * a
    let s2 = s * s, s4 = s2 * s2
    let c01 = SIMD4<Float>(repeating: -3.333_333_4e-1) + s * SIMD4(repeating: 1.333_328e-1)
    let c23 = SIMD4<Float>(repeating: -5.395_686_3e-2) + s * SIMD4(repeating: 2.177_729_6e-2)
    let c45 = SIMD4<Float>(repeating: -8.499_058e-3) + s * SIMD4(repeating: 2.818_473_1e-3)
    let c6 = SIMD4<Float>(repeating: -5.475_858e-4)
    let sp = (c01 + s2 * c23) + s4 * (c45 + s2 * c6)
    let small = a + a * s * sp
    // large arguments
    let ac = laneSelect(laneLess(laneBits(SIMD4(repeating: 9.1)), aBits), SIMD4(repeating: 9.1), a)
    let e = expReduced4(ac + ac, splitScale: false)
    let big = 1 - 2 / (e + 1)
    let t = laneSelect(laneLess(aBits, laneBits(SIMD4(repeating: 0.875))), small, big)
    let signed = laneFloats(laneBits(t) | (laneBits(x) & SIMD4(repeating: Int32.min)))
    return laneSelect(laneIsNaN(x), x, signed)   // the integer clamp above takes a NaN's bits for "> 9.1"
}

/// tanh of one fp32 value: the same arithmetic as `tanhFloat4`, so both give identical results.
@inlinable @inline(__always)
public func tanhFloat(_ x: Float) -> Float { tanhFloat4(SIMD4(repeating: x))[0] }

/// The previous tanh (until Dec 2026): evaluated in SIMD4<Double> and rounded once, within 1 ulp and
/// correctly rounded for all but ~1 in 20,000 arguments, but ~6 ns per element on SSE2 (Double SIMD4
/// is two xmm operations per operation). Kept as the accuracy and speed reference for FastMathTests and
/// `sftdeck-bench fastmath`; the kernels use `tanhFloat4`.
/// - |x| < 0.15: Taylor series to x¹¹; otherwise 1 − 2/(e^{2|x|} + 1) with a degree-8 Taylor e^r.
@inlinable @inline(__always)
public func tanhFloat4ViaDouble(_ xf: SIMD4<Float>) -> SIMD4<Float> {
    let x = SIMD4<Double>(xf)
    let a = pointwiseMin(x.replacing(with: -x, where: x .< 0), SIMD4(repeating: 9.1))
    // small arguments: x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 − 1382x¹¹/155925
    let s = a * a
    var sp = SIMD4<Double>(repeating: -1382.0 / 155_925)
    sp = sp * s + SIMD4(repeating: 62.0 / 2835)
    sp = sp * s + SIMD4(repeating: -17.0 / 315)
    sp = sp * s + SIMD4(repeating: 2.0 / 15)
    sp = sp * s + SIMD4(repeating: -1.0 / 3)
    let small = a + a * s * sp
    // e^{2a}
    let y = 2 * a
    let magic = 6_755_399_441_055_744.0                 // 1.5·2^52: adding it rounds to an integer
    let kd = y * SIMD4(repeating: 1.442_695_040_888_963_4) + SIMD4(repeating: magic)
    let n = kd - SIMD4(repeating: magic)
    let r = (y - n * SIMD4(repeating: 0.693_147_180_369_123_8)) - n * SIMD4(repeating: 1.908_214_929_270_587_7e-10)
    var p = SIMD4<Double>(repeating: 1.0 / 40_320)
    p = p * r + SIMD4(repeating: 1.0 / 5_040)
    p = p * r + SIMD4(repeating: 1.0 / 720)
    p = p * r + SIMD4(repeating: 1.0 / 120)
    p = p * r + SIMD4(repeating: 1.0 / 24)
    p = p * r + SIMD4(repeating: 1.0 / 6)
    p = p * r + SIMD4(repeating: 0.5)
    p = p * r + SIMD4(repeating: 1)
    p = p * r + SIMD4(repeating: 1)
    // 2ⁿ from n's integer bits in kd
    let kBits = unsafeBitCast(kd, to: SIMD4<UInt64>.self)
    let twoPowN = unsafeBitCast((kBits &- SIMD4(repeating: magic.bitPattern) &+ SIMD4(repeating: 1023)) &<< SIMD4(repeating: 52),
                                to: SIMD4<Double>.self)
    let e = p * twoPowN
    let big = 1 - 2 / (e + 1)
    let t = SIMD4<Float>(big.replacing(with: small, where: a .< 0.15))
    // t ≥ 0: copy the sign bit of x (keeps −0); NaN in, NaN out (the clamp above would hide it)
    let signs = unsafeBitCast(xf, to: SIMD4<UInt32>.self) & SIMD4(repeating: 0x8000_0000)
    let signed = unsafeBitCast(unsafeBitCast(t, to: SIMD4<UInt32>.self) | signs, to: SIMD4<Float>.self)
    return signed.replacing(with: xf, where: xf .!= xf)
}
