// `sftdeck-bench model`: forward+backward tokens/s of a Gemma-3-shaped ~50M-parameter model (SigLIP tower,
// projector, 6-layer decoder with sliding/full layers, GQA) with full fine-tuning, SFTDeck next to PyTorch
// (transformers eager, torch.set_num_threads(2)) on the same random weights and batch, plus both peak RSS.
// PyTorch runs from $SFTDECK_PYREF (default /work/pyref/bin/python); it also writes the checkpoint.
import Foundation
import Models

enum ModelBench {
    static let python = """
    import json, os, resource, sys, time
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration
    torch.set_num_threads(2)
    out, B, L, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    text = dict(vocab_size=32768, hidden_size=512, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=4,
                num_key_value_heads=1, head_dim=128, sliding_window=128, query_pre_attn_scalar=128,
                max_position_embeddings=4096)
    vision = dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=6,
                  image_size=224, patch_size=14, vision_use_head=False)
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=64, boi_token_index=255,
                       eoi_token_index=256, image_token_index=257)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    m = Gemma3ForConditionalGeneration(cfg).float()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.randn(p.shape) * (0.05 if "norm" not in n else 0.1))
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        m.save_pretrained(out)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(300, 32000, (B, L), generator=g)
    for b in range(B):
        ids[b, 4] = 255; ids[b, 5:69] = 257; ids[b, 69] = 256
    px = torch.randn((B, 3, 224, 224), generator=g)
    tt = (ids == 257).long()
    lab = ids.clone(); lab[tt == 1] = -100
    torch.save(dict(ids=ids, px=px), os.path.join(out, "batch.pt"))
    open(os.path.join(out, "batch.json"), "w").write(json.dumps(dict(ids=ids.flatten().tolist(), px=px.flatten().tolist())))
    m.train()
    def step():
        m.zero_grad(set_to_none=False)
        r = m(input_ids=ids, pixel_values=px, token_type_ids=tt, attention_mask=torch.ones_like(ids), labels=lab)
        r.loss.backward()
        return r.loss.item()
    loss = step()
    t = time.time()
    for _ in range(steps): step()
    dt = (time.time() - t) / steps
    n = sum(p.numel() for p in m.parameters())
    print(json.dumps(dict(loss=loss, seconds_per_step=dt, tokens_per_second=B * L / dt, params=n,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
    """

    static func peakRSSMB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    static func run(arguments: [String]) throws {
        let B = 2, L = 256, steps = Int(arguments.first ?? "") ?? 3
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-model-bench")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = dir.appendingPathComponent("bench.py")
        try python.write(to: script, atomically: true, encoding: .utf8)
        let py = ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
        print("model: Gemma-3-shaped, batch \(B)×\(L) tokens (1 image of 64 soft tokens per row), full fine-tuning fwd+bwd, \(steps) timed steps")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = [script.path, dir.path, "\(B)", "\(L)", "\(steps)"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let torch = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            print("model: PyTorch reference failed (\(py)); exit \(p.terminationStatus)")
            return
        }
        // same batch
        let bj = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("batch.json"))) as! [String: Any]
        let ids = (bj["ids"] as! [Int]).map(Int32.init)
        let px = (bj["px"] as! [Double]).map(Float.init)
        let tt = ids.map { $0 == 257 ? Int32(1) : 0 }
        let labels = zip(ids, tt).map { $1 == 1 ? Int32(-100) : $0 }
        let batch = ModelBatch(batchSize: B, seqLen: L, inputIDs: ids, attentionMask: [Int32](repeating: 1, count: B * L),
                               tokenTypeIDs: tt, labels: labels, pixelValues: px, numImages: B)
        let model = try Gemma3Model.load(from: dir)
        model.enableFullFineTuning()
        let count = labels.enumerated().filter { $0.offset % L != 0 && $0.element != -100 }.count
        model.zeroGrad()
        let first = try model.forwardBackward(batch, gradScale: 1 / Float(count))
        let t0 = Date()
        for _ in 0..<steps { model.zeroGrad(); _ = try model.forwardBackward(batch, gradScale: 1 / Float(count)) }
        let dt = Date().timeIntervalSince(t0) / Double(steps)
        let swiftTPS = Double(B * L) / dt
        let torchTPS = torch["tokens_per_second"] as! Double
        print(String(format: "model: parameters %ld (torch %ld)", model.totalParameterCount, torch["params"] as! Int))
        print(String(format: "model: loss sftdeck %.6f  torch %.6f", first.meanLoss, torch["loss"] as! Double))
        print(String(format: "model: fwd+bwd tokens/s  sftdeck %.1f  torch %.1f  ratio %.2fx", swiftTPS, torchTPS, swiftTPS / torchTPS))
        print(String(format: "model: peak RSS MB  sftdeck %.0f  torch %.0f  ratio %.2fx", peakRSSMB(), torch["peak_rss_mb"] as! Double,
                     peakRSSMB() / (torch["peak_rss_mb"] as! Double)))
    }
}

