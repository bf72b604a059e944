import Foundation

/// Everything a run leaves on disk, laid out like the HF Trainer + TRL leave it:
///   output_dir/runs/<date>_<host>/events.out.tfevents.*   TensorBoard (Trainer tags), when report_to has
///                                                          tensorboard or all
///   output_dir/train_log.jsonl                             one JSON object per log_history entry (always)
///   output_dir/trainer_state.json                          at the end (`save_state`), and in every checkpoint
///   output_dir/checkpoint-N/                               model files, optimizer.safetensors, scheduler.json,
///                                                          rng_state.json, trainer_state.json, README.md, sftdeck.yaml
///   output_dir/ (at the end)                               model files, README.md, sftdeck.yaml (`save_model`)
public final class RunWriter {
    public let outputDir: URL
    public let logDir: URL
    public private(set) var tensorBoard: TensorBoardWriter?
    private var jsonl: FileHandle?
    public var modelCardInfo = ModelCardInfo()

    public struct ModelCardInfo {
        public var baseModel: String?
        public var datasetName: String?
        public var modelName: String?
        public init(baseModel: String? = nil, datasetName: String? = nil, modelName: String? = nil) {
            self.baseModel = baseModel; self.datasetName = datasetName; self.modelName = modelName
        }
    }

    public init(outputDir: URL, runName: String = TensorBoardWriter.defaultRunName()) {
        self.outputDir = outputDir
        self.logDir = outputDir.appendingPathComponent("runs").appendingPathComponent(runName)
    }

    func begin(trainer: Trainer) throws {
        try FileManager.default.createDirectory(at: outputDir, withIntermediateDirectories: true)
        Self.removeStaleTemporaries(in: outputDir)
        if trainer.globalStep > 0 { try trimJSONLog(afterStep: trainer.globalStep) }
        // The Trainer's TensorBoardCallback is attached only when report_to names it (or "all"): with
        // report_to none there is no runs/ folder at all. The JSONL log and trainer_state.json do not depend on it.
        if trainer.config.reportsToTensorBoard {
            let tb = try TensorBoardWriter(logDir: logDir)
            tensorBoard = tb
            tb.addText("args", Self.jsonString(trainer.config.argsDictionary))
            let mc = trainer.model.configSummary
            if !mc.isEmpty { tb.addText("model_config", Self.jsonString(mc)) }
            tb.flush()
        }
        let url = outputDir.appendingPathComponent("train_log.jsonl")
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else { throw TrainingError("\(url.path): cannot open the JSONL log") }
        h.seekToEndOfFile()
        jsonl = h
    }

    func log(_ rec: LogRecord, trainer: Trainer) throws {
        if let tb = tensorBoard {
            for (k, v) in rec.values { tb.addScalar(TensorBoardWriter.tag(forLogKey: k), v, step: trainer.globalStep) }
            tb.flush()
        }
        if let jsonl {
            var d = rec.trainerDict
            d["time"] = Date().timeIntervalSince1970
            jsonl.write(Data((PythonJSON.dumps(d, indent: nil) + "\n").utf8))
        }
    }

    func end(trainer: Trainer, stopped: Bool) throws {
        tensorBoard?.flush()
        if !stopped {
            // trl sft: trainer.save_model(output_dir)
            try trainer.model.saveTrainable(to: outputDir)
            try writeModelCard(trainer: trainer, to: outputDir)
            try trainer.config.save(to: outputDir.appendingPathComponent("sftdeck.yaml").path)
        }
        // Trainer.save_state(): the final log_history next to the model, so `plot` and the Runs screen find
        // the run without event files or checkpoints (report_to none, save_strategy no).
        try AtomicFile.writeJSON(trainerState(trainer), to: outputDir.appendingPathComponent("trainer_state.json"))
        try? jsonl?.close(); jsonl = nil
        tensorBoard = nil
    }

    /// Writes `checkpoint-<global_step>` into a hidden temporary folder, every file by temp-name-and-rename,
    /// then renames the folder into place and applies `save_total_limit`. A run killed mid-save leaves only
    /// the hidden `.checkpoint-N.tmp-<pid>` folder, which no resume picks and the next run removes.
    func saveCheckpoint(trainer: Trainer) throws -> URL {
        let fm = FileManager.default
        let name = "checkpoint-\(trainer.globalStep)"
        let final = outputDir.appendingPathComponent(name)
        let tmp = outputDir.appendingPathComponent(".\(name).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            try writeCheckpointFiles(trainer: trainer, to: tmp)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        if fm.fileExists(atPath: final.path) {
            // Same step saved again (stop right after a scheduled save): swap, then drop the old one.
            let old = outputDir.appendingPathComponent(".\(name).old-\(getpid())")
            try? fm.removeItem(at: old)
            guard rename(final.path, old.path) == 0 else {
                throw TrainingError("\(final.path): cannot move the previous checkpoint aside (errno \(errno))")
            }
            guard rename(tmp.path, final.path) == 0 else {
                throw TrainingError("\(final.path): cannot move the checkpoint into place (errno \(errno))")
            }
            try? fm.removeItem(at: old)
        } else {
            guard rename(tmp.path, final.path) == 0 else {
                throw TrainingError("\(final.path): cannot move the checkpoint into place (errno \(errno))")
            }
        }
        if let limit = trainer.config.saveTotalLimit { try rotateCheckpoints(keep: limit) }
        return final
    }

