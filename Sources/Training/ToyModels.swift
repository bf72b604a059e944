import Foundation

/// A right-padded batch of token rows with causal-LM labels (-100 = ignored), as the collator makes it.
public struct TokenBatch: TrainingBatch, Sendable {
    public var inputIDs: [[Int]]      // [B][L]
    public var labels: [[Int]]        // [B][L]
    public var attentionMask: [[Int]] // [B][L]
    public init(inputIDs: [[Int]], labels: [[Int]], attentionMask: [[Int]]) {
        self.inputIDs = inputIDs; self.labels = labels; self.attentionMask = attentionMask
    }
    /// Right-pads rows with `padID`, labels with -100.
    public init(rows: [(ids: [Int], labels: [Int])], padID: Int = 0) {
        let L = rows.map { $0.ids.count }.max() ?? 0
        inputIDs = rows.map { $0.ids + Array(repeating: padID, count: L - $0.ids.count) }
        labels = rows.map { $0.labels + Array(repeating: -100, count: L - $0.labels.count) }
        attentionMask = rows.map { Array(repeating: 1, count: $0.ids.count) + Array(repeating: 0, count: L - $0.ids.count) }
    }
    public var sampleCount: Int { inputIDs.count }
    public var targetCount: Int { labels.reduce(0) { $0 + $1.dropFirst().filter { $0 != -100 }.count } }
    public var attentionTokenCount: Int { attentionMask.reduce(0) { $0 + $1.reduce(0, +) } }
    public var inputElementCount: Int { inputIDs.reduce(0) { $0 + $1.count } }
}

/// In-memory rows of token ids and labels.
public struct TokenRowsSource: BatchSource {
    public var rows: [(ids: [Int], labels: [Int])]
    public var padID: Int
    public init(rows: [(ids: [Int], labels: [Int])], padID: Int = 0) { self.rows = rows; self.padID = padID }
    public var sampleCount: Int { rows.count }
    public func batch(indices: [Int]) throws -> TrainingBatch {
        TokenBatch(rows: indices.map { rows[$0] }, padID: padID)
    }
}

/// A bigram language model small enough to check the trainer against transformers' Trainer exactly:
///   h_t = E[x_t] ⊙ g          E: (V, D) `embed.weight`, g: (D) `norm.weight`
///   logits_t = W h_t + b      W: (V, D) `head.weight`, b: (V) `head.bias`
///   loss = Σ_t CE(logits_t, label_{t+1}) over labels ≠ -100
/// Forward and backward side by side, plain loops (the shapes are tiny).
public final class BigramLM: TrainableModel {
    public let vocab: Int, dim: Int
    private var E: UnsafeMutableBufferPointer<Float>, g: UnsafeMutableBufferPointer<Float>
    private var W: UnsafeMutableBufferPointer<Float>, b: UnsafeMutableBufferPointer<Float>
    private var dE: UnsafeMutableBufferPointer<Float>, dg: UnsafeMutableBufferPointer<Float>
    private var dW: UnsafeMutableBufferPointer<Float>, db: UnsafeMutableBufferPointer<Float>
    public let trainableParameters: [TrainableTensor]

