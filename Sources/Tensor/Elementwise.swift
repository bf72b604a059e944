// Element-wise kernels: add, multiply, scale, GELU (tanh), dropout. Forward next to backward.
import Foundation

@inline(__always) func checkSameCount(_ op: String, _ ts: Tensor...) {
    for t in ts.dropFirst() where t.count != ts[0].count {
        preconditionFailure("\(op): element counts differ (\(ts.map { $0.shape }))")
    }
}

// MARK: add — out = a + b (same element count); backward: da += dout, db += dout (use addInPlace)

/// out = a + b. out may alias a or b.
public func addForward(out: Tensor, _ a: Tensor, _ b: Tensor) {
    checkSameCount("addForward", out, a, b)
    let po = out.data, pa = a.data, pb = b.data
    Parallel.forEachChunk(count: out.count, grain: ParallelGrain.elementwise) { r in
        for i in r { po[i] = pa[i] + pb[i] }
    }
}

/// dst += alpha·src (axpy). Also the backward of `addForward` for each operand, and the residual add.
public func addInPlace(_ dst: Tensor, _ src: Tensor, alpha: Float = 1) {
    checkSameCount("addInPlace", dst, src)
    addInPlace(dst.data, src.data, dst.count, alpha: alpha)
}

/// dst[0..<count] += alpha·src[0..<count]: the pointer form of `addInPlace` (a bias row, a residual).
public func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int, alpha: Float = 1) {
    if alpha == 1 {
        Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
            for i in r { dst[i] += src[i] }
        }
    } else {
        Parallel.forEachChunk(count: count, grain: ParallelGrain.elementwise) { r in
            for i in r { dst[i] += alpha * src[i] }
        }
    }
}

// MARK: mul — out = a ⊙ b; backward: da += dout ⊙ b, db += dout ⊙ a

public func mulForward(out: Tensor, _ a: Tensor, _ b: Tensor) {
    checkSameCount("mulForward", out, a, b)
    let po = out.data, pa = a.data, pb = b.data
    Parallel.forEachChunk(count: out.count, grain: ParallelGrain.elementwise) { r in
        for i in r { po[i] = pa[i] * pb[i] }
    }
}

public func mulBackward(da: Tensor?, db: Tensor?, dout: Tensor, _ a: Tensor, _ b: Tensor) {
    checkSameCount("mulBackward", dout, a, b)
    let pg = dout.data, pa = a.data, pb = b.data
    let pda = da?.data, pdb = db?.data
    if let da { checkSameCount("mulBackward", dout, da) }
    if let db { checkSameCount("mulBackward", dout, db) }
    Parallel.forEachChunk(count: dout.count, grain: ParallelGrain.elementwise) { r in
        if let pda { for i in r { pda[i] += pg[i] * pb[i] } }
        if let pdb { for i in r { pdb[i] += pg[i] * pa[i] } }
    }
}

// MARK: scale — out = s·x; backward: dx += s·dout

public func scaleForward(out: Tensor, _ x: Tensor, _ s: Float) {
    checkSameCount("scaleForward", out, x)
    let po = out.data, px = x.data
    Parallel.forEachChunk(count: out.count, grain: ParallelGrain.elementwise) { r in
        for i in r { po[i] = s * px[i] }
    }
}

public func scaleBackward(dx: Tensor, dout: Tensor, _ s: Float) { addInPlace(dx, dout, alpha: s) }

// MARK: GELU, tanh approximation — torch `gelu(x, approximate="tanh")`
// y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), evaluated in the same order as ATen's CPU kernel.

/// √(2/π) = ATen's `M_SQRT2 * M_2_SQRTPI * 0.5` rounded to fp32 (a literal, so the hot loops read a
/// constant instead of calling a lazy global's initializer check each iteration; a test pins the value).
@usableFromInline let geluBeta: Float = 0.797_884_560_802_865_4
@usableFromInline let geluKappa: Float = 0.044715

/// gelu_tanh of 4 lanes (ATen's forward order).
@inline(__always) func geluTanh4(_ v: SIMD4<Float>) -> SIMD4<Float> {
    let inner = geluBeta * (v + geluKappa * (v * v * v))
    return 0.5 * v * (1 + tanhFloat4(inner))
}

/// gelu_tanh'(x) of 4 lanes (ATen's backward formula: ½(1 + t) + ½x(1 − t²)·β(1 + 3κx²), t = tanh(β(x + κx³))).
@inline(__always) func geluTanhDerivative4(_ v: SIMD4<Float>) -> SIMD4<Float> {
    let xSq = v * v
    let inner: SIMD4<Float> = geluBeta * (v + geluKappa * xSq * v)
    return geluTanhDerivativeFromTanh(v, xSq: xSq, t: tanhFloat4(inner))
}

