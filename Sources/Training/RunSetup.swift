import Foundation

/// A model and its data, ready for the trainer.
public struct PreparedRun {
    public var model: TrainableModel
    public var train: BatchSource
    public var eval: BatchSource?
    /// Lines to show before training (what was loaded, label-mask counts, ...).
    public var notes: [String]
    public init(model: TrainableModel, train: BatchSource, eval: BatchSource?, notes: [String] = []) {
        self.model = model; self.train = train; self.eval = eval; self.notes = notes
    }
}

/// Turns a config into a `PreparedRun`: reads `model_name_or_path/config.json`'s `model_type` and asks the
/// loader registered for it. Module Training registers the toy `bigram_lm`; the CLI registers Gemma 3
/// (modules Models + Datasets) at start-up.
public enum RunSetup {
    public typealias Loader = (_ config: SFTConfig, _ modelDir: URL, _ modelConfig: [String: Any]) throws -> PreparedRun

    nonisolated(unsafe) private static var loaders: [String: Loader] = [
        "bigram_lm": loadBigram, "gemma3": loadGemma3, "gemma3_text": loadGemma3,
    ]
    private static let lock = NSLock()

    public static func register(modelType: String, _ loader: @escaping Loader) {
        lock.lock(); loaders[modelType] = loader; lock.unlock()
    }

    public static func prepare(_ config: SFTConfig) throws -> PreparedRun {
        guard let path = config.modelNameOrPath else { throw TrainingError("model_name_or_path is not set") }
        let dir = try resolveModelDir(path)
        let cfgURL = dir.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: cfgURL) else { throw TrainingError("\(cfgURL.path): no config.json in the model folder") }
        guard let cfg = try? PythonJSON.parse(data) as? [String: Any] else { throw TrainingError("\(cfgURL.path): not a JSON object") }
        guard let type = cfg["model_type"] as? String else { throw TrainingError("\(cfgURL.path): no model_type") }
        StartupProfile.mark("config.json read")
        lock.lock(); let loader = loaders[type]; let known = loaders.keys.sorted(); lock.unlock()
        guard let loader else {
            throw TrainingError("\(cfgURL.path): model_type '\(type)' is not supported for training (supported: \(known.joined(separator: ", ")))")
        }
        return try loader(config, dir, cfg)
    }

    /// A folder, or a hub id found in the local Hugging Face cache (`models--org--name/snapshots/<rev>`).
    public static func resolveModelDir(_ path: String) throws -> URL {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return URL(fileURLWithPath: path) }
        let env = ProcessInfo.processInfo.environment
        let cache = env["HF_HUB_CACHE"] ?? (env["HF_HOME"].map { $0 + "/hub" }) ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface/hub")
        let repo = URL(fileURLWithPath: cache).appendingPathComponent("models--" + path.replacingOccurrences(of: "/", with: "--"))
        let refMain = repo.appendingPathComponent("refs/main")
        if let rev = try? String(contentsOf: refMain, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
            let snap = repo.appendingPathComponent("snapshots").appendingPathComponent(rev)
            if FileManager.default.fileExists(atPath: snap.path) { return snap }
        }
        if let snaps = try? FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("snapshots").path), let s = snaps.sorted().last {
            return repo.appendingPathComponent("snapshots").appendingPathComponent(s)
        }
        throw TrainingError("model '\(path)': not a folder and not in the Hugging Face cache (\(cache)); nothing is downloaded")
    }

    /// The toy model: `config.json {model_type: bigram_lm, vocab_size, hidden_size}` + `model.safetensors`
    /// (or seeded random weights), data as JSONL rows `{"input_ids": [...], "labels": [...]}` in
    /// `dataset_name` (a file, or a folder with `<split>.jsonl`).
    static func loadBigram(_ config: SFTConfig, _ dir: URL, _ cfg: [String: Any]) throws -> PreparedRun {
        guard let v = cfg["vocab_size"] as? Int, let d = cfg["hidden_size"] as? Int else {
            throw TrainingError("\(dir.path)/config.json: bigram_lm needs vocab_size and hidden_size")
        }
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        let model: BigramLM
        if FileManager.default.fileExists(atPath: weightsURL.path) {
            model = try BigramLM(vocab: v, dim: d, weights: try SafetensorsFile.readF32(weightsURL).mapValues(\.values))
        } else {
            model = try BigramLM(vocab: v, dim: d, seed: UInt64(config.seed))
        }
        if let a = config.adapterNameOrPath { try model.loadTrainable(from: URL(fileURLWithPath: a)) }
        guard let ds = config.datasetName else { throw TrainingError("dataset_name is not set") }
        let train = try TokenRowsJSONL.load(ds, split: config.datasetTrainSplit, vocab: v)
        let eval = config.evalStrategy == .no ? nil : try TokenRowsJSONL.load(ds, split: config.datasetTestSplit, vocab: v)
        return PreparedRun(model: model, train: train, eval: eval,
                           notes: ["bigram_lm vocab \(v) dim \(d); \(train.sampleCount) training rows"])
    }
}

