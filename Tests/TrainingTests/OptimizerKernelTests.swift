import XCTest
@testable import Training

/// The chunked, multi-core AdamW pass and clipping against a plain one-element-at-a-time transcription of
/// the same fp32 formula (the torch comparison itself is OptimizerTests): bit for bit, across chunk
/// boundaries and SIMD tails, on a parameter's first step (moments not read), with skipped parameters,
/// after a restore, and with clipping folded into the update (`gradScale`).
final class OptimizerKernelTests: XCTestCase {
    /// Sizes: several 65 536-element chunks plus a tail, a tail only, an exact multiple of the chunk.
    let sizes = [70_003, 13, 2 * 65_536]
    let names = ["a.weight", "a.bias", "b.weight"]

    struct Reference {
        var m: [[Float]], v: [[Float]], steps: [Int]
        let beta1: Double, beta2: Double, eps: Double, wd: Double
        init(sizes: [Int], beta1: Double, beta2: Double, eps: Double, wd: Double) {
            m = sizes.map { [Float](repeating: 0, count: $0) }; v = m; steps = sizes.map { _ in 0 }
            self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.wd = wd
        }
        mutating func step(_ p: inout [[Float]], _ g: [[Float]], lr: Double, decay: [Bool], mask: [Bool]?) {
            let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2), e = Float(eps)
            for k in p.indices where mask?[k] ?? true {
                steps[k] += 1
                let t = Double(steps[k])
                let stepSize = Float(lr / (1 - pow(beta1, t))), bc2 = Float((1 - pow(beta2, t)).squareRoot())
                let df = Float(1 - lr * wd)
                for i in p[k].indices {
                    let gi = g[k][i]
                    var x = p[k][i]
                    if decay[k] && wd != 0 && df != 1 { x = x * df }
                    var mi = m[k][i]
                    mi = abs(w1) < 0.5 ? mi + w1 * (gi - mi) : gi - (gi - mi) * (1 - w1)
                    var vi = v[k][i] * b2
                    vi = vi + w2 * gi * gi
                    let denom = vi.squareRoot() / bc2 + e
                    m[k][i] = mi; v[k][i] = vi
                    p[k][i] = x - stepSize * mi / denom
                }
            }
        }
    }

    func grads(_ seed: UInt64) -> [[Float]] {
        var s = seed
        func next() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: s >> 11) % 20001 - 10000) * 1e-5 }
        return sizes.map { n in (0..<n).map { i in i % 97 == 0 ? 0 : next() } }
    }

    func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    func assertSame(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        assertSameBits(a, b, what, file: file, line: line)
    }

    func run(beta1: Double, masks: [[Bool]?]) {
        let initial = sizes.map { n in (0..<n).map { Float($0 % 31) * 0.01 - 0.15 } }
        let params = TestParams((0..<3).map { (names[$0], [sizes[$0]], initial[$0]) })
        let opt = AdamW(parameters: params.tensors, beta1: beta1, beta2: 0.999, eps: 1e-8, weightDecay: 0.1)
        var ref = Reference(sizes: sizes, beta1: beta1, beta2: 0.999, eps: 1e-8, wd: 0.1)
        var expected = initial
        for (s, mask) in masks.enumerated() {
            let g = grads(UInt64(s + 1))
            for j in 0..<3 { for i in 0..<sizes[j] { params.grads[j][i] = g[j][i] } }
            let lr = 1e-3 * Double(s + 1)
            opt.step(params.tensors, lr: lr, hasGradient: mask)
            ref.step(&expected, g, lr: lr, decay: opt.decayFlags, mask: mask)
            for j in 0..<3 { assertSame(Array(params.values[j]), expected[j], "β1 \(beta1) step \(s) param \(j)") }
        }
        XCTAssertEqual(opt.parameterSteps, ref.steps)
        for j in 0..<3 {
            assertSame(opt.expAvg[j], ref.m[j], "exp_avg \(j)")
            assertSame(opt.expAvgSq[j], ref.v[j], "exp_avg_sq \(j)")
        }
    }

    func testChunkedStepMatchesElementwiseFormula() {
        // step 1 of param 1 comes at optimizer step 3 (it is skipped before): its first, moment-free update
        // then runs next to the others' ordinary ones.
        run(beta1: 0.9, masks: [nil, [true, false, true], [true, true, false], nil])
    }

    func testLargeOneMinusBeta1UsesTheOtherLerpBranch() {
        run(beta1: 0.3, masks: [nil, nil])
    }

    func testRestoredMomentsAreUsed() throws {
        let initial = sizes.map { n in (0..<n).map { Float($0 % 7) * 0.02 } }
        let params = TestParams((0..<3).map { (names[$0], [sizes[$0]], initial[$0]) })
        let opt = AdamW(parameters: params.tensors, weightDecay: 0.01)
        var ref = Reference(sizes: sizes, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.01)
        ref.m = grads(7).map { $0.map { $0 * 0.5 } }
        ref.v = grads(8).map { $0.map { $0 * $0 } }
        ref.steps = [3, 3, 3]
        try opt.restore(stepCount: 3, expAvg: ref.m, expAvgSq: ref.v)
        var expected = initial
        let g = grads(9)
        for j in 0..<3 { for i in 0..<sizes[j] { params.grads[j][i] = g[j][i] } }
        opt.step(params.tensors, lr: 2e-4)
        ref.step(&expected, g, lr: 2e-4, decay: opt.decayFlags, mask: nil)
        for j in 0..<3 { assertSame(Array(params.values[j]), expected[j], "param \(j) after restore") }
        XCTAssertThrowsError(try opt.restore(stepCount: 1, expAvg: [[0]], expAvgSq: [[0]]))
    }

    func testGradScaleEqualsClipThenStep() {
        let initial = sizes.map { n in (0..<n).map { Float($0 % 13) * 0.01 } }
        let clipped = TestParams((0..<3).map { (names[$0], [sizes[$0]], initial[$0]) })
        let fused = TestParams((0..<3).map { (names[$0], [sizes[$0]], initial[$0]) })
        let a = AdamW(parameters: clipped.tensors, weightDecay: 0.1), b = AdamW(parameters: fused.tensors, weightDecay: 0.1)
        for s in 0..<2 {
            let g = grads(UInt64(20 + s)).map { $0.map { $0 * 40 } }   // norm well above max_norm
            for j in 0..<3 { for i in 0..<sizes[j] { clipped.grads[j][i] = g[j][i]; fused.grads[j][i] = g[j][i] } }
            let norm = GradientClipping.clip(clipped.tensors, maxNorm: 1)
            a.step(clipped.tensors, lr: 1e-3)
            XCTAssertEqual(GradientClipping.totalNorm(fused.tensors), norm)
            let coef = GradientClipping.coefficient(norm: norm, maxNorm: 1)
            XCTAssertLessThan(coef, 1)
            b.step(fused.tensors, lr: 1e-3, gradScale: coef)
            for j in 0..<3 {
                assertSame(Array(fused.values[j]), Array(clipped.values[j]), "step \(s) param \(j)")
                assertSame(b.expAvgSq[j], a.expAvgSq[j], "step \(s) exp_avg_sq \(j)")
            }
        }
    }

    func testTotalNormAgreesWithASerialDoubleSum() {
        let g = grads(31)
        let params = TestParams((0..<3).map { (names[$0], [sizes[$0]], [Float](repeating: 0, count: sizes[$0])) })
        for j in 0..<3 { for i in 0..<sizes[j] { params.grads[j][i] = g[j][i] } }
        var total: Float = 0
        for t in g {
            let n = Float(t.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            total += n * n
        }
        XCTAssertEqual(GradientClipping.totalNorm(params.tensors), total.squareRoot(), accuracy: total.squareRoot() * 2e-7)
        // a coefficient of 1 leaves every gradient bit as it was
        let before = params.grads.map { bits(Array($0)) }
        _ = GradientClipping.clip(params.tensors, maxNorm: 1e9)
        XCTAssertEqual(params.grads.map { bits(Array($0)) }, before)
    }
}
