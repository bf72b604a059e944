// `sftdeck-bench fastmath`: the fp32 SIMD tanh/exp (Tensor/FastMath.swift) against what they replaced —
// the Double-evaluated tanhFloat4ViaDouble and scalar libm expf — alone and inside the kernels of a
// training step: gated GELU forward/backward on T×I = 512×2048 (Gemma's MLP at 2×256 tokens) and the
// fused loss pass crossEntropyWithEntropy on 256×32768 logits. The "old" kernels are copies of the
// previous kernel code kept here so both sides run in the same binary; old and new runs alternate. Figures are ns per element of
// process CPU time (all threads; robust on a shared machine) with wall time and cores busy beside them.
// Also prints the max ulp error of both functions over every 31st fp32 bit pattern and its successor (release only).
import Dispatch
import Foundation
import Tensor

/// (CPU seconds, wall seconds, cores busy) of the run with the least CPU time among `reps` (after a warm-up).
fileprivate func measure(reps: Int, _ body: () -> Void) -> (cpu: Double, wall: Double, cores: Double) {
    body()
    var best = (cpu: Double.infinity, wall: 0.0, cores: 0.0)
    for _ in 0..<reps {
        let c0 = processCPUSeconds(), t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9, cpu = processCPUSeconds() - c0
        if cpu < best.cpu { best = (cpu, wall, cpu / wall) }
    }
    return best
}

// MARK: the previous kernels (copies, so old and new run side by side)

fileprivate let beta = Float(2.0.squareRoot() * (2.0 / Double.pi.squareRoot()) * 0.5), kappa: Float = 0.044715

@inline(__always) fileprivate func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD4<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD4<Float>.self)
}
@inline(__always) fileprivate func store(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int, add: Bool) {
    let raw = UnsafeMutableRawPointer(p + i)
    raw.storeBytes(of: add ? raw.loadUnaligned(as: SIMD4<Float>.self) + v : v, as: SIMD4<Float>.self)
}

/// The previous gated GELU forward (count a multiple of 4, as the bench's shapes are), tanhFloat4ViaDouble inlined.
fileprivate func gatedForward(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
    Parallel.forEachChunk(count: n / 4, grain: ParallelGrain.transcendental / 4) { r in
        for c in r {
            let i = 4 * c, v = load(gate, i)
            let inner = beta * (v + kappa * (v * v * v))
            store(0.5 * v * (1 + tanhFloat4ViaDouble(inner)) * load(up, i), out, i, add: false)
        }
    }
}

/// The previous gated GELU backward (both gradients), the kernel's arithmetic with tanhFloat4ViaDouble.
fileprivate func gatedBackward(_ dgate: UnsafeMutablePointer<Float>, _ dup: UnsafeMutablePointer<Float>,
                               _ dout: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int) {
    Parallel.forEachChunk(count: n / 4, grain: ParallelGrain.transcendental / 4) { r in
        for c in r {
            let i = 4 * c, g = load(dout, i), v = load(gate, i)
            let xSq = v * v
            let innerF = beta * (v + kappa * (v * v * v))
            let innerD: SIMD4<Float> = beta * (v + kappa * xSq * v)
            let tF = tanhFloat4ViaDouble(innerF)
            store(g * (0.5 * v * (1 + tF)), dup, i, add: true)
            let tD = innerD == innerF ? tF : tanhFloat4ViaDouble(innerD)
            let left: SIMD4<Float> = 0.5 * (1 + tD), right: SIMD4<Float> = (0.5 * v) * (1 - tD * tD)
            let innerDerivative: SIMD4<Float> = beta * (1 + (3 * kappa) * xSq)
            store(g * load(up, i) * (left + right * innerDerivative), dgate, i, add: true)
        }
    }
}

/// The previous crossEntropyWithEntropy row loop: scalar max/argmax, libm expf, sequential sums.
fileprivate func oldCrossEntropyWithEntropy(_ pl: UnsafeMutablePointer<Float>, rows n: Int, vocab v: Int, targets: [Int32], scale: Float) -> Double {
    let rowLoss = UnsafeMutablePointer<Double>.allocate(capacity: n), rowEntropy = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { rowLoss.deallocate(); rowEntropy.deallocate() }
    targets.withUnsafeBufferPointer { tb in
        let pt = tb.baseAddress!
        Parallel.forEachChunk(count: n, grain: max(1, ParallelGrain.transcendental / v)) { rows in
            for r in rows {
                let t = Int(pt[r]), x = pl + r * v
                var m = x[0], arg = 0
                for j in 1..<v where x[j] > m { m = x[j]; arg = j }
                let target = x[t]
                var sum: Double = 0, s: Float = 0, w: Float = 0
                for j in 0..<v {
                    let d = x[j] - m
                    let e = expf(d)
                    sum += Double(e); s += e; w += e * d
                    x[j] = e
                }
                rowLoss[r] = Double(m) + Foundation.log(sum) - Double(target) + (arg == t ? 1 : 0)   // + correct, for the checksum
                rowEntropy[r] = logf(s) - w / s
                let factor = Float(Double(scale) / sum)
                for j in 0..<v { x[j] *= factor }
                x[t] -= scale
            }
        }
    }
    var total = 0.0
    for r in 0..<n { total += rowLoss[r] + Double(rowEntropy[r]) }
    return total
}