    /// `Trainer._save_checkpoint`: the model (`save_model`), then unless save_only_model the optimizer,
    /// scheduler and RNG state, then trainer_state.json; TRL adds the model card.
    private func writeCheckpointFiles(trainer: Trainer, to tmp: URL) throws {
        try trainer.model.saveTrainable(to: tmp)
        if !trainer.config.saveOnlyModel {
            try SafetensorsFile.write(trainer.optimizerTensors(), metadata: [
                "format": "sftdeck-adamw", "step": String(trainer.optimizerStepCount),
                "betas": "\(trainer.config.adamBeta1),\(trainer.config.adamBeta2)", "eps": "\(trainer.config.adamEpsilon)",
                "weight_decay": "\(trainer.config.weightDecay)",
                "decay": trainer.optimizerDecayFlags.map { $0 ? "1" : "0" }.joined(),
            ], to: tmp.appendingPathComponent(CheckpointFolder.optimizerFile))
            try AtomicFile.writeJSON(trainer.schedulerState, to: tmp.appendingPathComponent(CheckpointFolder.schedulerFile))
            var rng: [String: Any] = ["sampler_seed": trainer.config.dataSeed ?? trainer.config.seed,
                                      "note": "the sampler order is a function of seed + epoch; nothing else to restore"]
            if let m = trainer.model.randomState() { rng["model"] = m.map { Int($0) } }
            try AtomicFile.writeJSON(rng, to: tmp.appendingPathComponent(CheckpointFolder.rngFile))
        }
        try AtomicFile.writeJSON(trainerState(trainer), to: tmp.appendingPathComponent(CheckpointFolder.stateFile))
        try writeModelCard(trainer: trainer, to: tmp)
        try trainer.config.save(to: tmp.appendingPathComponent("sftdeck.yaml").path)
    }

    /// transformers `rotate_checkpoints`: delete the oldest (by step) beyond the limit.
    func rotateCheckpoints(keep limit: Int) throws {
        let all = Self.checkpoints(in: outputDir)
        guard all.count > limit else { return }
        for (_, url) in all.prefix(all.count - limit) { try FileManager.default.removeItem(at: url) }
    }

