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
