// Vectorised row reductions shared by the row-wise kernels. Lanes are combined in a fixed order, so
// results do not depend on threads or alignment.

@inline(__always) func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

/// Σ x[j]² accumulated in Double (each product is exact in Double).
@inline(__always) func rowSumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    var j = 0
    while j + 8 <= n {
        let u = SIMD4<Double>(load4(x + j)), v = SIMD4<Double>(load4(x + j + 4))
        a0 += u * u; a1 += v * v
        j += 8
    }
    var s = (a0 + a1).sum()
    while j < n { let v = Double(x[j]); s += v * v; j += 1 }
    return s
}

/// Σ x[j] accumulated in Double.
@inline(__always) func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    var j = 0
    while j + 8 <= n {
        a0 += SIMD4<Double>(load4(x + j)); a1 += SIMD4<Double>(load4(x + j + 4))
        j += 8
    }
    var s = (a0 + a1).sum()
    while j < n { s += Double(x[j]); j += 1 }
    return s
}

/// Σ (x[j] − mean)² in Double.
@inline(__always) func rowCenteredSumOfSquares(_ x: UnsafePointer<Float>, _ n: Int, mean: Double) -> Double {
    var a0 = SIMD4<Double>(), a1 = SIMD4<Double>()
    let m = SIMD4<Double>(repeating: mean)
    var j = 0
    while j + 8 <= n {
        let u = SIMD4<Double>(load4(x + j)) - m, v = SIMD4<Double>(load4(x + j + 4)) - m
        a0 += u * u; a1 += v * v
        j += 8
    }
    var s = (a0 + a1).sum()
    while j < n { let c = Double(x[j]) - mean; s += c * c; j += 1 }
    return s
}

/// Σ a[j]·b[j] in fp32 with 8 lanes.
@inline(__always) func rowDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD4<Float>(), a1 = SIMD4<Float>()
    var j = 0
    while j + 8 <= n {
        a0 += load4(a + j) * load4(b + j); a1 += load4(a + j + 4) * load4(b + j + 4)
        j += 8
    }
    var s = (a0 + a1).sum()
    while j < n { s += a[j] * b[j]; j += 1 }
    return s
}

/// Σ a[j]·b[j]·c[j] in fp32 with 8 lanes.
@inline(__always) func rowDot3(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD4<Float>(), a1 = SIMD4<Float>()
    var j = 0
    while j + 8 <= n {
        a0 += load4(a + j) * load4(b + j) * load4(c + j); a1 += load4(a + j + 4) * load4(b + j + 4) * load4(c + j + 4)
        j += 8
    }
    var s = (a0 + a1).sum()
    while j < n { s += a[j] * b[j] * c[j]; j += 1 }
    return s
}

/// max over x[0..<n] (n > 0).
@inline(__always) func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m0 = SIMD4<Float>(repeating: -.infinity), m1 = m0
    var j = 0
    while j + 8 <= n {
        m0 = pointwiseMax(m0, load4(x + j)); m1 = pointwiseMax(m1, load4(x + j + 4))
        j += 8
    }
    var m = pointwiseMax(m0, m1).max()
    while j < n { m = max(m, x[j]); j += 1 }
    return m
}