// MARK: accuracy sweep

/// Max ulp error (in units of the fp32 spacing at the exact value) over every `stride`-th bit pattern of
/// magnitude ≤ limit, both signs, and the count more than one fp32 step from the correctly rounded value.
fileprivate func maxUlp(limit: Float, stride: UInt32, _ f4: (SIMD4<Float>) -> SIMD4<Float>, _ ref: (Double) -> Double) -> (Double, Int, Int) {
    var worst = 0.0, beyondOne = 0, total = 0
    var bits: UInt32 = 0
    while bits <= limit.bitPattern {
        let a = Float(bitPattern: bits)
        let x = SIMD4<Float>(a, -a, Float(bitPattern: bits + 1), -Float(bitPattern: bits + 1))
        let y = f4(x)
        for l in 0..<4 {
            let exact = ref(Double(x[l])), rounded = Float(exact)
            if rounded.isInfinite || exact == 0 { if y[l] != rounded { beyondOne += 1 }; total += 1; continue }
            let binade = max(Int(exact.magnitude.exponent), -126)
            worst = max(worst, abs(Double(y[l]) - exact) / Double(sign: .plus, exponent: binade - 23, significand: 1))
            let steps = abs(Int(Int32(bitPattern: y[l].bitPattern)) - Int(Int32(bitPattern: rounded.bitPattern)))
            if steps > 1 { beyondOne += 1 }
            total += 1
        }
        bits += stride
    }
    return (worst, beyondOne, total)
}

/// `measure` for two bodies at once, alternating their runs so both see the same machine load.
fileprivate func measurePair(reps: Int, _ a: () -> Void, _ b: () -> Void)
    -> ((cpu: Double, wall: Double, cores: Double), (cpu: Double, wall: Double, cores: Double)) {
    var ra = (cpu: Double.infinity, wall: 0.0, cores: 0.0), rb = ra
    a(); b()
    for _ in 0..<reps {
        let one = measure(reps: 1, a), two = measure(reps: 1, b)
        if one.cpu < ra.cpu { ra = one }
        if two.cpu < rb.cpu { rb = two }
    }
    return (ra, rb)
}

