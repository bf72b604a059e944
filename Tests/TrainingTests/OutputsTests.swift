import XCTest
@testable import Training

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

func tempDir(_ name: String = #function) -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-training-tests")
        .appendingPathComponent(name.filter { $0.isLetter || $0.isNumber } + "-\(getpid())")
    try? FileManager.default.removeItem(at: u)
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

final class TensorBoardTests: XCTestCase {
    func testCRC32CCheckValues() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), 0xC78A_B0E5)
    }

    /// Golden bytes from reference-spec §8.3 (torch SummaryWriter output).
    func testGoldenScalarEventAndRecord() {
        let ev = TensorBoardEvent.scalar(tag: "train/loss", value: 1.25, step: 10, wallTime: 1_700_000_000.5)
        XCTAssertEqual(hex(ev), "0900002040fc54d941100a2a130a110a0a747261696e2f6c6f7373150000a03f")
        XCTAssertEqual(hex(TensorBoardEvent.record(ev)), "2000000000000000" + "29eda950" + hex(ev) + "147a6def")
        let first = TensorBoardEvent.record(TensorBoardEvent.fileVersion(wallTime: 1_700_000_000.0))
        XCTAssertEqual(hex(Array(first.prefix(12))), "4800000000000000" + "fe92489d")
        XCTAssertEqual(hex(Array(first.suffix(4))), "0ccc0c95")
    }

    func testWriterReaderRoundTrip() throws {
        let dir = tempDir()
        let w = try TensorBoardWriter(logDir: dir)
        w.addText("args", "{\"a\": 1}")
        for s in 1...5 { w.addScalar("train/loss", Double(s) * 0.5, step: s * 10, wallTime: 1000 + Double(s)) }
        w.addScalar("eval/loss", 2.5, step: 50)
        w.flush()
        let r = try TensorBoardReader(path: dir)
        XCTAssertEqual(r.fileVersion, "brain.Event:2")
        XCTAssertEqual(r.tags, ["eval/loss", "train/loss"])
        XCTAssertEqual(r.series("train/loss").map(\.step), [10, 20, 30, 40, 50])
        XCTAssertEqual(r.series("train/loss").map(\.value), [0.5, 1.0, 1.5, 2.0, 2.5])
        XCTAssertEqual(r.texts["args/text_summary"], ["{\"a\": 1}"])
        // A corrupted byte is reported with the file name, not skipped.
        var data = try Data(contentsOf: w.url)
        data[data.count - 6] ^= 0xFF
        try data.write(to: w.url)
        XCTAssertThrowsError(try TensorBoardReader(path: w.url)) { e in
            XCTAssertTrue("\(e)".contains("corrupt record"), "\(e)")
        }
    }

    func testTagRewriteLikeTransformers() {
        XCTAssertEqual(TensorBoardWriter.tag(forLogKey: "loss"), "train/loss")
        XCTAssertEqual(TensorBoardWriter.tag(forLogKey: "eval_loss"), "eval/loss")
        XCTAssertEqual(TensorBoardWriter.tag(forLogKey: "test_x"), "test/x")
        XCTAssertEqual(TensorBoardWriter.tag(forLogKey: "train_loss"), "train/train_loss")
    }
}

final class CheckpointTests: XCTestCase {
    func makeTrainer(_ toy: TrainerParityTests.Toy, out: URL, saveSteps: Double = 4, limit: Int? = nil) throws -> Trainer {
        var c = toy.config
        c.outputDir = out.path
        c.saveStrategy = .steps; c.saveSteps = saveSteps; c.saveTotalLimit = limit
        c.reportTo = ["tensorboard"]
        let t = try Trainer(config: c, model: toy.model, train: toy.train)
        t.writer = RunWriter(outputDir: out, runName: "test-run")
        return t
    }

