import Datasets
import Foundation
import Models

/// Rows of a dataset (module Datasets: parquet / JSON / MMIU layouts, local folders or the HF cache),
/// formatted into conversations, encoded and collated by the model folder's processor with the run's
/// label policy, as Gemma 3 micro-batches.
public final class DatasetsSource: BatchSource {
    public let dataset: Dataset
    public let pipeline: CollatorPipeline
    /// Rows the collator left out (max_length overflow through an image), for the run's notes.
    public private(set) var droppedRows: [Int] = []

    public init(config: SFTConfig, split: String, modelDir: URL) throws {
        guard let spec = config.datasetName else { throw TrainingError("dataset_name is not set") }
        dataset = try Dataset.open(spec, split: split)
        StartupProfile.mark("dataset rows opened")
        let masking = Datasets.LabelMasking(rawValue: config.labelMasking.rawValue) ?? .vision
        let policy = LabelPolicy(masking: masking, assistantOnlyLoss: config.assistantOnlyLoss,
                                 completionOnlyLoss: config.completionOnlyLoss ?? true, maxLength: config.maxLength)
        var template: String? = nil
        if let p = config.chatTemplatePath {
            guard let t = try? String(contentsOfFile: p, encoding: .utf8) else { throw TrainingError("chat_template_path \(p): cannot read") }
            template = t
        }
        pipeline = try CollatorPipeline(modelDirectory: modelDir, policy: policy, chatTemplate: template)
        StartupProfile.mark("processor loaded")
    }

    public var sampleCount: Int { dataset.count }

    public func batch(indices: [Int]) throws -> TrainingBatch {
        // One conversion for trainer, inspector and benchmark (prompt/completion rows keep their completion).
        let samples: [TrainingSample] = try indices.map { i in try TrainingSample.from(dataset.row(i)).0 }
        let cb = try pipeline.collate(samples)
        droppedRows += cb.droppedRows
        StartupProfile.mark("first batch collated")
        return Gemma3TrainingBatch(ModelBatch(batchSize: cb.batchSize, seqLen: cb.sequenceLength, inputIDs: cb.inputIDs,
                                              attentionMask: cb.attentionMask, tokenTypeIDs: cb.tokenTypeIDs, labels: cb.labels,
                                              pixelValues: cb.imageCount > 0 ? cb.pixelValues : nil, numImages: cb.imageCount))
    }
}
