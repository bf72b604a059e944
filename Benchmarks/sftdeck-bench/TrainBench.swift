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

/// `sftdeck-bench train-gemma [steps] [repeats]`: the issue's side-by-side. A Gemma-3-shaped ~50M-parameter
/// model (the `model` suite's shapes) trained with LoRA as the guide configures it (r 16, alpha 16, all-linear,
/// modules_to_save lm_head + embed_tokens), batch 2 × 256 tokens with one 64-token image per row, GA 1, by
/// TRL's SFTTrainer (PyTorch, 2 threads) and by the `sftdeck train --headless` binary on the same weights,
/// adapter and rows (pre-tokenised `data.json` + `pixels.safetensors`: both sides read every row and pixel
/// before step 1, neither tokenises). Both run as child processes started the same way (posix_spawn), so
/// "launch → first step" is the parent's clock from spawn to the end of the child's first optimizer step
/// (each child stamps its steps with the wall clock: TRL's on_step_end, SFTDeck's --profile-startup lines).
/// CPU seconds up to the first step are each child's own; peak RSS is wait4's ru_maxrss of each child.
/// Figures: tokens/s after the first step, peak RSS, launch → first step (wall and CPU) with each side's
/// phase breakdown. The fixture is written once (untimed) by the TRL script. (With a raw dataset instead of
/// pre-tokenised rows, SFTDeck's `DatasetsSource` collates only the first batch before step 1, while TRL's
/// `dataset.map` tokenises every row up front; this fixture keeps both sides equal by tokenising neither.)
public func runTrainGemmaBench(_ args: [String]) {
    let steps = max(2, Int(args.first ?? "") ?? 4)
    let repeats = max(1, Int(args.dropFirst().first ?? "") ?? 1)
    let dir = trainGemmaBenchDir
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let script = dir.appendingPathComponent("bench_trl.py")
    let py = ProcessInfo.processInfo.environment["SFTDECK_PYREF"] ?? "/work/pyref/bin/python"
    let exeDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let sftdeck = ProcessInfo.processInfo.environment["SFTDECK_BIN"] ?? exeDir.appendingPathComponent("sftdeck").path
    guard FileManager.default.isExecutableFile(atPath: sftdeck) else {
        print("train-gemma: no sftdeck binary at \(sftdeck) (swift build -c release --product sftdeck, or set SFTDECK_BIN)"); return
    }
    do { try trlBenchScript.write(to: script, atomically: true, encoding: .utf8) } catch { print("train-gemma: \(error)"); return }
    if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("adapter_init/adapter_model.safetensors").path)
        || !FileManager.default.fileExists(atPath: dir.appendingPathComponent("data/rows_for_\(steps)").path) {
        print("train-gemma: writing the fixture (model, initial adapter, \(2 * steps + 2) rows) in \(dir.path) ...")
        let r = spawnTimed(py, [script.path, dir.path, "\(steps)", "--make-fixture"], environment: [:], logs: dir, tag: "fixture")
        guard r.status == 0 else { print("train-gemma: fixture generation failed (exit \(r.status)): \(r.stderr.suffix(400))"); return }
    }
    let yaml = """
    model_name_or_path: \(dir.appendingPathComponent("model").path)
    adapter_name_or_path: \(dir.appendingPathComponent("adapter_init").path)
    dataset_name: \(dir.appendingPathComponent("data").path)
    output_dir: \(dir.appendingPathComponent("sftdeck_out").path)
    use_peft: true
    lora_r: 16
    lora_alpha: 16
    lora_dropout: 0.0
    per_device_train_batch_size: 2
    gradient_accumulation_steps: 1
    max_steps: \(steps)
    learning_rate: 2.0e-5
    logging_steps: 1
    save_strategy: "no"
    gradient_checkpointing: false
    max_length: null
    report_to: none

    """
    let yamlURL = dir.appendingPathComponent("sftdeck_bench.yaml")
    do { try yaml.write(to: yamlURL, atomically: true, encoding: .utf8) } catch { print("train-gemma: \(error)"); return }
    print("train-gemma: Gemma-3-shaped ~50M, LoRA r16 all-linear + modules_to_save, batch 2×256, \(steps) steps, TRL vs `sftdeck train`, \(repeats) round(s)")
    print("train-gemma: launch→first step = parent's spawn to the end of the child's first optimizer step; CPU = the child's own up to then")

    var ratios: [(tps: Double, rss: Double, start: Double, cpu: Double)] = []
    for round in 1...repeats {
        // TRL
        let trlRun = spawnTimed(py, [script.path, dir.path, "\(steps)"], environment: ["OMP_NUM_THREADS": "2"], logs: dir, tag: "trl")
        guard trlRun.status == 0, let line = trlRun.stdout.split(separator: "\n").last,
              let trl = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              let trlSteps = trl["step_times"] as? [Double], let trlPhases = trl["phases"] as? [[Any]] else {
            print("train-gemma: the TRL reference failed (exit \(trlRun.status)): \(trlRun.stderr.suffix(600))"); return
        }
        // SFTDeck
        let sd = spawnTimed(sftdeck, ["train", "--config", yamlURL.path, "--headless", "--jsonl"],
                            environment: ["SFTDECK_PROFILE_STARTUP": "1"], logs: dir, tag: "sftdeck")
        let phases = parseStartupProfile(sd.stderr)
        let sdSteps = phases.filter { $0.name.hasPrefix("optimizer step ") }
        guard sd.status == 0, let first = sdSteps.first else {
            print("train-gemma: sftdeck train failed (exit \(sd.status)): \(sd.stderr.suffix(600))"); return
        }
        let losses = sd.stdout.split(separator: "\n").compactMap { l -> Double? in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any], o["event"] as? String == "log" else { return nil }
            return o["loss"] as? Double
        }
        let tokens = 2.0 * 256.0
        func tps(_ t: [Double]) -> Double { t.count > 1 ? tokens * Double(t.count - 1) / (t.last! - t.first!) : .nan }
        let sdTPS = tps(sdSteps.map(\.epoch)), trlTPS = tps(trlSteps)
        let sdStart = first.epoch - sd.launch, trlStart = trlSteps[0] - trlRun.launch
        let sdCPU = first.cpu, trlCPU = trl["cpu_to_first_step_s"] as? Double ?? .nan
        let sdRSS = Double(sd.peakRSSBytes) / 1_048_576, trlRSS = Double(trlRun.peakRSSBytes) / 1_048_576
        if repeats > 1 { print("train-gemma: --- round \(round)") }
        print(String(format: "train-gemma: first losses sftdeck %@  trl %@", losses.prefix(3).map { String(format: "%.5f", $0) }.joined(separator: " "),
                     ((trl["losses"] as? [Double]) ?? []).prefix(3).map { String(format: "%.5f", $0) }.joined(separator: " ")))
        print(String(format: "train-gemma: tokens/s               sftdeck %8.1f   trl %8.1f   ratio %.2fx", sdTPS, trlTPS, sdTPS / trlTPS))
        print(String(format: "train-gemma: peak RSS MB            sftdeck %8.0f   trl %8.0f   ratio %.2fx", sdRSS, trlRSS, sdRSS / trlRSS))
        print(String(format: "train-gemma: launch→first step wall sftdeck %7.2fs   trl %7.2fs   ratio %.3fx", sdStart, trlStart, sdStart / trlStart))
        print(String(format: "train-gemma: launch→first step CPU  sftdeck %7.2fs   trl %7.2fs   ratio %.3fx", sdCPU, trlCPU, sdCPU / trlCPU))
        // Phase breakdowns: wall from the parent's spawn, CPU of the phase.
        var line1 = "train-gemma: sftdeck phases (wall from spawn / phase CPU):"
        var prevCPU = 0.0
        for p in phases where !p.name.hasPrefix("optimizer step ") || p.name == "optimizer step 1" {
            line1 += String(format: " %@ %.2fs/%.2fs;", p.name, p.epoch - sd.launch, p.cpu - prevCPU); prevCPU = p.cpu
        }
        print(line1)
        var line2 = "train-gemma: trl phases (wall from spawn / phase CPU):"
        prevCPU = 0
        for p in trlPhases {
            guard p.count == 3, let n = p[0] as? String, let t = p[1] as? Double, let c = p[2] as? Double else { continue }
            line2 += String(format: " %@ %.2fs/%.2fs;", n, t - trlRun.launch, c - prevCPU); prevCPU = c
        }
        print(line2)
        if let built = phases.first(where: { $0.name == "trainer built" }),
           let trlBuilt = trlPhases.first(where: { ($0.first as? String) == "trainer built" }), let tb = trlBuilt[1] as? Double {
            // Everything but the first step's compute: where a start-up floor would come from.
            let a = built.epoch - sd.launch, b = tb - trlRun.launch
            print(String(format: "train-gemma: launch→ready to step    sftdeck %7.2fs   trl %7.2fs   ratio %.3fx  (first step itself: sftdeck %.2fs, trl %.2fs)",
                         a, b, a / b, sdStart - a, trlStart - b))
            // The issue's aim (a tenth of TRL's launch → first step) leaves this much for SFTDeck's first step.
            print(String(format: "train-gemma: aim ≤0.1x needs sftdeck's first step ≤ %.2fs (it took %.2fs: the step's compute is the floor, not loading)",
                         0.1 * trlStart - a, sdStart - a))
        }
        ratios.append((sdTPS / trlTPS, sdRSS / trlRSS, sdStart / trlStart, sdCPU / trlCPU))
    }
    if repeats > 1 {
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        print(String(format: "train-gemma: median of %d rounds: tokens/s %.2fx, peak RSS %.2fx, launch→first step %.3fx wall, %.3fx CPU",
                     repeats, median(ratios.map(\.tps)), median(ratios.map(\.rss)), median(ratios.map(\.start)), median(ratios.map(\.cpu))))
        // the spread, and how many rounds met each aim (the host's noise moves single rounds across the lines)
        let s = ratios.map(\.start), t = ratios.map(\.tps), r = ratios.map(\.rss)
        print(String(format: "train-gemma: range over the rounds: tokens/s %.2f–%.2fx (%d of %d ≥ 1.5x), peak RSS %.2f–%.2fx (%d ≤ 0.5x), launch→first step %.3f–%.3fx (%d ≤ 0.1x)",
                     t.min()!, t.max()!, t.filter { $0 >= 1.5 }.count, repeats, r.min()!, r.max()!, r.filter { $0 <= 0.5 }.count,
                     s.min()!, s.max()!, s.filter { $0 <= 0.1 }.count))
    }
}

