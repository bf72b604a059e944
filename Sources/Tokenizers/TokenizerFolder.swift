import Foundation

extension Tokenizer {
    /// The named special-token attributes transformers passes to chat templates (`special_tokens_map`).
    static let specialTokenAttributes = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    /// Loads a model folder as transformers 5 does: `tokenizer.json`, then `tokenizer_config.json` (named special
    /// tokens, `added_tokens_decoder` entries missing from tokenizer.json). The chat template is looked up, first
    /// found wins: `processor_config.json` key `chat_template`, `chat_template.json` (legacy processor file),
    /// `chat_template.jinja`, then `tokenizer_config.json` key `chat_template` (string or list of {name, template}).
    /// `add_bos_token`/`add_eos_token` are ignored when tokenizer.json exists (transformers pops them too): the
    /// post-processor decides.
    public static func load(folder: URL) throws -> Tokenizer {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue else {
            throw TokenizerError("\(folder.path): not a directory")
        }
        let tjURL = folder.appendingPathComponent("tokenizer.json")
        guard fm.fileExists(atPath: tjURL.path) else {
            throw TokenizerError("\(folder.path): no tokenizer.json (only tokenizer.json tokenizers are supported)")
        }
        let tok = try Tokenizer(tokenizerJSON: try Data(contentsOf: tjURL), source: tjURL.path)

        func readObject(_ name: String) throws -> JSONObject? {
            let u = folder.appendingPathComponent(name)
            guard fm.fileExists(atPath: u.path) else { return nil }
            let any: Any
            do { any = try parseJSON(try Data(contentsOf: u)) }
            catch { throw TokenizerError("\(u.path): not valid JSON (\(error.localizedDescription))") }
            guard let o = any as? JSONObject else { throw TokenizerError("\(u.path): top level must be an object") }
            return o
        }
        let config = try readObject("tokenizer_config.json") ?? [:]
        let cfgPath = folder.appendingPathComponent("tokenizer_config.json").path

        // added_tokens_decoder entries not already known
        var extra: [AddedToken] = []
        for (k, v) in config.object("added_tokens_decoder") ?? [:] {
            guard let id = Int(k), let o = v as? JSONObject, let c = o.string("content") else {
                throw TokenizerError("\(cfgPath): added_tokens_decoder entry \(k.debugDescription) needs an integer key and a content string")
            }
            if tok.tokenToId(c) == id, tok.addedTokens.contains(where: { $0.content == c }) { continue }
            let special = o.bool("special", false)
            extra.append(AddedToken(id: id, content: c, special: special, lstrip: o.bool("lstrip", false), rstrip: o.bool("rstrip", false),
                                    normalized: o.bool("normalized", !special), singleWord: o.bool("single_word", false)))
        }
        if !extra.isEmpty { tok.addTokens(extra.sorted { $0.id < $1.id }) }

        func tokenString(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            if let o = v as? JSONObject { return o.string("content") }
            return nil
        }
        var map: [String: String] = [:]
        for attr in specialTokenAttributes { if let s = tokenString(config[attr]) { map[attr] = s } }
        tok.specialTokensMap = map
        tok.bosToken = map["bos_token"]; tok.eosToken = map["eos_token"]; tok.padToken = map["pad_token"]; tok.unkToken = map["unk_token"]
        // Named special tokens that are not in the vocabulary at all are added as special tokens (as transformers does).
        var missing: [AddedToken] = []
        var next = tok.count
        for attr in specialTokenAttributes {
            guard let s = map[attr], tok.tokenToId(s) == nil, !missing.contains(where: { $0.content == s }) else { continue }
            missing.append(AddedToken(id: next, content: s, special: true, lstrip: false, rstrip: false, normalized: false, singleWord: false))
            next += 1
        }
        if !missing.isEmpty { tok.addTokens(missing) }

        // Chat template lookup.
        if let t = config["chat_template"] {
            if let s = t as? String { tok.chatTemplate = s }
            else if let list = t as? [Any] {
                for e in list {
                    if let o = e as? JSONObject, let n = o.string("name"), let s = o.string("template") {
                        tok.namedChatTemplates[n] = s
                    }
                }
                tok.chatTemplate = tok.namedChatTemplates["default"]
            }
        }
        let dir = folder.appendingPathComponent("chat_templates")
        if let files = try? fm.contentsOfDirectory(atPath: dir.path) {
            for f in files.sorted() where f.hasSuffix(".jinja") {
                tok.namedChatTemplates[String(f.dropLast(6))] = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            }
        }
        let jinja = folder.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: jinja.path) {
            do { tok.chatTemplate = try String(contentsOf: jinja, encoding: .utf8) }
            catch { throw TokenizerError("\(jinja.path): not UTF-8 text") }
        }
        if let legacy = try readObject("chat_template.json") {
            guard let s = legacy.string("chat_template") else {
                throw TokenizerError("\(folder.appendingPathComponent("chat_template.json").path): no \"chat_template\" string")
            }
            tok.chatTemplate = s
        }
        if let proc = try readObject("processor_config.json"), let s = proc.string("chat_template") { tok.chatTemplate = s }
        tok.sourceDescription = folder.path
        return tok
    }
}
