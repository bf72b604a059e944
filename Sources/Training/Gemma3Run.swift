import Foundation
import Models
import Tensor

/// A collated micro-batch for Gemma 3 (module Models' `ModelBatch`) with the counts the trainer needs.
public struct Gemma3TrainingBatch: TrainingBatch {
    public var batch: ModelBatch
    public init(_ batch: ModelBatch) { self.batch = batch }
    public var sampleCount: Int { batch.batchSize }
    public var targetCount: Int {
        guard let labels = batch.labels else { return 0 }
        var n = 0
        for b in 0..<batch.batchSize { for t in 1..<max(1, batch.seqLen) where labels[b * batch.seqLen + t] != -100 { n += 1 } }
        return n
    }
    public var attentionTokenCount: Int { batch.attentionMask.map { $0.reduce(0) { $0 + Int($1) } } ?? batch.inputIDs.count }
    public var inputElementCount: Int { batch.inputIDs.count }
}

/// Gemma 3 (module Models) as a `TrainableModel`: LoRA (adapter files) or full fine-tuning (weights).
public final class Gemma3Trainable: TrainableModel {
    public let model: Gemma3Model
    public let usesAdapter: Bool
    public var gradientCheckpointing: Bool
    public private(set) var trainableParameters: [TrainableTensor] = []

    public init(model: Gemma3Model, usesAdapter: Bool, gradientCheckpointing: Bool) {
        self.model = model; self.usesAdapter = usesAdapter; self.gradientCheckpointing = gradientCheckpointing
        refreshParameters()
    }

    func refreshParameters() {
        trainableParameters = model.trainableParameters.map {
            TrainableTensor(name: $0.name, shape: $0.shape, inNormLayer: $0.inNormLayer, value: $0.value, grad: $0.grad,
                            gradientRows: $0.gradientRows)
        }
    }

    public var totalParameterCount: Int { model.totalParameterCount }
    /// transformers `num_parameters(exclude_embeddings=True)` of what the Trainer holds: with PEFT the
    /// LoRA A/B and the non-embedding `modules_to_save` copies (lm_head) count on top of the base model.
    public var flopsParameterCount: Int {
        guard usesAdapter else { return model.nonEmbeddingParameterCount }
        return model.nonEmbeddingParameterCount + trainableParameters
            .filter { !$0.name.contains("embed_tokens") && !$0.name.contains("position_embedding") }
            .reduce(0) { $0 + $1.count }
    }
    /// Zeroes every trainable gradient (`Gemma3Model.zeroGrad`: on every core, row-tracked ones by row,
    /// nothing when no backward ran since the last zeroing).
    public func zeroGrad() {
        model.zeroGrad()
        windowHadImages = false
    }

    /// Whether a micro-batch since `zeroGrad` ran the vision tower and projector.
    private var windowHadImages = false
    /// Text-only windows leave the vision tower's and projector's `.grad` None in torch.
    public var parametersWithGradient: [Bool]? {
        guard model.multimodal != nil, !windowHadImages else { return nil }
        return trainableParameters.map { !($0.name.contains("vision_tower.") || $0.name.contains("multi_modal_projector.")) }
    }

    private func unwrap(_ b: TrainingBatch) throws -> ModelBatch {
        guard let g = b as? Gemma3TrainingBatch else { throw TrainingError("Gemma 3 expects a Gemma3TrainingBatch") }
        return g.batch
    }

    public func forwardBackward(_ batch: TrainingBatch, lossScale: Float) throws -> MicroBatchResult {
        if batch.sampleCount == 0 { return MicroBatchResult(lossSum: 0, targets: 0, correct: 0, entropySum: 0) }  // every row dropped
        let b = try unwrap(batch)
        if b.numImages > 0 && b.pixelValues != nil { windowHadImages = true }
        let r = try model.forwardBackward(b, gradScale: lossScale, gradientCheckpointing: gradientCheckpointing)
        StartupProfile.mark("first forward+backward")
        return MicroBatchResult(lossSum: Float(r.lossSum), targets: r.tokenCount, correct: r.correctCount, entropySum: Float(r.entropySum))
    }

    public func evaluate(_ batch: TrainingBatch) throws -> MicroBatchResult {
        if batch.sampleCount == 0 { return MicroBatchResult(lossSum: 0, targets: 0, correct: 0, entropySum: 0) }
        let r = try model.evaluate(try unwrap(batch))
        return MicroBatchResult(lossSum: Float(r.lossSum), targets: r.tokenCount, correct: r.correctCount, entropySum: Float(r.entropySum))
    }

