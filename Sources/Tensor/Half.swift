// bf16 and f16 storage formats and their conversion to and from fp32.

/// f32 -> bf16 bits, round-to-nearest-even; NaN becomes the canonical quiet NaN 0x7FC0 (exactly torch's
/// `c10::BFloat16(float)`).
@inlinable @inline(__always)
public func bf16Bits(fromFloat value: Float) -> UInt16 {
    let u = value.bitPattern
    if value.isNaN { return 0x7FC0 }
    let roundingBias: UInt32 = ((u >> 16) & 1) &+ 0x7FFF
    return UInt16(truncatingIfNeeded: (u &+ roundingBias) >> 16)
}

/// bf16 bits -> f32 (exact).
@inlinable @inline(__always)
public func float(fromBF16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// f32 -> IEEE binary16 bits, round-to-nearest-even (overflow to ±inf, subnormals kept).
@inlinable @inline(__always)
public func f16Bits(fromFloat value: Float) -> UInt16 {
    let u = value.bitPattern
    let sign = UInt16((u >> 16) & 0x8000)
    let absU = u & 0x7FFF_FFFF
    if absU >= 0x7F80_0000 {                         // inf or NaN
        return sign | (absU > 0x7F80_0000 ? 0x7E00 : 0x7C00)
    }
    if absU >= 0x477F_F000 { return sign | 0x7C00 }  // rounds to >= 65520: inf
    if absU < 0x3880_0000 {                          // below 2^-14: f16 subnormal or zero
        if absU < 0x3300_0000 { return sign }        // below 2^-25: rounds to zero (2^-25 ties to even 0)
        let exp = Int(absU >> 23)                    // 102 ... 112
        let mant = (absU & 0x7F_FFFF) | 0x80_0000
        let shift = 126 - exp                        // result = mant >> shift (units of 2^-24)
        let q = mant >> UInt32(shift)
        let rem = mant & ((1 << UInt32(shift)) - 1)
        let half: UInt32 = 1 << UInt32(shift - 1)
        let r = (rem > half || (rem == half && (q & 1) == 1)) ? q + 1 : q
        return sign | UInt16(r)
    }
    // normal: rebias exponent 127 -> 15 and round the 13 dropped mantissa bits to nearest even
    let rebased = absU &- 0x3800_0000                // subtract (127-15) << 23
    let roundBias: UInt32 = 0x0FFF &+ ((rebased >> 13) & 1)
    return sign | UInt16(truncatingIfNeeded: (rebased &+ roundBias) >> 13)
}

/// IEEE binary16 bits -> f32 (exact).
@inlinable @inline(__always)
public func float(fromF16Bits h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = UInt32(h >> 10) & 0x1F
    let mant = UInt32(h & 0x3FF)
    if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * (1.0 / 16_777_216.0)   // mant * 2^-24
        return sign != 0 ? -v : v
    }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
}

/// Bulk conversions (multithreaded above a size threshold).
public func convertBF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
        for i in r { dst[i] = Float(bitPattern: UInt32(src[i]) << 16) }
    }
}

public func convertF32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
        for i in r { dst[i] = bf16Bits(fromFloat: src[i]) }
    }
}

public func convertF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
        for i in r { dst[i] = float(fromF16Bits: src[i]) }
    }
}

public func convertF32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
        for i in r { dst[i] = f16Bits(fromFloat: src[i]) }
    }
}

/// Rounds every element to the nearest bf16 value (kept in fp32): emulates a bf16 activation or
/// parameter of the reference (torch autocast) without changing the storage type.
public func roundToBF16InPlace(_ t: Tensor) {
    let p = t.data
    Parallel.forEachChunk(count: t.count, grain: ParallelGrain.elementwise) { r in
        for i in r { p[i] = Float(bitPattern: UInt32(bf16Bits(fromFloat: p[i])) << 16) }
    }
}

/// Rounds every element to the nearest f16 value (kept in fp32).
public func roundToF16InPlace(_ t: Tensor) {
    let p = t.data
    Parallel.forEachChunk(count: t.count, grain: ParallelGrain.elementwise) { r in
        for i in r { p[i] = float(fromF16Bits: f16Bits(fromFloat: p[i])) }
    }
}