    /// `checkpoint-N` folders of a run, oldest first.
    public static func checkpoints(in outputDir: URL) -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDir.path)) ?? []
        return names.compactMap { n -> (Int, URL)? in
            guard n.hasPrefix("checkpoint-"), let s = Int(n.dropFirst("checkpoint-".count)) else { return nil }
            var isDir: ObjCBool = false
            let u = outputDir.appendingPathComponent(n)
            guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), isDir.boolValue else { return nil }
            return (s, u)
        }.sorted { $0.0 < $1.0 }.map { (step: $0.0, url: $0.1) }
    }

    /// `resume_from_checkpoint`: a folder, or "true" for the latest `checkpoint-N` of output_dir (the
    /// Trainer's `get_last_checkpoint`, but skipping folders that are not complete checkpoints). Throws one
    /// line naming the folder when it cannot be resumed from (incomplete, or saved with save_only_model).
    public static func resolveResume(_ value: String?, outputDir: URL) throws -> URL? {
        guard let value else { return nil }
        if value == "true" {
            let all = checkpoints(in: outputDir)
            guard let last = all.reversed().first(where: { CheckpointFolder.inspect($0.url).hasWeightsAndState }) else {
                let skipped = all.map { "\($0.url.lastPathComponent) (\(CheckpointFolder.inspect($0.url).problem ?? "?"))" }
                throw TrainingError("resume_from_checkpoint: true, but \(outputDir.path) has no checkpoint-N folder with complete weights and trainer_state.json"
                    + (skipped.isEmpty ? "" : "; skipped " + skipped.joined(separator: ", ")))
            }
            try CheckpointFolder.requireResumable(last.url)
            return last.url
        }
        let u = URL(fileURLWithPath: value)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), isDir.boolValue else {
            throw TrainingError("resume_from_checkpoint: \(value) is not a folder")
        }
        try CheckpointFolder.requireResumable(u)
        return u
    }

    /// Removes what a killed run left: hidden `.checkpoint-N.tmp-<pid>` / `.old-<pid>` folders and
    /// `.<file>.tmp-<pid>-*` temporaries whose process is gone.
    static func removeStaleTemporaries(in dir: URL) {
        let fm = FileManager.default
        for n in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where n.hasPrefix(".") {
            guard let r = n.range(of: #"\.(tmp|old)-(\d+)"#, options: .regularExpression) else { continue }
            let digits = n[r].drop { !$0.isNumber }
            guard let pid = Int32(digits), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? fm.removeItem(at: dir.appendingPathComponent(n)) }
        }
    }

    /// On resume: keep the JSONL records up to the checkpoint's step (a killed run may have logged past it),
    /// so the file again holds one line per log_history entry.
    private func trimJSONLog(afterStep step: Int) throws {
        let url = outputDir.appendingPathComponent("train_log.jsonl")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let kept = lines.filter { line in
            guard let o = try? PythonJSON.parse(Data(line.utf8)) as? [String: Any] else { return false }
            return (o["step"] as? Int ?? 0) <= step && o["train_runtime"] == nil
        }
        if kept.count != lines.count {
            try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: url)
        }
    }

    /// TrainerState as `save_to_json` writes it (sorted keys).
    func trainerState(_ t: Trainer) -> [String: Any] {
        [
            "best_global_step": NSNull(), "best_metric": NSNull(), "best_model_checkpoint": NSNull(),
            "epoch": t.epoch, "eval_steps": t.evalSteps, "global_step": t.globalStep,
            "is_hyper_param_search": false, "is_local_process_zero": true, "is_world_process_zero": true,
            "log_history": t.logHistory.map(\.trainerDict), "logging_steps": t.loggingSteps, "max_steps": t.maxSteps,
            "num_input_tokens_seen": t.numTokensSeen, "num_train_epochs": t.numTrainEpochs, "save_steps": t.saveSteps,
            "stateful_callbacks": ["TrainerControl": ["args": [
                "should_epoch_stop": false, "should_evaluate": false, "should_log": false, "should_save": true,
                "should_training_stop": t.globalStep >= t.maxSteps], "attributes": [:] as [String: Any]]],
            "total_flos": t.totalFlos, "train_batch_size": t.config.perDeviceTrainBatchSize,
            "trial_name": NSNull(), "trial_params": NSNull(),
        ]
    }

    func writeModelCard(trainer: Trainer, to dir: URL) throws {
        let c = trainer.config
        let modelName = modelCardInfo.modelName ?? (c.hubModelId?.split(separator: "/").last.map(String.init) ?? outputDir.lastPathComponent)
        let base = modelCardInfo.baseModel ?? c.modelNameOrPath
        let dataset = modelCardInfo.datasetName ?? c.datasetName
        try AtomicFile.write(Data(ModelCard.render(modelName: modelName, baseModel: base, datasetName: dataset,
                                                   hubModelId: c.hubModelId ?? modelName, usePeft: c.usePeft).utf8),
                             to: dir.appendingPathComponent("README.md"))
    }

    static func jsonString(_ o: Any) -> String {
        PythonJSON.dumps(o)
    }
}

/// What a `checkpoint-N` folder holds, and whether a run can continue from it.
public enum CheckpointFolder {
    public static let optimizerFile = "optimizer.safetensors", schedulerFile = "scheduler.json", rngFile = "rng_state.json"
    public static let stateFile = "trainer_state.json"

    public struct Inspection: Sendable {
        /// adapter_model.safetensors, or model.safetensors / index with every shard present.
        public var hasWeights: Bool
        public var hasTrainerState: Bool
        /// optimizer.safetensors and scheduler.json present.
        public var hasOptimizerState: Bool
        /// The checkpoint's own sftdeck.yaml says save_only_model: true.
        public var savedOnlyModel: Bool
        public var isAdapter: Bool
        /// PyTorch optimizer.pt (an HF Trainer checkpoint).
        public var hasTorchOptimizer: Bool
        public var hasWeightsAndState: Bool { hasWeights && hasTrainerState }
        public var resumable: Bool { hasWeightsAndState && hasOptimizerState }
        /// Why it is not a resumable checkpoint (nil when it is).
        public var problem: String? {
            if !hasTrainerState { return "no trainer_state.json" }
            if !hasWeights { return "no complete model weights (adapter_model.safetensors, model.safetensors or every shard of model.safetensors.index.json)" }
            if !hasOptimizerState { return savedOnlyModel ? "saved with save_only_model" : "no optimizer.safetensors / scheduler.json" }
            return nil
        }
    }