    /// Stop after step 6, resume from the checkpoint the stop wrote into a fresh model: every later
    /// log record is bit-identical to the uninterrupted run's.
    func testResumeReproducesUninterruptedRun() throws {
        let outA = tempDir("resumeA"), outB = tempDir("resumeB")
        let full = try makeTrainer(try TrainerParityTests.loadToy("default"), out: outA)
        try full.run()
        XCTAssertEqual(RunWriter.checkpoints(in: outA).map(\.step), [4, 8, 12])

        let first = try makeTrainer(try TrainerParityTests.loadToy("default"), out: outB)
        first.poll = { [unowned first] in first.globalStep == 6 ? .stop : .continue }
        try first.run()
        XCTAssertEqual(first.globalStep, 6)
        XCTAssertEqual(RunWriter.checkpoints(in: outB).map(\.step), [4, 6])

        let resumed = try makeTrainer(try TrainerParityTests.loadToy("default"), out: outB)
        let ckpt = try XCTUnwrap(RunWriter.resolveResume("true", outputDir: outB))
        XCTAssertEqual(ckpt.lastPathComponent, "checkpoint-6")
        try resumed.run(resumeFrom: ckpt)
        let a = full.logHistory.filter { $0["loss"] != nil }, b = resumed.logHistory.filter { $0["loss"] != nil }
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.step, y.step)
            for k in ["loss", "grad_norm", "learning_rate", "epoch", "mean_token_accuracy", "num_tokens"] {
                XCTAssertEqual(x[k], y[k], "step \(x.step) \(k)")
            }
        }
        for (p, q) in zip(full.model.trainableParameters, resumed.model.trainableParameters) {
            XCTAssertEqual(Array(p.value), Array(q.value), p.name)
        }
    }

    /// report_to decides whether TensorBoard event files exist, as the Trainer's callbacks do: none (TRL's
    /// default) → no runs/ folder; tensorboard or all → event files. train_log.jsonl and the final
    /// trainer_state.json hold the whole log_history either way.
    func testReportToDecidesEventFiles() throws {
        for (yaml, wantEvents) in [("none", false), ("tensorboard", true), ("all", true), ("[none]", false)] {
            let out = tempDir("report-\(yaml.filter(\.isLetter))")
            var toy = try TrainerParityTests.loadToy("default")
            toy.config.reportTo = try SFTConfig.parse(yaml: "report_to: \(yaml)\n").config.reportTo
            toy.config.outputDir = out.path; toy.config.saveStrategy = .no
            let t = try Trainer(config: toy.config, model: toy.model, train: toy.train)
            t.writer = RunWriter(outputDir: out, runName: "r")
            try t.run()
            let runs = out.appendingPathComponent("runs")
            XCTAssertEqual(FileManager.default.fileExists(atPath: runs.path), wantEvents, "report_to: \(yaml)")
            if wantEvents {
                let tb = try TensorBoardReader(path: runs.appendingPathComponent("r"))
                XCTAssertEqual(tb.series("train/loss").count, t.logHistory.filter { $0["loss"] != nil }.count, "report_to: \(yaml)")
            }
            let lines = try String(contentsOf: out.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, t.logHistory.count, "report_to: \(yaml)")
            let state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("trainer_state.json"))) as? [String: Any])
            XCTAssertEqual((state["log_history"] as? [Any])?.count, t.logHistory.count, "report_to: \(yaml)")
            XCTAssertEqual(state["global_step"] as? Int, 12)
        }
    }

    func testCheckpointLayoutRotationAndEvents() throws {
        let out = tempDir()
        let t = try makeTrainer(try TrainerParityTests.loadToy("default"), out: out, saveSteps: 2, limit: 2)
        try t.run()
        let cps = RunWriter.checkpoints(in: out)
        XCTAssertEqual(cps.map(\.step), [10, 12])
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: cps[1].url.path))
        XCTAssertEqual(files, ["model.safetensors", "optimizer.safetensors", "scheduler.json", "rng_state.json",
                               "trainer_state.json", "README.md", "sftdeck.yaml"])
        // No temporary names left behind.
        let top = try FileManager.default.contentsOfDirectory(atPath: out.path)
        XCTAssertFalse(top.contains { $0.hasPrefix(".") }, "\(top)")
        // trainer_state.json has the Trainer's fields and log_history entries with "step".
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: cps[1].url.appendingPathComponent("trainer_state.json"))) as! [String: Any]
        for k in ["best_global_step", "best_metric", "best_model_checkpoint", "epoch", "eval_steps", "global_step",
                  "is_hyper_param_search", "is_local_process_zero", "is_world_process_zero", "log_history", "logging_steps",
                  "max_steps", "num_input_tokens_seen", "num_train_epochs", "save_steps", "stateful_callbacks",
                  "total_flos", "train_batch_size", "trial_name", "trial_params"] {
            XCTAssertNotNil(state[k], k)
        }
        XCTAssertEqual(state["global_step"] as? Int, 12)
        let hist = state["log_history"] as! [[String: Any]]
        XCTAssertEqual(hist.first?["step"] as? Int, 2)
        XCTAssertNotNil(hist.first?["loss"])
        // TensorBoard: one point per log, Trainer tags.
        let tb = try TensorBoardReader(path: out.appendingPathComponent("runs/test-run"))
        XCTAssertEqual(tb.series("train/loss").map(\.step), [2, 4, 6, 8, 10, 12])
        for tag in ["train/grad_norm", "train/learning_rate", "train/epoch", "train/mean_token_accuracy", "train/num_tokens",
                    "train/train_loss", "train/total_flos", "train/train_runtime"] {
            XCTAssertFalse(tb.series(tag).isEmpty, tag)
        }
        XCTAssertEqual(tb.series("train/loss").map(\.value), t.logHistory.compactMap { $0["loss"] }.map { Double(Float($0)) })
        XCTAssertNotNil(tb.texts["args/text_summary"])
        // JSONL: one line per log record.
        let lines = try String(contentsOf: out.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, t.logHistory.count)
        // Final save_model output and model card.
        let card = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.hasPrefix("---\n") && card.contains("- trl") && card.contains("- sft"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
    }

    func testNaNLossStopsWithStepAndBatch() throws {
        var toy = try TrainerParityTests.loadToy("default")
        toy.config.learningRate = 1e30   // blows the weights up after the first update
        toy.config.maxGradNorm = 0
        let t = try Trainer(config: toy.config, model: toy.model, train: toy.train)
        XCTAssertThrowsError(try t.run()) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("loss is") && s.contains("at step") && s.contains("micro-batch") && s.contains("samples"), s)
        }
    }
}

