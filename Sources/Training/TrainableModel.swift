import Foundation

/// What the trainer needs from a collated micro-batch (the model downcasts to its own batch type).
public protocol TrainingBatch {
    /// Samples (rows) in the micro-batch.
    var sampleCount: Int { get }
    /// Σ (labels[:, 1:] != -100): the prediction targets (the Trainer's `num_items_in_batch` share).
    var targetCount: Int { get }
    /// Σ attention_mask: non-pad tokens (TRL's `num_tokens` share).
    var attentionTokenCount: Int { get }
    /// input_ids.numel() (B·L), for `total_flos` = 6 · numel · non-embedding parameters.
    var inputElementCount: Int { get }
}

/// Sums over one micro-batch's valid targets, in fp32 as torch reduces them.
public struct MicroBatchResult: Sendable, Equatable {
    /// Σ token cross-entropy over the valid targets.
    public var lossSum: Float
    public var targets: Int
    /// Targets where argmax(logits) == label (TRL's mean_token_accuracy numerator).
    public var correct: Int
    /// Σ over valid targets of the predictive entropy (TRL ≥ 0.22 `entropy`), if the model computes it.
    public var entropySum: Float?
    public init(lossSum: Float, targets: Int, correct: Int, entropySum: Float? = nil) {
        self.lossSum = lossSum; self.targets = targets; self.correct = correct; self.entropySum = entropySum
    }
}

/// A model the trainer can optimise. Gemma 3 (module Models) and the toy models implement it.
public protocol TrainableModel: AnyObject {
    /// Trainable tensors in a stable order (optimizer state and checkpoints follow it).
    var trainableParameters: [TrainableTensor] { get }
    /// All parameters, trainable or not (reported at start).
    var totalParameterCount: Int { get }
    /// Parameters excluding embeddings (transformers `num_parameters(exclude_embeddings=True)`) for
    /// `total_flos`; 0 when the model does not report it (total_flos is then 0, as for a plain nn.Module).
    var flopsParameterCount: Int { get }
    func zeroGrad()
    /// Training-mode forward and backward: ADDS ∂(lossScale · Σ token CE)/∂θ into the grads and returns
    /// the unscaled sums.
    func forwardBackward(_ batch: TrainingBatch, lossScale: Float) throws -> MicroBatchResult
    /// Eval-mode forward (no dropout, no gradients).
    func evaluate(_ batch: TrainingBatch) throws -> MicroBatchResult
    /// Writes what a checkpoint holds of the model (adapter files, or full weights) into `directory`.
    func saveTrainable(to directory: URL) throws
    /// Restores the trainable tensors from a folder `saveTrainable` wrote.
    func loadTrainable(from directory: URL) throws
    /// Random state of the model's own generators (dropout), saved with checkpoints; nil if none.
    func randomState() -> [UInt8]?
    func restoreRandomState(_ state: [UInt8]) throws
    /// Extra JSON-able facts for the model card and `args/text_summary` (e.g. the model's config).
    var configSummary: [String: Any] { get }
    /// Per trainable parameter: whether it took part in a forward since `zeroGrad` (torch: `.grad` is not
    /// None, so AdamW steps it). nil: all did.
    var parametersWithGradient: [Bool]? { get }
}

extension TrainableModel {
    public var flopsParameterCount: Int { 0 }
    public func randomState() -> [UInt8]? { nil }
    public func restoreRandomState(_ state: [UInt8]) throws {}
    public var configSummary: [String: Any] { [:] }
    public var parametersWithGradient: [Bool]? { nil }
}

/// Rows the trainer draws micro-batches from (the Datasets collator or a toy set).
public protocol BatchSource {
    var sampleCount: Int { get }
    /// Collates the samples at `indices` (in that order) into one micro-batch.
    func batch(indices: [Int]) throws -> TrainingBatch
}
