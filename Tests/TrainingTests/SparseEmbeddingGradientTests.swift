import XCTest
import Tensor
@testable import Training

/// Row-tracked embedding gradients (`GradientRows`): the clip norm, clipping and AdamW that skip the rows no
/// batch named give the bits of the dense path — kernels on random tables (rows crossing the 65 536-element
/// chunks, widths that are not a multiple of 4 or 8, clip scales below 1, a non-finite scale, weight decay,
/// a restore), and a whole Gemma 3 run with modules_to_save [lm_head, embed_tokens] with tracking on and off.
final class SparseEmbeddingGradientTests: XCTestCase {
    /// Two copies of the same tables: one dense, one whose table gradient is row-tracked.
    final class Pair {
        let dense: TestParams, sparse: TestParams
        let rows: GradientRows
        let sparseTensors: [TrainableTensor]
        init(rows: Int, width: Int) {
            let table = (0..<(rows * width)).map { Float($0 % 37) * 0.01 - 0.18 }
            let bias = (0..<7).map { Float($0) * 0.1 }
            dense = TestParams([("embed_tokens.weight", [rows, width], table), ("other.weight", [7], bias)])
            sparse = TestParams([("embed_tokens.weight", [rows, width], table), ("other.weight", [7], bias)])
            self.rows = GradientRows(rows: rows, width: width)
            let t = sparse.tensors[0]
            sparseTensors = [TrainableTensor(name: t.name, shape: t.shape, value: t.value, grad: t.grad, gradientRows: self.rows),
                             sparse.tensors[1]]
        }
        /// Writes the same gradient rows (and the dense tensor's) into both.
        func setGradients(marked: [Int], seed: UInt64) {
            var s = seed
            func next() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: s >> 11) % 20001 - 10000) * 1e-4 }
            let w = rows.width
            for r in marked {
                rows.mark(r)
                for c in 0..<w { let x = next(); dense.grads[0][r * w + c] = x; sparse.grads[0][r * w + c] = x }
            }
            for i in 0..<7 { let x = next(); dense.grads[1][i] = x; sparse.grads[1][i] = x }
        }
        func zero() {
            dense.grads[0].update(repeating: 0); dense.grads[1].update(repeating: 0)
            rows.clear(zeroing: sparse.grads[0].baseAddress!); sparse.grads[1].update(repeating: 0)
        }
    }

    func markedRows(_ step: Int, rows: Int) -> [Int] {
        // repeats, neighbours (coalesced runs), the first and last row, a different set every step
        var r = [0, rows - 1, 5, 6, 7, 5, (step * 37) % rows, (step * 101 + 3) % rows]
        r += (0..<20).map { ($0 * 13 + step * 7) % rows }
        return r
    }

    func checkSteps(width: Int, weightDecay: Double, steps: Int = 5) {
        let rows = 500   // 150 000+ elements: three chunks, rows across chunk boundaries
        let pair = Pair(rows: rows, width: width)
        let a = AdamW(parameters: pair.dense.tensors, weightDecay: weightDecay)
        let b = AdamW(parameters: pair.sparseTensors, weightDecay: weightDecay)
        for step in 0..<steps {
            pair.setGradients(marked: markedRows(step, rows: rows), seed: UInt64(step + 1))
            let na = GradientClipping.totalNorm(pair.dense.tensors), nb = GradientClipping.totalNorm(pair.sparseTensors)
            XCTAssertEqual(na.bitPattern, nb.bitPattern, "width \(width) step \(step): norm \(nb) vs dense \(na)")
            let scale = GradientClipping.coefficient(norm: na, maxNorm: 0.5)
            XCTAssertLessThan(scale, 1, "the test should exercise clipping")
            a.step(pair.dense.tensors, lr: 1e-2, gradScale: scale)
            b.step(pair.sparseTensors, lr: 1e-2, gradScale: scale)
            assertSameBits(Array(pair.dense.values[0]), Array(pair.sparse.values[0]), "width \(width) wd \(weightDecay) step \(step): table")
            assertSameBits(Array(pair.dense.values[1]), Array(pair.sparse.values[1]), "step \(step): other")
            pair.zero()
            XCTAssertTrue(pair.sparse.grads[0].allSatisfy { $0 == 0 }, "clear leaves the gradient zero")
        }
        assertSameBits(Array(a.expAvg[0]), Array(b.expAvg[0]), "exp_avg")
        assertSameBits(Array(a.expAvgSq[0]), Array(b.expAvgSq[0]), "exp_avg_sq")
    }

    func testNormAndAdamWMatchTheDensePath() {
        checkSteps(width: 300, weightDecay: 0)   // 300·500: rows cross the 65 536 chunks, width % 8 = 4
        checkSteps(width: 301, weightDecay: 0)   // odd width: groups of four straddle rows
    }

    func testWeightDecayTakesTheDensePathWithTheSameBits() {
        checkSteps(width: 300, weightDecay: 0.1)
    }

    /// A NaN clip coefficient poisons every element in torch (NaN · 0); the tracked parameter does the same.
    func testNonFiniteScaleReachesEveryRow() {
        let pair = Pair(rows: 300, width: 300)
        let a = AdamW(parameters: pair.dense.tensors), b = AdamW(parameters: pair.sparseTensors)
        pair.setGradients(marked: [3, 4], seed: 9)
        a.step(pair.dense.tensors, lr: 1e-2, gradScale: .nan)
        b.step(pair.sparseTensors, lr: 1e-2, gradScale: .nan)
        assertSameBits(Array(pair.dense.values[0]), Array(pair.sparse.values[0]))
        XCTAssertTrue(pair.sparse.values[0].allSatisfy(\.isNaN))
        // the NaN moments keep every row updating afterwards, tracked or not
        pair.zero()
        pair.setGradients(marked: [7], seed: 10)
        a.step(pair.dense.tensors, lr: 1e-2); b.step(pair.sparseTensors, lr: 1e-2)
        assertSameBits(Array(a.expAvg[0]), Array(b.expAvg[0]), "exp_avg after the NaN step")
    }

    func testClipScalesOnlyMarkedRowsWithTheSameBits() {
        let pair = Pair(rows: 400, width: 301)
        pair.setGradients(marked: markedRows(3, rows: 400), seed: 4)
        let na = GradientClipping.clip(pair.dense.tensors, maxNorm: 0.1)
        let nb = GradientClipping.clip(pair.sparseTensors, maxNorm: 0.1)
        XCTAssertEqual(na.bitPattern, nb.bitPattern)
        assertSameBits(Array(pair.dense.grads[0]), Array(pair.sparse.grads[0]))
        assertSameBits(Array(pair.dense.grads[1]), Array(pair.sparse.grads[1]))
    }

    /// A restored optimizer knows which rows carry moments: the next steps equal the uninterrupted ones.
    func testRestoreKeepsUpdatingTheRowsWithMoments() throws {
        let pair = Pair(rows: 500, width: 300)
        let a = AdamW(parameters: pair.dense.tensors)
        let b = AdamW(parameters: pair.sparseTensors)
        for step in 0..<2 {
            pair.setGradients(marked: markedRows(step, rows: 500), seed: UInt64(step + 20))
            a.step(pair.dense.tensors, lr: 1e-2); b.step(pair.sparseTensors, lr: 1e-2)
            pair.zero()
        }
        let c = AdamW(parameters: pair.sparseTensors)
        try c.restore(stepCount: b.stepCount, expAvg: (0..<2).map { b.expAvg[$0] }, expAvgSq: (0..<2).map { b.expAvgSq[$0] },
                      parameterSteps: b.parameterSteps)
        for step in 2..<4 {
            pair.setGradients(marked: [1, 2], seed: UInt64(step + 20))   // rows with moments from before get no gradient
            a.step(pair.dense.tensors, lr: 1e-2); c.step(pair.sparseTensors, lr: 1e-2)
            assertSameBits(Array(pair.dense.values[0]), Array(pair.sparse.values[0]), "after restore, step \(step)")
            pair.zero()
        }
    }

    /// The Double sum itself (the fp32 norm would hide a change of order): same bits as the dense sum, with
    /// runs that start and end inside groups of four and a tail, over values of very different magnitudes.
    func testSumOfSquaresOverRunsHasTheDenseBits() {
        let n = 1003
        var g = [Float](repeating: 0, count: n)
        let runs = [1..<6, 6..<9, 17..<18, 301..<602, 998..<1003]
        var s: UInt64 = 7
        for r in runs { for i in r { s = s &* 6364136223846793005 &+ 1; g[i] = Float(Int64(bitPattern: s >> 20) % 1000) * powf(10, Float(i % 7) - 3) } }
        g.withUnsafeBufferPointer { p in
            let dense = GradientClipping.sumOfSquares(p.baseAddress!, n)
            let sparse = GradientClipping.sumOfSquares(p.baseAddress!, n, only: runs)
            XCTAssertEqual(dense.bitPattern, sparse.bitPattern, "\(sparse) vs dense \(dense)")
        }
    }

    func testElementRunsAreSortedAndCoalesced() {
        let r = GradientRows(rows: 10, width: 3)
        for i in [7, 2, 3, 9, 2, 8] { r.mark(i) }
        XCTAssertEqual(r.count, 5)
        XCTAssertEqual(r.elementRuns(), [6..<12, 21..<30])
        XCTAssertEqual(clippedRuns(r.elementRuns(), 8, 25), [0..<4, 13..<17])
    }

    /// The tiny Gemma 3 of the SFTTrainer parity run (modules_to_save lm_head + embed_tokens, batch 2, GA 2,
    /// clipping, warmup): tracking on and off give the same logged losses and grad norms and the same adapter.
    func testGemmaRunIsBitIdenticalWithAndWithoutTracking() throws {
        func run(tracking: Bool) throws -> (Trainer, [Float]) {
            let saved = GradientRows.enabled
            GradientRows.enabled = tracking
            defer { GradientRows.enabled = saved }
            let sft = try fixtureURL("sft")
            let yaml = try String(contentsOf: sft.appendingPathComponent("mm/sft.yaml"), encoding: .utf8)
                .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
                .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("adapter_init").path)
                .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent("mm").path)
                .replacingOccurrences(of: "OUTPUT_DIR", with: tempDir("sparse-\(tracking)").path)
            var c = try SFTConfig.parse(yaml: yaml).config
            c.maxSteps = 6; c.evalStrategy = .no; c.saveStrategy = .no
            let t = try makeTrainer(c)
            let embed = try XCTUnwrap(t.model.trainableParameters.first { $0.name.contains("embed_tokens") })
            XCTAssertEqual(embed.gradientRows != nil, tracking, "the embed_tokens copy is row-tracked only when enabled")
            try t.run()
            return (t, Array(embed.value))
        }
        let (dense, denseTable) = try run(tracking: false)
        let (sparse, sparseTable) = try run(tracking: true)
        let ld = dense.logHistory.filter { $0["loss"] != nil }, ls = sparse.logHistory.filter { $0["loss"] != nil }
        XCTAssertEqual(ld.count, 3)
        XCTAssertEqual(ld.map { $0["loss"]?.bitPattern }, ls.map { $0["loss"]?.bitPattern })
        XCTAssertEqual(ld.map { $0["grad_norm"]?.bitPattern }, ls.map { $0["grad_norm"]?.bitPattern })
        assertSameBits(Array(denseTable), Array(sparseTable))
        XCTAssertNotEqual(denseTable, try initialTable(), "the table trained")
    }

    func initialTable() throws -> [Float] {
        let f = try SafeTensorsFile(url: try fixtureURL("sft/adapter_init/adapter_model.safetensors"))
        let name = try XCTUnwrap(f.names.first { $0.contains("embed_tokens") })
        return try f.floats(name)
    }
}
