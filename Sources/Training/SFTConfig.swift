import Foundation
import Tensor
import Yams

/// One training run, in the vocabulary of `trl sft --config FILE` (TRL 1.16 `ScriptArguments`,
/// `SFTConfig` ⊃ transformers 5.24 `TrainingArguments`, `ModelConfig`), with their defaults, plus
/// SFTDeck's own keys (`shuffle`, `adapter_name_or_path`, `label_masking`, `ga_loss_normalization`, `bf16_matmul`,
/// `theme`).
public struct SFTConfig: Equatable, Sendable {
    // model
    public var modelNameOrPath: String? = nil
    public var adapterNameOrPath: String? = nil
    public var dtype: String = "float32"
    public var attnImplementation: String? = nil
    // data
    public var datasetName: String? = nil
    public var datasetConfig: String? = nil
    public var datasetTrainSplit: String = "train"
    public var datasetTestSplit: String = "test"
    public var maxLength: Int? = 1024
    public var shuffle: Bool = true
    public var labelMasking: LabelMasking = .vision
    public var assistantOnlyLoss: Bool = false
    public var completionOnlyLoss: Bool? = nil
    public var chatTemplatePath: String? = nil
    // training
    public var outputDir: String? = nil
    public var numTrainEpochs: Double = 3.0
    public var maxSteps: Int = -1
    public var perDeviceTrainBatchSize: Int = 8
    public var perDeviceEvalBatchSize: Int = 8
    public var gradientAccumulationSteps: Int = 1
    public var gradientCheckpointing: Bool = true
    public var learningRate: Double = 2e-5
    public var lrSchedulerType: LRSchedulerType = .linear
    /// transformers 5.x: ≥ 1 a step count, < 1 a ratio of the total steps.
    public var warmupSteps: Double = 0
    public var weightDecay: Double = 0
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var maxGradNorm: Double = 1.0
    public var optim: String = "adamw_torch_fused"
    public var seed: Int = 42
    public var dataSeed: Int? = nil
    public var bf16: Bool? = nil
    /// SFTDeck: how `bf16: true` runs the matrix products (auto: cblas_sbgemm where available, else fp32).
    public var bf16Matmul: BF16MatmulPolicy = .auto
    public var gaLossNormalization: GALossNormalization = .tokens
    public var evalStrategy: IntervalStrategy = .no
    public var evalSteps: Double? = nil
    public var resumeFromCheckpoint: String? = nil   // a path, or "true" for the latest checkpoint
    // peft
    public var usePeft: Bool = false
    public var loraR: Int = 16
    public var loraAlpha: Int = 32
    public var loraDropout: Double = 0.05
    public var loraTargetModules: [String]? = nil
    public var loraModulesToSave: [String]? = nil
    public var useRslora: Bool = false
    public var loraTaskType: String = "CAUSAL_LM"
    // quantization
    public var loadIn4bit: Bool = false
    public var bnb4bitQuantType: String = "nf4"
    public var useBnbNestedQuant: Bool = false
    public var bnb4bitQuantStorage: String? = nil
    // logging & saving
    public var loggingStrategy: IntervalStrategy = .steps
    public var loggingSteps: Double = 10
    public var loggingFirstStep: Bool = false
    public var reportTo: [String] = ["none"]
    /// report_to lists "tensorboard" or "all" (every installed integration; TensorBoard is the one SFTDeck has).
    public var reportsToTensorBoard: Bool { reportTo.contains("tensorboard") || reportTo.contains("all") }
    public var runName: String? = nil
    public var saveStrategy: IntervalStrategy = .steps
    public var saveSteps: Double = 500
    public var saveTotalLimit: Int? = nil
    public var saveOnlyModel: Bool = false
    public var pushToHub: Bool = false
    public var hubModelId: String? = nil
    public var theme: String? = nil

    public init() {}

