import XCTest
import Models
import Tensor
@testable import Training

/// QLoRA against transformers 5.24 + bitsandbytes 0.50.2 (CPU) + PEFT 0.21.2 + TRL 1.16 on the tiny Gemma 3 of
/// training/sft (every Linear 64 or 128 wide, so bnb's CPU backend quantises and runs them all), loaded with
/// `BitsAndBytesConfig(load_in_4bit, nf4, double quant, compute float32)`. Fixture: training/qlora, made by
/// Scripts/fixtures/gen_qlora.py.
/// Tolerances: module set and quantised state exact, dequantised weights bit-identical; losses 1e-5 relative
/// (fp32; only BLAS summation order differs); LoRA / modules_to_save gradients 1e-6 absolute + 1e-4 relative;
/// the SFTTrainer run's loss, grad_norm, eval_loss 1e-4 relative over 10 AdamW steps (as SFTTrainerParityTests).
final class QLoRAParityTests: XCTestCase {
    struct Reference {
        var quantized: [String]
        var losses: [String: Double]
    }

    func reference() throws -> Reference {
        let o = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: try fixtureURL("qlora/modules.json"))) as? [String: Any])
        var losses: [String: Double] = [:]
        for (k, v) in o where k.hasPrefix("loss") { losses[k] = jsonNumber(v) }
        return Reference(quantized: try XCTUnwrap(o["quantized_modules"] as? [String]), losses: losses)
    }

    func quantizedModel(_ dir: String = "sft/model") throws -> (Gemma3Model, [(name: String, weight: NF4Weight)]) {
        let model = try Gemma3Model.load(from: try fixtureURL(dir))
        let q = try Gemma3Trainable.quantizeFrozenLinears(model, doubleQuant: true)
        return (model, q)
    }

    /// Train rows 0 and 1 of training/sft/<kind>, collated as the generator's collator does.
    func batch(_ kind: String) throws -> ModelBatch {
        let src = try PreTokenizedSource(folder: try fixtureURL("sft/\(kind)"), split: "train")
        return try XCTUnwrap(try src.batch(indices: [0, 1]) as? Gemma3TrainingBatch).batch
    }

    func loss(_ model: Gemma3Model, _ b: ModelBatch) throws -> Double {
        let r = try model.evaluate(b)
        return r.lossSum / Double(r.tokenCount)
    }

    /// transformers' skip list leaves only lm_head dense; the SigLIP tower is quantised, the projector has no Linear.
    func testQuantisedModulesAreThoseBitsandbytesReplaced() throws {
        let ref = try reference()
        let (_, q) = try quantizedModel()
        // As sets: named_modules order differs only inside SigLIP attention (k, v, q, out_proj there).
        XCTAssertEqual(q.map(\.name).sorted(), ref.quantized.sorted())
        XCTAssertEqual(q.count, ref.quantized.count)
        XCTAssertEqual(ref.quantized.count, 20)
        XCTAssertTrue(ref.quantized.contains("model.vision_tower.encoder.layers.0.mlp.fc1"))
    }

    /// Packed codes, 8-bit absmax codes, nested absmax and offset equal bnb's quant_state exactly, and the
    /// dequantised fp32 weight equals `bitsandbytes.functional.dequantize_4bit` bit for bit, for every module.
    func testDequantisedWeightsAreBitIdentical() throws {
        let (_, q) = try quantizedModel()
        let file = try SafeTensorsFile(url: try fixtureURL("qlora/quant.safetensors"))
        XCTAssertEqual(q.count, 20)
        var checked = 0
        for (name, w) in q {
            XCTAssertEqual(w.packed, Array(try file.rawBytes("\(name).packed")), "\(name): packed codes")
            guard case .nested(let codes, let absmax2, let offset, _) = w.scales else { XCTFail("\(name): not nested"); continue }
            XCTAssertEqual(codes, Array(try file.rawBytes("\(name).absmax_q")), "\(name): absmax codes")
            XCTAssertEqual(absmax2.map(\.bitPattern), try file.floats("\(name).absmax2").map(\.bitPattern), "\(name): absmax2")
            XCTAssertEqual(offset.bitPattern, try file.floats("\(name).offset")[0].bitPattern, "\(name): offset")
            let mine = w.dequantized()
            let ref = try file.floats("\(name).dequant")
            XCTAssertEqual(mine.count, ref.count, name)
            var mismatches = 0
            for i in 0..<min(mine.count, ref.count) where mine.data[i].bitPattern != ref[i].bitPattern { mismatches += 1 }
            XCTAssertEqual(mismatches, 0, "\(name): dequantised values differing from bnb")
            checked += 1
        }
        XCTAssertEqual(checked, 20)
    }

    /// The 4-bit model's mean loss equals transformers + bnb's: image rows (vision tower in 4 bits), text rows,
    /// and a bf16 checkpoint loaded for fp32 compute (dequantised values not rounded to bf16).
    func testFourBitModelLossEqualsBitsandbytes() throws {
        let ref = try reference()
        let (model, _) = try quantizedModel()
        let cases: [(String, Double, Double)] = [
            ("mm", try loss(model, batch("mm")), try XCTUnwrap(ref.losses["loss_4bit"])),
            ("text", try loss(model, batch("text")), try XCTUnwrap(ref.losses["loss_4bit_text"])),
        ]
        let (bf16Model, _) = try quantizedModel("qlora/model_bf16")
        let all = cases + [("bf16 checkpoint", try loss(bf16Model, batch("mm")), try XCTUnwrap(ref.losses["loss_4bit_bf16_checkpoint"]))]
        for (what, got, want) in all {
            XCTAssertEqual(got, want, accuracy: 1e-5 * want, what)
            print("QLoRA 4-bit loss \(what): \(got) vs bnb \(want), relative \(abs(got - want) / want)")
        }
        // Not vacuous: 4 bits move the loss by far more than the tolerance.
        XCTAssertGreaterThan(abs(try XCTUnwrap(ref.losses["loss_fp32"]) - all[0].1), 1e-3)
    }

    /// A trained LoRA (all-linear r=4 + modules_to_save) on the 4-bit base: loss and d(mean loss)/dθ for every
    /// trainable tensor equal PEFT's on bnb's Linear4bit.
    func testLoRAGradientsOnFourBitBaseEqualPEFT() throws {
        let ref = try reference()
        let (model, _) = try quantizedModel()
        try model.loadAdapter(from: try fixtureURL("sft/adapter_trained_mm"))
        let b = try batch("mm")
        let tokens = Gemma3TrainingBatch(b).targetCount
        model.zeroGrad()
        let r = try model.forwardBackward(b, gradScale: 1 / Float(tokens))
        XCTAssertEqual(r.tokenCount, tokens)
        let want = try XCTUnwrap(ref.losses["loss_4bit_lora"])
        XCTAssertEqual(r.meanLoss, want, accuracy: 1e-5 * want)
        let file = try SafeTensorsFile(url: try fixtureURL("qlora/grads.safetensors"))
        let names = file.names.filter { $0.hasPrefix("grad.") }
        XCTAssertEqual(Set(names.map { String($0.dropFirst(5)) }), Set(model.trainableParameters.map(\.name)))
        var worst: Float = 0
        for p in model.trainableParameters {
            let g = try file.floats("grad.\(p.name)")
            let mine = Array(p.grad)
            assertClose(mine, g, abs: 1e-6, rel: 1e-4, p.name)
            let scale = g.map(abs).max() ?? 0
            for i in 0..<min(mine.count, g.count) { worst = max(worst, abs(mine[i] - g[i]) / max(scale, 1e-12)) }
        }
        print("QLoRA LoRA grads: loss \(r.meanLoss) vs \(want); worst |diff| / max|grad| per tensor \(worst)")
    }

    /// TRL 1.16 SFTTrainer on the 4-bit base from the initial adapter, 10 steps (batch 2, GA 2, warmup + linear,
    /// clipping, eval every 5), with TRL's bf16 cast of the trainables undone (SFTDeck trains in fp32):
    /// `sftdeck`'s trainer logs the same losses, grad norms and eval losses.
    func testSFTTrainerQLoRARunMatches() throws {
        let sft = try fixtureURL("sft")
        let yaml = try String(contentsOf: try fixtureURL("qlora/mm/sft.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
            .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("adapter_init").path)
            .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent("mm").path)
            .replacingOccurrences(of: "OUTPUT_DIR", with: tempDir("qlora-mm").path) + "dataset_test_split: eval\n"
        let cfg = try SFTConfig.parse(yaml: yaml).config
        XCTAssertTrue(cfg.loadIn4bit && cfg.useBnbNestedQuant)
        let prepared = try RunSetup.prepare(cfg)
        let t = try Trainer(config: cfg, model: prepared.model, train: prepared.train, eval: prepared.eval)
        try t.run()
        let want = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: try fixtureURL("qlora/mm/log_history.json"))) as? [[String: Any]])
        // Entropy keeps this test's own 1e-4 (its default tolerance before entropy was logged).
        let worst = assertLogHistory(t.logHistory, matches: want, label: "qlora", entropyTolerance: 1e-4)
        print("SFTTrainer QLoRA parity: worst relative error \(worst.sorted { $0.key < $1.key })")
    }
}
