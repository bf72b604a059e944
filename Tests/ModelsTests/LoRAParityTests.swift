import XCTest
@testable import Models

/// PEFT 0.21.2 LoRA over mm_gqa1 (all-linear, r=4, α=8, dropout 0, modules_to_save lm_head+embed_tokens,
/// nonzero B and drifted copies set by Scripts/fixtures/gen_gemma3.py).
final class LoRAParityTests: XCTestCase {
    let settings = LoRASettings(r: 4, alpha: 8, dropout: 0, targetModules: .allLinear, modulesToSave: ["lm_head", "embed_tokens"])

    func loraModel(rs: Bool = false) throws -> (Gemma3Model, Reference, Reference) {
        let model = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        var s = settings; s.useRSLoRA = rs
        try model.applyLoRA(s, seed: 1)
        let ref = try Reference(fixturesDir("lora_mm_gqa1"))
        for p in model.trainableParameters {
            let v = try ref.floats("param." + p.name)
            XCTAssertEqual(v.count, p.count, p.name)
            for i in 0..<p.count { p.value[i] = v[i] }
        }
        return (model, ref, try Reference(fixturesDir("mm_gqa1")))
    }

    func testTargetsAndTrainablesMatchPEFT() throws {
        let (model, ref, _) = try loraModel()
        let pyNames = Set(ref.names.filter { $0.hasPrefix("param.") }.map { String($0.dropFirst(6)) })
        XCTAssertEqual(Set(model.trainableParameters.map { $0.name }), pyNames)
        let suffixes = try JSONDecoder().decode([String].self, from: Data(contentsOf: fixturesDir("lora_mm_gqa1").appendingPathComponent("target_modules.json")))
        let mine = Set(try model.loraTargetNames(.allLinear).map { String($0.split(separator: ".").last!) })
        XCTAssertEqual(mine, Set(suffixes))
        XCTAssertFalse(try model.loraTargetNames(.allLinear).contains("lm_head"))
        // weight decay: LoRA and the copies decay (no bias / norm among them)
        XCTAssertTrue(model.trainableParameters.allSatisfy { $0.weightDecay })
    }

    func testLossLogitsAndLoRAGradsMatchPEFT() throws {
        let (model, ref, base) = try loraModel()
        let batch = try base.batch()
        let count = base.ints("count")![0]
        let ev = try model.evaluate(batch, returnLogits: true)
        let le = relErr(ev.logits!, try ref.floats("logits"))
        XCTAssertLessThan(le, 1e-4)
        model.zeroGrad()
        let res = try model.forwardBackward(batch, gradScale: 1 / Float(count))
        let loss = Double(try ref.floats("loss_mean")[0])
        XCTAssertEqual(res.meanLoss, loss, accuracy: 1e-5 * loss)
        var worst: Float = 0
        for p in model.trainableParameters {
            let e = relErr(UnsafeBufferPointer(p.grad), try ref.floats("grad." + p.name), floor: 1e-6)
            worst = max(worst, e)
            XCTAssertLessThan(e, 1e-3, p.name)
        }
        print("lora: loss \(res.meanLoss) vs \(loss), logits err \(le), worst grad rel err \(worst) over \(model.trainableParameters.count) tensors")
    }

    func testRSLoRAScaling() throws {
        let (model, ref, base) = try loraModel(rs: true)
        let res = try model.evaluate(try base.batch())
        let loss = Double(try ref.floats("rslora.loss_mean")[0])
        XCTAssertEqual(res.meanLoss, loss, accuracy: 1e-5 * loss)
    }

    /// The adapter folder PEFT saved loads in Swift and reproduces PEFT's logits.
    func testLoadsPEFTSavedAdapter() throws {
        let model = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        try model.loadAdapter(from: fixturesDir("lora_mm_gqa1").appendingPathComponent("adapter"))
        let ref = try Reference(fixturesDir("lora_mm_gqa1"))
        let ev = try model.evaluate(try Reference(fixturesDir("mm_gqa1")).batch(), returnLogits: true)
        XCTAssertLessThan(relErr(ev.logits!, try ref.floats("logits")), 1e-4)
        XCTAssertEqual(model.trainableParameters.count, ref.names.filter { $0.hasPrefix("param.") }.count)
    }

