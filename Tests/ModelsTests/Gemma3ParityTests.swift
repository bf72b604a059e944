import XCTest
@testable import Models

/// Fixtures from Scripts/fixtures/gen_gemma3.py (transformers 5.24, fp32 eager). Error measure for a tensor:
/// max|swift − torch| / max|torch| (so "relative" is relative to the tensor's scale).
func fixturesDir(_ name: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("gemma3").appendingPathComponent(name)
}

struct Reference {
    let file: MappedSafeTensors
    init(_ dir: URL) throws { file = try MappedSafeTensors(url: dir.appendingPathComponent("reference.safetensors")) }
    func floats(_ n: String) throws -> [Float] {
        guard let t = try file.tensor(n) else { throw ModelError("reference: no \(n)") }
        return t.toFloats().array
    }
    func ints(_ n: String) -> [Int]? { file.int64(n) }
    var names: [String] { Array(file.entries.keys) }
    func batch() throws -> ModelBatch {
        let ids = ints("batch.input_ids")!.map(Int32.init)
        let shape = file.entries["batch.input_ids"]!.shape
        var b = ModelBatch(batchSize: shape[0], seqLen: shape[1], inputIDs: ids,
                           attentionMask: ints("batch.attention_mask")!.map(Int32.init),
                           tokenTypeIDs: ints("batch.token_type_ids")?.map(Int32.init),
                           labels: ints("batch.labels")!.map(Int32.init))
        if let px = file.entries["batch.pixel_values"] {
            b.pixelValues = try floats("batch.pixel_values"); b.numImages = px.shape[0]
        }
        return b
    }
}

/// `floor`: a tensor whose true value is zero up to rounding (the key-bias gradient: softmax ignores a
/// shift shared by all keys) is compared absolutely below this scale.
func relErr(_ a: UnsafeBufferPointer<Float>, _ b: [Float], floor: Float = 0) -> Float {
    precondition(a.count == b.count, "size \(a.count) vs \(b.count)")
    var md: Float = 0, mb: Float = 0
    for i in 0..<b.count { md = max(md, abs(a[i] - b[i])); mb = max(mb, abs(b[i])) }
    let scale = max(mb, floor)
    return scale == 0 ? md : md / scale
}
func relErr(_ a: [Float], _ b: [Float], floor: Float = 0) -> Float { a.withUnsafeBufferPointer { relErr($0, b, floor: floor) } }

final class Gemma3ParityTests: XCTestCase {
    /// Full fine-tuning parity: loss (mean, sum, count, correct), logits, gradient of every parameter.
    func checkFull(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = fixturesDir(name)
        let ref = try Reference(dir)
        let model = try Gemma3Model.load(from: dir)
        model.enableFullFineTuning()
        let batch = try ref.batch()
        let count = ref.ints("count")![0]
        let evalRes = try model.evaluate(batch, returnLogits: true)
        let refLogits = try ref.floats("logits")
        let logitErr = relErr(evalRes.logits!, refLogits)
        if logitErr > 1e-4 {
            let V = refLogits.count / (batch.batchSize * batch.seqLen)
            for r in 0..<(batch.batchSize * batch.seqLen) {
                let e = relErr(Array(evalRes.logits![(r * V)..<((r + 1) * V)]), Array(refLogits[(r * V)..<((r + 1) * V)]))
                if e > 1e-4 { print("row \(r) err \(e) swift \(evalRes.logits![r * V]) torch \(refLogits[r * V])") }
            }
        }
        XCTAssertLessThan(logitErr, 1e-4, "\(name) logits", file: file, line: line)
        model.zeroGrad()
        let res = try model.forwardBackward(batch, gradScale: 1 / Float(count))
        XCTAssertEqual(res.tokenCount, count, file: file, line: line)
        XCTAssertEqual(res.correctCount, ref.ints("correct")![0], file: file, line: line)
        let lossMean = try ref.floats("loss_mean")[0], lossSum = try ref.floats("loss_sum")[0]
        XCTAssertEqual(res.meanLoss, Double(lossMean), accuracy: 1e-5 * Double(lossMean), "\(name) loss", file: file, line: line)
        XCTAssertEqual(res.lossSum, Double(lossSum), accuracy: 1e-5 * Double(lossSum), file: file, line: line)
        var worst: (String, Float) = ("", 0)
        var checked = 0
        for n in ref.names where n.hasPrefix("grad.") {
            let pname = String(n.dropFirst(5))
            guard let p = model.parameter(named: pname) else { XCTFail("\(name): no parameter \(pname)", file: file, line: line); continue }
            let e = relErr(UnsafeBufferPointer(p.grad), try ref.floats(n), floor: 1e-6)
            if e > worst.1 { worst = (pname, e) }
            XCTAssertLessThan(e, 1e-3, "\(name) grad \(pname)", file: file, line: line)
            checked += 1
        }
        XCTAssertEqual(checked, model.trainableParameters.count, "every parameter has a reference gradient", file: file, line: line)
        print("\(name): loss \(res.meanLoss) vs \(lossMean), logits err \(logitErr), worst grad \(worst.0) \(worst.1) over \(checked) params")
    }

