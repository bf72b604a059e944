import XCTest
import Models
import Tensor
@testable import Training

/// Full fine-tuning (`use_peft: false`) on the tiny Gemma 3 against transformers 5.24 / TRL 1.16
/// (Scripts/fixtures/gen_fullft.py, Fixtures/training/fullft/):
/// - the untrained model saved by SFTDeck is byte-identical to `save_pretrained`'s model.safetensors, and
///   with max_shard_size 100 000 gives the same 7 shards (headers equal) and the same index JSON text;
/// - SFTTrainer full fine-tuning (6 steps, image rows) logs the same losses (1e-4 relative) and its
///   checkpoint-6 has the same tensor names / shapes / dtypes and values, and the same config.json;
/// - resuming a full fine-tuning run from checkpoint-3 gives bit-identical losses and weights.
final class FullFineTuneTests: XCTestCase {
    func ref(_ name: String) throws -> [String: Any] {
        try XCTUnwrap(PythonJSON.parse(Data(contentsOf: fixtureURL("fullft/\(name)"))) as? [String: Any])
    }

    /// The safetensors header as a JSON object.
    func header(_ url: URL) throws -> NSDictionary {
        let d = try Data(contentsOf: url)
        let n = d.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        return try XCTUnwrap(JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as? NSDictionary)
    }

    func fullModel() throws -> Gemma3Trainable {
        let m = try Gemma3Model.load(from: fixtureURL("sft/model"))
        m.enableFullFineTuning()
        return Gemma3Trainable(model: m, usesAdapter: false, gradientCheckpointing: false)
    }