extension RunSetup {
    /// Gemma 3 (module Models). Data: a folder of pre-tokenized rows (`data.json`, see `PreTokenizedSource`);
    /// other dataset layouts go through module Datasets' readers and collator (`DatasetsSource`).
    /// The data (rows, tokenizer, processor) opens on another thread while the weights and adapter load:
    /// the two share nothing, and the model's error, if both fail, is the one reported (as when serial).
    static func loadGemma3(_ config: SFTConfig, _ dir: URL, _ cfg: [String: Any]) throws -> PreparedRun {
        guard let ds = config.datasetName else {
            _ = try Gemma3Trainable.load(config, modelDir: dir)   // the model's error first, as before
            throw TrainingError("dataset_name is not set")
        }
        let sources = OpenedSources()
        let opened = DispatchGroup()
        DispatchQueue.global(qos: .userInitiated).async(group: opened) {
            sources.result = Result { try openGemma3Data(config, dataset: ds, modelDir: dir) }
        }
        let modelResult = Result { try Gemma3Trainable.load(config, modelDir: dir) }
        opened.wait()
        let model = try modelResult.get()
        let (train, eval) = try sources.result!.get()
        StartupProfile.mark("dataset opened")
        let trainable = model.trainableParameters.reduce(0) { $0 + $1.count }
        return PreparedRun(model: model, train: train, eval: eval, notes: [
            "gemma3: \(model.totalParameterCount) parameters, \(trainable) trainable; \(train.sampleCount) training rows"])
    }

    private final class OpenedSources: @unchecked Sendable {
        var result: Result<(BatchSource, BatchSource?), Error>?
    }

    private static func openGemma3Data(_ config: SFTConfig, dataset ds: String, modelDir dir: URL) throws -> (BatchSource, BatchSource?) {
        let folder = URL(fileURLWithPath: ds)
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("data.json").path) {
            return (try PreTokenizedSource(folder: folder, split: config.datasetTrainSplit),
                    config.evalStrategy == .no ? nil : try PreTokenizedSource(folder: folder, split: config.datasetTestSplit))
        }
        return (try DatasetsSource(config: config, split: config.datasetTrainSplit, modelDir: dir),
                config.evalStrategy == .no ? nil : try DatasetsSource(config: config, split: config.datasetTestSplit, modelDir: dir))
    }
}

public enum TokenRowsJSONL {
    public static func load(_ path: String, split: String, vocab: Int) throws -> TokenRowsSource {
        var url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw TrainingError("dataset '\(path)': no such file or folder")
        }
        if isDir.boolValue { url = url.appendingPathComponent("\(split).jsonl") }
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw TrainingError("\(url.path): cannot read split '\(split)'")
        }
        var rows: [(ids: [Int], labels: [Int])] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let o = try? PythonJSON.parse(Data(line.utf8)) as? [String: Any], let ids = o["input_ids"] as? [Int] else {
                throw TrainingError("\(url.path):\(n + 1): expected {\"input_ids\": [...], \"labels\": [...]}")
            }
            let labels = (o["labels"] as? [Int]) ?? ids
            guard labels.count == ids.count else { throw TrainingError("\(url.path):\(n + 1): labels and input_ids differ in length") }
            guard ids.allSatisfy({ (0..<vocab).contains($0) }) else { throw TrainingError("\(url.path):\(n + 1): token id outside 0..<\(vocab)") }
            rows.append((ids, labels))
        }
        guard !rows.isEmpty else { throw TrainingError("\(url.path): no rows") }
        return TokenRowsSource(rows: rows)
    }
}
