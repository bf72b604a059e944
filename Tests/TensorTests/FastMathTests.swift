import Foundation
import XCTest
@testable import Tensor

/// The fp32 SIMD exp and tanh (FastMath.swift) against the Double functions, over dense sweeps of fp32 bit
/// patterns plus edge values, and the exp pass the loss kernels share.
final class FastMathTests: XCTestCase {
    /// Error of `y` in units of the fp32 ulp at `exact` (the spacing of the binade `exact` lies in,
    /// subnormal spacing below 2⁻¹²⁶).
    static func ulpError(_ y: Float, _ exact: Double) -> Double {
        if exact == 0 { return y == 0 ? 0 : .infinity }
        if Float(exact).isInfinite { return y == Float(exact) ? 0 : .infinity }   // fp32 overflow
        let binade = max(Int(Double(exact).magnitude.exponent), -126)
        return abs(Double(y) - exact) / Double(sign: .plus, exponent: binade - 23, significand: 1)
    }

    /// Distance in representable fp32 values between `y` and the fp32 rounding of `exact`.
    static func stepsFromRounded(_ y: Float, _ exact: Double) -> Int {
        func key(_ f: Float) -> Int { let u = Int(f.bitPattern & 0x7FFF_FFFF); return f.sign == .minus ? -u : u }
        return abs(key(y) - key(Float(exact)))
    }

    struct Sweep { var maxUlp = 0.0, worstX: Float = 0, maxSteps = 0, notRounded = 0, total = 0 }

    /// Every `stride`-th fp32 bit pattern with magnitude in [0, limit] (both signs) plus `extra`, 4 lanes
    /// per call; also checks that the scalar form gives the lanes' bits.
    static func sweep(limit: Float, stride: UInt32, extra: [Float], _ f4: (SIMD4<Float>) -> SIMD4<Float>,
                      _ f1: (Float) -> Float, _ reference: (Double) -> Double) -> Sweep {
        var xs = extra
        var bits: UInt32 = 0
        while bits <= limit.bitPattern { xs.append(Float(bitPattern: bits)); xs.append(-Float(bitPattern: bits)); bits += stride }
        while xs.count % 4 != 0 { xs.append(0) }
        var s = Sweep()
        for i in Swift.stride(from: 0, to: xs.count, by: 4) {
            let x = SIMD4(xs[i], xs[i + 1], xs[i + 2], xs[i + 3])
            let y = f4(x)
            for l in 0..<4 {
                let exact = reference(Double(x[l]))
                let e = ulpError(y[l], exact), steps = stepsFromRounded(y[l], exact)
                if e > s.maxUlp { s.maxUlp = e; s.worstX = x[l] }
                s.maxSteps = max(s.maxSteps, steps); s.notRounded += steps == 0 ? 0 : 1; s.total += 1
            }
            if i % 4096 == 0 { XCTAssertEqual(f1(x[0]).bitPattern, y[0].bitPattern, "scalar form at \(x[0])") }
        }
        return s
    }

    // MARK: tanh

    func testTanhFloatWithinOneUlpOverDenseSweep() {
        // every 97th pattern in [−10, 10]: ~22 M values in a release build; debug runs every 997th
        // (~2.2 M) to stay inside the suite's time budget — the same code, just sparser
        let stride: UInt32 = _isDebugAssertConfiguration() ? 997 : 97
        let edges: [Float] = [0, 0.875, Float(0.875).nextDown, Float(0.875).nextUp, 9.0, 9.01, 9.1, 9.2, 50, .leastNonzeroMagnitude,
                              .leastNormalMagnitude, 1e-20, 0.5, 1, 2, 4]
        let s = Self.sweep(limit: 10, stride: stride, extra: edges + edges.map { -$0 }, tanhFloat4, tanhFloat) { Foundation.tanh($0) }
        print(String(format: "tanhFloat4: max %.3f ulp (at %g), ≤ %d step from correctly rounded, %d of %d not correctly rounded",
                     s.maxUlp, s.worstX, s.maxSteps, s.notRounded, s.total))
        XCTAssertLessThanOrEqual(s.maxUlp, 1.5, "max ulp error (measured 1.21 over every 97th pattern)")
        XCTAssertLessThanOrEqual(s.maxSteps, 1, "at most one fp32 step from the correctly rounded value")
        XCTAssertLessThanOrEqual(Double(s.notRounded) / Double(s.total), 5e-3, "fraction not correctly rounded (measured ~0.2 %)")
    }