/// The fixture folder ($SFTDECK_TRAIN_BENCH_DIR, default $TMPDIR/sftdeck-train-bench).
var trainGemmaBenchDir: URL {
    ProcessInfo.processInfo.environment["SFTDECK_TRAIN_BENCH_DIR"].map { URL(fileURLWithPath: $0) }
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-train-bench")
}

/// One `startup:` line of `SFTDECK_PROFILE_STARTUP` output: phase, process CPU seconds so far, unix time.
struct StartupPhase { var name: String; var cpu: Double; var epoch: Double }

func parseStartupProfile(_ stderr: String) -> [StartupPhase] {
    stderr.split(separator: "\n").compactMap { l in
        guard l.hasPrefix("startup: "), let plus = l.range(of: " +"), let at = l.range(of: "@", options: .backwards),
              let epoch = Double(l[at.upperBound...].trimmingCharacters(in: .whitespaces)) else { return nil }
        let name = l[l.index(l.startIndex, offsetBy: 9)..<plus.lowerBound].trimmingCharacters(in: .whitespaces)
        let fields = l[plus.upperBound...].split(separator: " ")
        guard let ci = fields.firstIndex(of: "cpu"), ci > 0, let cpu = Double(fields[ci - 1].dropLast()) else { return nil }
        return StartupPhase(name: name, cpu: cpu, epoch: epoch)
    }
}

