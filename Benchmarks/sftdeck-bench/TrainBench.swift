import Foundation
import Training

/// `sftdeck-bench train`: optimizer and trainer-loop figures, each against a reference measured in the
/// same run (torch fused AdamW through the reference Python when $SFTDECK_PYREF or /work/pyref/bin/python
/// exists). The Gemma-3-shaped LoRA comparison with TRL is `trainGemmaBench` (needs module Models).
public func runTrainBench() {
    let n = 8 << 20
    let value = UnsafeMutableBufferPointer<Float>.allocate(capacity: n), grad = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
    for i in 0..<n { value[i] = Float(i % 97) * 1e-3; grad[i] = Float(i % 89) * 1e-4 - 4e-3 }
    let params = [TrainableTensor(name: "w", shape: [n], value: value, grad: grad)]
    let opt = AdamW(parameters: params, weightDecay: 0.01)
    opt.step(params, lr: 1e-3)   // warm up
    let steps = 5
    let t0 = Date()
    for _ in 0..<steps { opt.step(params, lr: 1e-3) }
    let swiftSec = Date().timeIntervalSince(t0) / Double(steps)
    let clipT0 = Date()
    for _ in 0..<steps { _ = GradientClipping.clip(params, maxNorm: 1.0) }
    let clipSec = Date().timeIntervalSince(clipT0) / Double(steps)
    print(String(format: "train: AdamW step over %d fp32 params: %.2f ms (%.0f M elem/s); clip_grad_norm: %.2f ms",
                 n, swiftSec * 1e3, Double(n) / swiftSec / 1e6, clipSec * 1e3))
    if let torchSec = torchAdamWSeconds(n: n, steps: steps) {
        print(String(format: "train: torch.optim.AdamW(fused=True), 1 thread: %.2f ms  → SFTDeck/torch time ratio %.2f",
                     torchSec * 1e3, swiftSec / torchSec))
    } else {
        print("train: no reference Python found (set SFTDECK_PYREF); torch AdamW not measured")
    }
    value.deallocate(); grad.deallocate()

    // Trainer loop overhead on the toy bigram model (compute is negligible; this is bookkeeping cost).
    do {
        let rows = (0..<512).map { i in (ids: (0..<16).map { ($0 * 7 + i) % 64 }, labels: (0..<16).map { ($0 * 7 + i) % 64 }) }
        var c = SFTConfig()
        c.perDeviceTrainBatchSize = 8; c.gradientAccumulationSteps = 2; c.numTrainEpochs = 1; c.learningRate = 0.05
        c.loggingSteps = 8; c.saveStrategy = .no
        let model = try BigramLM(vocab: 64, dim: 32, seed: 3)
        let t = try Trainer(config: c, model: model, train: TokenRowsSource(rows: rows))
        let s0 = Date()
        let rec = try t.run()
        let sec = Date().timeIntervalSince(s0)
        print(String(format: "train: toy bigram, %d optimizer steps in %.3f s (%.0f tokens/s), train_loss %.4f",
                     t.globalStep, sec, Double(t.numTokensSeen) / sec, rec["train_loss"] ?? .nan))
    } catch { print("train: toy run failed: \(error)") }
}

