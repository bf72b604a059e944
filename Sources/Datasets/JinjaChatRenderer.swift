// The model's own chat template, rendered by the Tokenizers module's Jinja engine exactly as
// transformers' `apply_chat_template` renders it. `{% generation %}` blocks give the assistant spans
// that `assistant_only_loss` trains on (TRL's rule: a template without them cannot mask assistants).
import Foundation
import Tokenizers

public struct JinjaChatRenderer: ChatRendering {
    public let tokenizer: Tokenizer
    public let template: String
    public let template_: JinjaTemplate
    /// Whether the template marks assistant turns with `{% generation %}`.
    public var marksGeneration: Bool { template_.hasGenerationBlocks }

    public init(tokenizer: Tokenizer, template: String) throws {
        self.tokenizer = tokenizer
        self.template = template
        self.template_ = try JinjaTemplate.cached(template)
    }

    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> RenderedChat {
        let r = try tokenizer.renderChatTemplate(messages: messages.map(\.jinjaValue),
                                                 addGenerationPrompt: addGenerationPrompt, template: template)
        // Jinja spans count Unicode scalars; the collator works in UTF-8 bytes.
        guard !r.generationSpans.isEmpty else { return RenderedChat(text: r.text) }
        var utf8At = [Int]()
        utf8At.reserveCapacity(r.text.unicodeScalars.count + 1)
        var pos = 0
        for s in r.text.unicodeScalars { utf8At.append(pos); pos += UTF8.width(s) }
        utf8At.append(pos)
        let spans = r.generationSpans.map { span -> Range<Int> in
            let lo = utf8At[min(span.lowerBound, utf8At.count - 1)], hi = utf8At[min(span.upperBound, utf8At.count - 1)]
            return lo..<max(lo, hi)
        }
        return RenderedChat(text: r.text, generationSpans: spans)
    }
}