    public enum LabelMasking: String, CaseIterable, Sendable, Codable {
        /// pads, image soft tokens, boi/eoi masked (SFTDeck's default).
        case vision
        /// exactly the guide's collate_fn: pads and image soft tokens only (its boi mask is a no-op).
        case guideExact = "guide-exact"
        /// TRL 1.x native collator: pads only.
        case trl
    }

    /// How micro-batch losses are combined over a gradient-accumulation window (spec §4.6).
    public enum GALossNormalization: String, CaseIterable, Sendable, Codable {
        /// transformers 5.x: Σ token CE over the window / valid tokens in the window.
        case tokens
        /// transformers 4.57: per-micro-batch mean CE / accumulation steps.
        case mean
        /// transformers 4.51–4.56 with Gemma 3 (the guide's numbers): per-micro-batch mean, not divided.
        case legacySum = "legacy-sum"
    }

    public enum IntervalStrategy: String, CaseIterable, Sendable, Codable { case no, steps, epoch }

    /// The run's output folder (TRL requires it; `trl sft` falls back to the `trainer_output` folder).
    public var resolvedOutputDir: String { outputDir ?? "trainer_output" }
    /// `eval_steps` defaults to `logging_steps` (TrainingArguments.__post_init__).
    public var resolvedEvalSteps: Double { evalSteps ?? loggingSteps }
    public var usesBF16: Bool { bf16 ?? false }

    /// The matmul mode of this run on a machine with `capabilities`, and the line that explains it
    /// (throws for `bf16_matmul: sbgemm` where cblas_sbgemm cannot run).
    public func bf16MatmulResolution(capabilities: BF16Capabilities = .current) throws -> BF16MatmulResolution {
        do { return try bf16Matmul.resolve(bf16: usesBF16, capabilities: capabilities) } catch let e as BF16MatmulError {
            throw TrainingError(e.description)
        }
    }
}

// MARK: - Field table (drives parsing, saving, validation messages and the dashboard's editor)

public enum ConfigGroup: String, CaseIterable, Sendable {
    case model, data, training, peft, quantization
    case loggingAndSaving = "logging & saving"
}

/// A YAML scalar or list as the config file holds it.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case null, bool(Bool), int(Int), double(Double), string(String), strings([String])
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return formatYAMLNumber(d)
        case .string(let s): return s
        case .strings(let a): return "[" + a.joined(separator: ", ") + "]"
        }
    }
}

func formatYAMLNumber(_ d: Double) -> String {
    if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
    return "\(d)"
}

/// One key of the config: its group, a help line, how to read and write it.
public struct ConfigField: Sendable {
    public let key: String
    public let group: ConfigGroup
    public let help: String
    /// Allowed values for enumerations (the editor shows a picker).
    public let choices: [String]
    public let get: @Sendable (SFTConfig) -> ConfigValue
    public let set: @Sendable (inout SFTConfig, ConfigValue) throws -> Void
}

private func typeError(_ key: String, _ want: String, _ got: ConfigValue) -> TrainingError {
    TrainingError("config key '\(key)': expected \(want), got \(got)")
}