/// The rest of `geluTanhDerivative4` once t = tanh(β(x + κx³)) is known.
@inline(__always) func geluTanhDerivativeFromTanh(_ v: SIMD4<Float>, xSq: SIMD4<Float>, t: SIMD4<Float>) -> SIMD4<Float> {
    let leftDerivative: SIMD4<Float> = 0.5 * (1 + t)
    let rightDerivative: SIMD4<Float> = (0.5 * v) * (1 - t * t)
    let innerDerivative: SIMD4<Float> = geluBeta * (1 + (3 * geluKappa) * xSq)
    return leftDerivative + rightDerivative * innerDerivative
}

/// Loads p[i..<i+n] (n ≤ 4) into lanes, zero-filling the rest (the tail of a 4-lane loop).
@inline(__always) func loadLanes(_ p: UnsafePointer<Float>, _ i: Int, _ n: Int) -> SIMD4<Float> {
    if n == 4 { return load4(p + i) }
    var v = SIMD4<Float>()
    for j in 0..<n { v[j] = p[i + j] }
    return v
}

/// p[i..<i+n] = v (or += v when `add`), lanes 0..<n.
@inline(__always) func storeLanes(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int, add: Bool) {
    if n == 4 {
        let raw = UnsafeMutableRawPointer(p + i)
        raw.storeBytes(of: add ? raw.loadUnaligned(as: SIMD4<Float>.self) + v : v, as: SIMD4<Float>.self)
        return
    }
    for j in 0..<n { if add { p[i + j] += v[j] } else { p[i + j] = v[j] } }
}

/// Runs `body(i, lanes)` over the range r in steps of 4; the last step may have fewer lanes. Every
/// element goes through the same 4-lane arithmetic, so results do not depend on where a chunk boundary
/// or the tail falls. Call it inside the `Parallel.forEachChunk` closure with an `@inline(__always)` local
/// function as the body: it is then inlined into the chunk loop, and the full steps, called with a
/// literal 4, compile without the partial-load branches. (A body captured by the chunk closure, or a large
/// closure literal, is called indirectly per step, and LLVM scalarised much of the tanh in that
/// generic-`lanes` copy: 3x slower.)
@inline(__always) func steps4(_ r: Range<Int>, _ body: (Int, Int) -> Void) {
    var i = r.lowerBound
    while i + 4 <= r.upperBound { body(i, 4); i += 4 }
    if i < r.upperBound { body(i, r.upperBound - i) }
}

/// out = gelu_tanh(x); out may alias x.
public func geluTanhForward(out: Tensor, _ x: Tensor) {
    checkSameCount("geluTanhForward", out, x)
    let po = out.data, px = x.data
    Parallel.forEachChunk(count: out.count, grain: ParallelGrain.transcendental) { r in
        @inline(__always) func step(_ i: Int, _ n: Int) {
            storeLanes(geluTanh4(loadLanes(px, i, n)), po, i, n, add: false)
        }
        steps4(r, step)
    }
}

/// dx += dout · gelu_tanh'(x).
public func geluTanhBackward(dx: Tensor, dout: Tensor, _ x: Tensor) {
    checkSameCount("geluTanhBackward", dx, dout, x)
    let pd = dx.data, pg = dout.data, px = x.data
    Parallel.forEachChunk(count: dx.count, grain: ParallelGrain.transcendental) { r in
        @inline(__always) func step(_ i: Int, _ n: Int) {
            storeLanes(loadLanes(pg, i, n) * geluTanhDerivative4(loadLanes(px, i, n)), pd, i, n, add: true)
        }
        steps4(r, step)
    }
}

// MARK: gated GELU (GeGLU, Gemma's MLP) — out = gelu_tanh(gate) ⊙ up; backward next to it

/// out = gelu_tanh(gate) ⊙ up (transformers `act_fn(gate_proj(x)) * up_proj(x)`); out may alias gate or up.
public func geluTanhGatedForward(out: Tensor, gate: Tensor, up: Tensor) {
    checkSameCount("geluTanhGatedForward", out, gate, up)
    let po = out.data, pg = gate.data, pu = up.data
    Parallel.forEachChunk(count: out.count, grain: ParallelGrain.transcendental) { r in
        @inline(__always) func step(_ i: Int, _ n: Int) {
            storeLanes(geluTanh4(loadLanes(pg, i, n)) * loadLanes(pu, i, n), po, i, n, add: false)
        }
        steps4(r, step)
    }
}