    /// Swift-written adapter: PEFT's file layout and config text, and it round-trips.
    func testSavedAdapterMatchesPEFTFormat() throws {
        let (model, ref, base) = try loraModel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-adapter-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var s = settings; s.baseModelNameOrPath = "Tests/ModelsTests/Fixtures/gemma3/mm_gqa1"
        model.lora = s
        try model.saveAdapter(to: dir)
        // one-off cross-check with PEFT: SFTDECK_KEEP_ADAPTER=/path keeps a copy for PeftModel.from_pretrained
        if let keep = ProcessInfo.processInfo.environment["SFTDECK_KEEP_ADAPTER"] { try model.saveAdapter(to: URL(fileURLWithPath: keep)) }
        let mine = try String(contentsOf: dir.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        let peftJSON = try JSONSerialization.jsonObject(with: Data(contentsOf: fixturesDir("lora_mm_gqa1").appendingPathComponent("adapter/adapter_config.json"))) as! [String: Any]
        let mineJSON = try JSONSerialization.jsonObject(with: Data(mine.utf8)) as! [String: Any]
        XCTAssertEqual(Set(mineJSON.keys), Set(peftJSON.keys))
        for (k, v) in peftJSON where k != "target_modules" {
            XCTAssertEqual("\(mineJSON[k]!)", "\(v)", k)
        }
        XCTAssertEqual(Set(mineJSON["target_modules"] as! [String]), Set(peftJSON["target_modules"] as! [String]))
        let peftST = try MappedSafeTensors(url: fixturesDir("lora_mm_gqa1").appendingPathComponent("adapter/adapter_model.safetensors"))
        let mineST = try MappedSafeTensors(url: dir.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(Set(mineST.entries.keys), Set(peftST.entries.keys))
        for (k, e) in peftST.entries { XCTAssertEqual(mineST.entries[k]?.shape, e.shape, k) }
        let reloaded = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        try reloaded.loadAdapter(from: dir)
        let ev = try reloaded.evaluate(try base.batch(), returnLogits: true)
        XCTAssertLessThan(relErr(ev.logits!, try ref.floats("logits")), 1e-4)
    }
}

final class CheckpointingAndDropoutTests: XCTestCase {
    func grads(_ m: Gemma3Model) -> [[Float]] { m.trainableParameters.map { Array($0.grad) } }

    /// Gradient checkpointing recomputes each layer (with the same dropout masks): identical gradients.
    func testCheckpointingGivesSameGradients() throws {
        let batch = try Reference(fixturesDir("mm_gqa1")).batch()
        var results: [[[Float]]] = []
        var losses: [Double] = []
        for ckpt in [false, true] {
            let m = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
            try m.applyLoRA(LoRASettings(r: 4, alpha: 8, dropout: 0.1, targetModules: .allLinear, modulesToSave: ["lm_head"]), seed: 3)
            for p in m.trainableParameters where p.name.contains("lora_B") { for i in 0..<p.count { p.value[i] = Float(i % 7) * 0.01 - 0.03 } }
            m.seedDropout(9)
            m.zeroGrad()
            losses.append(try m.forwardBackward(batch, gradScale: 0.1, gradientCheckpointing: ckpt).lossSum)
            results.append(grads(m))
        }
        XCTAssertEqual(losses[0], losses[1])
        for (a, b) in zip(results[0], results[1]) { XCTAssertEqual(a, b) }
    }

    /// Dropout on the adapter input changes the loss in train mode only; eval is deterministic.
    func testDropoutOnlyInTrainMode() throws {
        let batch = try Reference(fixturesDir("mm_gqa1")).batch()
        let m = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        try m.applyLoRA(LoRASettings(r: 4, alpha: 8, dropout: 0.5, targetModules: .allLinear), seed: 3)
        for p in m.trainableParameters where p.name.contains("lora_B") { for i in 0..<p.count { p.value[i] = 0.05 } }
        let e1 = try m.evaluate(batch).lossSum, e2 = try m.evaluate(batch).lossSum
        XCTAssertEqual(e1, e2)
        let t1 = try m.forwardBackward(batch, gradScale: 0).lossSum, t2 = try m.forwardBackward(batch, gradScale: 0).lossSum
        XCTAssertNotEqual(t1, e1)
        XCTAssertNotEqual(t1, t2)
    }

    /// gradScale multiplies every gradient (the trainer's 1/num_items_in_batch).
    func testGradScaleIsLinear() throws {
        let batch = try Reference(fixturesDir("text_gqa4")).batch()
        let m = try Gemma3Model.load(from: fixturesDir("text_gqa4"))
        m.enableFullFineTuning()
        m.zeroGrad(); _ = try m.forwardBackward(batch, gradScale: 1)
        let g1 = grads(m)
        m.zeroGrad(); _ = try m.forwardBackward(batch, gradScale: 0.25)
        for (a, b) in zip(g1, grads(m)) { XCTAssertLessThan(relErr(b.map { $0 * 4 }, a, floor: 1e-6), 1e-5) }
    }
}

final class MergeTests: XCTestCase {
    /// LoRA folded into the base weights (and the copies untied) gives PEFT's logits from a plain checkpoint.
    func testMergedWeightsReproducePEFTLogits() throws {
        let m = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        try m.loadAdapter(from: fixturesDir("lora_mm_gqa1").appendingPathComponent("adapter"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-merged-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try m.saveWeights(to: ProcessInfo.processInfo.environment["SFTDECK_KEEP_MERGED"].map { URL(fileURLWithPath: $0) } ?? dir)
        if ProcessInfo.processInfo.environment["SFTDECK_KEEP_MERGED"] != nil { try m.saveWeights(to: dir) }
        let merged = try Gemma3Model.load(from: dir)
        XCTAssertFalse(merged.text.tieWordEmbeddings)
        let ev = try merged.evaluate(try Reference(fixturesDir("mm_gqa1")).batch(), returnLogits: true)
        XCTAssertLessThan(relErr(ev.logits!, try Reference(fixturesDir("lora_mm_gqa1")).floats("logits")), 1e-4)
    }
}
