import XCTest
import Tensor
@testable import Training

/// The proof: TRL 1.16 `SFTTrainer` on a tiny Gemma 3 (fp32, eager, dropout 0, LoRA all-linear r=4 +
/// modules_to_save, batch 2, GA 2, 20 steps, seeded shuffling, warmup + linear decay, clipping, step eval)
/// against SFTDeck's trainer on the same checkpoint, initial adapter and rows
/// (Scripts/fixtures/gen_training_sft.py). Runs with images and text-only (pre-tokenized), and through the
/// processor on a single-image parquet dataset (llava layout) and a multi-image MMIU-layout dataset.
/// Tolerances: loss, grad_norm, eval_loss 1e-4 relative (fp32 through 20 AdamW steps); learning_rate and
/// epoch 1e-12; num_tokens and total_flos exact; mean_token_accuracy 0.02 absolute (argmax near-ties);
/// entropy and eval_entropy (TRL's per-micro-batch Σ entropy / valid targets, averaged per log) 1e-5 relative.
final class SFTTrainerParityTests: XCTestCase {
    func run(_ kind: String) throws -> (Trainer, [[String: Any]]) {
        let sft = try fixtureURL("sft")
        // "llava" (parquet, published layout) and "mmiu" (all.json + zips) go through the processor with
        // llava/'s model + processor folder; "mm" / "text" are pre-tokenized rows on model/.
        let own = kind == "llava" || kind == "mmiu"
        var data = sft.appendingPathComponent(own ? "\(kind)/dataset" : kind)
        if kind == "mmiu" {
            // The MMIU reader extracts the zips next to the data: work on a copy, not the test bundle.
            let copy = tempDir("sft-mmiu-data").appendingPathComponent("dataset")
            try FileManager.default.copyItem(at: data, to: copy)
            data = copy
        }
        let yaml = try String(contentsOf: sft.appendingPathComponent("\(kind)/sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent(own ? "llava/model" : "model").path)
            .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent(own ? "llava/adapter_init" : "adapter_init").path)
            .replacingOccurrences(of: "DATA_DIR", with: data.path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: tempDir("sft-\(kind)").path) + (own ? "" : "dataset_test_split: eval\n")
        let cfg = try SFTConfig.parse(yaml: yaml).config
        let prepared = try RunSetup.prepare(cfg)
        let t = try Trainer(config: cfg, model: prepared.model, train: prepared.train, eval: prepared.eval)
        try t.run()
        let want = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: sft.appendingPathComponent("\(kind)/log_history.json"))) as? [[String: Any]])
        return (t, want)
    }

    func compare(_ kind: String) throws {
        let (t, want) = try run(kind)
        let worst = assertLogHistory(t.logHistory, matches: want, label: kind, entropyTolerance: 1e-5)
        print("SFTTrainer parity \(kind): worst relative error \(worst.sorted { $0.key < $1.key })")
    }

    func testImageRowsMatchSFTTrainer() throws {
        try compare("mm")
    }

    /// After the 20 steps, the adapter SFTDeck saves equals the one SFTTrainer saved (PEFT file format).
    func testTrainedAdapterMatches() throws {
        let (t, _) = try run("mm")
        let out = tempDir()
        try t.model.saveTrainable(to: out)
        let mine = try SafeTensorsFile(url: out.appendingPathComponent("adapter_model.safetensors"))
        let ref = try SafeTensorsFile(url: try fixtureURL("sft/adapter_trained_mm/adapter_model.safetensors"))
        XCTAssertEqual(mine.names, ref.names)
        for n in ref.names { assertClose(try mine.floats(n), try ref.floats(n), abs: 2e-5, rel: 1e-4, n) }
    }
    func testTextRowsMatchSFTTrainer() throws { try compare("text") }

    /// Through the real pipeline: parquet rows (llava-instruct-mix-vsft layout) → chat template →
    /// tokenizer → image processor → guide collate_fn labels (module Datasets) → Gemma 3 → trainer.
    func testParquetThroughProcessorMatchesSFTTrainer() throws { try compare("llava") }

    /// Multi-image, through the real pipeline: MMIU layout (all.json + one zip per category, one image
    /// reference that is in no zip) → extraction → the guide's format_data (system context, user images +
    /// question, assistant output; the unreadable image skipped) → processor → guide collate_fn labels →
    /// Gemma 3 → trainer; 20 steps, batch 2, GA 2, logging every 2 steps.
    func testMMIULayoutThroughProcessorMatchesSFTTrainer() throws {
        try compare("mmiu")
        let want = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: try fixtureURL("sft/mmiu/log_history.json"))) as? [[String: Any]])
        XCTAssertEqual(want.filter { $0["loss"] != nil }.count, 10, "the fixture logs every 2 of 20 steps")
    }
}

/// Resume and QLoRA on the tiny Gemma 3.
final class GemmaRunTests: XCTestCase {
    func config(_ kind: String, out: URL, _ edit: (inout SFTConfig) -> Void = { _ in }) throws -> SFTConfig {
        let sft = try fixtureURL("sft")
        let yaml = try String(contentsOf: sft.appendingPathComponent("\(kind)/sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
            .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("adapter_init").path)
            .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent(kind).path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: out.path) + "dataset_test_split: eval\n"
        var c = try SFTConfig.parse(yaml: yaml).config
        edit(&c)
        return c
    }

