import XCTest

/// `sftdeck eval` through the same RunSetup as `train` (toy bigram model from Tests/TrainingTests).
final class EvalCommandTests: XCTestCase {
    func testEvalCountsEveryShiftedTargetOfTheEvalSplit() throws {
        let toy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrainingTests/Fixtures/training/toy_cli")
        let yaml = try String(contentsOf: toy.appendingPathComponent("sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: toy.path).replacingOccurrences(of: "OUTPUT_DIR", with: NSTemporaryDirectory() + "sftdeck-eval-out")
        let cfg = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-eval-\(getpid()).yaml")
        try yaml.write(to: cfg, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: cfg) }
        let out = try runSFTDeck(["eval", "--config", cfg.path, "--json"])
        let lines = out.split(separator: "\n").filter { $0.hasPrefix("{") }
        let summary = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as! [String: Any]
        let s = summary["summary"] as! [String: Any]
        // expected targets: labels[1:] != -100 per row of test.jsonl
        var want = 0
        for row in try String(contentsOf: toy.appendingPathComponent("test.jsonl"), encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(row.utf8)) as! [String: Any]
            let labels = (o["labels"] as? [Int]) ?? (o["input_ids"] as! [Int])
            want += labels.dropFirst().filter { $0 != -100 }.count
        }
        XCTAssertEqual(s["tokens"] as? Int, want)
        XCTAssertEqual(s["split"] as? String, "eval")
        let loss = s["loss"] as! Double
        XCTAssertTrue(loss.isFinite && loss > 0)
        XCTAssertEqual(lines.count - 1, s["batches"] as? Int)
    }
}

extension EvalCommandTests {
    /// Gemma 3 through the Datasets collator: per-batch results add up to the summary.
    func testEvalGemma3Fixture() throws {
        let fx = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ModelsTests/Fixtures/gemma3/mm_gqa1")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-eval-gemma-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let rows = [#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hello there"}]},{"role":"assistant","content":[{"type":"text","text":"Hi! How are you?"}]}]}"#,
                    #"{"messages":[{"role":"user","content":[{"type":"text","text":"Name a color"}]},{"role":"assistant","content":[{"type":"text","text":"Blue."}]}]}"#,
                    #"{"messages":[{"role":"user","content":[{"type":"text","text":"Count"}]},{"role":"assistant","content":[{"type":"text","text":"1 2 3"}]}]}"#]
        try (rows.joined(separator: "\n") + "\n").write(to: tmp.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
        let cfg = tmp.appendingPathComponent("c.yaml")
        try "model_name_or_path: \(fx.path)\ndataset_name: \(tmp.appendingPathComponent("train.jsonl").path)\nper_device_eval_batch_size: 2\n"
            .write(to: cfg, atomically: true, encoding: .utf8)
        let out = try runSFTDeck(["eval", "--config", cfg.path, "--split", "train", "--json"])
        let objs = try out.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let batches = objs.dropLast(), s = objs.last!["summary"] as! [String: Any]
        XCTAssertEqual(batches.count, 2)
        let tokens = batches.map { $0["tokens"] as! Int }
        XCTAssertEqual(tokens.reduce(0, +), s["tokens"] as? Int)
        let weighted = zip(batches, tokens).map { ($0["loss"] as! Double) * Double($1) }.reduce(0, +) / Double(tokens.reduce(0, +))
        XCTAssertEqual(s["loss"] as! Double, weighted, accuracy: 1e-9)
        XCTAssertGreaterThan(tokens[0], 0)
    }
}