    func testMultimodalGQA1() throws { try checkFull("mm_gqa1") }
    func testMultimodalGQA2BF16Sharded() throws { try checkFull("mm_gqa2_bf16_sharded") }
    func testTextOnlyGQA4() throws { try checkFull("text_gqa4") }
}

final class Gemma3LoadingTests: XCTestCase {
    /// In-memory names (model.language_model.*) and the Hub's vision_tower.vision_model.* infix, single
    /// file, same weights as the sharded bf16 checkpoint.
    func testAlternateKeyLayoutGivesSameLogits() throws {
        let a = try Gemma3Model.load(from: fixturesDir("mm_gqa2_bf16_alt_layout"))
        let ref = try Reference(fixturesDir("mm_gqa2_bf16_sharded"))
        let r = try a.evaluate(try ref.batch(), returnLogits: true)
        XCTAssertLessThan(relErr(r.logits!, try ref.floats("logits")), 1e-4)
    }

    func testBF16WeightsStayBF16() throws {
        let m = try Gemma3Model.load(from: fixturesDir("mm_gqa2_bf16_sharded"))
        XCTAssertEqual(m.layers[0].q.weight.frozen?.dtype, .bf16)
        XCTAssertEqual(m.embedding.frozen?.dtype, .bf16)
    }

    func testMissingAndMisShapedTensorsAreListed() throws {
        let src = fixturesDir("text_gqa4")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-bad-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as! [String: Any]
        cfg["num_hidden_layers"] = 4
        cfg["layer_types"] = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
        cfg["intermediate_size"] = 96
        try JSONSerialization.data(withJSONObject: cfg).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: src.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Gemma3Model.load(from: dir)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("missing") && s.contains("model.layers.3.self_attn.q_proj.weight"), s)
            XCTAssertTrue(s.contains("mis-shaped") && s.contains("model.layers.0.mlp.gate_proj.weight [64, 64] (expected [96, 64])"), s)
        }
    }

    func testConfigErrorsNameTheField() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-cfg-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data(#"{"architectures":["LlamaForCausalLM"]}"#.utf8).write(to: url)
        XCTAssertThrowsError(try ArchitectureRegistry.load(configAt: url)) { XCTAssertTrue("\($0)".contains("unsupported architecture LlamaForCausalLM"), "\($0)") }
        try Data(#"{"architectures":["Gemma3ForCausalLM"],"hidden_size":"wide"}"#.utf8).write(to: url)
        XCTAssertThrowsError(try ArchitectureRegistry.load(configAt: url)) { XCTAssertTrue("\($0)".contains("hidden_size"), "\($0)") }
    }

    /// Defaults as transformers 5.24's config classes; old-style rope keys.
    func testDefaultsAndLegacyRopeKeys() throws {
        let json = #"{"architectures":["Gemma3ForConditionalGeneration"],"text_config":{"hidden_size":2560,"intermediate_size":10240,"num_hidden_layers":34,"sliding_window":1024,"rope_scaling":{"rope_type":"linear","factor":8.0},"unknown_key":1},"vision_config":{"hidden_size":1152,"image_size":896,"intermediate_size":4304,"num_attention_heads":16,"num_hidden_layers":27,"patch_size":14,"vision_use_head":false},"mm_tokens_per_image":256}"#
        let c = try JSONDecoder().decode(Gemma3Config.self, from: Data(json.utf8))
        XCTAssertEqual(c.textConfig.vocabSize, 262_208)
        XCTAssertEqual(c.textConfig.headDim, 256)
        XCTAssertEqual(c.textConfig.layerTypes.enumerated().filter { $0.element == "full_attention" }.map { $0.offset }, [5, 11, 17, 23, 29])
        XCTAssertEqual(c.textConfig.ropeParameters["full_attention"], RopeParameters(ropeType: "linear", ropeTheta: 1e6, factor: 8))
        XCTAssertEqual(c.textConfig.ropeParameters["sliding_attention"], RopeParameters(ropeType: "default", ropeTheta: 1e4))
        XCTAssertEqual(c.imageTokenIndex, 262_144)
        XCTAssertEqual(c.visionConfig.layerNormEps, 1e-6)
    }
}

final class ParameterFlagTests: XCTestCase {
    /// HF Trainer get_decay_parameter_names on Gemma 3: no decay for biases, RMSNorm weights (q_norm, k_norm,
    /// *_layernorm, norm, mm_soft_emb_norm) and SigLIP nn.LayerNorm parameters.
    func testWeightDecayFlags() throws {
        let m = try Gemma3Model.load(from: fixturesDir("mm_gqa1"))
        m.enableFullFineTuning()
        for p in m.trainableParameters {
            let noDecay = p.name.hasSuffix(".bias") || p.name.contains("norm")
            XCTAssertEqual(p.weightDecay, !noDecay, p.name)
            XCTAssertEqual(p.inNormLayer, p.name.contains("layer_norm") || p.name.contains("post_layernorm"), p.name)
        }
        XCTAssertEqual(m.totalParameterCount, m.trainableParameters.reduce(0) { $0 + $1.count })
    }
}
