import ArgumentParser
import Foundation
import Training

/// `sftdeck eval --config FILE [--max-batches K] [--split train|eval] [--json]`: the configured model's
/// loss on the configured dataset, batch by batch, no training (eval mode: no dropout, no gradients).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Print the per-batch loss of the configured model on the configured dataset (no training).",
        discussion: """
        Loads the model (and adapter_name_or_path, if set) and the data exactly as `sftdeck train` would \
        (same YAML config, TRL keys), then runs eval-mode forwards over consecutive batches of \
        per_device_eval_batch_size rows in dataset order. Per batch it prints the mean token loss \
        (transformers' ForCausalLMLoss: Σ CE over labels[:, 1:] != -100 / their count), the token count and \
        the argmax accuracy; at the end the token-weighted mean over all batches.
        --split eval (default when the config has an eval split) or train.
        """)

    @Option(name: .long, help: "YAML config file (TRL keys).") var config: String
    @Option(name: .long, help: "Stop after this many batches (0 = all).") var maxBatches = 0
    @Option(name: .long, help: "Which rows: eval (dataset_test_split) or train (dataset_train_split).") var split: String?
    @Flag(name: .long, help: "One JSON object per batch, then a summary object {\"summary\": ...}.") var json = false

    func run() throws {
        let loaded: ConfigLoadResult
        do { loaded = try SFTConfig.load(path: config) } catch { throw CLIError("\(error)") }
        var cfg = loaded.config
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let wantEval = (split ?? "eval") == "eval"
        if let s = split, s != "eval" && s != "train" { throw CLIError("--split must be eval or train (got \(s))") }
        if wantEval && cfg.evalStrategy == .no { cfg.evalStrategy = .steps }   // ask RunSetup for the eval rows too
        let prepared: PreparedRun
        do { prepared = try RunSetup.prepare(cfg) } catch { throw CLIError("\(error)") }
        var source: BatchSource = prepared.train
        var which = "train"
        if wantEval, let e = prepared.eval { source = e; which = "eval" }
        else if split == "eval" { throw CLIError("\(config): the dataset has no \(cfg.datasetTestSplit) split to evaluate (use --split train)") }
        let bs = max(1, cfg.perDeviceEvalBatchSize)
        var totalLoss = 0.0, totalTokens = 0, totalCorrect = 0, batches = 0
        var start = 0
        while start < source.sampleCount && (maxBatches == 0 || batches < maxBatches) {
            let idx = Array(start..<min(start + bs, source.sampleCount))
            let r: MicroBatchResult
            do { r = try prepared.model.evaluate(try source.batch(indices: idx)) }
            catch { throw CLIError("\(config): batch \(batches) (rows \(idx.first!)-\(idx.last!)): \(error)") }
            let mean = r.targets > 0 ? Double(r.lossSum) / Double(r.targets) : .nan
            let acc = r.targets > 0 ? Double(r.correct) / Double(r.targets) : .nan
            if json {
                let o: [String: Any] = ["batch": batches, "split": which, "rows": idx, "loss": mean.isNaN ? NSNull() : mean,
                                        "tokens": r.targets, "mean_token_accuracy": acc.isNaN ? NSNull() : acc]
                print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "batch %d  rows %d-%d  loss %.4f  tokens %d  accuracy %.4f", batches, idx.first!, idx.last!, mean, r.targets, acc))
            }
            totalLoss += Double(r.lossSum); totalTokens += r.targets; totalCorrect += r.correct
            batches += 1
            start += bs
        }
        let mean = totalTokens > 0 ? totalLoss / Double(totalTokens) : .nan
        if json {
            let s: [String: Any] = ["batches": batches, "split": which, "tokens": totalTokens, "loss": mean.isNaN ? NSNull() : mean,
                                    "mean_token_accuracy": totalTokens > 0 ? Double(totalCorrect) / Double(totalTokens) : NSNull()]
            print(String(decoding: try JSONSerialization.data(withJSONObject: ["summary": s], options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%@: %d batches, %d tokens, loss %.4f", which, batches, totalTokens, mean))
        }
    }
}