    let ckpt8: (inout SFTConfig) -> Void = { $0.saveStrategy = .steps; $0.saveSteps = 8; $0.evalStrategy = .no }

    func trainer(_ c: SFTConfig) throws -> Trainer { try makeTrainer(c) }

    /// Stop at step 8 (checkpoint with adapter, optimizer, RNG), resume in a fresh process-like setup:
    /// losses after the checkpoint equal the uninterrupted run's exactly.
    func testResumeFromCheckpointIsExact() throws {
        let a = try trainer(config("text", out: tempDir("gemma-full"), ckpt8))
        try a.run()
        let outB = tempDir("gemma-resume")
        let cB = try config("text", out: outB, ckpt8)
        let b1 = try trainer(cB)
        b1.poll = { [unowned b1] in b1.globalStep == 8 ? .stop : .continue }
        try b1.run()
        let ckpt = try XCTUnwrap(RunWriter.resolveResume("true", outputDir: outB))
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt.appendingPathComponent("adapter_model.safetensors").path))
        let b2 = try trainer(cB)
        try b2.run(resumeFrom: ckpt)
        let la = a.logHistory.filter { $0["loss"] != nil && $0.step > 8 }, lb = b2.logHistory.filter { $0["loss"] != nil && $0.step > 8 }
        XCTAssertEqual(la.count, 6)
        XCTAssertEqual(la.map(\.step), lb.map(\.step))
        for (x, y) in zip(la, lb) {
            XCTAssertEqual(x["loss"], y["loss"], "step \(x.step)"); XCTAssertEqual(x["grad_norm"], y["grad_norm"], "step \(x.step)")
        }
    }

    /// QLoRA: frozen linears in NF4 (double-quantised); the run trains (finite, falling loss) and its
    /// first loss is close to the fp32 model's (4-bit weights perturb it a little).
    func testQLoRATrains() throws {
        let q = try trainer(config("text", out: tempDir("gemma-qlora")) {
            $0.loadIn4bit = true; $0.useBnbNestedQuant = true; $0.evalStrategy = .no; $0.maxSteps = 6
        })
        try q.run()
        let losses = q.logHistory.compactMap { $0["loss"] }
        XCTAssertEqual(losses.count, 3)
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        XCTAssertLessThan(losses.last!, losses.first!)
        let ref = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: try fixtureURL("sft/text/log_history.json"))) as? [[String: Any]])
        let first = try XCTUnwrap(jsonNumber(ref[0]["loss"]))
        XCTAssertEqual(losses[0], first, accuracy: 0.05 * first)
        XCTAssertNotEqual(losses[0], first)
    }

    /// TRL's `entropy` reaches every output: log_history / trainer_state.json, train_log.jsonl and
    /// TensorBoard's `train/entropy` (eval_entropy as `eval/entropy`).
    func testEntropyIsLoggedEverywhere() throws {
        let out = tempDir("gemma-entropy")
        let t = try trainer(config("text", out: out) { $0.maxSteps = 4; $0.evalSteps = 4; $0.reportTo = ["tensorboard"] })
        try t.run()
        let logged = t.logHistory.filter { $0["loss"] != nil }
        XCTAssertEqual(logged.count, 2)
        let entropies = logged.compactMap { $0["entropy"] }
        XCTAssertEqual(entropies.count, 2)
        XCTAssertTrue(entropies.allSatisfy { $0 > 0 && $0 < log(320.0) }, "\(entropies)")
        let tb = try TensorBoardReader(path: out.appendingPathComponent("runs/r"))
        XCTAssertEqual(tb.series("train/entropy").map(\.value), entropies.map { Double(Float($0)) })
        XCTAssertEqual(tb.series("eval/entropy").count, 1)
        let lines = try String(contentsOf: out.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        let fromJSONL = try lines.compactMap { try (PythonJSON.parse(Data($0.utf8)) as? [String: Any])?["entropy"] }.compactMap(jsonNumber)
        XCTAssertEqual(fromJSONL, entropies)
        let state = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: out.appendingPathComponent("trainer_state.json"))) as? [String: Any])
        let hist = try XCTUnwrap(state["log_history"] as? [[String: Any]])
        XCTAssertEqual(hist.compactMap { jsonNumber($0["entropy"]) }, entropies)
    }

    /// gradient_checkpointing recomputes activations in backward: same numbers as without it.
    func testGradientCheckpointingGivesTheSameNumbers() throws {
        let plain = try trainer(config("mm", out: tempDir("gc-off")) { $0.maxSteps = 4; $0.evalStrategy = .no; $0.gradientCheckpointing = false })
        let gc = try trainer(config("mm", out: tempDir("gc-on")) { $0.maxSteps = 4; $0.evalStrategy = .no; $0.gradientCheckpointing = true })
        try plain.run(); try gc.run()
        let a = plain.logHistory.compactMap { $0["loss"] }, b = gc.logHistory.compactMap { $0["loss"] }
        let ga = plain.logHistory.compactMap { $0["grad_norm"] }, gb = gc.logHistory.compactMap { $0["grad_norm"] }
        XCTAssertEqual(a.count, 2)
        for (x, y) in zip(a + ga, b + gb) { XCTAssertEqual(x, y, accuracy: 1e-6 * abs(x)) }
    }
}
