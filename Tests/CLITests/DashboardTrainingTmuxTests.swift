import Foundation
import XCTest

/// The dashboard on a real run: a tiny Gemma 3 (random weights, LoRA) and its processor from the
/// Training fixtures, trained by the real engine under tmux.
final class DashboardTrainingTmuxTests: XCTestCase {
    var llava: URL { repoRoot().appendingPathComponent("Tests/TrainingTests/Fixtures/training/sft/llava") }

    func makeRun(maxSteps: Int) throws -> (dir: URL, config: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-dash-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let yaml = """
        model_name_or_path: \(llava.appendingPathComponent("model").path)
        dataset_name: \(llava.appendingPathComponent("dataset").path)
        output_dir: \(dir.appendingPathComponent("out").path)
        use_peft: true
        lora_r: 4
        lora_alpha: 8
        per_device_train_batch_size: 2
        max_steps: \(maxSteps)
        learning_rate: 0.02
        logging_steps: 1
        save_steps: 100000
        """
        let config = dir.appendingPathComponent("run.yaml").path
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        return (dir, config)
    }

    func stepShown(_ screen: String) -> Int? {
        guard let r = screen.range(of: #"step (\d+)/"#, options: .regularExpression) else { return nil }
        return Int(screen[r].dropFirst(5).dropLast())
    }

    func testInspectorShowsTrainedAndMaskedTokens() throws {
        let (dir, config) = try makeRun(maxSteps: 5)
        let t = try TmuxSession(["--config", config], cwd: dir.path)
        t.waitFor("3 Config")
        t.send("1")
        t.waitFor("parquet conversations")
        t.send("Enter")
        let s = t.waitFor("token legend") { $0.contains("■ trained ") && $0.contains("■ image 4") }
        // Counts come from the collator's label reasons: some trained, the image's 4 soft tokens and
        // its boundary masked, and the totals line adds up.
        func count(_ pattern: String) -> Int? {
            guard let r = s.range(of: pattern + #" (\d+)"#, options: .regularExpression) else { return nil }
            return Int(s[r].split(separator: " ").last!)
        }
        let trained = try XCTUnwrap(count("■ trained")), boundary = try XCTUnwrap(count("■ image-boundary"))
        XCTAssertGreaterThan(trained, 0, s)
        XCTAssertGreaterThanOrEqual(boundary, 1, s)
        let masked = ["prompt", "system", "pad", "image", "image-boundary", "truncated"].compactMap { count("■ " + $0) }.reduce(0, +)
        XCTAssertTrue(s.contains("\(trained + masked) tokens: trained \(trained) ("), s)
        XCTAssertTrue(s.contains("masked \(masked)"), s)
        XCTAssertTrue(s.contains("<image_soft_token>×4"), s)
        XCTAssertTrue(s.contains("── assistant"), s)
        XCTAssertTrue(s.contains("#1 20x15"), "thumbnail with its size\n\(s)")
        // The trained tokens are coloured differently from the masked ones (escape sequences differ).
        let esc = t.screen(escapes: true)
        XCTAssertTrue(esc.contains("A red circle"), esc)
        t.send("l")
        t.waitFor("row 1/3")
        t.send("q")
        t.waitFor("[exit 0]")
    }

    func testTrainPauseResumeStop() throws {
        let (dir, config) = try makeRun(maxSteps: 5000)
        let t = try TmuxSession(["--config", config], cwd: dir.path)
        t.waitFor("3 Config")
        t.send("4")
        t.waitFor("No run yet")
        t.send("s")
        let first = t.waitFor("step counter at 3 or more", timeout: 60) { (self.stepShown($0) ?? 0) >= 3 }
        XCTAssertTrue(first.contains("raw "), "loss chart legend\n\(first)")
        XCTAssertTrue(first.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "braille curve\n\(first)")
        t.send("c")
        t.waitFor("checkpoint requested")
        // The log line may scroll out of the pane at once; the pane's title keeps the last checkpoint.
        t.waitFor("checkpoint saved now", timeout: 30) { $0.contains("checkpoint at step") || $0.contains("last checkpoint checkpoint-") }
        t.send("p")
        t.waitFor("paused", timeout: 20) { $0.contains("% paused") }
        // The step in flight when pause was pressed still finishes; then the counter holds.
        var atPause = -1
        let settle = Date().addingTimeInterval(20)
        while Date() < settle {
            let a = stepShown(t.screen()) ?? -1
            usleep(400_000)
            if stepShown(t.screen()) == a { atPause = a; break }
        }
        // Advancing stops: the counter holds still over several more screens.
        for _ in 0..<10 { usleep(100_000); XCTAssertEqual(stepShown(t.screen()), atPause) }
        t.send("p")
        t.waitFor("running again", timeout: 20) { (self.stepShown($0) ?? 0) > atPause && $0.contains("% running") }
        t.send("x")
        t.waitFor("Stop the run?")
        t.send("y")
        let stopped = t.waitFor("stopped", timeout: 60) { $0.contains("state: stopped") }
        XCTAssertTrue(stopped.contains("checkpoint at step") || stopped.contains("last checkpoint checkpoint-"), stopped)
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out").path).filter { $0.hasPrefix("checkpoint-") }
        XCTAssertEqual(ckpts.count, 2, "one checkpoint from c, one saved on stop: \(ckpts)")
        t.send("q")
        t.waitFor("[exit 0]")
    }

    /// `sftdeck train` in the dashboard with a model folder that is not there: the Train screen says why, and
    /// quitting gives status 2, as headless does for a run that cannot start.
    func testARunThatCannotStartExits2FromTheDashboard() throws {
        let (dir, config) = try makeRun(maxSteps: 5)
        let text = try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: "model_name_or_path: \(llava.appendingPathComponent("model").path)", with: "model_name_or_path: /nonexistent/model")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let t = try TmuxSession(["train", "--config", config], cwd: dir.path)
        t.waitFor("the failure", timeout: 30) { $0.contains("/nonexistent/model") }
        t.send("q")
        t.waitFor("[exit 2]")
    }

    func testHeadlessTrainingWithoutTerminal() throws {
        let (_, config) = try makeRun(maxSteps: 3)
        let out = try runSFTDeck(["--config", config])   // stdout is a pipe: headless by itself
        XCTAssertTrue(out.hasPrefix("***** Running training *****\n"), out)
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("{'loss': ") }.count, 3, out)
        XCTAssertTrue(out.contains("100%|██████████| 3/3"), out)
        XCTAssertTrue(out.hasSuffix("Training completed.\n"), out)
        let jsonl = try runSFTDeck(["--config", config, "--jsonl"])
        let events = try jsonl.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(events.filter { $0["event"] as? String == "step" }.count, 3)
        XCTAssertEqual(events.last?["event"] as? String, "finished")
    }

    func testCtrlCStopsAfterSavingACheckpoint() throws {
        let (dir, config) = try makeRun(maxSteps: 5000)
        let p = Process()
        p.executableURL = sftdeckBinary()
        p.arguments = ["--config", config, "--headless"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        let lock = NSLock()
        var output = ""
        pipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            lock.lock(); output += String(decoding: d, as: UTF8.self); lock.unlock()
        }
        try p.run()
        func current() -> String { lock.lock(); defer { lock.unlock() }; return output }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && current().components(separatedBy: "{'loss'").count < 3 { usleep(50_000) }
        XCTAssertGreaterThanOrEqual(current().components(separatedBy: "{'loss'").count, 3, current())
        p.interrupt()                                   // SIGINT, as Ctrl-C sends it
        p.waitUntilExit()
        pipe.fileHandleForReading.readabilityHandler = nil
        let out = current() + String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 130, out)
        XCTAssertTrue(out.contains("stopping after saving a checkpoint"), out)
        XCTAssertTrue(out.contains("Saving model checkpoint to \(dir.appendingPathComponent("out").path)/checkpoint-"), out)
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out").path).filter { $0.hasPrefix("checkpoint-") }
        XCTAssertEqual(ckpts.count, 1, out)
    }

    func testDemoOpensTheDashboardAndTrains() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString.prefix(8))").path
        let t = try TmuxSession(["demo", "--dir", dir, "--max-steps", "400"])
        t.waitFor("3 Config", timeout: 60)
        t.waitFor("learning_rate")
        t.send("1")
        t.waitFor("llava-shapes  [config]")
        t.waitFor("mmiu-shapes  [recent]")
        t.send("Enter")
        t.waitFor("demo token view") { $0.contains("■ trained ") && $0.contains("<image_soft_token>×4") }
        t.send("4")
        t.send("s")
        t.waitFor("steps advance", timeout: 60) { (self.stepShown($0) ?? 0) >= 2 }
        t.send("q")
        t.waitFor("Training is running. Stop it")
        t.send("y")
        t.waitFor("[exit 0]", timeout: 60)
    }
}
