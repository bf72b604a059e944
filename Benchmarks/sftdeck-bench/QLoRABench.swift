// `sftdeck-bench qlora-4b-memory`: resident memory of a Gemma-3-4b-shaped BF16 checkpoint (the sparse file of
// Model4BMemoryBench) loaded for QLoRA exactly as `sftdeck train` with load_in_4bit does it
// (Gemma3Trainable.quantizeFrozenLinears: NF4 + double quantisation of every language and SigLIP linear;
// embeddings, norms and the projector stay bf16 in the memory map), then LoRA all-linear r=16 and one
// forward+backward of 16 tokens. Prints RSS split into anonymous memory (NF4 codes, LoRA, activations) and
// file-backed pages of the map (what is still read from the checkpoint: the tied bf16 embedding).
// `qlora-4b-memory modules-to-save`: the guide's recipe, LoRA + modules_to_save [lm_head, embed_tokens], with
// AdamW built and one optimizer step: the fp32 copies of both 262,144 × 2560 tables, lm_head's dense gradient
// and moments, and the embedding's row-tracked gradient and moments (only the batch's rows are touched).
import Foundation
import Models
import Tensor
import Training

private func rssParts() -> (anon: Double, file: Double, peak: Double) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0) }
    func gib(_ key: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0) / 1_048_576
        }
        return 0
    }
    return (gib("RssAnon:"), gib("RssFile:"), gib("VmHWM:"))
}

private func report(_ stage: String) {
    let m = rssParts()
    print(String(format: "qlora-4b-memory: %@: RSS %.2f GiB (anonymous %.2f, checkpoint map %.2f), peak %.2f GiB",
                 stage, m.anon + m.file, m.anon, m.file, m.peak))
}

func runQLoRA4BMemoryBench(_ args: [String] = []) throws {
    let modulesToSave = args.first == "modules-to-save"
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-gemma3-4b-sparse-qlora")
    let params = try Model4BMemoryBench.writeSparseCheckpoint(dir)
    defer { try? FileManager.default.removeItem(at: dir) }
    print(String(format: "qlora-4b-memory: gemma-3-4b-it shape, %ld parameters (%.2f GB as BF16)", params, Double(params) * 2 / 1e9))
    let model = try Gemma3Model.load(from: dir)
    report("mapped")
    let t0 = Date()
    let q = try Gemma3Trainable.quantizeFrozenLinears(model, doubleQuant: true)
    let nf4 = q.reduce(0) { $0 + $1.weight.storageBytes }, values = q.reduce(0) { $0 + $1.weight.count }
    print(String(format: "qlora-4b-memory: %d linears, %.3f G values in NF4 (%.2f GiB, %.3f bytes/value) in %.1f s",
                 q.count, Double(values) / 1e9, Double(nf4) / 1_073_741_824, Double(nf4) / Double(values), Date().timeIntervalSince(t0)))
    report("loaded in 4 bits")
    try model.applyLoRA(LoRASettings(r: 16, alpha: 16, dropout: 0, targetModules: .allLinear,
                                     modulesToSave: modulesToSave ? ["lm_head", "embed_tokens"] : []), seed: 42)
    print("qlora-4b-memory: LoRA all-linear r=16\(modulesToSave ? " + modules_to_save [lm_head, embed_tokens]" : ""): "
          + "\(model.trainableParameters.reduce(0) { $0 + $1.count }) trainable parameters"
          + (modulesToSave ? ", embed_tokens gradient \(GradientRows.enabled ? "row-tracked" : "dense (SFTDECK_SPARSE_EMBED_GRAD=0)")" : ""))
    report("with LoRA")
    let trainable = Gemma3Trainable(model: model, usesAdapter: true, gradientCheckpointing: false)
    let optimizer = modulesToSave ? AdamW(parameters: trainable.trainableParameters) : nil
    if optimizer != nil { report("AdamW built") }
    let L = 16
    var ids = [Int32](repeating: 1000, count: L); ids[0] = 2
    let t1 = Date()
    _ = try model.forwardBackward(ModelBatch(batchSize: 1, seqLen: L, inputIDs: ids, labels: ids), gradScale: 1 / Float(L - 1))
    print(String(format: "qlora-4b-memory: forward+backward of %d tokens in %.1f s", L, Date().timeIntervalSince(t1)))
    report("after forward+backward")
    if let optimizer {
        let t2 = Date()
        optimizer.step(trainable.trainableParameters, lr: 1e-4)
        trainable.zeroGrad()
        print(String(format: "qlora-4b-memory: AdamW step in %.1f s", Date().timeIntervalSince(t2)))
        report("after the optimizer step")
    }
}
