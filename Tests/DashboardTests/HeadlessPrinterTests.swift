import XCTest
@testable import Dashboard
import Training

final class HeadlessPrinterTests: XCTestCase {
    /// The log dicts the real HF Trainer printed (Scripts/fixtures/gen_dashboard.py), rebuilt from
    /// the same run's trainer_state.json log_history with the keys in the Trainer's order.
    func testTrainerDictMatchesHFTrainerOutput() throws {
        let printed = try String(contentsOf: fixtureURL("hf_printed_logs.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("hf_run/trainer_state.json"))) as! [String: Any]
        let history = state["log_history"] as! [[String: Any]]
        XCTAssertEqual(printed.count, history.count)
        for (line, entry) in zip(printed, history) {
            // Key order as printed; values from the JSON (what the engine will hold).
            let keys = line.dropFirst().dropLast().components(separatedBy: ", ").map { $0.components(separatedBy: "': ")[0].replacingOccurrences(of: "'", with: "") }
            let rec = LogRecord(step: (entry["step"] as! NSNumber).intValue, values: keys.map { ($0, (entry[$0] as! NSNumber).doubleValue) })
            XCTAssertEqual(HeadlessPrinter.trainerDict(rec), line)
        }
    }

    func captureLines(_ format: HeadlessPrinter.Format, _ events: [EngineEvent], progressEvery: Int = 0) throws -> [String] {
        let pipe = Pipe()
        let p = HeadlessPrinter(format: format, progressEvery: progressEvery, out: pipe.fileHandleForWriting, err: pipe.fileHandleForWriting)
        for e in events { p.engine(didEmit: e) }
        try pipe.fileHandleForWriting.close()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    var script: [EngineEvent] {
        let info = RunInfo(outputDir: "out", maxSteps: 4, numEpochs: 1, stepsPerEpoch: 4, numTrainSamples: 8, trainableParameters: 123, totalParameters: 456)
        var ev: [EngineEvent] = [.started(info)]
        for s in 1...4 {
            ev.append(.step(StepMetrics(step: s, epoch: Double(s) / 4, loss: 2.0 / Double(s), gradNorm: 1.5, learningRate: 1e-4, tokens: 50 * s,
                                        tokensPerSecond: 100, elapsedSeconds: 2 * Double(s), residentBytes: 200 << 20)))
            if s % 2 == 0 { ev.append(.logged(LogRecord(step: s, values: [("loss", 2.0 / Double(s)), ("grad_norm", 1.5), ("learning_rate", 1e-4), ("epoch", Double(s) / 4)]))) }
        }
        ev.append(.checkpointSaved(step: 4, path: "out/checkpoint-4"))
        ev.append(.finished(LogRecord(step: 4, values: [("train_runtime", 8.0), ("train_loss", 1.2), ("epoch", 1.0)])))
        return ev
    }

    func testTrainerStyleLines() throws {
        let lines = try captureLines(.trainer, script)
        XCTAssertEqual(lines[0], "***** Running training *****")
        XCTAssertTrue(lines.contains("  Total optimization steps = 4"))
        XCTAssertTrue(lines.contains("{'loss': '1', 'grad_norm': '1.5', 'learning_rate': '0.0001', 'epoch': '0.5'}"), "\(lines)")
        XCTAssertTrue(lines.contains(" 50%|█████     | 2/4 [00:04<00:04,  2.00s/it, 100 tok/s, RSS 200 MiB]"), "\(lines)")
        XCTAssertTrue(lines.contains("Saving model checkpoint to out/checkpoint-4"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("100%") }.count, 1, "no repeated final progress line")
        XCTAssertEqual(lines.suffix(2), ["{'train_runtime': '8', 'train_loss': '1.2', 'epoch': '1'}", "Training completed."])
    }

    func testJSONLLinesParse() throws {
        let lines = try captureLines(.jsonl, script)
        XCTAssertEqual(lines.count, script.count)
        let objs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(objs.map { $0["event"] as! String }.prefix(3), ["started", "step", "step"])
        XCTAssertEqual((objs[2]["loss"] as! NSNumber).doubleValue, 1.0)
        XCTAssertEqual(objs.last?["event"] as? String, "finished")
        XCTAssertEqual(HeadlessPrinter.jsonString("a\"b\n\u{1}"), "\"a\\\"b\\n\\u0001\"")
    }

    func testExitCodes() {
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .finished), 0)
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .failed), 1)
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .stopped), 130)
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .failed, started: false, failedToStart: 2), 2)
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .failed, started: true, failedToStart: 2), 1)
        XCTAssertEqual(HeadlessPrinter.exitCode(for: .stopped, started: false, failedToStart: 2), 130)
    }

    func testRunnerReturnsWhenEngineStops() throws {
        let e = ScriptedEngine()
        let pipe = Pipe()
        let p = HeadlessPrinter(out: pipe.fileHandleForWriting, err: pipe.fileHandleForWriting)
        let code = try HeadlessRunner.run(e, printer: p) {
            DispatchQueue.global().async { e.emit(.stateChanged(.stopping)); e.emit(.stateChanged(.stopped)) }
        }
        XCTAssertEqual(code, 130)
    }
}