/// A child process run to completion: its output (written to files under `logs`, so neither pipe can
/// fill), exit status, wait4's resource usage, and the parent's wall clock just before posix_spawn.
struct TimedChild { var status: Int32; var launch: Double; var stdout: String; var stderr: String; var peakRSSBytes: Int; var cpuSeconds: Double }

func spawnTimed(_ exe: String, _ args: [String], environment extra: [String: String], logs: URL, tag: String) -> TimedChild {
    var env = ProcessInfo.processInfo.environment
    for (k, v) in extra { env[k] = v }
    let outPath = logs.appendingPathComponent("\(tag).stdout").path, errPath = logs.appendingPathComponent("\(tag).stderr").path
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
    var pid: pid_t = 0
    let launch = Date().timeIntervalSince1970
    guard posix_spawn(&pid, exe, &actions, nil, argv, envp) == 0 else {
        return TimedChild(status: -1, launch: launch, stdout: "", stderr: "cannot run \(exe)", peakRSSBytes: 0, cpuSeconds: 0)
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return TimedChild(status: code, launch: launch,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                      peakRSSBytes: Int(usage.ru_maxrss) * 1024, cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// `sftdeck-bench train-gemma-memory on|off [steps]`: SFTDeck alone on the `train-gemma` fixture (run that
/// first) with gradient_checkpointing on or off, one process per setting so peak RSS is the setting's own.
public func runTrainGemmaMemoryBench(_ args: [String]) {
    let gc = args.first == "on"
    let steps = Int(args.dropFirst().first ?? "") ?? 2
    let dir = trainGemmaBenchDir
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
P = [("python started", T0, time.process_time())]
import json, os, resource, sys
import torch
torch.set_num_threads(2)
from safetensors.torch import save_file
from datasets import Dataset
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, TrainerCallback
from peft import LoraConfig, get_peft_model, PeftModel
from trl import SFTConfig, SFTTrainer
P.append(("imports", time.time(), time.process_time()))
out, steps = sys.argv[1], int(sys.argv[2])
B, L = 2, 256
mdir, adir, ddir = os.path.join(out, "model"), os.path.join(out, "adapter_init"), os.path.join(out, "data")
if sys.argv[3:] == ["--make-fixture"]:
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
    for f in os.listdir(ddir):
        if f.startswith("rows_for_"): os.remove(os.path.join(ddir, f))
    open(os.path.join(ddir, "rows_for_%d" % steps), "w").close()
    sys.exit(0)
rows = json.load(open(os.path.join(ddir, "data.json")))["train"]
from safetensors.torch import load_file
pix = load_file(os.path.join(ddir, "pixels.safetensors"))["train"]
P.append(("data loaded", time.time(), time.process_time()))
def collate(ex):
    ids = torch.tensor([e["input_ids"] for e in ex]); lab = torch.tensor([e["labels"] for e in ex])
    tt = torch.tensor([e["token_type_ids"] for e in ex])
    return {"input_ids": ids, "labels": lab, "token_type_ids": tt, "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.stack([pix[e["first_image"]] for e in ex])}
base = Gemma3ForConditionalGeneration.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
P.append(("base model loaded", time.time(), time.process_time()))
model = PeftModel.from_pretrained(base, adir, is_trainable=True)
P.append(("adapter loaded", time.time(), time.process_time()))
times = []
class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        times.append(time.time())
        if len(times) == 1: P.append(("optimizer step 1", times[0], time.process_time()))
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"0": 0, "1": 1}, unk_token="0")), pad_token="0", eos_token="1")
args = SFTConfig(output_dir=os.path.join(out, "trl_out"), report_to="none", use_cpu=True, save_strategy="no", bf16=False,
                 gradient_checkpointing=False, dataloader_pin_memory=False, remove_unused_columns=False,
                 dataset_kwargs={"skip_prepare_dataset": True}, max_length=None, per_device_train_batch_size=B,
                 max_steps=steps, logging_steps=1, learning_rate=2e-5, disable_tqdm=True)
tr = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate, processing_class=tok,
                callbacks=[Clock()])
P.append(("trainer built", time.time(), time.process_time()))
tr.train()
losses = [r["loss"] for r in tr.state.log_history if "loss" in r]
cpu_first = [c for n, t, c in P if n == "optimizer step 1"][0]
print(json.dumps(dict(step_times=times, phases=P, cpu_to_first_step_s=cpu_first, losses=losses)))
"""