    func testSavedWeightsAreSavePretrainedsBytes() throws {
        let r = try ref("save_pretrained.json")
        XCTAssertEqual(r["identical_to_base_file"] as? Bool, true)
        let out = tempDir()
        try fullModel().saveTrainable(to: out)
        let mine = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(mine, try Data(contentsOf: fixtureURL("sft/model/model.safetensors")), "model.safetensors bytes")
        XCTAssertEqual(try header(out.appendingPathComponent("model.safetensors")), r["model_safetensors_header"] as? NSDictionary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors.index.json").path))
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        XCTAssertEqual(files, Set(r["files"] as! [String]))
        // config.json: save_pretrained's (dtype float32 in every sub-config), plus the Trainer's use_cache false.
        var want = try XCTUnwrap(r["config"] as? [String: Any])
        want["use_cache"] = false
        let got = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual(NSDictionary(dictionary: got), NSDictionary(dictionary: want))
        // A new run can start from the folder (model_name_or_path), with the same weights.
        let again = try Gemma3Model.load(from: out)
        XCTAssertEqual(again.totalParameterCount, try fullModel().model.totalParameterCount)
    }

    /// `Trainer._save` ends with `processing_class.save_pretrained(output_dir)`: the model folder's tokenizer,
    /// chat template and processor files travel with every checkpoint (LoRA ones too), so a new run can
    /// start from the folder.
    func testProcessorFilesTravelWithTheCheckpoint() throws {
        let llava = try fixtureURL("sft/llava/model")
        let m = try Gemma3Model.load(from: llava)
        m.enableFullFineTuning()
        let out = tempDir()
        try Gemma3Trainable(model: m, usesAdapter: false, gradientCheckpointing: false).saveTrainable(to: out)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        XCTAssertEqual(files, ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                               "chat_template.jinja", "preprocessor_config.json", "processor_config.json"])
        for f in ["tokenizer.json", "chat_template.jinja", "preprocessor_config.json"] {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(f)), try Data(contentsOf: llava.appendingPathComponent(f)), f)
        }
        let lora = try Gemma3Model.load(from: llava)
        try lora.loadAdapter(from: fixtureURL("sft/llava/adapter_init"))
        let outL = tempDir("lora-processor")
        try Gemma3Trainable(model: lora, usesAdapter: true, gradientCheckpointing: false).saveTrainable(to: outL)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outL.path)),
                       ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "chat_template.jinja", "preprocessor_config.json", "processor_config.json"])
    }

    func testShardsAndIndexMatchSavePretrained() throws {
        let r = try ref("save_pretrained.json")
        let out = tempDir()
        let t = try fullModel()
        t.maxShardSize = try XCTUnwrap(r["max_shard_size"] as? Int)
        // A stale shard of an earlier, differently split save is removed (as save_pretrained does).
        try Data([1, 2, 3]).write(to: out.appendingPathComponent("model-00001-of-00009.safetensors"))
        try Data([1, 2, 3]).write(to: out.appendingPathComponent("model.safetensors"))   // and an unsharded one
        try t.saveTrainable(to: out)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        XCTAssertEqual(files, Set(r["sharded_files"] as! [String]))
        let index = try String(contentsOf: out.appendingPathComponent("model.safetensors.index.json"), encoding: .utf8)
        XCTAssertEqual(index, r["index_text"] as? String)
        let headers = try XCTUnwrap(r["shard_headers"] as? [String: Any])
        XCTAssertEqual(headers.count, 7)
        for (f, h) in headers { XCTAssertEqual(try header(out.appendingPathComponent(f)), h as? NSDictionary, f) }
        // Values: each tensor equals the base checkpoint's (untrained), read back through the index.
        let ck = try SafeTensorsCheckpoint(folder: out), base = try SafeTensorsCheckpoint(folder: fixtureURL("sft/model"))
        XCTAssertEqual(ck.names, base.names)
        for n in base.names { XCTAssertEqual(try ck.floats(n), try base.floats(n), n) }
        XCTAssertTrue(CheckpointFolder.inspect(out).hasWeights)
        let partial = tempDir("shards-partial")
        try FileManager.default.removeItem(at: partial)
        try FileManager.default.copyItem(at: out, to: partial)
        try FileManager.default.removeItem(at: partial.appendingPathComponent("model-00004-of-00007.safetensors"))
        XCTAssertFalse(CheckpointFolder.inspect(partial).hasWeights, "a missing shard makes the weights incomplete")
    }

    func sftConfig(out: URL, _ edit: (inout SFTConfig) -> Void = { _ in }) throws -> SFTConfig {
        let sft = try fixtureURL("sft")
        let yaml = try String(contentsOf: fixtureURL("fullft/sft_full.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
            .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent("mm").path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: out.path)
        var c = try SFTConfig.parse(yaml: yaml).config
        edit(&c)
        return c
    }

    func trainer(_ c: SFTConfig) throws -> Trainer { try makeTrainer(c) }

    /// Tolerances: loss / grad_norm / train_loss 1e-4 relative, learning_rate and epoch 1e-12, num_tokens
    /// exact; saved weights 2e-5 absolute per value (first 8), sums 1e-4 of the absolute sum.
    func testMatchesSFTTrainerFullFineTuning() throws {
        let r = try ref("sft_full.json")
        let out = tempDir()
        let t = try trainer(sftConfig(out: out))
        try t.run()
        let want = try XCTUnwrap(r["log_history"] as? [[String: Any]])
        XCTAssertEqual(t.logHistory.count, want.count)
        var worst = 0.0
        for (g, w) in zip(t.logHistory, want) {
            XCTAssertEqual(g.step, w["step"] as? Int)
            for k in ["loss", "grad_norm", "train_loss", "learning_rate", "epoch", "num_tokens"] {
                guard let wv = jsonNumber(w[k]) else { continue }
                let gv = try XCTUnwrap(g[k], "step \(g.step) \(k)")
                let tol = ["learning_rate", "epoch"].contains(k) ? 1e-12 : k == "num_tokens" ? 0 : 1e-4 * abs(wv)
                XCTAssertEqual(gv, wv, accuracy: tol, "step \(g.step) \(k)")
                if ["loss", "grad_norm"].contains(k) { worst = max(worst, abs(gv - wv) / abs(wv)) }
            }
        }
        print("full fine-tuning parity: worst relative error (loss, grad_norm) \(worst)")
        XCTAssertEqual(RunWriter.checkpoints(in: out).map { "checkpoint-\($0.step)" }, r["checkpoints"] as? [String])
        // checkpoint-6: the Trainer's files (PyTorch .pt/.pth/.bin state is SFTDeck's safetensors/JSON; the
        // tokenizer files come from the model folder, which has none here), names/shapes/dtypes and values.
        let ck = out.appendingPathComponent("checkpoint-6")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: ck.path))
        for f in (r["checkpoint_files"] as! [String]) where !f.hasSuffix(".pt") && !f.hasSuffix(".pth") && !f.hasSuffix(".bin") && !f.hasPrefix("tokenizer") {
            XCTAssertTrue(files.contains(f), "checkpoint-6 lacks \(f)")
        }
        for f in ["optimizer.safetensors", "scheduler.json", "rng_state.json", "README.md"] { XCTAssertTrue(files.contains(f), f) }
        let h = try header(ck.appendingPathComponent("model.safetensors"))
        let wantH = try XCTUnwrap(r["model_safetensors_header"] as? NSDictionary)
        XCTAssertEqual(Set(h.allKeys as! [String]), Set(wantH.allKeys as! [String]))
        for case let k as String in wantH.allKeys where k != "__metadata__" {
            let a = h[k] as! NSDictionary, b = wantH[k] as! NSDictionary
            XCTAssertEqual(a["dtype"] as? String, b["dtype"] as? String, k); XCTAssertEqual(a["shape"] as? [Int], b["shape"] as? [Int], k)
        }
        let summary = try XCTUnwrap(r["summary"] as? [String: [String: Any]])
        let file = try SafeTensorsFile(url: ck.appendingPathComponent("model.safetensors"))
        var worstValue = 0.0
        for (name, s) in summary {
            worstValue = max(worstValue, try assertTensorSummary(file, name, s, relative: 1e-4, headAccuracy: 2e-5))
        }
        print("full fine-tuning checkpoint-6: worst |value − TRL| over the first 8 of each tensor \(worstValue)")
        let cfg = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: ck.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual(NSDictionary(dictionary: cfg), NSDictionary(dictionary: try XCTUnwrap(r["config"] as? [String: Any])))
        // The final save_model output in output_dir is the same layout.
        XCTAssertEqual(try header(out.appendingPathComponent("model.safetensors")).count, wantH.count)
    }

    /// Image rows and text rows in dataset order (batch 2, no accumulation): the windows without images give
    /// the vision tower and projector no gradient, and torch AdamW then skips them (no weight decay, no
    /// moment update, no step count). Same losses (1e-4 relative) and trained weights (2e-5 absolute) as TRL.
    func testWindowsWithoutImagesLeaveTheVisionTowerAlone() throws {
        let r = try ref("mixed.json")
        let out = tempDir()
        let t = try trainer(sftConfig(out: out) {
            $0.datasetName = try! fixtureURL("fullft/mixed").path
            $0.gradientAccumulationSteps = 1; $0.shuffle = false; $0.saveStrategy = .no
        })
        try t.run()
        let want = try XCTUnwrap(r["log_history"] as? [[String: Any]])
        XCTAssertEqual(t.logHistory.count, want.count)
        for (g, w) in zip(t.logHistory, want) {
            for k in ["loss", "grad_norm", "train_loss"] {
                guard let wv = jsonNumber(w[k]) else { continue }
                XCTAssertEqual(try XCTUnwrap(g[k]), wv, accuracy: 1e-4 * abs(wv), "step \(g.step) \(k)")
            }
        }
        let file = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        var worst: (Float, String) = (0, "")
        for (name, s) in try XCTUnwrap(r["summary"] as? [String: [String: Any]]) {
            let v = try file.floats(name)
            for (i, x) in (s["head"] as! [Any]).compactMap(jsonNumber).enumerated() where Swift.abs(v[i] - Float(x)) > worst.0 {
                worst = (Swift.abs(v[i] - Float(x)), name)
            }
            let wa = jsonNumber(s["abs_sum"])!
            XCTAssertEqual(v.reduce(0.0) { $0 + Double(Swift.abs($1)) }, wa, accuracy: 1e-4 * wa, "\(name) abs sum")
        }
        XCTAssertLessThan(worst.0, 2e-5, "worst at \(worst.1)")

        // Resuming after the text-only window 2 restores the per-parameter step counts: bit-identical.
        let outB = tempDir("mixed-resume")
        func mixed() throws -> Trainer {
            try trainer(sftConfig(out: outB) {
                $0.datasetName = try! fixtureURL("fullft/mixed").path
                $0.gradientAccumulationSteps = 1; $0.shuffle = false; $0.saveStrategy = .no
            })
        }
        let b1 = try mixed()
        b1.poll = { [unowned b1] in b1.globalStep == 2 ? .stop : .continue }
        try b1.run()
        let b2 = try mixed()
        try b2.run(resumeFrom: outB.appendingPathComponent("checkpoint-2"))
        XCTAssertEqual(t.logHistory.filter { $0.step > 2 && $0["loss"] != nil }.map { $0["loss"]! },
                       b2.logHistory.filter { $0.step > 2 && $0["loss"] != nil }.map { $0["loss"]! })
        for (p, q) in zip(t.model.trainableParameters, b2.model.trainableParameters) { XCTAssertTrue(Array(p.value) == Array(q.value), p.name) }
    }

    /// Stop at step 3 (checkpoint-3: weights, optimizer, scheduler, RNG), resume in a fresh model:
    /// steps 4–6 log bit-identical losses and grad norms, and the final weights are bit-identical.
    func testResumeFullFineTuningIsExact() throws {
        let a = try trainer(sftConfig(out: tempDir("fullft-a")))
        try a.run()
        let outB = tempDir("fullft-b")
        let b1 = try trainer(sftConfig(out: outB))
        b1.poll = { [unowned b1] in b1.globalStep == 3 ? .stop : .continue }
        try b1.run()
        XCTAssertEqual(b1.globalStep, 3)
        let ckpt = try XCTUnwrap(RunWriter.resolveResume("true", outputDir: outB))
        XCTAssertEqual(ckpt.lastPathComponent, "checkpoint-3")
        let b2 = try trainer(sftConfig(out: outB))
        try b2.run(resumeFrom: ckpt)
        let la = a.logHistory.filter { $0["loss"] != nil }, lb = b2.logHistory.filter { $0["loss"] != nil }
        XCTAssertEqual(la.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(la.map(\.step), lb.map(\.step))
        for (x, y) in zip(la, lb) {
            for k in ["loss", "grad_norm", "learning_rate", "epoch", "num_tokens", "mean_token_accuracy"] {
                XCTAssertEqual(x[k], y[k], "step \(x.step) \(k)")
            }
        }
        for (p, q) in zip(a.model.trainableParameters, b2.model.trainableParameters) {
            XCTAssertTrue(Array(p.value) == Array(q.value), p.name)
        }
        // The JSONL log holds each record once (the stopped run's final record is dropped on resume).
        let lines = try String(contentsOf: outB.appendingPathComponent("train_log.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, b2.logHistory.count)
    }

    /// gradient_checkpointing recomputes each decoder layer in backward: the gradients of every weight of
    /// a full fine-tuning step are bit-identical to keeping the activations.
    func testGradientCheckpointingGivesIdenticalGradients() throws {
        let src = try PreTokenizedSource(folder: fixtureURL("sft/mm"), split: "train")
        let batch = try src.batch(indices: [0, 1, 2])
        var grads: [[[Float]]] = []
        for gc in [false, true] {
            let t = try fullModel()
            t.gradientCheckpointing = gc
            t.zeroGrad()
            let r = try t.forwardBackward(batch, lossScale: 0.01)
            XCTAssertGreaterThan(r.targets, 0)
            grads.append(t.trainableParameters.map { Array($0.grad) })
        }
        XCTAssertEqual(grads[0].count, grads[1].count)
        XCTAssertTrue(grads[0].contains { g in g.contains { $0 != 0 } })
        for (i, (a, b)) in zip(grads[0], grads[1]).enumerated() { XCTAssertTrue(a == b, "parameter \(i)") }
    }
}
