import Foundation

/// What `apply_chat_template(..., tokenize=True, return_dict=True, return_assistant_tokens_mask=True)` returns.
public struct ChatTemplateOutput: Sendable {
    public var text: String
    public var ids: [Int]
    /// 1 for tokens overlapping a `{% generation %}` span; nil when the template has no generation blocks.
    public var assistantMask: [Int]?
}

private let templateCacheLock = NSLock()
nonisolated(unsafe) private var templateCache: [String: JinjaTemplate] = [:]

extension JinjaTemplate {
    /// Compiles once per distinct source (transformers caches `_compile_jinja_template` too).
    public static func cached(_ source: String) throws -> JinjaTemplate {
        templateCacheLock.lock()
        if let t = templateCache[source] { templateCacheLock.unlock(); return t }
        templateCacheLock.unlock()
        let t = try JinjaTemplate(source)
        templateCacheLock.lock(); templateCache[source] = t; templateCacheLock.unlock()
        return t
    }
}

extension Tokenizer {
    /// The template to use: the given one, a named one, or the folder's default.
    public func resolveChatTemplate(_ template: String? = nil) throws -> String {
        if let template {
            if let named = namedChatTemplates[template] { return named }
            return template
        }
        if let chatTemplate { return chatTemplate }
        if let d = namedChatTemplates["default"] { return d }
        throw TokenizerError("\(sourceDescription): no chat template (looked in processor_config.json, chat_template.json, chat_template.jinja, tokenizer_config.json); pass one with --chat-template")
    }

    /// Messages as transformers hands them to the template: keys whose value is None dropped, reasoning aliased.
    static func normalizeMessages(_ messages: [JinjaValue]) -> [JinjaValue] {
        messages.map { m in
            guard case .dict(let d) = m else { return m }
            var out = JinjaDict()
            for k in d.keys where !(d[k]!.isNone) { out[k] = d[k] }
            if let r = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ out[$0] }).first {
                var aliased = JinjaDict()
                aliased["thinking"] = r
                for k in out.keys where k != "thinking" { aliased[k] = out[k] }
                aliased["reasoning_content"] = r
                if out["thinking"] != nil { aliased["thinking"] = out["thinking"] }
                return .dict(aliased)
            }
            return .dict(out)
        }
    }

    /// Renders the chat template (no tokenization): `messages`, `add_generation_prompt`, `tools`/`documents` (None),
    /// the named special tokens, then `extra` (which overrides them), as transformers does.
    public func renderChatTemplate(messages: [JinjaValue], addGenerationPrompt: Bool = false, template: String? = nil,
                                   extra: [String: JinjaValue] = [:]) throws -> JinjaTemplate.Rendered {
        if messages.isEmpty { throw TokenizerError("cannot apply a chat template to an empty conversation") }
        let compiled = try JinjaTemplate.cached(try resolveChatTemplate(template))
        var ctx: [String: JinjaValue] = [:]
        for (k, v) in specialTokensMap { ctx[k] = .string(v) }
        for (k, v) in extra { ctx[k] = v }
        ctx["messages"] = .array(Tokenizer.normalizeMessages(messages))
        ctx["add_generation_prompt"] = .bool(addGenerationPrompt)
        if ctx["tools"] == nil { ctx["tools"] = JinjaValue.none }
        if ctx["documents"] == nil { ctx["documents"] = JinjaValue.none }
        return try compiled.render(ctx)
    }

    /// Renders and tokenizes (add_special_tokens=False, as apply_chat_template does), with the assistant mask
    /// when the template has `{% generation %}` blocks: a token is 1 when its offsets overlap a generation span.
    public func applyChatTemplate(messages: [JinjaValue], addGenerationPrompt: Bool = false, template: String? = nil,
                                  extra: [String: JinjaValue] = [:]) throws -> ChatTemplateOutput {
        let source = try resolveChatTemplate(template)
        let r = try renderChatTemplate(messages: messages, addGenerationPrompt: addGenerationPrompt, template: source, extra: extra)
        let enc = encode(r.text, addSpecialTokens: false)
        var mask: [Int]? = nil
        if try JinjaTemplate.cached(source).hasGenerationBlocks {
            mask = Tokenizer.assistantMask(offsets: enc.offsets, spans: r.generationSpans)
        }
        return ChatTemplateOutput(text: r.text, ids: enc.ids, assistantMask: mask)
    }

    public func applyChatTemplate(messages: [ChatMessage], addGenerationPrompt: Bool = false, template: String? = nil,
                                  extra: [String: JinjaValue] = [:]) throws -> ChatTemplateOutput {
        try applyChatTemplate(messages: messages.map { $0.jinjaValue }, addGenerationPrompt: addGenerationPrompt, template: template, extra: extra)
    }

    /// transformers' single pass over (ordered) spans and token offsets.
    public static func assistantMask(offsets: [(Int, Int)], spans: [Range<Int>]) -> [Int] {
        var mask = [Int](repeating: 0, count: offsets.count)
        var s = 0
        for (k, (a, b)) in offsets.enumerated() {
            while s < spans.count && a >= spans[s].upperBound { s += 1 }
            if s == spans.count { break }
            if b > spans[s].lowerBound { mask[k] = 1 }
        }
        return mask
    }
}