private func asInt(_ key: String, _ v: ConfigValue) throws -> Int {
    switch v {
    case .int(let i): return i
    case .double(let d) where d == d.rounded(): return Int(d)
    case .string(let s) where Int(s) != nil: return Int(s)!
    default: throw typeError(key, "an integer", v)
    }
}
private func asDouble(_ key: String, _ v: ConfigValue) throws -> Double {
    switch v {
    case .int(let i): return Double(i)
    case .double(let d): return d
    case .string(let s) where Double(s) != nil: return Double(s)!  // YAML 1.1 reads "2e-5" as a string
    default: throw typeError(key, "a number", v)
    }
}
private func asBool(_ key: String, _ v: ConfigValue) throws -> Bool {
    switch v {
    case .bool(let b): return b
    // PyYAML (what `trl sft --config` uses) reads YAML 1.1 booleans: yes/no/on/off too.
    case .string(let s) where ["true", "false", "yes", "no", "on", "off"].contains(s.lowercased()):
        return ["true", "yes", "on"].contains(s.lowercased())
    default: throw typeError(key, "true or false", v)
    }
}
private func asString(_ key: String, _ v: ConfigValue) throws -> String {
    switch v {
    case .string(let s): return s
    case .int(let i): return String(i)
    case .double(let d): return formatYAMLNumber(d)
    case .bool(let b): return b ? "true" : "false"
    default: throw typeError(key, "a string", v)
    }
}
private func asChoice<E: RawRepresentable & CaseIterable>(_ key: String, _ v: ConfigValue, _: E.Type) throws -> E
where E.RawValue == String {
    let s = try asString(key, v)
    guard let e = E(rawValue: s) else {
        let all = E.allCases.map(\.rawValue)
        throw TrainingError("config key '\(key)': '\(s)' is not one of \(all.joined(separator: ", "))"
            + (NearestKey.suggest(s, among: all).map { " (did you mean '\($0)'?)" } ?? ""))
    }
    return e
}

private typealias KP<T> = WritableKeyPath<SFTConfig, T> & Sendable

private func intField(_ k: String, _ g: ConfigGroup, _ kp: KP<Int>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { .int($0[keyPath: kp]) },
                set: { c, v in c[keyPath: kp] = try asInt(k, v) })
}
private func optIntField(_ k: String, _ g: ConfigGroup, _ kp: KP<Int?>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { $0[keyPath: kp].map { .int($0) } ?? .null },
                set: { c, v in c[keyPath: kp] = v == .null ? nil : try asInt(k, v) })
}
private func doubleField(_ k: String, _ g: ConfigGroup, _ kp: KP<Double>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { .double($0[keyPath: kp]) },
                set: { c, v in c[keyPath: kp] = try asDouble(k, v) })
}
private func optDoubleField(_ k: String, _ g: ConfigGroup, _ kp: KP<Double?>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { $0[keyPath: kp].map { .double($0) } ?? .null },
                set: { c, v in c[keyPath: kp] = v == .null ? nil : try asDouble(k, v) })
}
private func boolField(_ k: String, _ g: ConfigGroup, _ kp: KP<Bool>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: ["true", "false"], get: { .bool($0[keyPath: kp]) },
                set: { c, v in c[keyPath: kp] = try asBool(k, v) })
}
private func optBoolField(_ k: String, _ g: ConfigGroup, _ kp: KP<Bool?>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: ["true", "false"], get: { $0[keyPath: kp].map { .bool($0) } ?? .null },
                set: { c, v in c[keyPath: kp] = v == .null ? nil : try asBool(k, v) })
}
private func stringField(_ k: String, _ g: ConfigGroup, _ kp: KP<String>, _ h: String, choices: [String] = []) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: choices, get: { .string($0[keyPath: kp]) },
                set: { c, v in
                    let s = try asString(k, v)
                    if !choices.isEmpty, !choices.contains(s) {
                        throw TrainingError("config key '\(k)': '\(s)' is not one of \(choices.joined(separator: ", "))")
                    }
                    c[keyPath: kp] = s
                })
}
private func optStringField(_ k: String, _ g: ConfigGroup, _ kp: KP<String?>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { $0[keyPath: kp].map { .string($0) } ?? .null },
                set: { c, v in c[keyPath: kp] = v == .null ? nil : try asString(k, v) })
}
private func stringsField(_ k: String, _ g: ConfigGroup, _ kp: KP<[String]?>, _ h: String) -> ConfigField {
    ConfigField(key: k, group: g, help: h, choices: [], get: { $0[keyPath: kp].map { .strings($0) } ?? .null },
                set: { c, v in
                    switch v {
                    case .null: c[keyPath: kp] = nil
                    case .strings(let a): c[keyPath: kp] = a
                    default: c[keyPath: kp] = [try asString(k, v)]   // PEFT accepts "all-linear" as a string
                    }
                })
}
private func enumField<E: RawRepresentable & CaseIterable & Sendable>(_ k: String, _ g: ConfigGroup, _ kp: KP<E>, _ h: String)
    -> ConfigField where E.RawValue == String {
    ConfigField(key: k, group: g, help: h, choices: E.allCases.map(\.rawValue), get: { .string($0[keyPath: kp].rawValue) },
                set: { c, v in c[keyPath: kp] = try asChoice(k, v, E.self) })
}