    public static func inspect(_ dir: URL) -> Inspection {
        let fm = FileManager.default
        func has(_ f: String) -> Bool { fm.fileExists(atPath: dir.appendingPathComponent(f).path) }
        let isAdapter = has("adapter_model.safetensors")
        var weights = isAdapter || has("model.safetensors")
        if !weights, has("model.safetensors.index.json"),
           let d = try? Data(contentsOf: dir.appendingPathComponent("model.safetensors.index.json")),
           let o = try? PythonJSON.parse(d) as? [String: Any], let map = o["weight_map"] as? [String: Any] {
            let shards = Set(map.values.compactMap { $0 as? String })
            weights = !shards.isEmpty && shards.allSatisfy(has)
        }
        var onlyModel = false
        if let y = try? String(contentsOf: dir.appendingPathComponent("sftdeck.yaml"), encoding: .utf8) {
            onlyModel = y.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "save_only_model: true" }
        }
        return Inspection(hasWeights: weights, hasTrainerState: has(stateFile), hasOptimizerState: has(optimizerFile) && has(schedulerFile),
                          savedOnlyModel: onlyModel, isAdapter: isAdapter, hasTorchOptimizer: has("optimizer.pt"))
    }

    /// Throws the one line that says why training cannot continue from `dir` and what to do instead.
    public static func requireResumable(_ dir: URL) throws {
        let i = inspect(dir)
        if i.resumable { return }
        let path = dir.path
        guard i.hasWeightsAndState else {
            throw TrainingError("resume_from_checkpoint: \(path) is not a complete checkpoint (\(i.problem!)); resume from another checkpoint-N folder")
        }
        let key = i.isAdapter ? "adapter_name_or_path" : "model_name_or_path"
        if i.hasTorchOptimizer {
            throw TrainingError("resume_from_checkpoint: \(path) holds a PyTorch optimizer.pt (an HF Trainer checkpoint), which SFTDeck cannot restore; start a new run from its weights with \(key): \(path)")
        }
        let why = i.savedOnlyModel ? "was saved with save_only_model: true (model weights only, no optimizer, scheduler or RNG state)"
                                   : "has no optimizer.safetensors / scheduler.json (saved with save_only_model?)"
        throw TrainingError("resume_from_checkpoint: \(path) \(why), so training cannot continue from it; resume from a checkpoint saved without save_only_model, or start a new run from its weights with \(key): \(path)")
    }
}

/// TRL's `lm_model_card.md`, filled the way `SFTTrainer.create_model_card` fills it.
public enum ModelCard {
    public static func render(modelName: String, baseModel: String?, datasetName: String?, hubModelId: String, usePeft: Bool) -> String {
        var front = ""
        if let baseModel, !FileManager.default.fileExists(atPath: baseModel) { front += "base_model: \(baseModel)\n" }
        if let datasetName, !FileManager.default.fileExists(atPath: datasetName) { front += "datasets: \(datasetName)\n" }
        front += "library_name: \(usePeft ? "peft" : "transformers")\nmodel_name: \(modelName)\ntags:\n- generated_from_trainer\n- sft\n- trl\n- sftdeck\nlicence: license\n"
        let basePart = baseModel.map { "[\($0)](https://huggingface.co/\($0))" } ?? "a base model"
        let dataPart = datasetName.map { " on the [\($0)](https://huggingface.co/datasets/\($0)) dataset" } ?? ""
        return """
        ---
        \(front)---

        # Model Card for \(modelName)

        This model is a fine-tuned version of \(basePart)\(dataPart).
        It has been trained using [TRL](https://github.com/huggingface/trl)'s SFT recipe, reimplemented natively by SFTDeck.

        ## Quick start

        ```python
        from transformers import pipeline

        question = "If you had a time machine, but could only go to the past or the future once and never return, which would you choose and why?"
        generator = pipeline("text-generation", model="\(hubModelId)", device_map="auto")
        output = generator([{"role": "user", "content": question}], max_new_tokens=128, return_full_text=False)[0]
        print(output["generated_text"])
        ```

        ## Training procedure

        This model was trained with SFT.

        ### Framework versions

        - SFTDeck (numerics of TRL 1.16.0, Transformers 5.24.0, PEFT 0.21.2)

        ## Citations

        Cite TRL as:

        ```bibtex
        @software{vonwerra2020trl,
          title   = {{TRL: Transformers Reinforcement Learning}},
          author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},
          license = {Apache-2.0},
          url     = {https://github.com/huggingface/trl},
          year    = {2020}
        }
        ```

        """
    }
}

extension SFTConfig {
    /// The config as TrainingArguments-like JSON (for the `args/text_summary` text event).
    public var argsDictionary: [String: Any] {
        var d: [String: Any] = [:]
        for f in SFTConfig.fields {
            switch f.get(self) {
            case .null: d[f.key] = NSNull()
            case .bool(let b): d[f.key] = b
            case .int(let i): d[f.key] = i
            case .double(let x): d[f.key] = x
            case .string(let s): d[f.key] = s
            case .strings(let a): d[f.key] = a
            }
        }
        return d
    }
}