    func testTanhFloatSpecialValues() {
        XCTAssertTrue(tanhFloat(.nan).isNaN)
        XCTAssertTrue(tanhFloat4(SIMD4(1, .nan, -2, 0))[1].isNaN)
        XCTAssertEqual(tanhFloat(0).bitPattern, Float(0).bitPattern)
        XCTAssertEqual(tanhFloat(-0.0).bitPattern, Float(-0.0).bitPattern, "sign of zero kept")
        XCTAssertEqual(tanhFloat(.infinity), 1)
        XCTAssertEqual(tanhFloat(-.infinity), -1)
        for x: Float in [9.02, 9.1, 12, 1e10, .greatestFiniteMagnitude] {
            XCTAssertEqual(tanhFloat(x), 1, "tanh(\(x))"); XCTAssertEqual(tanhFloat(-x), -1, "tanh(-\(x))")
        }
        // tiny arguments: tanh(x) = x to fp32 precision (subnormals included)
        for x: Float in [.leastNonzeroMagnitude, 1e-40, .leastNormalMagnitude, 1e-20, 1e-8, -1e-8] {
            XCTAssertEqual(tanhFloat(x), x, "tanh(\(x))")
        }
        // odd: tanh(−x) = −tanh(x) exactly
        var g = SeededGenerator(seed: 11)
        for _ in 0..<2_000 {
            let x = (g.nextUniform() * 2 - 1) * 12
            XCTAssertEqual(tanhFloat(-x).bitPattern, (-tanhFloat(x)).bitPattern)
        }
    }

    /// The previous Double-evaluated tanh keeps its own bound (it is the bench's baseline).
    func testTanhViaDoubleWithinOneUlpAndAlmostAlwaysCorrectlyRounded() {
        let edges: [Float] = [0, 0.05, 0.15, 9.0, 9.1, 9.2, 50, .infinity, .leastNonzeroMagnitude]
        let s = Self.sweep(limit: 10, stride: _isDebugAssertConfiguration() ? 19_997 : 997, extra: edges + edges.map { -$0 },
                           tanhFloat4ViaDouble, { tanhFloat4ViaDouble(SIMD4(repeating: $0))[0] }) { Foundation.tanh($0) }
        XCTAssertLessThanOrEqual(s.maxSteps, 1)
        XCTAssertLessThanOrEqual(Double(s.notRounded) / Double(s.total), 1e-3)
        XCTAssertTrue(tanhFloat4ViaDouble(SIMD4(repeating: .nan))[0].isNaN)
        XCTAssertEqual(tanhFloat4ViaDouble(SIMD4(repeating: -0.0))[0].sign, .minus)
    }

    // MARK: exp

    func testExpFloatWithinOneUlpOverDenseSweep() {
        // [−104, 104]: the normal range, the subnormal results below −87.34, the overflow above 88.72
        let stride: UInt32 = _isDebugAssertConfiguration() ? 997 : 97
        let edges: [Float] = [0, 1, 88.72, 88.7228, 88.7229, 88.73, 89, 100, 1000, -87.33, -87.34, -87.35, -100,
                              -103.2, -103.27, -103.28, -103.97, -103.98, -104, -105, -1000, 1e-30, -1e-30,
                              .leastNonzeroMagnitude, 0.5 * Float(M_LN2), -0.5 * Float(M_LN2)]
        let s = Self.sweep(limit: 104, stride: stride, extra: edges, expFloat4, expFloat) { Foundation.exp($0) }
        print(String(format: "expFloat4: max %.3f ulp (at %g), ≤ %d step from correctly rounded, %d of %d not correctly rounded",
                     s.maxUlp, s.worstX, s.maxSteps, s.notRounded, s.total))
        XCTAssertLessThanOrEqual(s.maxUlp, 1.0, "max ulp error (measured 0.99 over every 97th pattern)")
        XCTAssertLessThanOrEqual(s.maxSteps, 1, "at most one fp32 step from the correctly rounded value")
    }

