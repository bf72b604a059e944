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