    public init(vocab: Int, dim: Int, weights: [String: [Float]]) throws {
        self.vocab = vocab; self.dim = dim
        func buf(_ n: Int, _ name: String) throws -> UnsafeMutableBufferPointer<Float> {
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            if let w = weights[name] {
                guard w.count == n else { throw TrainingError("BigramLM: \(name) has \(w.count) values, expected \(n)") }
                _ = p.initialize(from: w)
            } else { p.initialize(repeating: 0) }
            return p
        }
        func zeros(_ n: Int) -> UnsafeMutableBufferPointer<Float> {
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: n); p.initialize(repeating: 0); return p
        }
        E = try buf(vocab * dim, "embed.weight"); g = try buf(dim, "norm.weight")
        W = try buf(vocab * dim, "head.weight"); b = try buf(vocab, "head.bias")
        dE = zeros(vocab * dim); dg = zeros(dim); dW = zeros(vocab * dim); db = zeros(vocab)
        trainableParameters = [
            TrainableTensor(name: "embed.weight", shape: [vocab, dim], value: E, grad: dE),
            TrainableTensor(name: "norm.weight", shape: [dim], value: g, grad: dg),
            TrainableTensor(name: "head.weight", shape: [vocab, dim], value: W, grad: dW),
            TrainableTensor(name: "head.bias", shape: [vocab], value: b, grad: db),
        ]
    }

    /// Seeded random initialisation (for demos and benchmarks).
    public convenience init(vocab: Int, dim: Int, seed: UInt64) throws {
        var gen = MT19937(seed: seed)
        func uniform(_ n: Int, _ scale: Float) -> [Float] {
            (0..<n).map { _ in (Float(gen.next()) / Float(UInt32.max) * 2 - 1) * scale }
        }
        try self.init(vocab: vocab, dim: dim, weights: [
            "embed.weight": uniform(vocab * dim, 1), "norm.weight": [Float](repeating: 1, count: dim),
            "head.weight": uniform(vocab * dim, 0.5), "head.bias": [Float](repeating: 0, count: vocab),
        ])
    }

    deinit { [E, g, W, b, dE, dg, dW, db].forEach { $0.deallocate() } }

    public var totalParameterCount: Int { 2 * vocab * dim + dim + vocab }

    public func zeroGrad() { for p in trainableParameters { p.grad.update(repeating: 0) } }

    public func forwardBackward(_ batch: TrainingBatch, lossScale: Float) throws -> MicroBatchResult {
        try run(batch, backward: true, scale: lossScale)
    }

    public func evaluate(_ batch: TrainingBatch) throws -> MicroBatchResult { try run(batch, backward: false, scale: 0) }

    private func run(_ anyBatch: TrainingBatch, backward: Bool, scale: Float) throws -> MicroBatchResult {
        guard let batch = anyBatch as? TokenBatch else { throw TrainingError("BigramLM: expected a TokenBatch") }
        let V = vocab, D = dim
        var h = [Float](repeating: 0, count: D), logits = [Float](repeating: 0, count: V)
        var dh = [Float](repeating: 0, count: D)
        var lossSum: Float = 0, targets = 0, correct = 0
        for (row, ids) in batch.inputIDs.enumerated() {
            let labels = batch.labels[row]
            for t in 0..<max(0, ids.count - 1) {
                let y = labels[t + 1]
                if y == -100 { continue }
                let x = ids[t]
                guard (0..<V).contains(x), (0..<V).contains(y) else { throw TrainingError("BigramLM: token id out of range") }
                // forward: h = E[x] ⊙ g (D); logits = W h + b (V)
                for d in 0..<D { h[d] = E[x * D + d] * g[d] }
                var best = 0
                for v in 0..<V {
                    var s: Float = 0
                    for d in 0..<D { s += W[v * D + d] * h[d] }
                    logits[v] = s + b[v]
                    if logits[v] > logits[best] { best = v }
                }
                let m = logits[best]
                var z: Float = 0
                for v in 0..<V { z += expf(logits[v] - m) }
                let lse = m + logf(z)
                lossSum += lse - logits[y]
                targets += 1
                if best == y { correct += 1 }
                guard backward else { continue }
                // backward: dlogits = scale·(softmax − onehot(y)); dW += dlogits hᵀ; db += dlogits;
                // dh = Wᵀ dlogits; dg += dh ⊙ E[x]; dE[x] += dh ⊙ g
                for d in 0..<D { dh[d] = 0 }
                for v in 0..<V {
                    let dl = scale * (expf(logits[v] - lse) - (v == y ? 1 : 0))
                    db[v] += dl
                    for d in 0..<D { dW[v * D + d] += dl * h[d]; dh[d] += W[v * D + d] * dl }
                }
                for d in 0..<D { dg[d] += dh[d] * E[x * D + d]; dE[x * D + d] += dh[d] * g[d] }
            }
        }
        return MicroBatchResult(lossSum: lossSum, targets: targets, correct: correct)
    }

    public func saveTrainable(to directory: URL) throws {
        try SafetensorsFile.write(trainableParameters.map { ($0.name, $0.shape, Array($0.value)) },
                                  metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
    }

    public func loadTrainable(from directory: URL) throws {
        let file = directory.appendingPathComponent("model.safetensors")
        let tensors = try SafetensorsFile.readF32(file)
        for p in trainableParameters {
            guard let t = tensors[p.name], t.values.count == p.count else {
                throw TrainingError("\(file.path): missing or mis-shaped tensor \(p.name)")
            }
            for i in 0..<p.count { p.value[i] = t.values[i] }
        }
    }

    public var configSummary: [String: Any] { ["model_type": "bigram_lm", "vocab_size": vocab, "hidden_size": dim] }
}
