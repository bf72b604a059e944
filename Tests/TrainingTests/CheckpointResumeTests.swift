import XCTest
@testable import Training

/// Which checkpoint `resume_from_checkpoint` picks, and the ones it refuses (toy model, fast).
final class CheckpointResumeTests: XCTestCase {
    func toyTrainer(out: URL, _ edit: (inout SFTConfig) -> Void = { _ in }) throws -> Trainer {
        let toy = try TrainerParityTests.loadToy("default")
        var c = toy.config
        c.outputDir = out.path
        c.saveStrategy = .steps; c.saveSteps = 4
        edit(&c)
        let t = try Trainer(config: c, model: toy.model, train: toy.train)
        t.writer = RunWriter(outputDir: out, runName: "r")
        return t
    }

    /// The pid of a process that has exited (what a SIGKILLed run leaves in its temporary names).
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        return p.processIdentifier
    }

    /// A run killed mid-save leaves `.checkpoint-8.tmp-<pid>` (hidden, partial); a non-atomic writer killed
    /// mid-save leaves `checkpoint-10` without trainer_state.json; `checkpoint-12` lists a shard that is not
    /// there. `true` skips all three and picks checkpoint-6; the resumed run equals the uninterrupted one
    /// and the killed run's temporary folder is removed.
    func testLatestCompleteCheckpointSkipsPartialOnes() throws {
        let full = try toyTrainer(out: tempDir("latest-full"))
        try full.run()

        let out = tempDir("latest")
        let first = try toyTrainer(out: out)
        first.poll = { [unowned first] in first.globalStep == 6 ? .stop : .continue }
        try first.run()
        let fm = FileManager.default
        let six = out.appendingPathComponent("checkpoint-6")
        let tmp = out.appendingPathComponent(".checkpoint-8.tmp-\(try deadPID())")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        try fm.copyItem(at: six.appendingPathComponent("model.safetensors"), to: tmp.appendingPathComponent("model.safetensors"))
        let ten = out.appendingPathComponent("checkpoint-10")
        try fm.createDirectory(at: ten, withIntermediateDirectories: true)
        for f in ["model.safetensors", "optimizer.safetensors"] { try fm.copyItem(at: six.appendingPathComponent(f), to: ten.appendingPathComponent(f)) }
        let twelve = out.appendingPathComponent("checkpoint-12")
        try fm.copyItem(at: six, to: twelve)
        try fm.removeItem(at: twelve.appendingPathComponent("model.safetensors"))
        try #"{"metadata": {"total_size": 8}, "weight_map": {"embed.weight": "model-00001-of-00002.safetensors", "head.weight": "model-00002-of-00002.safetensors"}}"#
            .write(to: twelve.appendingPathComponent("model.safetensors.index.json"), atomically: true, encoding: .utf8)

        XCTAssertEqual(CheckpointFolder.inspect(ten).problem, "no trainer_state.json")
        XCTAssertFalse(CheckpointFolder.inspect(twelve).hasWeights)
        let ckpt = try XCTUnwrap(RunWriter.resolveResume("true", outputDir: out))
        XCTAssertEqual(ckpt.lastPathComponent, "checkpoint-6")
        XCTAssertThrowsError(try RunWriter.resolveResume(ten.path, outputDir: out)) { e in
            XCTAssertEqual("\(e)", "resume_from_checkpoint: \(ten.path) is not a complete checkpoint (no trainer_state.json); resume from another checkpoint-N folder")
        }

        try fm.removeItem(at: ten); try fm.removeItem(at: twelve)   // a later save would rotate/overwrite them
        let resumed = try toyTrainer(out: out)
        try resumed.run(resumeFrom: ckpt)
        XCTAssertFalse(fm.fileExists(atPath: tmp.path), "the killed run's temporary folder is removed")
        let a = full.logHistory.filter { $0["loss"] != nil }, b = resumed.logHistory.filter { $0["loss"] != nil }
        XCTAssertEqual(a.map(\.step), b.map(\.step))
        for (x, y) in zip(a, b) { XCTAssertEqual(x["loss"], y["loss"], "step \(x.step)"); XCTAssertEqual(x["grad_norm"], y["grad_norm"], "step \(x.step)") }
        XCTAssertEqual(RunWriter.checkpoints(in: out).map(\.step), [4, 6, 8, 12])
    }

    /// save_only_model: checkpoints hold the model, trainer_state.json and the card, no optimizer /
    /// scheduler / RNG state; resuming from one (explicitly, via `true`, or in the engine before anything
    /// loads) fails with one line naming the folder, the reason and what to do.
    func testSaveOnlyModelIsHonouredAndRefusedOnResume() throws {
        let out = tempDir("only-model")
        let t = try toyTrainer(out: out) { $0.saveOnlyModel = true }
        try t.run()
        let last = try XCTUnwrap(RunWriter.checkpoints(in: out).last).url
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: last.path))
        XCTAssertEqual(files, ["model.safetensors", "trainer_state.json", "README.md", "sftdeck.yaml"])
        let want = "resume_from_checkpoint: \(last.path) was saved with save_only_model: true (model weights only, no optimizer, scheduler or RNG state), "
            + "so training cannot continue from it; resume from a checkpoint saved without save_only_model, or start a new run from its weights with model_name_or_path: \(last.path)"
        XCTAssertThrowsError(try RunWriter.resolveResume("true", outputDir: out)) { XCTAssertEqual("\($0)", want) }
        XCTAssertThrowsError(try RunWriter.resolveResume(last.path, outputDir: out)) { XCTAssertEqual("\($0)", want) }
        var c = t.config
        c.resumeFromCheckpoint = "true"
        XCTAssertThrowsError(try TrainingRun.makeEngine(config: c)) { XCTAssertEqual("\($0)", want) }
        XCTAssertThrowsError(try toyTrainer(out: out).run(resumeFrom: last)) { XCTAssertEqual("\($0)", want) }
        XCTAssertFalse(want.contains("\n"))
    }

    /// An adapter checkpoint names adapter_name_or_path; an HF Trainer checkpoint (optimizer.pt) is refused.
    func testRefusalNamesTheRightWayToStartOver() throws {
        let dir = tempDir("adapter-only")
        for f in ["adapter_model.safetensors", "adapter_config.json", "trainer_state.json"] { try Data("{}".utf8).write(to: dir.appendingPathComponent(f)) }
        XCTAssertThrowsError(try CheckpointFolder.requireResumable(dir)) { e in
            XCTAssertTrue("\(e)".hasSuffix("start a new run from its weights with adapter_name_or_path: \(dir.path)"), "\(e)")
            XCTAssertTrue("\(e)".contains("(saved with save_only_model?)"), "\(e)")
        }
        try Data().write(to: dir.appendingPathComponent("optimizer.pt"))
        XCTAssertThrowsError(try CheckpointFolder.requireResumable(dir)) { e in
            XCTAssertTrue("\(e)".contains("holds a PyTorch optimizer.pt"), "\(e)")
        }
        XCTAssertThrowsError(try RunWriter.resolveResume("true", outputDir: tempDir("empty-out"))) { e in
            XCTAssertTrue("\(e)".contains("has no checkpoint-N folder with complete weights"), "\(e)")
        }
    }
}
