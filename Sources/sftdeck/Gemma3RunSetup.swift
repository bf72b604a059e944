// Gemma 3 for RunSetup: the Models checkpoint as a Training.TrainableModel and the Datasets collator as a
// BatchSource (model_type gemma3 / gemma3_text). Registered by `sftdeck eval` (and by whoever calls
// Gemma3RunSetup.register()).
import Datasets
import Foundation
import Models
import Training

/// A collated micro-batch in the model's layout.
struct Gemma3TrainingBatch: TrainingBatch {
    let batch: ModelBatch
    let sampleCount: Int
    let targetCount: Int
    let attentionTokenCount: Int
    var inputElementCount: Int { batch.batchSize * batch.seqLen }
    init(_ c: CollatedBatch) {
        batch = ModelBatch(batchSize: c.batchSize, seqLen: c.sequenceLength, inputIDs: c.inputIDs, attentionMask: c.attentionMask,
                           tokenTypeIDs: c.tokenTypeIDs, labels: c.labels,
                           pixelValues: c.imageCount > 0 ? c.pixelValues : nil, numImages: c.imageCount)
        sampleCount = c.batchSize
        var n = 0
        for b in 0..<c.batchSize { for l in 1..<max(c.sequenceLength, 1) where c.labels[b * c.sequenceLength + l] != -100 { n += 1 } }
        targetCount = n
        attentionTokenCount = c.attentionMask.reduce(0) { $0 + Int($1) }
    }
}

final class Gemma3Trainable: TrainableModel {
    let model: Gemma3Model
    let checkpointing: Bool
    let trainableParameters: [TrainableTensor]
    init(_ m: Gemma3Model, gradientCheckpointing: Bool) {
        model = m; checkpointing = gradientCheckpointing
        trainableParameters = m.trainableParameters.map {
            TrainableTensor(name: $0.name, shape: $0.shape, inNormLayer: $0.inNormLayer, value: $0.value, grad: $0.grad)
        }
    }
    var totalParameterCount: Int { model.totalParameterCount }
    var flopsParameterCount: Int { model.nonEmbeddingParameterCount }
    func zeroGrad() { model.zeroGrad() }
    func mb(_ b: TrainingBatch) throws -> ModelBatch {
        guard let g = b as? Gemma3TrainingBatch else { throw TrainingError("Gemma 3 received a batch of another model") }
        return g.batch
    }
    func forwardBackward(_ batch: TrainingBatch, lossScale: Float) throws -> MicroBatchResult {
        let r = try model.forwardBackward(try mb(batch), gradScale: lossScale, gradientCheckpointing: checkpointing)
        return MicroBatchResult(lossSum: Float(r.lossSum), targets: r.tokenCount, correct: r.correctCount)
    }
    func evaluate(_ batch: TrainingBatch) throws -> MicroBatchResult {
        let r = try model.evaluate(try mb(batch))
        return MicroBatchResult(lossSum: Float(r.lossSum), targets: r.tokenCount, correct: r.correctCount)
    }
    func saveTrainable(to directory: URL) throws {
        if model.lora != nil { try model.saveAdapter(to: directory) } else { try model.saveWeights(to: directory) }
    }
    func loadTrainable(from directory: URL) throws {
        guard model.lora != nil else { throw TrainingError("\(directory.path): resuming full fine-tuning is not supported yet") }
        try model.loadAdapter(from: directory)
    }
    func randomState() -> [UInt8]? { model.randomState() }
    func restoreRandomState(_ state: [UInt8]) throws { try model.restoreRandomState(state) }
}

/// Rows of a Datasets split, collated for Gemma 3 on demand.
final class Gemma3BatchSource: BatchSource {
    let dataset: Dataset
    let pipeline: CollatorPipeline
    init(dataset: Dataset, pipeline: CollatorPipeline) { self.dataset = dataset; self.pipeline = pipeline }
    var sampleCount: Int { dataset.count }
    func batch(indices: [Int]) throws -> TrainingBatch {
        let samples = try indices.map { try dataset.row($0).trainingSample() }
        return Gemma3TrainingBatch(try pipeline.collate(samples))
    }
}

enum Gemma3RunSetup {
    static func register() {
        RunSetup.register(modelType: "gemma3", load)
        RunSetup.register(modelType: "gemma3_text", load)
    }

    static func load(_ cfg: SFTConfig, _ dir: URL, _ json: [String: Any]) throws -> PreparedRun {
        if cfg.loadIn4bit { throw TrainingError("load_in_4bit: 4-bit loading of Gemma 3 is not wired into this loader yet") }
        let model = try Gemma3Model.load(from: dir)
        model.seedDropout(UInt64(cfg.seed))
        var notes = ["model \(dir.path): \(model.multimodal != nil ? "Gemma3ForConditionalGeneration" : "Gemma3ForCausalLM"), \(model.totalParameterCount) parameters"]
        if let a = cfg.adapterNameOrPath {
            try model.loadAdapter(from: URL(fileURLWithPath: (a as NSString).expandingTildeInPath))
            notes.append("adapter \(a) loaded (\(model.trainableParameters.count) trainable tensors)")
        } else if cfg.usePeft {
            let targets: LoRASettings.TargetModules
            switch cfg.loraTargetModules {
            case nil:
                // PEFT's per-model default; gemma3 (multimodal) has none
                guard model.multimodal == nil else {
                    throw TrainingError("lora_target_modules is not set and PEFT has no default for gemma3 (use all-linear)")
                }
                targets = .names(["q_proj", "v_proj"])
            case let t? where t.count == 1 && t[0] == "all-linear": targets = .allLinear
            case let t?: targets = .names(t)
            }
            try model.applyLoRA(LoRASettings(r: cfg.loraR, alpha: Double(cfg.loraAlpha), dropout: cfg.loraDropout, targetModules: targets,
                                             modulesToSave: cfg.loraModulesToSave ?? [], useRSLoRA: cfg.useRslora,
                                             baseModelNameOrPath: cfg.modelNameOrPath), seed: UInt64(cfg.seed))
            notes.append("LoRA r=\(cfg.loraR) alpha=\(cfg.loraAlpha) on \(model.trainableParameters.count) tensors")
        } else {
            model.enableFullFineTuning()
        }
        guard let ds = cfg.datasetName else { throw TrainingError("dataset_name is not set") }
        let masking = LabelMasking(rawValue: cfg.labelMasking.rawValue) ?? .vision
        let policy = LabelPolicy(masking: masking, assistantOnlyLoss: cfg.assistantOnlyLoss,
                                 completionOnlyLoss: cfg.completionOnlyLoss ?? true, maxLength: cfg.maxLength)
        let pipeline = try CollatorPipeline(modelDirectory: dir, policy: policy,
                                            chatTemplate: try cfg.chatTemplatePath.map { try String(contentsOfFile: $0, encoding: .utf8) })
        let train = try Gemma3BatchSource(dataset: Dataset.open(ds, split: cfg.datasetTrainSplit), pipeline: pipeline)
        let eval = cfg.evalStrategy == .no ? nil : try Gemma3BatchSource(dataset: Dataset.open(ds, split: cfg.datasetTestSplit), pipeline: pipeline)
        notes.append("dataset \(ds): \(train.sampleCount) training rows")
        return PreparedRun(model: Gemma3Trainable(model, gradientCheckpointing: cfg.gradientCheckpointing), train: train, eval: eval, notes: notes)
    }
}