final class EngineTests: XCTestCase {
    func testEventsPauseResumeStop() throws {
        let toy = try TrainerParityTests.loadToy("default")
        let out = tempDir()
        var c = toy.config; c.outputDir = out.path; c.saveStrategy = .no
        let engine = TrainingEngine {
            let t = try Trainer(config: c, model: toy.model, train: toy.train)
            t.writer = RunWriter(outputDir: out, runName: "r")
            return t
        }
        let rec = RecordingObserver(), second = RecordingObserver()
        let reachedStep3 = DispatchSemaphore(value: 0)
        rec.onEvent = { e in if case .step(let m) = e, m.step == 3 { engine.send(.pause); reachedStep3.signal() } }
        engine.addObserver(rec); engine.addObserver(second)
        engine.start()
        reachedStep3.wait()
        // Paused between steps: no further step events arrive.
        Thread.sleep(forTimeInterval: 0.05)
        let stepsWhilePaused = rec.events.filter { if case .step = $0 { return true } else { return false } }.count
        XCTAssertEqual(stepsWhilePaused, 3)
        XCTAssertEqual(engine.state, .paused)
        engine.send(.saveNow)
        engine.send(.resume)
        Thread.sleep(forTimeInterval: 0.05)
        engine.send(.stop)
        engine.wait()
        let events = rec.events
        XCTAssertEqual(events.count, second.events.count)
        guard case .started(let info)? = events.first else { return XCTFail("first event \(String(describing: events.first))") }
        XCTAssertEqual(info.maxSteps, 12)
        // saveNow sent while paused after step 3 is served before step 4 starts.
        XCTAssertTrue(events.contains { if case .checkpointSaved(let s, _) = $0 { return s == 3 } else { return false } })
        XCTAssertTrue(events.contains { if case .finished = $0 { return true } else { return false } })
        XCTAssertTrue([RunState.stopped, .finished].contains(engine.state))
    }

    func testFailureIsReportedAsEvent() throws {
        let engine = TrainingEngine { throw TrainingError("model folder x: no config.json") }
        let rec = RecordingObserver()
        engine.addObserver(rec)
        engine.start(); engine.wait()
        XCTAssertEqual(engine.state, .failed)
        XCTAssertTrue(rec.events.contains(.failed(reason: "model folder x: no config.json")))
    }
}

final class SaveStrategyTests: XCTestCase {
    /// save_strategy epoch: one checkpoint at each epoch end (steps 4, 8, 12 for 4 updates per epoch).
    func testEpochCheckpoints() throws {
        let out = tempDir()
        var toy = try TrainerParityTests.loadToy("default")
        toy.config.outputDir = out.path; toy.config.saveStrategy = .epoch
        let t = try Trainer(config: toy.config, model: toy.model, train: toy.train)
        t.writer = RunWriter(outputDir: out, runName: "r")
        try t.run()
        XCTAssertEqual(RunWriter.checkpoints(in: out).map(\.step), [4, 8, 12])
        XCTAssertThrowsError(try RunWriter.resolveResume("true", outputDir: tempDir("empty"))) { e in
            XCTAssertTrue("\(e)".contains("has no checkpoint-N folder"), "\(e)")
        }
    }
}