private func torchAdamWSeconds(n: Int, steps: Int) -> Double? {
    let py = ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
    guard FileManager.default.isExecutableFile(atPath: py) else { return nil }
    let script = """
    import time, torch
    torch.set_num_threads(1)
    p = torch.nn.Parameter(torch.rand(\(n))); p.grad = torch.rand(\(n)) * 1e-2
    o = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01, fused=True); o.step()
    t = time.perf_counter()
    for _ in range(\(steps)): o.step()
    print((time.perf_counter() - t) / \(steps))
    """
    let proc = Process()
    proc.executableURL = URL(fileURLWithPath: py)
    proc.arguments = ["-c", script]
    let pipe = Pipe()
    proc.standardOutput = pipe; proc.standardError = FileHandle.nullDevice
    do { try proc.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    proc.waitUntilExit()
    return Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
}

/// `sftdeck-bench train-gemma [steps]`: the issue's side-by-side. A Gemma-3-shaped ~50M-parameter model
/// (the `model` suite's shapes) trained with LoRA as the guide configures it (r 16, alpha 16, all-linear,
/// modules_to_save lm_head + embed_tokens), batch 2 × 256 tokens with one 64-token image per row, GA 1, by
/// TRL's SFTTrainer (PyTorch, 2 threads) and by SFTDeck's trainer on the same weights, adapter and rows.
/// Figures: tokens/s after the first step, peak RSS, time from launch to the end of the first optimizer step.
public func runTrainGemmaBench(_ args: [String]) {
    let steps = Int(args.first ?? "") ?? 4
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-train-bench")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let script = dir.appendingPathComponent("bench_trl.py")
    let py = ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
    do { try trlBenchScript.write(to: script, atomically: true, encoding: .utf8) } catch { print("train-gemma: \(error)"); return }
    print("train-gemma: Gemma-3-shaped ~50M, LoRA r16 all-linear + modules_to_save, batch 2×256, \(steps) steps, TRL vs SFTDeck")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: py)
    p.arguments = [script.path, dir.path, "\(steps)"]
    let pipe = Pipe()
    p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
    let launch = Date()
    do { try p.run() } catch { print("train-gemma: cannot run \(py): \(error)"); return }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let trl = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
        print("train-gemma: the TRL reference failed (exit \(p.terminationStatus))"); return
    }
    _ = launch
    // SFTDeck: same model folder, initial adapter and rows, from "launch" (this point) to the first step.
    let t0 = Date()
    var firstStepAt: Date? = nil, stepTimes: [Date] = []
    do {
        var c = SFTConfig()
        c.modelNameOrPath = dir.appendingPathComponent("model").path
        c.adapterNameOrPath = dir.appendingPathComponent("adapter_init").path
        c.datasetName = dir.appendingPathComponent("data").path
        c.usePeft = true; c.loraR = 16; c.loraAlpha = 16; c.loraDropout = 0
        c.perDeviceTrainBatchSize = 2; c.gradientAccumulationSteps = 1; c.maxSteps = steps; c.learningRate = 2e-5
        c.loggingSteps = 1; c.saveStrategy = .no; c.gradientCheckpointing = false; c.maxLength = nil
        let prepared = try RunSetup.prepare(c)
        let t = try Trainer(config: c, model: prepared.model, train: prepared.train)
        t.emit = { e in if case .step = e { let now = Date(); if firstStepAt == nil { firstStepAt = now }; stepTimes.append(now) } }
        try t.run()
        let losses = t.logHistory.compactMap { $0["loss"] }
        let tokens = 2.0 * 256.0
        let sftdeckTPS = stepTimes.count > 1 ? tokens * Double(stepTimes.count - 1) / stepTimes.last!.timeIntervalSince(stepTimes.first!) : .nan
        let trlTPS = trl["tokens_per_second"] as? Double ?? .nan
        let rss = Double(ResourceUsage.peakResidentBytes()) / 1_048_576
        let trlRSS = trl["peak_rss_mb"] as? Double ?? .nan
        let start = firstStepAt!.timeIntervalSince(t0), trlStart = trl["launch_to_first_step_s"] as? Double ?? .nan
        print(String(format: "train-gemma: first losses sftdeck %@  trl %@", losses.prefix(3).map { String(format: "%.5f", $0) }.joined(separator: " "),
                     ((trl["losses"] as? [Double]) ?? []).prefix(3).map { String(format: "%.5f", $0) }.joined(separator: " ")))
        print(String(format: "train-gemma: tokens/s           sftdeck %8.1f  trl %8.1f  ratio %.2fx", sftdeckTPS, trlTPS, sftdeckTPS / trlTPS))
        print(String(format: "train-gemma: peak RSS MB        sftdeck %8.0f  trl %8.0f  ratio %.2fx", rss, trlRSS, rss / trlRSS))
        print(String(format: "train-gemma: launch→first step  sftdeck %8.2fs trl %8.2fs ratio %.2fx", start, trlStart, start / trlStart))
    } catch { print("train-gemma: SFTDeck run failed: \(error)") }
}

/// `sftdeck-bench train-gemma-memory on|off [steps]`: SFTDeck alone on the `train-gemma` fixture (run that
/// first) with gradient_checkpointing on or off, one process per setting so peak RSS is the setting's own.
public func runTrainGemmaMemoryBench(_ args: [String]) {
    let gc = args.first == "on"
    let steps = Int(args.dropFirst().first ?? "") ?? 2
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-train-bench")
    do {
        var c = SFTConfig()
        c.modelNameOrPath = dir.appendingPathComponent("model").path
        c.adapterNameOrPath = dir.appendingPathComponent("adapter_init").path
        c.datasetName = dir.appendingPathComponent("data").path
        c.usePeft = true; c.loraR = 16; c.loraAlpha = 16; c.loraDropout = 0
        c.perDeviceTrainBatchSize = 2; c.maxSteps = steps; c.loggingSteps = 1; c.saveStrategy = .no
        c.gradientCheckpointing = gc; c.maxLength = nil
        let p = try RunSetup.prepare(c)
        let t = try Trainer(config: c, model: p.model, train: p.train)
        let t0 = Date()
        try t.run()
        print(String(format: "train-gemma-memory: gradient_checkpointing %@: peak RSS %.0f MB, %.2f s/step, losses %@", gc ? "on" : "off",
                     Double(ResourceUsage.peakResidentBytes()) / 1_048_576, Date().timeIntervalSince(t0) / Double(steps),
                     t.logHistory.compactMap { $0["loss"] }.map { String(format: "%.6f", $0) }.joined(separator: " ")))
    } catch { print("train-gemma-memory: \(error) (run `sftdeck-bench train-gemma` first to create the fixture)") }
}

