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
        let tjURL = dir.appendingPathComponent("tokenizer.json")
        guard let tj = try? Data(contentsOf: tjURL) else { throw ProcessorError("\(tjURL.path): cannot read tokenizer.json") }
        tokenizer = try Tokenizer(tokenizerJSON: tj, source: tjURL.path)
        var template = chatTemplate
        let tcURL = dir.appendingPathComponent("tokenizer_config.json")
        if let d = try? Data(contentsOf: tcURL) {
            guard let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
                throw ProcessorError("\(tcURL.path): not a JSON object")
            }
            func token(_ k: String) -> String? {
                if let s = obj[k] as? String { return s }
                return (obj[k] as? [String: Any])?["content"] as? String
            }
            if let b = token("bos_token") { tokenizer.bosToken = b }
            if let p = token("pad_token") { tokenizer.padToken = p }
            if let e = token("eos_token") { tokenizer.eosToken = e }
            if template == nil { template = obj["chat_template"] as? String }
        }
        if template == nil {
            template = try? String(contentsOf: dir.appendingPathComponent("chat_template.jinja"), encoding: .utf8)
        }
        if tokenizer.bosToken == nil, tokenizer.tokenToId("<bos>") != nil { tokenizer.bosToken = "<bos>" }
        if tokenizer.padToken == nil, tokenizer.tokenToId("<pad>") != nil { tokenizer.padToken = "<pad>" }
        guard let padID = tokenizer.padTokenId else { throw ProcessorError("\(dir.path): the tokenizer has no pad token") }

        imageConfig = try Gemma3ImageProcessorConfig.load(modelDirectory: dir)
        guard let seq = imageConfig.imageSeqLength else {
            throw ProcessorError("\(dir.path): image_seq_length is in neither preprocessor_config.json nor processor_config.json")
        }
        let tokens = try Gemma3ImageTokens(tokenizer: tokenizer, imageSeqLength: seq)
        // The Gemma 3 template family (original and TRL's training copy) renders natively; anything else needs
        // a Jinja engine, which is not wired here yet.
        guard let t = template else { throw ProcessorError("\(dir.path): no chat template (tokenizer_config.json or chat_template.jinja)") }
        guard t.contains("<start_of_turn>"), t.contains("first_user_prefix"), t.contains("<start_of_image>") else {
            throw ProcessorError("\(dir.path): the chat template is not Gemma 3's; only Gemma 3's template is rendered natively so far")
        }
        let marksGeneration = t.contains("{% generation") || t.contains("{%- generation")
        templateNote = marksGeneration ? "Gemma 3 training template (generation spans), rendered natively"
                                                : "Gemma 3 template, rendered natively (generation spans as TRL's gemma3_training.jinja)"
        var enc = SampleEncoder(tokenizer: tokenizer, renderer: Gemma3ChatFormat(bosToken: tokenizer.bosToken ?? "<bos>"),
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