extension SFTConfig {
    /// Every key SFTDeck honours, in the order the YAML writer and the editor show them.
    public static let fields: [ConfigField] = [
        optStringField("model_name_or_path", .model, \.modelNameOrPath, "model folder or hub id (resolved from the local HF cache)"),
        optStringField("adapter_name_or_path", .model, \.adapterNameOrPath, "SFTDeck: start from this PEFT adapter folder and keep training it"),
        stringField("dtype", .model, \.dtype, "accepted for TRL (weights stay as the checkpoint stores them; compute is fp32)", choices: ["float32", "bfloat16", "auto"]),
        optStringField("attn_implementation", .model, \.attnImplementation, "accepted for TRL compatibility; SFTDeck has one attention kernel"),

        optStringField("dataset_name", .data, \.datasetName, "dataset folder, data file or hub id"),
        optStringField("dataset_config", .data, \.datasetConfig, "dataset configuration name"),
        stringField("dataset_train_split", .data, \.datasetTrainSplit, "split to train on"),
        stringField("dataset_test_split", .data, \.datasetTestSplit, "split to evaluate on (eval_strategy != no)"),
        optIntField("max_length", .data, \.maxLength, "truncate sequences to this many tokens (null: no truncation)"),
        boolField("shuffle", .data, \.shuffle, "SFTDeck: shuffle each epoch like the Trainer (false: dataset order)"),
        enumField("label_masking", .data, \.labelMasking, "SFTDeck: which label positions are masked (vision | guide-exact | trl)"),
        boolField("assistant_only_loss", .data, \.assistantOnlyLoss, "loss only on assistant turns"),
        optBoolField("completion_only_loss", .data, \.completionOnlyLoss, "loss only on completions (prompt-completion rows)"),
        optStringField("chat_template_path", .data, \.chatTemplatePath, "Jinja chat template file replacing the tokenizer's"),

        optStringField("output_dir", .training, \.outputDir, "where checkpoints, logs and the final model go"),
        doubleField("num_train_epochs", .training, \.numTrainEpochs, "epochs (ignored when max_steps > 0)"),
        intField("max_steps", .training, \.maxSteps, "optimizer steps (-1: from num_train_epochs)"),
        intField("per_device_train_batch_size", .training, \.perDeviceTrainBatchSize, "samples per micro-batch"),
        intField("per_device_eval_batch_size", .training, \.perDeviceEvalBatchSize, "samples per eval batch"),
        intField("gradient_accumulation_steps", .training, \.gradientAccumulationSteps, "micro-batches per optimizer step"),
        boolField("gradient_checkpointing", .training, \.gradientCheckpointing, "recompute activations in backward (less memory)"),
        doubleField("learning_rate", .training, \.learningRate, "peak learning rate"),
        enumField("lr_scheduler_type", .training, \.lrSchedulerType, "learning-rate schedule"),
        doubleField("warmup_steps", .training, \.warmupSteps, "warmup: ≥ 1 steps, < 1 ratio of total steps"),
        doubleField("weight_decay", .training, \.weightDecay, "AdamW decoupled weight decay (not on biases and norms)"),
        doubleField("adam_beta1", .training, \.adamBeta1, "AdamW β1"),
        doubleField("adam_beta2", .training, \.adamBeta2, "AdamW β2"),
        doubleField("adam_epsilon", .training, \.adamEpsilon, "AdamW ε"),
        doubleField("max_grad_norm", .training, \.maxGradNorm, "clip the total gradient norm to this (0: no clipping)"),
        stringField("optim", .training, \.optim, "optimizer", choices: ["adamw_torch_fused", "adamw_torch"]),
        intField("seed", .training, \.seed, "seed for initialisation, dropout and sampling"),
        optIntField("data_seed", .training, \.dataSeed, "seed for the sampler only (default: seed)"),
        optBoolField("bf16", .training, \.bf16, "bfloat16 matrix products with fp32 accumulation"),
        enumField("bf16_matmul", .training, \.bf16Matmul, "SFTDeck: bf16 products: auto (sbgemm if the CPU+BLAS have it, else fp32) | sbgemm | emulate | fp32"),
        enumField("ga_loss_normalization", .training, \.gaLossNormalization, "SFTDeck: tokens (transformers 5) | mean (4.57) | legacy-sum (guide era)"),
        enumField("eval_strategy", .training, \.evalStrategy, "when to evaluate on the test split"),
        optDoubleField("eval_steps", .training, \.evalSteps, "evaluate every N steps (default: logging_steps)"),
        ConfigField(key: "resume_from_checkpoint", group: .training, help: "checkpoint folder, or true for the latest in output_dir",
                    choices: [], get: { c in
                        guard let r = c.resumeFromCheckpoint else { return .null }
                        return r == "true" ? .bool(true) : .string(r)
                    }, set: { c, v in
                        switch v {
                        case .null, .bool(false): c.resumeFromCheckpoint = nil
                        case .bool(true): c.resumeFromCheckpoint = "true"
                        default: c.resumeFromCheckpoint = try asString("resume_from_checkpoint", v)
                        }
                    }),

        boolField("use_peft", .peft, \.usePeft, "train a LoRA adapter instead of all weights"),
        intField("lora_r", .peft, \.loraR, "LoRA rank"),
        intField("lora_alpha", .peft, \.loraAlpha, "LoRA alpha (scale alpha/r, or alpha/√r with rsLoRA)"),
        doubleField("lora_dropout", .peft, \.loraDropout, "dropout on the adapter input"),
        stringsField("lora_target_modules", .peft, \.loraTargetModules, "modules to adapt (all-linear or names)"),
        stringsField("lora_modules_to_save", .peft, \.loraModulesToSave, "modules trained in full and saved with the adapter"),
        boolField("use_rslora", .peft, \.useRslora, "rank-stabilised LoRA scaling"),
        stringField("lora_task_type", .peft, \.loraTaskType, "PEFT task type", choices: ["CAUSAL_LM"]),

        boolField("load_in_4bit", .quantization, \.loadIn4bit, "QLoRA: frozen linear weights in 4 bits"),
        stringField("bnb_4bit_quant_type", .quantization, \.bnb4bitQuantType, "4-bit code", choices: ["nf4"]),
        boolField("use_bnb_nested_quant", .quantization, \.useBnbNestedQuant, "double quantisation of the absmax"),
        optStringField("bnb_4bit_quant_storage", .quantization, \.bnb4bitQuantStorage, "accepted for compatibility (storage dtype)"),

        enumField("logging_strategy", .loggingAndSaving, \.loggingStrategy, "when to log"),
        doubleField("logging_steps", .loggingAndSaving, \.loggingSteps, "log every N steps (< 1: ratio of total)"),
        boolField("logging_first_step", .loggingAndSaving, \.loggingFirstStep, "also log step 1"),
        ConfigField(key: "report_to", group: .loggingAndSaving, help: "tensorboard (event files under output_dir/runs) or none (the JSONL log only)", choices: ["none", "tensorboard", "all"],
                    get: { .strings($0.reportTo) }, set: { c, v in
                        switch v {
                        case .strings(let a): c.reportTo = a
                        case .null: c.reportTo = ["none"]
                        default: c.reportTo = [try asString("report_to", v)]
                        }
                    }),
        optStringField("run_name", .loggingAndSaving, \.runName, "name shown in logs"),
        enumField("save_strategy", .loggingAndSaving, \.saveStrategy, "when to write a checkpoint"),
        doubleField("save_steps", .loggingAndSaving, \.saveSteps, "checkpoint every N steps (< 1: ratio of total)"),
        optIntField("save_total_limit", .loggingAndSaving, \.saveTotalLimit, "keep at most N checkpoints (oldest removed)"),
        boolField("save_only_model", .loggingAndSaving, \.saveOnlyModel, "checkpoints without optimizer/scheduler/RNG state (not resumable)"),
        boolField("push_to_hub", .loggingAndSaving, \.pushToHub, "accepted; SFTDeck never uploads (the folder is ready for `hf upload`)"),
        optStringField("hub_model_id", .loggingAndSaving, \.hubModelId, "model id used in the model card"),
        optStringField("theme", .loggingAndSaving, \.theme, "SFTDeck: dashboard colour theme"),
    ]

