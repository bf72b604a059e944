// Gemma 3's chat template written out natively (the original template; TRL's gemma3.jinja is identical, and
// gemma3_training.jinja renders the same text while marking each assistant turn's content + "<end_of_turn>\n"
// as a generation span, reported here). Used where no Jinja engine renders the model's own template; when the
// Tokenizers module's engine is available, the model's chat_template should be preferred.
import Foundation
import Tokenizers

public struct Gemma3ChatFormat: ChatRendering, Sendable {
    public var bosToken: String
    public init(bosToken: String = "<bos>") { self.bosToken = bosToken }

    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> RenderedChat {
        func trim(_ s: String) -> String { SampleEncoder.pythonStrip(s).0 }
        func content(_ m: ChatMessage) -> String {
            switch m.content {
            case .text(let t): return trim(t)
            case .parts(let parts):
                return parts.map { p -> String in
                    switch p { case .image: return "<start_of_image>"; case .text(let t): return trim(t); case .other: return "" }
                }.joined()
            }
        }
        var out = bosToken
        var loop = messages[...]
        var prefix = ""
        if let first = messages.first, first.role == "system" {
            // Not trimmed, as in the template: content (or its first item's text) + "\n\n".
            switch first.content {
            case .text(let t): prefix = t + "\n\n"
            case .parts(let p):
                guard case .text(let t)? = p.first else { throw ProcessorError("chat template: the system turn's first item is not text") }
                prefix = t + "\n\n"
            }
            loop = loop.dropFirst()
        }
        var spans = [Range<Int>]()
        for (i, m) in loop.enumerated() {
            guard (m.role == "user") == (i % 2 == 0) else {
                throw ProcessorError("chat template: Conversation roles must alternate user/assistant/user/assistant/...")
            }
            let role = m.role == "assistant" ? "model" : m.role
            out += "<start_of_turn>" + role + "\n" + (i == 0 ? prefix : "")
            let start = out.utf8.count
            out += content(m) + "<end_of_turn>\n"
            if m.role == "assistant" { spans.append(start..<out.utf8.count) }
        }
        if addGenerationPrompt { out += "<start_of_turn>model\n" }
        return RenderedChat(text: out, generationSpans: spans)
    }
}
