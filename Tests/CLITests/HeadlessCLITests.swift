import Foundation
import XCTest

/// No terminal: the same binary prints lines (like the HF Trainer) and exits with a meaningful status.
final class HeadlessCLITests: XCTestCase {
    var fixtures: String { repoRoot().appendingPathComponent("Tests/DashboardTests/Fixtures/dashboard").path }

    func testWatchWithoutTerminalPrintsTheTrainersLogDicts() throws {
        // stdout is a pipe here, so watch goes headless by itself and ends when the run has finished.
        let out = try runSFTDeck(["watch", "--interval", "0.1", fixtures + "/hf_run"])
        let printed = try String(contentsOfFile: fixtures + "/hf_printed_logs.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        let dicts = out.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        // The event file holds float32 values; each formats to what the HF Trainer printed.
        XCTAssertEqual(dicts, printed, out)
        XCTAssertTrue(out.contains("100%|██████████| 6/6"), out)
        XCTAssertTrue(out.hasSuffix("Training completed.\n"), out)
    }

    func testWatchJSONL() throws {
        let out = try runSFTDeck(["watch", "--once", "--jsonl", fixtures + "/hf_run"])
        let objs = try out.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(objs.first?["event"] as? String, "started")
        XCTAssertEqual(objs.filter { $0["event"] as? String == "log" }.count, 3)
        XCTAssertEqual(objs.last?["event"] as? String, "finished")
    }

    func testDashboardWithoutTerminalOrConfigExplainsAndExits2() throws {
        let out = try runSFTDeck([], expectStatus: 2)
        XCTAssertEqual(out, "Error: no terminal: the dashboard needs one; to train without it pass --config FILE (with --headless)\n")
    }

    func testPlotWritesAPNG() throws {
        let png = FileManager.default.temporaryDirectory.appendingPathComponent("curves-\(UUID().uuidString).png").path
        let out = try runSFTDeck(["plot", fixtures + "/hf_run", "-o", png, "--size", "600x450"])
        XCTAssertEqual(out, "wrote \(png): 1 run (hf_run)\n")
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR width and height (big-endian) are what was asked for.
        XCTAssertEqual(data[16..<24].map { $0 }, [0, 0, 0x02, 0x58, 0, 0, 0x01, 0xC2])
        let bad = try runSFTDeck(["plot", "/nonexistent/run"], expectStatus: 2)
        XCTAssertEqual(bad, "Error: /nonexistent/run: no such folder\n")
    }

    func testDemoWithoutTerminalGeneratesAndTrainsHeadless() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString.prefix(8))").path
        let out = try runSFTDeck(["demo", "--dir", dir, "--max-steps", "4"])
        XCTAssertTrue(out.contains("demo: 240 + 60 single-image rows, 120 multi-image rows"), out)
        XCTAssertTrue(out.contains("***** Running training *****"), out)
        XCTAssertEqual(out.split(separator: "\n").filter { $0.hasPrefix("{'loss': ") }.count, 2, out)   // logging_steps 2
        XCTAssertTrue(out.hasSuffix("Training completed.\n"), out)
        for f in ["model/model.safetensors", "model/tokenizer.json", "model/preprocessor_config.json", "demo-llava.yaml", "demo-mmiu.yaml",
                  "datasets/llava-shapes/data/train-00000-of-00001.parquet", "runs/llava/train_log.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), f)
        }
    }
}