func runFastMathBench() {
    setvbuf(stdout, nil, _IOLBF, 0)
    print("fastmath: \(Parallel.coreCount) cores; ns per element of CPU time (all threads), wall ns and cores busy in brackets")
    func line(_ label: String, _ elements: Int, old: (cpu: Double, wall: Double, cores: Double), new: (cpu: Double, wall: Double, cores: Double)) {
        let e = Double(elements)
        print(String(format: "%-44@ old %7.3f ns [%6.3f, %.2f]  new %7.3f ns [%6.3f, %.2f]  old/new %5.2fx",
                     label as NSString, old.cpu * 1e9 / e, old.wall * 1e9 / e, old.cores,
                     new.cpu * 1e9 / e, new.wall * 1e9 / e, new.cores, old.cpu / new.cpu))
    }

    // the functions alone, one thread, 4 lanes per call, 2^22 elements
    let n = 1 << 22
    let probe = Tensor.randomUniform([n], seed: 11, low: -10, high: 10), sink = Tensor(zeros: [n])
    let pp = probe.data, ps = sink.data
    let (oldTanh, newTanh) = measurePair(reps: 7, {
        var i = 0; while i < n { store(tanhFloat4ViaDouble(load(pp, i)), ps, i, add: false); i += 4 }
    }, {
        var i = 0; while i < n { store(tanhFloat4(load(pp, i)), ps, i, add: false); i += 4 }
    })
    line("tanh, 1 thread (ViaDouble -> tanhFloat4)", n, old: oldTanh, new: newTanh)
    let expProbe = Tensor.randomUniform([n], seed: 12, low: -30, high: 0), pe = expProbe.data
    let (libmExp, fastExp) = measurePair(reps: 7, { for i in 0..<n { ps[i] = expf(pe[i]) } }, {
        var i = 0; while i < n { store(expFloat4(load(pe, i)), ps, i, add: false); i += 4 }
    })
    line("exp, 1 thread (libm expf -> expFloat4)", n, old: libmExp, new: fastExp)
    let libmTanh = measure(reps: 3) { for i in 0..<n { ps[i] = tanhf(pp[i]) } }
    print(String(format: "  (libm tanhf for scale: %.3f ns per element)", libmTanh.cpu * 1e9 / Double(n)))

    // gated GELU on Gemma's MLP activations: T×I = 512×2048, both library kernels and the old copies
    let t = 512, inter = 2048, count = t * inter
    let gate = Tensor.randomNormal([t, inter], seed: 21, std: 1.5), up = Tensor.randomNormal([t, inter], seed: 22)
    let dout = Tensor.randomNormal([t, inter], seed: 23), out = Tensor(zeros: [t, inter])
    let dgate = Tensor(zeros: [t, inter]), dup = Tensor(zeros: [t, inter])
    let (oldF, newF) = measurePair(reps: 7, { gatedForward(out.data, gate.data, up.data, count) },
                                   { geluTanhGatedForward(out: out, gate: gate, up: up) })
    line("geluTanhGatedForward 512x2048", count, old: oldF, new: newF)
    let (oldB, newB) = measurePair(reps: 7, { gatedBackward(dgate.data, dup.data, dout.data, gate.data, up.data, count) },
                                   { geluTanhGatedBackward(dgate: dgate, dup: dup, dout: dout, gate: gate, up: up) })
    line("geluTanhGatedBackward 512x2048", count, old: oldB, new: newB)

    // the fused loss pass: 256 rows of a 32768 vocabulary, loss + entropy + dlogits (the logits are copied
    // back before each run, as the pass overwrites them; the copy's time is measured alone and subtracted)
    let rows = 256, vocab = 32768
    let logits = Tensor.randomNormal([rows, vocab], seed: 31, std: 2), work = Tensor(zeros: [rows, vocab])
    var g = SeededGenerator(seed: 32)
    let targets = (0..<rows).map { _ in Int32(g.next() % UInt64(vocab)) }
    var checksum = 0.0
    let (oldCE, newCE) = measurePair(reps: 5, {
        memcpy(work.data, logits.data, 4 * rows * vocab)
        checksum += oldCrossEntropyWithEntropy(work.data, rows: rows, vocab: vocab, targets: targets, scale: 1 / Float(rows))
    }, {
        memcpy(work.data, logits.data, 4 * rows * vocab)
        let s = targets.withUnsafeBufferPointer {
            crossEntropyWithEntropy(logits: work.data, rows: rows, vocab: vocab, targets: $0, scale: 1 / Float(rows), computeGrad: true)
        }
        checksum += s.crossEntropy.lossSum + s.entropySum
    })
    let copyOnly = measure(reps: 5) { memcpy(work.data, logits.data, 4 * rows * vocab) }
    func minus(_ a: (cpu: Double, wall: Double, cores: Double), _ b: (cpu: Double, wall: Double, cores: Double)) -> (cpu: Double, wall: Double, cores: Double) {
        (a.cpu - b.cpu, a.wall - b.wall, (a.cpu - b.cpu) / max(1e-12, a.wall - b.wall))
    }
    line("crossEntropyWithEntropy 256x32768 (grad)", rows * vocab, old: minus(oldCE, copyOnly), new: minus(newCE, copyOnly))
    // where the fused pass's time goes: without the gradient (no store, no scale pass), the entropy alone
    // (max + one exp pass with fp32 sums), the softmax of the same rows (max + exp pass + scale pass)
    let noGrad = measure(reps: 3) {
        let s = targets.withUnsafeBufferPointer {
            crossEntropyWithEntropy(logits: logits.data, rows: rows, vocab: vocab, targets: $0, scale: 1, computeGrad: false)
        }
        checksum += s.entropySum
    }
    let entropyOnly = measure(reps: 3) {
        checksum += targets.withUnsafeBufferPointer { tokenEntropySum(logits: logits.data, targets: $0, rows: rows, vocab: vocab) }.sum
    }
    let softmaxRows = measure(reps: 3) { softmaxForward(out: work, logits) }
    let e = Double(rows * vocab)
    print(String(format: "  (new, ns per element: without the gradient %.3f, tokenEntropySum %.3f, softmaxForward %.3f)",
                 noGrad.cpu * 1e9 / e, entropyOnly.cpu * 1e9 / e, softmaxRows.cpu * 1e9 / e))
    let sm = Tensor.randomNormal([512, 1024], seed: 41, std: 3), smOut = Tensor(zeros: [512, 1024])
    let newSM = measure(reps: 5) { softmaxForward(out: smOut, sm) }
    print(String(format: "softmaxForward 512x1024: %.3f ns per element (checksum %.3f)", newSM.cpu * 1e9 / Double(512 * 1024), checksum))

    #if !DEBUG
    // accuracy: every 31st fp32 pattern (and its successor), both signs
    let (tanhUlp, tanhFar, tanhTotal) = maxUlp(limit: 10, stride: 31, tanhFloat4) { Foundation.tanh($0) }
    let (expUlp, expFar, expTotal) = maxUlp(limit: 104, stride: 31, expFloat4) { Foundation.exp($0) }
    print(String(format: "accuracy over %d / %d values: tanhFloat4 max %.3f ulp (%d more than 1 step from correctly rounded); expFloat4 max %.3f ulp (%d)",
                 tanhTotal, expTotal, tanhUlp, tanhFar, expUlp, expFar))
    #endif
}
