import Foundation
import XCTest

/// `sftdeck train --headless` on the toy run (Tests/TrainingTests/Fixtures/training/toy_cli), SIGKILLed
/// once its first checkpoint appears, then resumed with `resume_from_checkpoint: true`: the resumed run's
/// log (train_log.jsonl) and final weights equal an uninterrupted run's bit for bit.
final class ResumeAfterKillTests: XCTestCase {
    func config(_ dir: URL, resume: Bool = false, saveOnlyModel: Bool = false) throws -> URL {
        let toy = TrainCommandTests.toy.path
        let yaml = """
        model_name_or_path: \(toy)
        dataset_name: \(toy)
        output_dir: \(dir.appendingPathComponent("out").path)
        report_to: tensorboard
        per_device_train_batch_size: 2
        gradient_accumulation_steps: 2
        learning_rate: 0.1
        lr_scheduler_type: linear
        warmup_steps: 2
        weight_decay: 0.01
        seed: 42
        max_steps: 600
        save_steps: 20
        logging_steps: 20
        save_total_limit: 3
        save_only_model: \(saveOnlyModel)
        resume_from_checkpoint: \(resume)

        """
        let url = dir.appendingPathComponent(resume ? "resume.yaml" : "sft.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// train_log.jsonl records without the wall-clock fields (and train_loss, which like the Trainer's
    /// averages only the steps this process trained).
    func records(_ out: URL) throws -> [NSDictionary] {
        let text = try String(contentsOf: out.appendingPathComponent("train_log.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            var d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for k in ["time", "train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss"] { d.removeValue(forKey: k) }
            return NSDictionary(dictionary: d)
        }
    }

    func testSIGKILLThenResumeEqualsUninterruptedRun() throws {
        let full = tmp("uninterrupted")
        try runSFTDeck(["train", "--config", try config(full).path, "--headless"])

        let dir = tmp("killed")
        let out = dir.appendingPathComponent("out")
        let p = Process()
        p.executableURL = sftdeckBinary()
        p.arguments = ["train", "--config", try config(dir).path, "--headless"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let first = out.appendingPathComponent("checkpoint-20")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: first.path) && p.isRunning && Date() < deadline { usleep(1000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
        let killedAt = (try? records(out))?.last.flatMap { $0["step"] as? Int } ?? 0

        print("SIGKILL after logged step \(killedAt); checkpoints left: \(((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.contains("checkpoint") }.sorted())")
        let resumed = try runSFTDeck(["train", "--config", try config(dir, resume: true).path, "--headless"])
        XCTAssertTrue(resumed.contains("resuming from \(out.path)/checkpoint-"), resumed)
        let a = try records(full.appendingPathComponent("out")), b = try records(out)
        XCTAssertEqual(a.count, 31)   // 30 logs + the final record
        XCTAssertEqual(a, b, "killed after step \(killedAt)")
        XCTAssertEqual(try Data(contentsOf: full.appendingPathComponent("out/model.safetensors")),
                       try Data(contentsOf: out.appendingPathComponent("model.safetensors")))
        let hidden = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(hidden, [], "temporaries of the killed run are removed")
    }

    /// Resuming from a save_only_model checkpoint: exits 2 (a run that cannot start from its config) with
    /// one line naming the folder and why.
    func testResumeFromSaveOnlyModelCheckpointIsOneLine() throws {
        let dir = tmp("only-model")
        try runSFTDeck(["train", "--config", try config(dir, saveOnlyModel: true).path, "--headless", "--max-steps", "40"])
        let msg = try runSFTDeck(["train", "--config", try config(dir, resume: true, saveOnlyModel: true).path, "--headless"], expectStatus: 2)
        let lines = msg.split(separator: "\n").filter { !$0.hasPrefix("warning:") }
        XCTAssertEqual(lines.count, 1, msg)
        XCTAssertTrue(msg.contains("\(dir.path)/out/checkpoint-40 was saved with save_only_model: true"), msg)
        XCTAssertTrue(msg.contains("model_name_or_path: \(dir.path)/out/checkpoint-40"), msg)
    }
}
