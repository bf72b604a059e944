import XCTest
@testable import Training

/// The trainer loop against transformers 5.24 `Trainer` runs of the same bigram model
/// (Scripts/fixtures/gen_training.py: toy_*.json) with TRL's metric definitions.
/// Tolerances: losses and grad norms 2e-5 relative (fp32, different summation order), learning rate
/// and epoch exact to 1e-12, accuracy 1e-6, num_tokens exact, final weights 1e-4 absolute.
final class TrainerParityTests: XCTestCase {
    struct Toy {
        var config: SFTConfig
        var model: BigramLM
        var train: TokenRowsSource
        var eval: TokenRowsSource
        var fixture: [String: Any]
    }

    static func loadToy(_ name: String) throws -> Toy {
        let fx = try XCTUnwrap(loadJSON("toy_\(name).json") as? [String: Any])
        let initW = (fx["init"] as! [String: Any]).mapValues(floats)
        let model = try BigramLM(vocab: fx["vocab"] as! Int, dim: fx["dim"] as! Int, weights: initW)
        func rows(_ k: String) -> TokenRowsSource {
            TokenRowsSource(rows: (fx[k] as! [[String: Any]]).map { (ids: $0["input_ids"] as! [Int], labels: $0["labels"] as! [Int]) })
        }
        let a = fx["args"] as! [String: Any]
        var c = SFTConfig()
        c.perDeviceTrainBatchSize = a["per_device_train_batch_size"] as! Int
        c.perDeviceEvalBatchSize = a["per_device_eval_batch_size"] as! Int
        c.gradientAccumulationSteps = a["gradient_accumulation_steps"] as! Int
        c.numTrainEpochs = (a["num_train_epochs"] as! NSNumber).doubleValue
        c.maxSteps = (a["max_steps"] as? Int) ?? -1
        c.learningRate = a["learning_rate"] as! Double
        c.weightDecay = a["weight_decay"] as! Double
        c.loggingSteps = (a["logging_steps"] as! NSNumber).doubleValue
        c.maxGradNorm = (a["max_grad_norm"] as! NSNumber).doubleValue
        c.lrSchedulerType = LRSchedulerType(rawValue: (a["lr_scheduler_type"] as? String) ?? "linear")!
        c.warmupSteps = (a["warmup_steps"] as? NSNumber)?.doubleValue ?? 0
        c.evalStrategy = SFTConfig.IntervalStrategy(rawValue: (a["eval_strategy"] as? String) ?? "no")!
        c.evalSteps = (a["eval_steps"] as? NSNumber)?.doubleValue
        c.shuffle = (a["train_sampling_strategy"] as? String) != "sequential"
        c.saveStrategy = .no
        c.seed = a["seed"] as! Int
        return Toy(config: c, model: model, train: rows("train"), eval: rows("eval"), fixture: fx)
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let toy = try Self.loadToy(name)
        let trainer = try Trainer(config: toy.config, model: toy.model, train: toy.train,
                                  eval: toy.config.evalStrategy == .no ? nil : toy.eval)
        XCTAssertEqual(trainer.maxSteps, toy.fixture["max_steps"] as? Int, "\(name) max_steps", file: file, line: line)
        try trainer.run()
        let expected = toy.fixture["log_history"] as! [[String: Any]]
        XCTAssertEqual(trainer.logHistory.count, expected.count, "\(name): number of log records", file: file, line: line)
        for (got, want) in zip(trainer.logHistory, expected) {
            XCTAssertEqual(got.step, want["step"] as? Int, "\(name) step", file: file, line: line)
            let gotKeys = got.values.map(\.0).filter { !$0.hasSuffix("_runtime") && !$0.hasSuffix("_per_second") }
            XCTAssertEqual(Set(gotKeys), Set(want.keys.filter { $0 != "step" }), "\(name) step \(got.step) keys", file: file, line: line)
            for (k, wantAny) in want where k != "step" {
                let w = (wantAny as! NSNumber).doubleValue
                guard let g = got[k] else { continue }
                let tol: Double
                switch k {
                case "learning_rate", "epoch", "num_tokens", "eval_num_tokens", "total_flos": tol = 1e-12 * max(1, abs(w))
                case "mean_token_accuracy", "eval_mean_token_accuracy": tol = 1e-6
                default: tol = 2e-5 * abs(w)
                }
                XCTAssertEqual(g, w, accuracy: tol, "\(name) step \(got.step) \(k)", file: file, line: line)
            }
        }
        let final = (toy.fixture["final"] as! [String: Any]).mapValues(floats)
        for p in toy.model.trainableParameters {
            assertClose(Array(p.value), final[p.name]!, abs: 1e-4, rel: 0, "\(name) final \(p.name)", file: file, line: line)
        }
    }

    func testDefaultLinearShuffledThreeEpochs() throws { try check("default") }
    func testCosineWarmupRatioClippingAndStepEval() throws { try check("cosine_clip_eval") }
    func testSequentialMaxStepsPartialAccumulation() throws { try check("sequential_maxsteps") }
    func testEpochEvalNoAccumulation() throws { try check("epoch_eval") }

    /// The other GA normalisations and the unshuffled order give different numbers on the same run,
    /// so the parity checks above discriminate.
    func testOtherModesDiverge() throws {
        let want = (try Self.loadToy("default").fixture["log_history"] as! [[String: Any]]).compactMap { $0["loss"] as? Double }
        for mutate in [{ (c: inout SFTConfig) in c.gaLossNormalization = .mean },
                       { (c: inout SFTConfig) in c.gaLossNormalization = .legacySum },
                       { (c: inout SFTConfig) in c.shuffle = false }] {
            var toy = try Self.loadToy("default")
            mutate(&toy.config)
            let t = try Trainer(config: toy.config, model: toy.model, train: toy.train)
            try t.run()
            let got = t.logHistory.compactMap { $0["loss"] }
            XCTAssertEqual(got.count, want.count)
            XCTAssertGreaterThan(zip(got, want).map { abs($0 - $1) }.max() ?? 0, 1e-3)
        }
    }

    func testDecayGroupsMatchTrainer() throws {
        let toy = try Self.loadToy("default")
        let names = toy.model.trainableParameters.filter(AdamW.usesWeightDecay).map(\.name)
        XCTAssertEqual(names, toy.fixture["decay_names"] as? [String])
    }

    func testEpochCountsLikeTrainer() throws {
        // Spec §4.8: N = 259,155, bs 8, GA 4 → 32,395 micro-batches, 8,099 optimizer steps.
        struct Counted: BatchSource {
            var sampleCount: Int
            func batch(indices: [Int]) throws -> TrainingBatch { TokenBatch(inputIDs: [], labels: [], attentionMask: []) }
        }
        var c = SFTConfig(); c.perDeviceTrainBatchSize = 8; c.gradientAccumulationSteps = 4; c.numTrainEpochs = 1
        let t = try Trainer(config: c, model: try BigramLM(vocab: 3, dim: 2, seed: 1), train: Counted(sampleCount: 259_155))
        XCTAssertEqual(t.lenDataloader, 32_395)
        XCTAssertEqual(t.numUpdateStepsPerEpoch, 8_099)
        XCTAssertEqual(t.maxSteps, 8_099)
        XCTAssertEqual(Array(t.sampleOrder(epoch: 0).prefix(6)), [62457, 34114, 72210, 24337, 129249, 11040])
    }
}
