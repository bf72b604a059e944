import Foundation
import XCTest

/// `sftdeck train --headless` on the toy run of Tests/TrainingTests/Fixtures/training/toy_cli, whose
/// expected_log_history.json came from transformers' Trainer (Scripts/fixtures/gen_training.py).
final class TrainCommandTests: XCTestCase {
    static var toy: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrainingTests/Fixtures/training/toy_cli")
    }

    func writeConfig(_ dir: URL, extra: String = "") throws -> URL {
        let text = try String(contentsOf: Self.toy.appendingPathComponent("sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: Self.toy.path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: dir.appendingPathComponent("out").path) + extra
        let url = dir.appendingPathComponent("sft.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Every logged loss / grad_norm / eval_loss equals the Trainer's within 2e-5 relative; the loss
    /// falls by far more than half.
    func testHeadlessRunMatchesTrainerAndLearns() throws {
        let dir = tmp("parity")
        let cfg = try writeConfig(dir)
        let out = try runSFTDeck(["train", "--config", cfg.path, "--headless"])
        XCTAssertTrue(out.contains("{'loss': '"), out)
        let lines = try String(contentsOf: dir.appendingPathComponent("out/train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        let got = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let want = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.toy.appendingPathComponent("expected_log_history.json"))) as! [[String: Any]]
        XCTAssertEqual(got.count, want.count)
        for (g, w) in zip(got, want) {
            XCTAssertEqual(g["step"] as? Int, w["step"] as? Int)
            for k in ["loss", "grad_norm", "eval_loss", "train_loss"] {
                guard let wv = (w[k] as? NSNumber)?.doubleValue else { continue }
                let gv = try XCTUnwrap((g[k] as? NSNumber)?.doubleValue, "step \(w["step"]!) \(k)")
                XCTAssertEqual(gv, wv, accuracy: 2e-5 * abs(wv) + 1e-7, "step \(w["step"]!) \(k)")
            }
        }
        let losses = got.compactMap { ($0["loss"] as? NSNumber)?.doubleValue }
        XCTAssertLessThan(losses.last!, losses.first! / 2)
        for f in ["checkpoint-12", "checkpoint-24", "README.md", "model.safetensors", "runs"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/\(f)").path), f)
        }
    }

    /// The issue's proof through the binary: `sftdeck train --config FILE --headless` on the tiny Gemma 3
    /// reproduces every loss / grad_norm / eval_loss SFTTrainer logged (1e-4 relative; measured ~5e-7).
    func testHeadlessGemmaRunMatchesSFTTrainer() throws {
        let sft = Self.toy.deletingLastPathComponent().appendingPathComponent("sft")
        let dir = tmp("gemma")
        let yaml = try String(contentsOf: sft.appendingPathComponent("mm/sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
            .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("adapter_init").path)
            .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent("mm").path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: dir.appendingPathComponent("out").path) + "dataset_test_split: eval\n"
        let cfg = dir.appendingPathComponent("sft.yaml")
        try yaml.write(to: cfg, atomically: true, encoding: .utf8)
        try runSFTDeck(["train", "--config", cfg.path, "--headless"])
        let lines = try String(contentsOf: dir.appendingPathComponent("out/train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        let got = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let want = try JSONSerialization.jsonObject(with: Data(contentsOf: sft.appendingPathComponent("mm/log_history.json"))) as! [[String: Any]]
        XCTAssertEqual(got.count, want.count)
        for (g, w) in zip(got, want) {
            for k in ["loss", "grad_norm", "eval_loss", "train_loss", "learning_rate"] {
                guard let wv = (w[k] as? NSNumber)?.doubleValue else { continue }
                let gv = try XCTUnwrap((g[k] as? NSNumber)?.doubleValue, "step \(w["step"]!) \(k)")
                XCTAssertEqual(gv, wv, accuracy: 1e-4 * abs(wv), "step \(w["step"]!) \(k)")
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/adapter_model.safetensors").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/adapter_config.json").path))
    }

    /// Multi-image through the binary: the MMIU-layout fixture (all.json + zips) with `sftdeck train --config
    /// FILE --headless` reproduces every logged loss, grad_norm, entropy, mean_token_accuracy and num_tokens of
    /// SFTTrainer (1e-4 relative on the floats; measured < 6e-7). The config leaves report_to at TRL's default
    /// none: no event files, and `watch` / `plot` still read the run (train_log.jsonl, trainer_state.json).
    func testHeadlessMMIURunMatchesSFTTrainerWithoutEventFiles() throws {
        let sft = Self.toy.deletingLastPathComponent().appendingPathComponent("sft")
        let dir = tmp("mmiu")
        let data = dir.appendingPathComponent("dataset")
        try FileManager.default.copyItem(at: sft.appendingPathComponent("mmiu/dataset"), to: data)
        let yaml = try String(contentsOf: sft.appendingPathComponent("mmiu/sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("llava/model").path)
            .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("llava/adapter_init").path)
            .replacingOccurrences(of: "DATA_DIR", with: data.path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: dir.appendingPathComponent("out").path)
        XCTAssertFalse(yaml.contains("report_to"))
        let cfg = dir.appendingPathComponent("sft.yaml")
        try yaml.write(to: cfg, atomically: true, encoding: .utf8)
        let printed = try runSFTDeck(["train", "--config", cfg.path, "--headless"])
        XCTAssertTrue(printed.contains("'entropy': '"), printed)
        let out = dir.appendingPathComponent("out")
        let lines = try String(contentsOf: out.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        let got = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let want = try JSONSerialization.jsonObject(with: Data(contentsOf: sft.appendingPathComponent("mmiu/log_history.json"))) as! [[String: Any]]
        XCTAssertEqual(got.count, want.count)
        XCTAssertEqual(want.filter { $0["entropy"] != nil }.count, 10)
        for (g, w) in zip(got, want) {
            XCTAssertEqual(g["step"] as? Int, w["step"] as? Int)
            for k in ["loss", "grad_norm", "entropy", "mean_token_accuracy", "num_tokens", "learning_rate", "train_loss", "epoch"] {
                guard let wv = (w[k] as? NSNumber)?.doubleValue else { continue }
                let gv = try XCTUnwrap((g[k] as? NSNumber)?.doubleValue, "step \(w["step"]!) \(k)")
                XCTAssertEqual(gv, wv, accuracy: k == "num_tokens" ? 0 : 1e-4 * abs(wv), "step \(w["step"]!) \(k)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("runs").path), "report_to none writes no event files")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("trainer_state.json").path))
        // watch and plot read the run without event files.
        let watched = try runSFTDeck(["watch", "--once", "--jsonl", out.path])
        let events = try watched.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(events.filter { $0["event"] as? String == "log" }.count, 10, watched)
        XCTAssertEqual(events.last?["event"] as? String, "finished", watched)
        let png = dir.appendingPathComponent("curves.png").path
        XCTAssertEqual(try runSFTDeck(["plot", out.path, "-o", png, "--size", "400x300"]), "wrote \(png): 1 run (out)\n")
    }

    func testBadConfigIsOneLine() throws {
        let dir = tmp("bad")
        let cfg = try writeConfig(dir, extra: "learnig_rate: 0.1\n")
        let out = try runSFTDeck(["train", "--config", cfg.path, "--headless"], expectStatus: 2)
        XCTAssertTrue(out.contains("unknown config key 'learnig_rate' (did you mean 'learning_rate'?)"), out)
        XCTAssertEqual(out.split(separator: "\n").filter { $0.contains("Error") || $0.contains("error") }.count, 1, out)
    }

    /// The exit status says how far a run got: 2 when it cannot start (here its model folder is missing: one
    /// line saying what to download), 1 when it fails once training has started (a loss that overflows).
    func testStatusTellsARunThatCannotStartFromOneThatFailed() throws {
        let dir = tmp("status")
        let cfg = try writeConfig(dir)
        let text = try String(contentsOf: cfg, encoding: .utf8)
        try text.replacingOccurrences(of: "model_name_or_path: \(Self.toy.path)", with: "model_name_or_path: /nonexistent/model")
            .write(to: cfg, atomically: true, encoding: .utf8)
        let missing = try runSFTDeck(["train", "--config", cfg.path, "--headless"], expectStatus: 2)
        XCTAssertTrue(missing.contains("model '/nonexistent/model': not a folder and not in the Hugging Face cache"), missing)
        try text.replacingOccurrences(of: "learning_rate: 0.1", with: "learning_rate: 1.0e+30\nmax_grad_norm: 0")
            .write(to: cfg, atomically: true, encoding: .utf8)
        let diverged = try runSFTDeck(["train", "--config", cfg.path, "--headless"], expectStatus: 1)
        XCTAssertTrue(diverged.contains("***** Running training *****"), diverged)
        XCTAssertTrue(diverged.contains("loss is "), diverged)
    }
}