    /// Keys SFTDeck accepts under another name (value mapped, with a warning).
    static let legacyKeys: [String: String] = ["warmup_ratio": "warmup_steps", "evaluation_strategy": "eval_strategy",
                                               "torch_dtype": "dtype"]

    public static func field(_ key: String) -> ConfigField? { fields.first { $0.key == key } }
}

// MARK: - Loading, validation, saving

public struct ConfigLoadResult: Sendable {
    public var config: SFTConfig
    public var warnings: [String]
}

extension SFTConfig {
    public static func load(path: String) throws -> ConfigLoadResult {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw TrainingError("\(path): cannot read the config file (\(error.localizedDescription))")
        }
        do { return try parse(yaml: text) } catch let e as TrainingError {
            throw TrainingError("\(path): \(e.description)")
        }
    }

    /// Parses a `trl sft --config` YAML document. Unknown keys are errors (naming the nearest known
    /// key); TRL keys SFTDeck does not act on are warnings.
    public static func parse(yaml text: String) throws -> ConfigLoadResult {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw TrainingError("not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        var config = SFTConfig()
        var warnings: [String] = []
        guard let node else { return ConfigLoadResult(config: config, warnings: warnings) }
        guard let mapping = node.mapping else { throw TrainingError("the config must be a mapping of TRL keys to values") }
        for (kNode, vNode) in mapping {
            guard let key = kNode.string else { throw TrainingError("config keys must be strings") }
            let value = try configValue(vNode, key: key)
            if let f = field(key) {
                try f.set(&config, value)
            } else if let target = legacyKeys[key], let f = field(target) {
                try f.set(&config, value)
                warnings.append("config key '\(key)' is the old name of '\(target)' (transformers 5); read as \(target): \(value)")
            } else if let note = trlKnownButIgnored(key, value) {
                warnings.append(note)
            } else {
                let known = fields.map(\.key) + Array(legacyKeys.keys) + trlKeys
                let hint = NearestKey.suggest(key, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                throw TrainingError("unknown config key '\(key)'\(hint)")
            }
        }
        warnings += try config.validate()
        return ConfigLoadResult(config: config, warnings: warnings)
    }

    private static func configValue(_ n: Node, key: String) throws -> ConfigValue {
        switch n {
        case .scalar(let s):
            if s.style == .plain {
                let t = s.string
                if ["null", "~", "", "None"].contains(t) { return .null }
                if ["true", "True", "TRUE"].contains(t) { return .bool(true) }
                if ["false", "False", "FALSE"].contains(t) { return .bool(false) }
                if let i = Int(t) { return .int(i) }
                if let d = Double(t) { return .double(d) }
            }
            return .string(s.string)
        case .sequence(let seq):
            return .strings(try seq.map { item in
                guard let s = item.string else { throw TrainingError("config key '\(key)': list items must be strings") }
                return s
            })
        case .mapping:
            return .string(String(describing: (try? Yams.serialize(node: n)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
        case .alias:
            throw TrainingError("config key '\(key)': YAML aliases are not supported")
        }
    }

    /// A TRL key SFTDeck recognises but does not act on: the warning text, or nil if the key is not TRL's.
    static func trlKnownButIgnored(_ key: String, _ value: ConfigValue) -> String? {
        guard trlKeys.contains(key) else { return nil }
        return "config key '\(key)' is a TRL key SFTDeck does not honour; ignored (value \(value))"
    }

    /// Checks values and combinations; returns warnings, throws the first error.
    public func validate() throws -> [String] {
        var w: [String] = []
        func bad(_ m: String) -> TrainingError { TrainingError(m) }
        if perDeviceTrainBatchSize < 1 { throw bad("per_device_train_batch_size must be at least 1 (got \(perDeviceTrainBatchSize))") }
        if perDeviceEvalBatchSize < 1 { throw bad("per_device_eval_batch_size must be at least 1 (got \(perDeviceEvalBatchSize))") }
        if gradientAccumulationSteps < 1 { throw bad("gradient_accumulation_steps must be at least 1 (got \(gradientAccumulationSteps))") }
        if maxSteps == 0 || maxSteps < -1 { throw bad("max_steps must be positive or -1 (got \(maxSteps))") }
        if maxSteps < 0 && !(numTrainEpochs > 0) { throw bad("num_train_epochs must be positive when max_steps is -1 (got \(numTrainEpochs))") }
        if !(learningRate >= 0) || !learningRate.isFinite { throw bad("learning_rate must be a non-negative number (got \(learningRate))") }
        if warmupSteps < 0 { throw bad("warmup_steps must be >= 0 (got \(warmupSteps))") }
        if !(0..<1).contains(adamBeta1) || !(0..<1).contains(adamBeta2) { throw bad("adam_beta1 and adam_beta2 must be in [0, 1)") }
        if !(adamEpsilon > 0) { throw bad("adam_epsilon must be positive (got \(adamEpsilon))") }
        if weightDecay < 0 { throw bad("weight_decay must be >= 0 (got \(weightDecay))") }
        if maxGradNorm < 0 { throw bad("max_grad_norm must be >= 0 (got \(maxGradNorm))") }
        if loggingStrategy == .steps && !(loggingSteps > 0) { throw bad("logging_steps must be positive (got \(loggingSteps))") }
        if saveStrategy == .steps && !(saveSteps > 0) { throw bad("save_steps must be positive (got \(saveSteps))") }
        if evalStrategy == .steps && !(resolvedEvalSteps > 0) { throw bad("eval_steps must be positive (got \(resolvedEvalSteps))") }
        if let l = saveTotalLimit, l < 1 { throw bad("save_total_limit must be at least 1 (got \(l))") }
        if let m = maxLength, m < 2 { throw bad("max_length must be at least 2 or null (got \(m))") }
        if usePeft {
            if loraR < 1 { throw bad("lora_r must be at least 1 (got \(loraR))") }
            if !(0..<1).contains(loraDropout) { throw bad("lora_dropout must be in [0, 1) (got \(loraDropout))") }
        } else if loraTargetModules != nil || loraModulesToSave != nil {
            w.append("lora_target_modules / lora_modules_to_save are set but use_peft is false: training all weights")
        }
        if dtype != "float32" {
            // Not silent: transformers would load every weight as bf16 (or as the checkpoint stores it, for
            // auto) and TRL would train those; SFTDeck keeps each weight as its checkpoint stores it, computes
            // in fp32 and trains fp32 master weights. With an fp32 checkpoint and dtype bfloat16 the numbers
            // therefore differ by the frozen weights' bf16 rounding; bf16 checkpoints give the same values.
            w.append("dtype: \(dtype): SFTDeck keeps each weight in its checkpoint's storage (bf16 stays bf16, fp32 stays fp32), computes in fp32 and trains fp32 master weights, where transformers would load "
                     + (dtype == "auto" ? "the checkpoint's dtype" : "every weight as bf16") + " and train that"
                     + (usePeft ? "" : "; full fine-tuning saves fp32 weights (twice the size of bf16 files)"))
        }
        if loadIn4bit && !usePeft { throw bad("load_in_4bit needs use_peft: true (4-bit weights are frozen; only adapters train)") }
        if adapterNameOrPath != nil && !usePeft { throw bad("adapter_name_or_path needs use_peft: true") }
        if loadIn4bit && usePeft {
            // Not silent: TRL 1.16's SFTTrainer casts every trainable parameter of a quantised model to bf16
            // (sft_trainer.py, "When using QLoRA, the PEFT adapter weights are converted to bf16"); SFTDeck keeps
            // them fp32 and matches that run with the cast undone (Tests/TrainingTests/QLoRAParityTests).
            w.append("load_in_4bit: the trainable weights (LoRA, modules_to_save) and their AdamW state stay fp32; TRL 1.16 casts them to bf16 under QLoRA, so its losses differ from these by bf16 rounding (7e-5 relative on the first step of the QLoRA parity fixture)")
        }
        if useBnbNestedQuant && !loadIn4bit { w.append("use_bnb_nested_quant has no effect without load_in_4bit") }
        if assistantOnlyLoss { w.append("assistant_only_loss: TRL refuses it for vision-language models; SFTDeck masks non-assistant turns") }
        if optim == "adamw_torch" { w.append("optim adamw_torch and adamw_torch_fused run the same AdamW update here") }
        if pushToHub { w.append("push_to_hub: SFTDeck never uploads; output_dir is ready for `hf upload`") }
        // transformers treats "none" as a reporter only when it is alone; in a list it raises "none is not supported".
        if reportTo.count > 1 && reportTo.contains("none") {
            throw bad("report_to lists 'none' with other integrations \(reportTo); give either none or the integrations to use")
        }
        for r in reportTo where !["none", "tensorboard", "all"].contains(r) {
            w.append("report_to '\(r)' is not available here; SFTDeck reports to tensorboard (event files under output_dir/runs) and always writes output_dir/train_log.jsonl")
        }
        // Not silent: a bf16 run differs from fp32 in its rounding points (reference-spec §4.9), so the
        // mode this machine gives is always stated; `bf16_matmul: sbgemm` that cannot run is an error.
        if let m = try bf16MatmulResolution().message { w.append(m) }
        if attnImplementation != nil { w.append("attn_implementation is ignored: SFTDeck has one (eager-equivalent) attention") }
        return w
    }

    /// The config as a YAML document grouped by section, readable by both `trl sft --config` (for the
    /// TRL keys) and SFTDeck. Keys at their default value are written commented out unless `full`.
    public func yaml(full: Bool = true) -> String {
        let defaults = SFTConfig()
        var out = "# SFTDeck training config (TRL `trl sft --config` keys; SFTDeck's own keys are marked)\n"
        for group in ConfigGroup.allCases {
            out += "\n# --- \(group.rawValue)\n"
            for f in SFTConfig.fields where f.group == group {
                let v = f.get(self)
                let isDefault = v == f.get(defaults)
                if !full && isDefault { continue }
                out += "\(f.key): \(yamlScalar(v))\n"
            }
        }
        return out
    }

    public func save(to path: String) throws {
        try AtomicFile.write(Data(yaml().utf8), to: URL(fileURLWithPath: path))
    }
}

func yamlScalar(_ v: ConfigValue) -> String {
    switch v {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return formatYAMLNumber(d)
    case .string(let s): return yamlQuoteIfNeeded(s)
    case .strings(let a): return "[" + a.map(yamlQuoteIfNeeded).joined(separator: ", ") + "]"
    }
}

func yamlQuoteIfNeeded(_ s: String) -> String {
    let plainSafe = !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || "-_./@+".contains($0) }
        && !["null", "true", "false", "yes", "no", "on", "off", "~"].contains(s.lowercased())
        && Double(s) == nil && !s.hasPrefix("-") && !s.hasPrefix("@")
    if plainSafe { return s }
    return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