    func testExpFloatSpecialValues() {
        XCTAssertEqual(expFloat(0), 1)
        XCTAssertEqual(expFloat(-0.0), 1)
        XCTAssertTrue(expFloat(.nan).isNaN)
        XCTAssertTrue(expFloat4(SIMD4(0, -1, .nan, 1))[2].isNaN)
        XCTAssertEqual(expFloat(.infinity), .infinity)
        XCTAssertEqual(expFloat(-.infinity), 0)
        XCTAssertEqual(expFloat(88.73), .infinity, "overflow")
        XCTAssertTrue(expFloat(88.72).isFinite)
        XCTAssertEqual(expFloat(-104), 0, "underflow")
        XCTAssertEqual(expFloat(-1e30), 0)
        XCTAssertGreaterThan(expFloat(-103.2), 0, "subnormal result")
        XCTAssertEqual(expFloat(-87.3), Float(Foundation.exp(Double(Float(-87.3)))))
        XCTAssertEqual(expFloat(-Float.greatestFiniteMagnitude), 0)
        XCTAssertEqual(expFloat(.greatestFiniteMagnitude), .infinity)
    }

    // MARK: the shared row pass

    /// max/argmax in 4 lanes against the scalar first-maximum loop, on ties, tails and short rows.
    func testRowMaxAndArgmaxIsTheFirstMaximum() {
        var g = SeededGenerator(seed: 5)
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 23, 24, 31, 64, 67] {
            for trial in 0..<20 {
                // few distinct values, so ties are common; from trial 10 on, both signs and the extremes
                // (order keys of −3e38 and +3e38 differ by more than Int32.max)
                let pool: [Float] = trial < 10 ? [0, 1, 2, 3] : [-3e38, 3e38, -.infinity, .infinity, -2.5, -1, 7, 1e-40, -1e-40]
                var x = (0..<n).map { _ in pool[Int(g.nextUniform() * Float(pool.count)) % pool.count] }
                if trial == 0 { x = [Float](repeating: 1, count: n) }
                if trial == 1 { x = [Float](repeating: -.infinity, count: n) }
                var m = x[0], arg = 0
                for j in 1..<n where x[j] > m { m = x[j]; arg = j }
                let r = x.withUnsafeBufferPointer { rowMaxAndArgmax($0.baseAddress!, n) }
                XCTAssertEqual(r.max, m, "n \(n)"); XCTAssertEqual(r.index, arg, "n \(n) \(x)")
            }
        }
    }

    /// e_j and the three sums: e_j equal expFloat(x_j − m) bit for bit; the sums match Double sums.
    func testExpShiftedRowValuesAndSums() {
        for n in [1, 3, 4, 5, 8, 11, 100] {
            let x = Tensor.randomNormal([n], seed: UInt64(40 + n), std: 3).toArray()
            let m = x.max()!
            var y = [Float](repeating: .nan, count: n)
            let sums = x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
                expShiftedRow(px.baseAddress!, n, max: m, store: py.baseAddress!, double: true, float: true, weighted: true) } }
            var s = 0.0, w = 0.0
            for j in 0..<n {
                XCTAssertEqual(y[j].bitPattern, expFloat(x[j] - m).bitPattern, "e_\(j) of \(n)")
                let e = Foundation.exp(Double(x[j] - m)); s += e; w += e * Double(x[j] - m)
            }
            XCTAssertEqual(sums.double, s, accuracy: 3e-7 * s)
            XCTAssertEqual(Double(sums.float), s, accuracy: 1e-6 * s)
            XCTAssertEqual(Double(sums.weighted), w, accuracy: 1e-6 * abs(w) + 1e-6 * s)
            // the sums alone (no store) are the same bits
            let alone = x.withUnsafeBufferPointer { expShiftedRow($0.baseAddress!, n, max: m, store: nil, double: true, float: true, weighted: true) }
            XCTAssertEqual(alone.double, sums.double); XCTAssertEqual(alone.float, sums.float); XCTAssertEqual(alone.weighted, sums.weighted)
        }
    }

    /// The fused loss pass gives the bits of tokenEntropySum, crossEntropyForward and crossEntropyBackward run
    /// one after another (its documented contract), on a vocabulary with a 4-lane tail and an ignored row.
    func testCrossEntropyWithEntropyEqualsTheSeparateKernels() {
        let n = 5, v = 4 * 9 + 3
        let logits = Tensor.randomNormal([n, v], seed: 61, std: 4)
        logits.data[2 * v + 7] = 30                       // a dominant logit
        let targets: [Int32] = [3, -100, 7, Int32(v - 1), 0]
        let entropy = targets.withUnsafeBufferPointer { tokenEntropySum(logits: logits.data, targets: $0, rows: n, vocab: v) }
        let ce = crossEntropyForward(logits: logits, targets: targets)
        let grad = Tensor(zeros: logits.shape)
        crossEntropyBackward(dlogits: grad, logits: logits, targets: targets, scale: 0.25)
        let fused = logits.copy()
        let stats = targets.withUnsafeBufferPointer {
            crossEntropyWithEntropy(logits: fused.data, rows: n, vocab: v, targets: $0, scale: 0.25, computeGrad: true)
        }
        XCTAssertEqual(stats.crossEntropy, ce)
        XCTAssertEqual(stats.entropySum, entropy.sum)
        XCTAssertEqual(fused.toArray(), grad.toArray())
        let noGrad = logits.copy()
        let statsNoGrad = targets.withUnsafeBufferPointer {
            crossEntropyWithEntropy(logits: noGrad.data, rows: n, vocab: v, targets: $0, scale: 0.25, computeGrad: false)
        }
        XCTAssertEqual(statsNoGrad, stats)
        XCTAssertEqual(noGrad.toArray(), logits.toArray(), "logits untouched without the gradient")
    }

    /// A masked score's probability is exactly 0 and the rest renormalise, as with torch's finfo.min mask.
    func testMaskedAttentionRowsGiveExactZeros() {
        let l = 3, s = 9, d = 4
        let q = Tensor.randomNormal([1, l, 1, d], seed: 71), k = Tensor.randomNormal([1, s, 1, d], seed: 72)
        let v = Tensor.randomNormal([1, s, 1, d], seed: 73)
        var padding = [Int32](repeating: 1, count: s); padding[4] = 0
        let mask = AttentionMask(causal: false, keyPadding: padding)
        let probs = Tensor(zeros: [1, 1, l, s]), out = Tensor(zeros: q.shape)
        attentionForward(out: out, probs: probs, q: q, k: k, v: v, scale: 0.5, mask: mask)
        for i in 0..<l {
            let row = Array(probs.toArray()[(i * s)..<((i + 1) * s)])
            XCTAssertEqual(row[4], 0)
            XCTAssertEqual(Double(row.reduce(0, +)), 1, accuracy: 1e-6)
        }
    }
}

/// The GELU constant is a literal (no lazy global in the hot loops): it must be ATen's value.
final class GeluConstantTests: XCTestCase {
    func testGeluBetaIsATensValue() {
        XCTAssertEqual(geluBeta, Float(2.0.squareRoot() * (2.0 / Double.pi.squareRoot()) * 0.5))
        XCTAssertEqual(geluKappa, 0.044715)
    }
}
