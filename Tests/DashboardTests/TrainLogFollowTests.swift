import XCTest
@testable import Dashboard
import Training

/// A run with report_to none leaves no TensorBoard event files: `watch` follows its train_log.jsonl
/// and `plot` / the Runs screen read it (or the final trainer_state.json) instead.
final class TrainLogFollowTests: XCTestCase {
    /// A real 6-step run of the toy bigram model, written by RunWriter with report_to none.
    func trainedRun() throws -> (dir: URL, history: [LogRecord]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nonerun-\(UUID().uuidString)")
        var w: [String: [Float]] = [:]
        w["embed.weight"] = (0..<(7 * 4)).map { Float(sin(Double($0) * 1.3)) * 0.5 }
        w["norm.weight"] = [1, 1, 1, 1]
        w["head.weight"] = (0..<(7 * 4)).map { Float(cos(Double($0) * 0.7)) * 0.3 }
        let model = try BigramLM(vocab: 7, dim: 4, weights: w)
        let rows: [(ids: [Int], labels: [Int])] = (0..<8).map { r in
            let ids = (0..<5).map { (r + 2 * $0) % 6 + 1 }
            return (ids, ids)
        }
        var c = SFTConfig()
        c.outputDir = dir.path; c.maxSteps = 6; c.loggingSteps = 2; c.perDeviceTrainBatchSize = 2
        c.learningRate = 0.05; c.saveStrategy = .no; c.reportTo = ["none"]
        let t = try Trainer(config: c, model: model, train: TokenRowsSource(rows: rows))
        t.writer = RunWriter(outputDir: dir, runName: "r")
        try t.run()
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path))
        return (dir, t.logHistory)
    }

    func testWatchFollowsTheJSONLLog() throws {
        let (dir, history) = try trainedRun()
        let follower = EventFileFollower(logDir: dir.path)
        let rec = RecordingObserver()
        follower.addObserver(rec)
        XCTAssertTrue(try follower.poll(), "the final train_runtime record marks the run finished")
        let logged = rec.events.compactMap { e -> LogRecord? in if case .logged(let r) = e { return r } else { return nil } }
        let want = history.filter { $0["loss"] != nil }
        XCTAssertEqual(logged.map(\.step), [2, 4, 6])
        XCTAssertEqual(logged.map(\.step), want.map(\.step))
        for (g, w) in zip(logged, want) {
            for k in ["loss", "grad_norm", "learning_rate", "mean_token_accuracy", "num_tokens", "epoch"] {
                XCTAssertEqual(g[k], w[k], "step \(g.step) \(k)")
            }
        }
        XCTAssertTrue(rec.events.contains { if case .finished(let r) = $0 { return r["train_loss"] == history.last?["train_loss"] } else { return false } })
        XCTAssertEqual(follower.state, .finished)
        // The JSONL file itself is accepted as LOGDIR too.
        let direct = EventFileFollower(logDir: dir.appendingPathComponent("train_log.jsonl").path)
        XCTAssertTrue(try direct.poll())
    }

    func testPlotAndRunsScreenReadTheRunWithoutEventFiles() throws {
        let (dir, history) = try trainedRun()
        let scanner = RunsScanner(readEvents: LiveDataSource.readEventFile)
        let run = try XCTUnwrap(scanner.load(dir.path))
        XCTAssertEqual(run.source, "trainer_state.json")
        XCTAssertEqual(run.scalars["loss"]?.map(\.value), history.compactMap { $0["loss"] })
        // Mid-run (no trainer_state.json yet, no checkpoint): the JSONL log alone.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("trainer_state.json"))
        let live = try XCTUnwrap(scanner.load(dir.path))
        XCTAssertEqual(live.source, "train_log.jsonl")
        XCTAssertEqual(live.scalars["loss"]?.map(\.step), [2, 4, 6])
        XCTAssertEqual(live.scalars["loss"]?.map(\.value), history.compactMap { $0["loss"] })
        XCTAssertEqual(live.globalStep, 6)
    }

    /// A record still being written (no newline yet) waits for the next read; a broken line is an error
    /// that names the file and the line.
    func testPartialAndBrokenLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jsonl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("train_log.jsonl").path
        try "{\"loss\": 2.5, \"step\": 1, \"time\": 1.0}\n{\"loss\": 2.4, \"st".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try RunsScanner.readTrainLog(path).count, 1)
        try "{\"loss\": 2.5, \"step\": 1}\nnot json\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunsScanner.readTrainLog(path)) { e in
            XCTAssertEqual("\(e)", "\(path): line 2 is not a JSON object (expected one log record per line)")
        }
    }
}

/// The Train screen shows TRL's entropy and token accuracy from the newest log record.
final class TokenMetricsHeaderTests: XCTestCase {
    func testNewestEntropyAndAccuracy() {
        var m = RunModel()
        XCTAssertNil(m.tokenMetricsSummary)
        m.apply(.logged(LogRecord(step: 2, values: [("loss", 2.5), ("entropy", 3.21456), ("mean_token_accuracy", 0.25), ("epoch", 0.5)])))
        m.apply(.logged(LogRecord(step: 4, values: [("loss", 2.1), ("entropy", 2.5), ("mean_token_accuracy", 0.375), ("epoch", 1)])))
        XCTAssertEqual(m.tokenMetricsSummary, "entropy 2.500  accuracy 0.375")
        var buf = ScreenBuffer(width: 120, height: 30)
        TrainScreen.render(m, TrainState(), into: &buf, buf.bounds, ctx: RenderContext(theme: Theme.builtIn("dark")!), hasEngine: false)
        XCTAssertTrue(buf.text.contains("entropy 2.500  accuracy 0.375"), buf.text)
    }
}