    /// save_pretrained's `max_shard_size` for full fine-tuning checkpoints (the Trainer passes none: "50GB").
    public var maxShardSize = Gemma3Model.defaultMaxShardSize

    /// What `Trainer._save` writes: LoRA → PEFT's adapter files; full fine-tuning → `save_pretrained`
    /// (model.safetensors or shards + index, config.json, generation_config.json); then, as
    /// `processing_class.save_pretrained`, the model folder's tokenizer / processor files.
    public func saveTrainable(to directory: URL) throws {
        if usesAdapter {
            try model.saveAdapter(to: directory)
        } else {
            try model.saveFullWeights(to: directory, maxShardSize: maxShardSize)
            try AtomicFile.write(Data(try Self.savedConfigJSON(modelDir: model.directory).utf8), to: directory.appendingPathComponent("config.json"))
            try copyModelFiles(["generation_config.json"], to: directory)
        }
        try copyModelFiles(Self.processorFiles, to: directory)
    }

    /// Tokenizer and processor files `ProcessorMixin` / `PreTrainedTokenizerBase.save_pretrained` write.
    public static let processorFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                                        "added_tokens.json", "chat_template.jinja", "chat_template.json",
                                        "preprocessor_config.json", "processor_config.json"]

    private func copyModelFiles(_ names: [String], to directory: URL) throws {
        for f in names {
            let src = model.directory.appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: src.path) else { continue }
            try AtomicFile.write(try Data(contentsOf: src), to: directory.appendingPathComponent(f))
        }
    }

    /// config.json as the Trainer saves it after full fine-tuning in fp32: the base config with `dtype`
    /// float32 (top level and each sub-config, as `save_pretrained` sets it), `use_cache` false (the Trainer
    /// sets `model.config.use_cache = args.use_cache`), json.dumps(indent=2, sort_keys=True) + newline.
    static func savedConfigJSON(modelDir: URL) throws -> String {
        let url = modelDir.appendingPathComponent("config.json")
        guard var cfg = try PythonJSON.parse(Data(contentsOf: url), file: url) as? [String: Any] else { throw TrainingError("\(url.path): not a JSON object") }
        cfg["dtype"] = "float32"
        cfg.removeValue(forKey: "torch_dtype")
        for k in ["text_config", "vision_config"] {
            if var sub = cfg[k] as? [String: Any] { sub["dtype"] = "float32"; sub.removeValue(forKey: "torch_dtype"); cfg[k] = sub }
        }
        cfg["use_cache"] = false
        return PythonJSON.dumps(cfg) + "\n"
    }

    public func loadTrainable(from directory: URL) throws {
        let fm = FileManager.default
        if usesAdapter {
            guard fm.fileExists(atPath: directory.appendingPathComponent("adapter_model.safetensors").path) else {
                throw TrainingError("\(directory.path): no adapter_model.safetensors, but use_peft is true (a full fine-tuning checkpoint needs use_peft: false)")
            }
            guard model.lora != nil else { try model.loadAdapter(from: directory); refreshParameters(); return }
            // Resuming: the adapter is already applied; copy the checkpoint's tensors into it by PEFT name
            // (files drop the adapter name: ".lora_A.default.weight" → ".lora_A.weight",
            // ".modules_to_save.default.weight" → ".weight").
            let url = directory.appendingPathComponent("adapter_model.safetensors")
            let file = try SafeTensorsFile(url: url)
            func norm(_ n: String) -> String {
                n.replacingOccurrences(of: ".modules_to_save.default.", with: ".").replacingOccurrences(of: ".default.", with: ".")
            }
            var byName: [String: String] = [:]
            for n in file.names { byName[norm(n)] = n }
            for p in trainableParameters {
                guard let fileName = byName[norm(p.name)] else { throw TrainingError("\(url.path): no tensor for \(p.name)") }
                let v = try file.floats(fileName)
                guard v.count == p.count else { throw TrainingError("\(url.path): \(fileName) has \(v.count) values, expected \(p.count)") }
                for i in 0..<p.count { p.value[i] = v[i] }
            }
            return
        }
        // Full fine-tuning: every parameter from model.safetensors (or its shards) under its saved name.
        let single = directory.appendingPathComponent("model.safetensors"), index = directory.appendingPathComponent("model.safetensors.index.json")
        guard fm.fileExists(atPath: single.path) || fm.fileExists(atPath: index.path) else {
            throw TrainingError("\(directory.path): no model.safetensors or model.safetensors.index.json, but use_peft is false"
                + (fm.fileExists(atPath: directory.appendingPathComponent("adapter_model.safetensors").path) ? " (a LoRA checkpoint needs use_peft: true)" : ""))
        }
        let ckpt: SafeTensorsCheckpoint
        do { ckpt = try SafeTensorsCheckpoint(folder: directory) } catch { throw TrainingError("\(error)") }
        for p in trainableParameters {
            let saved = model.savedTensorName(p.name)
            let name = ckpt.contains(saved) ? saved : p.name
            guard ckpt.contains(name) else { throw TrainingError("\(directory.path): no tensor \(saved) in the checkpoint's weights") }
            let info = try ckpt.info(name)
            guard info.shape == p.shape else { throw TrainingError("\(directory.path): \(name) has shape \(info.shape), expected \(p.shape)") }
            let v = try ckpt.floats(name)
            v.withUnsafeBufferPointer { src in p.value.baseAddress!.update(from: src.baseAddress!, count: p.count) }
        }
    }

    public func randomState() -> [UInt8]? { model.randomState() }
    public func restoreRandomState(_ state: [UInt8]) throws { try model.restoreRandomState(state) }

    public var configSummary: [String: Any] {
        (try? PythonJSON.parse(Data(contentsOf: model.directory.appendingPathComponent("config.json")))) as? [String: Any] ?? [:]
    }

    /// Loads the model of `config` and chooses what trains (LoRA from scratch, an existing adapter, or all weights).
    public static func load(_ config: SFTConfig, modelDir: URL) throws -> Gemma3Trainable {
        let model = try Gemma3Model.load(from: modelDir)
        StartupProfile.mark("weights mapped")
        if config.loadIn4bit { try quantizeFrozenLinears(model, doubleQuant: config.useBnbNestedQuant) }
        if config.usePeft {
            if let a = config.adapterNameOrPath {
                try model.loadAdapter(from: URL(fileURLWithPath: a))
            } else {
                let targets: LoRASettings.TargetModules
                let t = config.loraTargetModules ?? ["all-linear"]
                targets = t == ["all-linear"] ? .allLinear : .names(t)
                try model.applyLoRA(LoRASettings(r: config.loraR, alpha: Double(config.loraAlpha), dropout: config.loraDropout,
                                                 targetModules: targets, modulesToSave: config.loraModulesToSave ?? [],
                                                 useRSLoRA: config.useRslora), seed: UInt64(config.seed))
            }
        } else {
            model.enableFullFineTuning()
        }
        StartupProfile.mark(config.usePeft ? "adapter ready" : "full fine-tuning ready")
        model.seedDropout(UInt64(config.seed))
        model.bf16Matmul = try config.bf16MatmulResolution().mode
        return Gemma3Trainable(model: model, usesAdapter: config.usePeft, gradientCheckpointing: config.gradientCheckpointing)
    }
}

