// `sftdeck-bench qlora-4b-memory`: resident memory of a Gemma-3-4b-shaped BF16 checkpoint (the sparse file of
// Model4BMemoryBench) loaded for QLoRA exactly as `sftdeck train` with load_in_4bit does it
// (Gemma3Trainable.quantizeFrozenLinears: NF4 + double quantisation of every language and SigLIP linear;
// embeddings, norms and the projector stay bf16 in the memory map), then LoRA all-linear r=16 and one
// forward+backward of 16 tokens. Prints RSS split into anonymous memory (NF4 codes, LoRA, activations) and
// file-backed pages of the map (what is still read from the checkpoint: the tied bf16 embedding).
import Foundation
import Models
import Tensor
import Training

private func rssParts() -> (anon: Double, file: Double, peak: Double) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0) }
    func gib(_ key: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Double(line.split(separator: " ").compactMap { Int($0) }.first ?? 0) / 1_048_576
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

func runQLoRA4BMemoryBench() throws {
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
    try model.applyLoRA(LoRASettings(r: 16, alpha: 16, dropout: 0, targetModules: .allLinear), seed: 42)
    print("qlora-4b-memory: LoRA all-linear r=16: \(model.trainableParameters.reduce(0) { $0 + $1.count }) trainable parameters")
    report("with LoRA")
    let L = 16
    var ids = [Int32](repeating: 1000, count: L); ids[0] = 2
    let t1 = Date()
    _ = try model.forwardBackward(ModelBatch(batchSize: 1, seqLen: L, inputIDs: ids, labels: ids), gradScale: 1 / Float(L - 1))
    print(String(format: "qlora-4b-memory: forward+backward of %d tokens in %.1f s", L, Date().timeIntervalSince(t1)))
    report("after one step")
}
