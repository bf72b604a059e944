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
        print(String(format: "model: parameters %d (torch %d)", model.totalParameterCount, torch["params"] as! Int))
        print(String(format: "model: loss sftdeck %.6f  torch %.6f", first.meanLoss, torch["loss"] as! Double))
        print(String(format: "model: fwd+bwd tokens/s  sftdeck %.1f  torch %.1f  ratio %.2fx", swiftTPS, torchTPS, swiftTPS / torchTPS))
        print(String(format: "model: peak RSS MB  sftdeck %.0f  torch %.0f  ratio %.2fx", peakRSSMB(), torch["peak_rss_mb"] as! Double,
                     peakRSSMB() / (torch["peak_rss_mb"] as! Double)))
    }
}