/// dgate += dout ⊙ up ⊙ gelu_tanh'(gate), dup += dout ⊙ gelu_tanh(gate) (either may be nil).
public func geluTanhGatedBackward(dgate: Tensor?, dup: Tensor?, dout: Tensor, gate: Tensor, up: Tensor) {
    checkSameCount("geluTanhGatedBackward", dout, gate, up)
    if let dgate { checkSameCount("geluTanhGatedBackward", dout, dgate) }
    if let dup { checkSameCount("geluTanhGatedBackward", dout, dup) }
    let pdg = dgate?.data, pdu = dup?.data, pd = dout.data, pg = gate.data, pu = up.data
    Parallel.forEachChunk(count: dout.count, grain: ParallelGrain.transcendental) { r in
        @inline(__always) func step(_ i: Int, _ n: Int) {
            let g = loadLanes(pd, i, n), v = loadLanes(pg, i, n)
            // One tanh for both outputs where the forward's and the derivative's arguments round alike (ATen
            // groups κx³ differently in the two), so the results stay bit-identical to geluTanh4 and
            // geluTanhDerivative4; tanh is this kernel's whole cost.
            let xSq = v * v
            let innerF = geluBeta * (v + geluKappa * (v * v * v))
            let innerD: SIMD4<Float> = geluBeta * (v + geluKappa * xSq * v)
            let tF = tanhFloat4(innerF)
            if let pdu { storeLanes(g * (0.5 * v * (1 + tF)), pdu, i, n, add: true) }
            if let pdg {
                let tD = innerD == innerF ? tF : tanhFloat4(innerD)
                let d = geluTanhDerivativeFromTanh(v, xSq: xSq, t: tD)
                storeLanes(g * loadLanes(pu, i, n) * d, pdg, i, n, add: true)
            }
        }
        steps4(r, step)
    }
}


// MARK: dropout — inverted: out = x·keep/(1-p); the keep mask is reused by the backward

/// Counter-based generator for dropout masks: element i of a call uses hash(seed, counter + i), so
/// masks are identical whatever the thread count. Each call advances `counter` by the element count.
public struct DropoutGenerator: Sendable {
    public var seed: UInt64
    public var counter: UInt64
    public init(seed: UInt64, counter: UInt64 = 0) { self.seed = seed; self.counter = counter }

    /// Uniform in [0, 1) for draw number `index`.
    @inline(__always) public func uniform(_ index: UInt64) -> Float {
        var x = seed ^ (index &* 0xD1B5_4A32_D192_ED03)
        return Float(splitMix64(&x) >> 40) * (1.0 / 16_777_216.0)
    }
}

/// out = x·keep/(1-p) with keep[i] = 1 when draw i ≥ p. `keep` is resized to x.count and written.
/// p = 0 keeps everything; p = 1 zeroes everything. out may alias x.
public func dropoutForward(out: Tensor, keep: inout [UInt8], _ x: Tensor, p: Float, generator: inout DropoutGenerator) {
    precondition(p >= 0 && p <= 1, "dropoutForward: p = \(p) outside [0, 1]")
    checkSameCount("dropoutForward", out, x)
    let n = x.count
    if keep.count != n { keep = [UInt8](repeating: 0, count: n) }
    if n == 0 { return }
    let scale: Float = p < 1 ? 1 / (1 - p) : 0
    let po = out.data, px = x.data, gen = generator
    keep.withUnsafeMutableBufferPointer { kb in
        let pk = kb.baseAddress!
        Parallel.forEachChunk(count: n, grain: ParallelGrain.transcendental) { r in
            for i in r {
                let k: UInt8 = gen.uniform(gen.counter &+ UInt64(i)) >= p ? 1 : 0
                pk[i] = k
                po[i] = k == 1 ? px[i] * scale : 0
            }
        }
    }
    generator.counter &+= UInt64(n)
}

/// dx += dout·keep/(1-p).
public func dropoutBackward(dx: Tensor, dout: Tensor, keep: [UInt8], p: Float) {
    checkSameCount("dropoutBackward", dx, dout)
    precondition(keep.count == dx.count, "dropoutBackward: mask of \(keep.count) for \(dx.count) elements")
    let scale: Float = p < 1 ? 1 / (1 - p) : 0
    let pd = dx.data, pg = dout.data
    if dx.count == 0 { return }
    keep.withUnsafeBufferPointer { kb in
        let pk = kb.baseAddress!
        Parallel.forEachChunk(count: dx.count, grain: ParallelGrain.elementwise) { r in
            for i in r where pk[i] != 0 { pd[i] += pg[i] * scale }
        }
    }
}
