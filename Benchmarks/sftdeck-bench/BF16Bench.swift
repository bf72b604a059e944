// `sftdeck-bench bf16 [steps]`: bf16 matrix products against fp32 sgemm in the same run.
// 1. GFLOP/s at Gemma 3 4B layer shapes (256 tokens): fp32 sgemm, emulated bf16 (operands rounded to bf16,
//    then sgemm: the packing is counted), native cblas_sbgemm when this process can run it.
// 2. One LoRA training step (forward + backward, r 16 all-linear) of a Gemma-3-shaped ~50M text model
//    (random bf16 checkpoint written here) with bf16_matmul fp32 vs emulate, and what the step's matrix
//    FLOPs come to as a fraction of the 2048³ sgemm measured above. On a shared machine every figure moves
//    with the load: compare only the ratios of one run.
import Dispatch
import Foundation
import Models
import Tensor

private func bestSeconds(reps: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<reps {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
    }
    return best
}

public func runBF16Bench(_ args: [String]) throws {
    BLASRuntime.reexecWithBestKernelIfNeeded()
    setvbuf(stdout, nil, _IOLBF, 0)
    let caps = BF16Capabilities.current
    // Measured whenever a library exports it; without AVX512-BF16 / AMX-BF16 that is OpenBLAS's generic kernel.
    let native = caps.libraryHasSbgemm
    print("bf16: OpenBLAS core \(BLASRuntime.coreName), \(BLASThreads.summary); " + (native
        ? "cblas_sbgemm from \(BF16Native.namedLibrary ?? "the loaded BLAS")" : "sbgemm unavailable: \(caps.unavailableReason ?? "")"))
    if native && !caps.cpuHasBF16 { print("bf16: the CPU has no bf16 instructions: sbgemm figures are OpenBLAS's generic kernel") }

    // 1. products
    let ws = BF16Workspace()
    var peak = 0.0
    func gemm(_ label: String, _ m: Int, _ n: Int, _ k: Int, ta: Bool = false, tb: Bool = false, reps: Int = 3) {
        let a = Tensor.randomUniform([m * k], seed: 1), b = Tensor.randomUniform([k * n], seed: 2), c = Tensor(zeros: [m * n])
        func time(_ mode: BF16MatmulMode) -> Double {
            let t = bestSeconds(reps: reps) {
                bf16Gemm(mode, transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a.data, lda: ta ? m : k,
                         b: b.data, ldb: tb ? k : n, c: c.data, ldc: n, workspace: ws)
            }
            return 2.0 * Double(m * n * k) / t / 1e9
        }
        let f = time(.fp32), e = time(.emulated)
        if label == "peak" { peak = f }
        var line = String(format: "bf16: %-26@ %5d x %5d x %5d  sgemm %6.1f  emulated %6.1f GFLOP/s (%.2fx)",
                          label as NSString, m, n, k, f, e, e / f)
        if native { let s = time(.sbgemm); line += String(format: "  sbgemm %6.1f (%.2fx)", s, s / f) } else { line += "  sbgemm unavailable" }
        print(line)
    }
    let tokens = 256
    gemm("q_proj x·Wᵀ", tokens, 2048, 2560, tb: true)
    gemm("gate/up x·Wᵀ", tokens, 10240, 2560, tb: true)
    gemm("down x·Wᵀ", tokens, 2560, 10240, tb: true)
    gemm("backward dx = dy·W", tokens, 2560, 10240)
    gemm("backward dW = dyᵀ·x", 10240, 2560, tokens, ta: true)
    gemm("LoRA A (r 16) x·Aᵀ", tokens, 16, 2560, tb: true, reps: 10)
    gemm("peak", 2048, 2048, 2048)

    // 2. a training step
    let steps = Int(args.first ?? "") ?? 3
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-bf16-bench")
    let C = 512, I = 2048, Lyr = 6, H = 4, KV = 1, D = 128, V = 32768
    try writeGemmaTextCheckpoint(dir, C: C, I: I, layers: Lyr, heads: H, kv: KV, headDim: D, vocab: V)
    defer { try? FileManager.default.removeItem(at: dir) }
    let model = try Gemma3Model.load(from: dir)
    try model.applyLoRA(LoRASettings(r: 16, alpha: 16, dropout: 0), seed: 1)
    let B = 2, L = 256, T = B * L
    var s: UInt64 = 9
    let ids: [Int32] = (0..<T).map { _ in s = s &* 6364136223846793005 &+ 1; return Int32(3 + (s >> 33) % UInt64(V - 3)) }
    let batch = ModelBatch(batchSize: B, seqLen: L, inputIDs: ids, attentionMask: [Int32](repeating: 1, count: T), labels: ids)
    // matrix FLOPs of one step: base linears fwd + dx (frozen: no dW), LoRA fwd + both grads, lm_head fwd + dx,
    // attention q·kᵀ and p·v fwd + 2 backward products each.
    let linear = Lyr * (C * H * D + 2 * C * KV * D + H * D * C + 3 * C * I)
    let lora = Lyr * 16 * ((C + H * D) + 2 * (C + KV * D) + (H * D + C) + 2 * (C + I) + (I + C))
    let attention = Lyr * B * H * L * L * D * 2 * 2
    let flops = Double(2 * T * (2 * linear + 3 * lora + 2 * V * C) + 3 * attention)
    print(String(format: "bf16: Gemma-3-shaped text model, %.1fM parameters (bf16 checkpoint), LoRA r16 all-linear, batch %d×%d, %d timed steps",
                 Double(model.totalParameterCount) / 1e6, B, L, steps))
    var fp32Time = 0.0
    for mode in [BF16MatmulMode.fp32, .emulated] + (native ? [.sbgemm] : []) {
        model.bf16Matmul = mode
        model.zeroGrad()
        let first = try model.forwardBackward(batch, gradScale: 1 / Float(T))
        let t = bestSeconds(reps: steps) { model.zeroGrad(); _ = try? model.forwardBackward(batch, gradScale: 1 / Float(T)) }
        if mode == .fp32 { fp32Time = t }
        print(String(format: "bf16: train step %-8@ %6.3f s  %7.1f tokens/s  loss %.6f  matrix work %.1f GFLOP/s = %.2f of sgemm peak%@",
                     mode.rawValue as NSString, t, Double(T) / t, first.meanLoss, flops / t / 1e9, flops / t / 1e9 / peak,
                     mode == .fp32 ? "" : String(format: "  (%.2fx the fp32 step time)", t / fp32Time)))
    }
    if !native { print("bf16: train step sbgemm   unavailable: \(caps.unavailableReason ?? "")") }
}