extension ResourceUsage {
    /// Peak resident set size (getrusage ru_maxrss).
    public static func peakResidentBytes() -> Int {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Int(u.ru_maxrss) * 1024
    }
}

private let trlBenchScript = """
import time
T0 = time.time()
import json, os, resource, sys
import torch
torch.set_num_threads(2)
from safetensors.torch import save_file
from datasets import Dataset
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, TrainerCallback
from peft import LoraConfig, get_peft_model, PeftModel
from trl import SFTConfig, SFTTrainer
out, steps = sys.argv[1], int(sys.argv[2])
B, L = 2, 256
mdir, adir, ddir = os.path.join(out, "model"), os.path.join(out, "adapter_init"), os.path.join(out, "data")
if not os.path.exists(os.path.join(adir, "adapter_model.safetensors")):
    text = dict(vocab_size=32768, hidden_size=512, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=4,
                num_key_value_heads=1, head_dim=128, sliding_window=128, query_pre_attn_scalar=128, max_position_embeddings=4096)
    vision = dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=6, image_size=224,
                  patch_size=14, vision_use_head=False)
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=64, boi_token_index=255,
                       eoi_token_index=256, image_token_index=257)
    torch.manual_seed(0)
    m = Gemma3ForConditionalGeneration(cfg).float()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.randn(p.shape) * (0.05 if "norm" not in n else 0.1))
    m.save_pretrained(mdir)
    get_peft_model(m, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                 modules_to_save=["lm_head", "embed_tokens"], task_type="CAUSAL_LM")).save_pretrained(adir)
    g = torch.Generator().manual_seed(1)
    rows, px = [], []
    for r in range(2 * steps + 2):
        ids = torch.randint(300, 32000, (L,), generator=g)
        ids[4] = 255; ids[5:69] = 257; ids[69] = 256
        ids = ids.tolist()
        rows.append({"input_ids": ids, "labels": [-100 if t == 257 else t for t in ids],
                     "token_type_ids": [1 if t == 257 else 0 for t in ids], "num_images": 1, "first_image": r})
        px.append(torch.randn(3, 224, 224, generator=g))
    os.makedirs(ddir, exist_ok=True)
    json.dump({"train": rows}, open(os.path.join(ddir, "data.json"), "w"))
    save_file({"train": torch.stack(px)}, os.path.join(ddir, "pixels.safetensors"))
    T0 = time.time()   # launch-to-first-step counts loading, not writing the fixture
rows = json.load(open(os.path.join(ddir, "data.json")))["train"]
from safetensors.torch import load_file
pix = load_file(os.path.join(ddir, "pixels.safetensors"))["train"]
def collate(ex):
    ids = torch.tensor([e["input_ids"] for e in ex]); lab = torch.tensor([e["labels"] for e in ex])
    tt = torch.tensor([e["token_type_ids"] for e in ex])
    return {"input_ids": ids, "labels": lab, "token_type_ids": tt, "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.stack([pix[e["first_image"]] for e in ex])}
base = Gemma3ForConditionalGeneration.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
model = PeftModel.from_pretrained(base, adir, is_trainable=True)
times = []
class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kw): times.append(time.time())
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"0": 0, "1": 1}, unk_token="0")), pad_token="0", eos_token="1")
args = SFTConfig(output_dir=os.path.join(out, "trl_out"), report_to="none", use_cpu=True, save_strategy="no", bf16=False,
                 gradient_checkpointing=False, dataloader_pin_memory=False, remove_unused_columns=False,
                 dataset_kwargs={"skip_prepare_dataset": True}, max_length=None, per_device_train_batch_size=B,
                 max_steps=steps, logging_steps=1, learning_rate=2e-5, disable_tqdm=True)
tr = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate, processing_class=tok,
                callbacks=[Clock()])
tr.train()
losses = [r["loss"] for r in tr.state.log_history if "loss" in r]
tps = B * L * (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
print(json.dumps(dict(tokens_per_second=tps, launch_to_first_step_s=times[0] - T0, losses=losses,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""
