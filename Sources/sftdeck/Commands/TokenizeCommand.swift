import ArgumentParser
import Foundation
import Tokenizers

/// `sftdeck tokenize`: what the model folder's tokenizer and chat template make of a text or a conversation,
/// identical to transformers' AutoTokenizer / apply_chat_template for the same folder.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize text, or render and tokenize a conversation with the model's chat template.",
        discussion: """
        --text encodes like `tokenizer(text)` (special tokens added unless --no-special-tokens).
        --messages renders TRL's conversational format (a JSON list of {"role", "content"} messages, or an object
        with a "messages" list; images as {"type": "image"} items) like `apply_chat_template(..., tokenize=True)`, \
        adding "assistant_mask" when the template has {% generation %} blocks.
        """
    )

    @Option(name: .long, help: "Model folder with tokenizer.json (and tokenizer_config.json, chat_template.jinja ...).")
    var model: String

    @Option(name: .long, help: "Text to encode.")
    var text: String?

    @Option(name: .long, help: "JSON file with the conversation to render.")
    var messages: String?

    @Flag(name: .long, help: "Append the assistant prompt (add_generation_prompt=True).")
    var addGenerationPrompt = false

    @Option(name: .long, help: "Use this .jinja file (or a named template of the folder) instead of the folder's template.")
    var chatTemplate: String?

    @Flag(name: .long, help: "With --text: do not add special tokens (add_special_tokens=False).")
    var noSpecialTokens = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        if (text == nil) == (messages == nil) { throw ValidationError("give exactly one of --text or --messages") }
        if text != nil && (addGenerationPrompt || chatTemplate != nil) { throw ValidationError("--add-generation-prompt and --chat-template go with --messages") }
    }

    func run() throws {
        let tok: Tokenizer
        do { tok = try Tokenizer.load(folder: URL(fileURLWithPath: model)) } catch { throw CLIError("\(error)") }
        if let text {
            let e: Encoding = tok.encode(text, addSpecialTokens: !noSpecialTokens)
            if json {
                let v = JinjaValue.dict(JinjaDict([("ids", .array(e.ids.map { .int($0) })), ("tokens", .array(e.tokens.map { .string($0) }))]))
                print(try v.jsonString())
            } else {
                print("\(e.ids.count) tokens")
                for (i, (id, t)) in zip(e.ids, e.tokens).enumerated() {
                    print(String(format: "%5d  %8d  ", i, id) + JinjaValue.string(t).repr)
                }
            }
            return
        }
        let path = messages!
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw CLIError("\(path): cannot read (\(error.localizedDescription))") }
        let parsed: JinjaValue
        do { parsed = try JinjaValue.parseJSON(data, source: path) } catch { throw CLIError("\(error)") }
        var list: [JinjaValue]
        switch parsed {
        case .array(let a): list = a
        case .dict(let d):
            guard case .array(let a)? = d["messages"] else { throw CLIError("\(path): expected a list of messages or an object with a \"messages\" list") }
            list = a
        default: throw CLIError("\(path): expected a list of messages or an object with a \"messages\" list")
        }
        for (i, m) in list.enumerated() {
            guard case .dict(let d) = m, d["role"] != nil else { throw CLIError("\(path): message \(i) must be an object with a \"role\"") }
        }
        var template: String? = nil
        if let chatTemplate {
            if tok.namedChatTemplates[chatTemplate] != nil { template = chatTemplate }
            else {
                do { template = try String(contentsOf: URL(fileURLWithPath: chatTemplate), encoding: .utf8) }
                catch { throw CLIError("\(chatTemplate): cannot read chat template (\(error.localizedDescription))") }
            }
        }
        let out: ChatTemplateOutput
        do { out = try tok.applyChatTemplate(messages: list, addGenerationPrompt: addGenerationPrompt, template: template) }
        catch let e as JinjaError { throw CLIError("\(chatTemplate ?? model + " chat template"): \(e.description)") }
        catch { throw CLIError("\(error)") }
        if json {
            var d = JinjaDict([("text", .string(out.text)), ("ids", .array(out.ids.map { .int($0) }))])
            if let m = out.assistantMask { d["assistant_mask"] = .array(m.map { .int($0) }) }
            print(try JinjaValue.dict(d).jsonString())
        } else {
            print(out.text)
            print("--- \(out.ids.count) tokens")
            print(out.ids.map(String.init).joined(separator: " "))
            if let m = out.assistantMask {
                print("--- assistant tokens: \(m.reduce(0, +)) of \(m.count)")
                print(m.map(String.init).joined())
            }
        }
    }
}
