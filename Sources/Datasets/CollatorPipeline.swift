// A model folder's processor (tokenizer.json + tokenizer_config.json + preprocessor_config.json + chat
// template) and a label policy, wired into encoder + collator: what `sftdeck inspect`, the trainer and the
// benchmark call.
import Foundation
import Tokenizers

public final class CollatorPipeline {
    public let modelDirectory: URL
    public let tokenizer: Tokenizer
    public let imageConfig: Gemma3ImageProcessorConfig
    public let encoder: SampleEncoder
    public let collator: Collator
    public let policy: LabelPolicy
    /// Where the chat template came from and how it is rendered (for the inspector).
    public let templateNote: String

    /// - Parameter chatTemplate: a template text overriding the model's (config `chat_template_path`).
    public init(modelDirectory dir: URL, policy: LabelPolicy, chatTemplate: String? = nil, imageLimits: ImageLimits = .default) throws {
        modelDirectory = dir
        self.policy = policy
        // transformers' lookup: tokenizer.json + tokenizer_config.json (special tokens) and the chat
        // template from processor_config.json, chat_template.json, chat_template.jinja or tokenizer_config.json.
        do { tokenizer = try Tokenizer.load(folder: dir) } catch { throw ProcessorError("\(error)") }
        if tokenizer.bosToken == nil, tokenizer.tokenToId("<bos>") != nil { tokenizer.bosToken = "<bos>" }
        if tokenizer.padToken == nil, tokenizer.tokenToId("<pad>") != nil { tokenizer.padToken = "<pad>" }
        guard let padID = tokenizer.padTokenId else { throw ProcessorError("\(dir.path): the tokenizer has no pad token") }

        imageConfig = try Gemma3ImageProcessorConfig.load(modelDirectory: dir)
        guard let seq = imageConfig.imageSeqLength else {
            throw ProcessorError("\(dir.path): image_seq_length is in neither preprocessor_config.json nor processor_config.json")
        }
        let tokens = try Gemma3ImageTokens(tokenizer: tokenizer, imageSeqLength: seq)
        let template: String
        do { template = try tokenizer.resolveChatTemplate(chatTemplate) } catch { throw ProcessorError("\(error)") }
        let renderer: JinjaChatRenderer
        do { renderer = try JinjaChatRenderer(tokenizer: tokenizer, template: template) }
        catch { throw ProcessorError("\(chatTemplate == nil ? dir.path : "chat template"): \(error)") }
        if policy.assistantOnlyLoss && !renderer.marksGeneration {
            // TRL refuses this too: without {% generation %} blocks there is no assistant mask.
            throw ProcessorError("\(dir.path): assistant_only_loss needs a chat template with {% generation %} blocks; use TRL's training template (e.g. trl/chat_templates/gemma3_training.jinja) via chat_template_path")
        }
        templateNote = renderer.marksGeneration ? "chat template with generation blocks (assistant mask), rendered by the Jinja engine"
                                                : "chat template rendered by the Jinja engine (no generation blocks)"
        var enc = SampleEncoder(tokenizer: tokenizer, renderer: renderer,
                                imageProcessor: try Gemma3ImageProcessor(config: imageConfig), tokens: tokens,
                                policy: policy, bosID: tokenizer.bosTokenId)
        enc.imageLimits = imageLimits
        encoder = enc
        collator = Collator(padID: padID, imageHeight: imageConfig.size.height, imageWidth: imageConfig.size.width)
    }

    public func encode(_ sample: TrainingSample) throws -> EncodedSample { try encoder.encode(sample) }

    public func collate(_ samples: [TrainingSample]) throws -> CollatedBatch {
        collator.collate(try samples.map { try encoder.encode($0) })
    }
}