extension Gemma3Trainable {
    /// QLoRA's load step, as transformers 5.24 + bitsandbytes 0.50.2 do it for
    /// `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=float32)`:
    /// `replace_with_bnb_linear` swaps every module whose type is exactly nn.Linear for Linear4bit, except
    /// `get_keys_to_not_convert` = tied-weight keys (lm_head, embed_tokens), the module of the last named
    /// parameter (a norm in Gemma 3) and the output embedding (lm_head). So: every language-model and SigLIP
    /// q/k/v/o(out_proj), gate/up/down, fc1/fc2; not lm_head, not the projector (a bare Parameter + RMSNorm),
    /// not the patch Conv2d. Weights are quantised NF4 in blocks of 64 (absmax re-quantised to 8 bits in
    /// blocks of 256 when `doubleQuant`, TRL's `use_bnb_nested_quant`).
    ///
    /// Dequantised values stay fp32 even for a bf16 checkpoint: Linear4bit's matmul dequantises into the
    /// compute dtype (`dequantize_4bit(..., A.dtype)` in bnb's gemm_4bit), not into `quant_state.dtype`, and
    /// SFTDeck computes in fp32 (proof: Tests/TrainingTests/QLoRAParityTests, fixture training/qlora).
    /// Returns the quantised modules (named_modules order) and their NF4 weights.
    @discardableResult
    public static func quantizeFrozenLinears(_ model: Gemma3Model, doubleQuant: Bool) throws -> [(name: String, weight: NF4Weight)] {
        var done: [(name: String, weight: NF4Weight)] = []
        try model.replaceFrozenLinearWeights { name, w in
            if name.hasSuffix("lm_head") || name.hasSuffix("embed_tokens") { return nil }
            var values = [Float](repeating: 0, count: w.rows * w.cols)
            values.withUnsafeMutableBufferPointer { w.dequantizeRows(0..<w.rows, into: $0.baseAddress!) }
            let q = values.withUnsafeBufferPointer {
                NF4Weight(quantizing: $0, rows: w.rows, cols: w.cols, dtype: .f32, doubleQuant: doubleQuant)
            }
            done.append((name, q))
            (w as? FrozenTensor)?.releaseMappedPages()   // the checkpoint's pages for it are no longer needed
            return q
        }
        return done
    }
}