/// `sftdeck-bench model-4b-memory`: a gemma-3-4b-it-shaped BF16 checkpoint (the Hub's config values; a
/// sparse file of zeros, 8.6 GB apparent size, no disk blocks) loaded memory-mapped, then one eval forward
/// of a 64-token text batch and one with an image; prints peak RSS after each. Shows frozen BF16 weights stay
/// 2 bytes a value (no fp32 copy of the model).
enum Model4BMemoryBench {
    static let config = #"""
    {"architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
     "eos_token_id": [1, 106], "image_token_index": 262144, "mm_tokens_per_image": 256, "model_type": "gemma3",
     "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
       "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
     "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "model_type": "siglip_vision_model",
       "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}, "torch_dtype": "bfloat16"}
    """#

    static func tensors() -> [(String, [Int])] {
        let C = 2560, I = 10240, H = 8, KV = 4, D = 256, V = 262_208, Cv = 1152, Iv = 4304
        var t: [(String, [Int])] = [("language_model.model.embed_tokens.weight", [V, C]), ("language_model.model.norm.weight", [C])]
        for l in 0..<34 {
            let p = "language_model.model.layers.\(l)."
            t += [(p + "self_attn.q_proj.weight", [H * D, C]), (p + "self_attn.k_proj.weight", [KV * D, C]),
                  (p + "self_attn.v_proj.weight", [KV * D, C]), (p + "self_attn.o_proj.weight", [C, H * D]),
                  (p + "self_attn.q_norm.weight", [D]), (p + "self_attn.k_norm.weight", [D]),
                  (p + "mlp.gate_proj.weight", [I, C]), (p + "mlp.up_proj.weight", [I, C]), (p + "mlp.down_proj.weight", [C, I])]
            for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
                t.append((p + n + ".weight", [C]))
            }
        }
        let v = "vision_tower.vision_model."
        t += [(v + "embeddings.patch_embedding.weight", [Cv, 3, 14, 14]), (v + "embeddings.patch_embedding.bias", [Cv]),
              (v + "embeddings.position_embedding.weight", [4096, Cv]), (v + "post_layernorm.weight", [Cv]), (v + "post_layernorm.bias", [Cv])]
        for l in 0..<27 {
            let p = v + "encoder.layers.\(l)."
            for n in ["q_proj", "k_proj", "v_proj", "out_proj"] { t += [(p + "self_attn.\(n).weight", [Cv, Cv]), (p + "self_attn.\(n).bias", [Cv])] }
            t += [(p + "mlp.fc1.weight", [Iv, Cv]), (p + "mlp.fc1.bias", [Iv]), (p + "mlp.fc2.weight", [Cv, Iv]), (p + "mlp.fc2.bias", [Cv])]
            for n in ["layer_norm1", "layer_norm2"] { t += [(p + n + ".weight", [Cv]), (p + n + ".bias", [Cv])] }
        }
        t += [("multi_modal_projector.mm_input_projection_weight", [Cv, C]), ("multi_modal_projector.mm_soft_emb_norm.weight", [Cv])]
        return t
    }

    static func writeSparseCheckpoint(_ dir: URL) throws -> Int {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var off = 0, params = 0
        for (n, s) in tensors() {
            let c = s.reduce(1, *)
            header[n] = ["dtype": "BF16", "shape": s, "data_offsets": [off, off + 2 * c]] as [String: Any]
            off += 2 * c; params += c
        }
        var h = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while h.count % 8 != 0 { h.append(0x20) }
        let url = dir.appendingPathComponent("model.safetensors")
        var d = Data()
        var len = UInt64(h.count).littleEndian
        withUnsafeBytes(of: &len) { d.append(contentsOf: $0) }
        d.append(h)
        try d.write(to: url)
        let fh = try FileHandle(forWritingTo: url)
        try fh.truncate(atOffset: UInt64(d.count + off))   // the data: a hole of zeros
        try fh.close()
        return params
    }

    static func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-gemma3-4b-sparse")
        let params = try writeSparseCheckpoint(dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        print(String(format: "model-4b-memory: gemma-3-4b-it shape, %ld parameters (%.2f GB as BF16)", params, Double(params) * 2 / 1e9))
        let t0 = Date()
        let m = try Gemma3Model.load(from: dir)
        print(String(format: "model-4b-memory: loaded in %.2f s, peak RSS %.0f MB", Date().timeIntervalSince(t0), ModelBench.peakRSSMB()))
        let L = 64
        var ids = [Int32](repeating: 1000, count: L); ids[0] = 2
        let t1 = Date()
        _ = try m.evaluate(ModelBatch(batchSize: 1, seqLen: L, inputIDs: ids, labels: ids))
        print(String(format: "model-4b-memory: first text forward (%d tokens, pages faulted in) %.1f s, peak RSS %.0f MB", L, Date().timeIntervalSince(t1), ModelBench.peakRSSMB()))
        let t2 = Date()
        _ = try m.evaluate(ModelBatch(batchSize: 1, seqLen: L, inputIDs: ids, labels: ids))
        print(String(format: "model-4b-memory: second text forward %.1f s, peak RSS %.0f MB", Date().timeIntervalSince(t2), ModelBench.peakRSSMB()))
    }
}