/// A Gemma3ForCausalLM checkpoint with random bf16 weights (std 0.02; norms 0.1) and its config.json.
private func writeGemmaTextCheckpoint(_ dir: URL, C: Int, I: Int, layers: Int, heads: Int, kv: Int, headDim: Int, vocab: Int) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let types = (0..<layers).map { ($0 + 1) % 6 == 0 ? "\"full_attention\"" : "\"sliding_attention\"" }.joined(separator: ", ")
    let config = """
    {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": \(C), "intermediate_size": \(I),
     "num_hidden_layers": \(layers), "num_attention_heads": \(heads), "num_key_value_heads": \(kv), "head_dim": \(headDim),
     "vocab_size": \(vocab), "sliding_window": 128, "query_pre_attn_scalar": \(headDim), "max_position_embeddings": 4096,
     "layer_types": [\(types)], "rms_norm_eps": 1e-06, "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": true,
     "attention_bias": false, "attention_dropout": 0.0, "final_logit_softcapping": null, "attn_logit_softcapping": null,
     "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                         "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
     "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": [1, 106], "dtype": "bfloat16"}
    """
    try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    var w = SafeTensorsWriter()
    var seed: UInt64 = 0
    func add(_ name: String, _ shape: [Int], std: Float) throws {
        seed += 1
        let t = Tensor.randomNormal([shape.reduce(1, *)], seed: seed, std: std)
        try w.add(name, floats: Array(UnsafeBufferPointer(start: t.data, count: t.count)), shape: shape, as: .BF16)
    }
    try add("model.embed_tokens.weight", [vocab, C], std: 0.02)
    for l in 0..<layers {
        let p = "model.layers.\(l)."
        try add(p + "self_attn.q_proj.weight", [heads * headDim, C], std: 0.02)
        try add(p + "self_attn.k_proj.weight", [kv * headDim, C], std: 0.02)
        try add(p + "self_attn.v_proj.weight", [kv * headDim, C], std: 0.02)
        try add(p + "self_attn.o_proj.weight", [C, heads * headDim], std: 0.02)
        try add(p + "self_attn.q_norm.weight", [headDim], std: 0.1)
        try add(p + "self_attn.k_norm.weight", [headDim], std: 0.1)
        try add(p + "mlp.gate_proj.weight", [I, C], std: 0.02)
        try add(p + "mlp.up_proj.weight", [I, C], std: 0.02)
        try add(p + "mlp.down_proj.weight", [C, I], std: 0.02)
        for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
            try add(p + n + ".weight", [C], std: 0.1)
        }
    }
    try add("model.norm.weight", [C], std: 0.1)
    try w.write(to: dir.appendingPathComponent("model.safetensors"))
}