/// Pre-tokenized rows (`data.json` {train: [...], eval: [...]} with input_ids, labels, token_type_ids,
/// num_images, first_image; pixels in `pixels.safetensors` tensors "train"/"eval" of shape [N, 3, H, W]),
/// collated like the guide's collator: right padding with `padID`, labels −100 on pads.
public struct PreTokenizedSource: BatchSource {
    struct Row { var ids: [Int32]; var labels: [Int32]; var types: [Int32]; var numImages: Int; var firstImage: Int }
    var rows: [Row]
    var pixels: [Float]
    var imageFloats: Int
    public var padID: Int32 = 0

    public init(folder: URL, split: String) throws {
        let dataURL = folder.appendingPathComponent("data.json")
        guard let d = try? Data(contentsOf: dataURL), let o = try PythonJSON.parse(d, file: dataURL) as? [String: Any],
              let list = o[split] as? [[String: Any]] else { throw TrainingError("\(dataURL.path): no '\(split)' rows") }
        rows = try list.enumerated().map { n, r in
            guard let ids = r["input_ids"] as? [Int], let labels = r["labels"] as? [Int], labels.count == ids.count else {
                throw TrainingError("\(dataURL.path): row \(n) of '\(split)' lacks input_ids/labels of equal length")
            }
            let types = (r["token_type_ids"] as? [Int]) ?? Array(repeating: 0, count: ids.count)
            return Row(ids: ids.map(Int32.init), labels: labels.map(Int32.init), types: types.map(Int32.init),
                       numImages: r["num_images"] as? Int ?? 0, firstImage: r["first_image"] as? Int ?? 0)
        }
        let pixURL = folder.appendingPathComponent("pixels.safetensors")
        if FileManager.default.fileExists(atPath: pixURL.path), let t = try SafetensorsFile.readF32(pixURL)[split] {
            pixels = t.values; imageFloats = t.shape.dropFirst().reduce(1, *)
        } else { pixels = []; imageFloats = 0 }
        if rows.contains(where: { $0.numImages > 0 }) && imageFloats == 0 {
            throw TrainingError("\(pixURL.path): rows have images but there are no pixels for '\(split)'")
        }
    }

    public var sampleCount: Int { rows.count }

    public func batch(indices: [Int]) throws -> TrainingBatch {
        let sel = indices.map { rows[$0] }
        let L = sel.map { $0.ids.count }.max() ?? 0
        var ids = [Int32](repeating: padID, count: sel.count * L), labels = [Int32](repeating: -100, count: sel.count * L)
        var types = [Int32](repeating: 0, count: sel.count * L), mask = [Int32](repeating: 0, count: sel.count * L)
        var px: [Float] = []
        var nImages = 0
        for (b, r) in sel.enumerated() {
            for t in 0..<r.ids.count {
                ids[b * L + t] = r.ids[t]; labels[b * L + t] = r.labels[t]; types[b * L + t] = r.types[t]; mask[b * L + t] = 1
            }
            for k in 0..<r.numImages {
                let s = (r.firstImage + k) * imageFloats
                px += pixels[s..<(s + imageFloats)]
            }
            nImages += r.numImages
        }
        StartupProfile.mark("first batch collated")
        return Gemma3TrainingBatch(ModelBatch(batchSize: sel.count, seqLen: L, inputIDs: ids, attentionMask: mask,
                                              tokenTypeIDs: types, labels: labels, pixelValues: nImages > 0 ? px : nil,
                                              numImages: nImages))
    }
}
