import Foundation

/// The result of encoding one text. Offsets are (start, end) in Unicode scalars of the input (Python `str`
/// indices, which is what transformers' offset mappings and chat-template spans use).
public struct Encoding: Sendable, Equatable {
    public var ids: [Int] = []
    public var tokens: [String] = []
    public var offsets: [(Int, Int)] = []
    /// True for tokens added by the post-processor (BOS etc.) — not for special tokens found in the text.
    public var specialTokensMask: [Bool] = []
    public init() {}
    public static func == (a: Encoding, b: Encoding) -> Bool {
        a.ids == b.ids && a.tokens == b.tokens && a.offsets.map { [$0.0, $0.1] } == b.offsets.map { [$0.0, $0.1] }
    }
}

/// One entry of tokenizer.json `added_tokens`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var singleWord: Bool
}

/// A scalar trie matching added tokens leftmost-longest (as tokenizers' Aho-Corasick with MatchKind::LeftmostLongest).
struct TokenTrie {
    private var children: [[UInt32: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]  // index into tokens, or -1
    var isEmpty: Bool { children.count == 1 }

    mutating func insert(_ s: [UInt32], _ index: Int) {
        guard !s.isEmpty else { return }
        var node = 0
        for c in s {
            if let n = children[node][c] { node = Int(n) }
            else { children.append([:]); terminal.append(-1); children[node][c] = Int32(children.count - 1); node = children.count - 1 }
        }
        if terminal[node] < 0 { terminal[node] = Int32(index) }
    }

    /// Non-overlapping leftmost-longest matches: (range, token index).
    func matches(_ s: [UInt32]) -> [(Range<Int>, Int)] {
        var out: [(Range<Int>, Int)] = []
        var i = 0
        while i < s.count {
            var node = 0, k = i
            var best: (Int, Int)? = nil
            while k < s.count, let n = children[node][s[k]] {
                node = Int(n); k += 1
                if terminal[node] >= 0 { best = (k, Int(terminal[node])) }
            }
            if let (end, idx) = best { out.append((i..<end, idx)); i = end } else { i += 1 }
        }
        return out
    }
}

/// A Hugging Face `tokenizer.json` tokenizer (BPE family): added tokens, normalizer, pre-tokenizer, model,
/// post-processor and decoder, with the same ids, tokens and offsets as the `tokenizers` library.
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    public private(set) var addedTokens: [AddedToken] = []
    private var addedById: [Int: Int] = [:]
    private var addedByContent: [String: Int] = [:]
    private var rawTrie = TokenTrie()
    private var normalizedTrie = TokenTrie()
    private let byteLevelModelInput: Bool
    private var decodedContent: [Int: String] = [:]
    private var fastByteLevelSplit: SplitRegex? = nil

    /// What tokenizer_config.json (and the folder) says on top of tokenizer.json.
    public var bosToken: String?
    public var eosToken: String?
    public var padToken: String?
    public var unkToken: String?
    /// Named special tokens as transformers exposes them to chat templates (bos_token, eos_token, boi_token, ...).
    public var specialTokensMap: [String: String] = [:]
    /// The default chat template, found as transformers 5 finds it (see `Tokenizer.load(folder:)`).
    public var chatTemplate: String?
    /// Named extra templates (`chat_template` given as a list in tokenizer_config.json, or `chat_templates/*.jinja`).
    public var namedChatTemplates: [String: String] = [:]
    public var sourceDescription: String

    public init(tokenizerJSON data: Data, source: String = "tokenizer.json") throws {
        sourceDescription = source
        let doc = try FastJSON(data, source: source)
        guard case .object = doc.root else { throw TokenizerError("\(source): top level must be an object") }
        guard let modelNode = doc.member(doc.root, "model"), case .object = modelNode,
              let m = doc.foundation(modelNode, skipping: ["vocab", "merges"]) as? JSONObject else {
            throw TokenizerError("\(source): no \"model\" object")
        }
        let root = doc.foundation(doc.root, skipping: ["model"]) as! JSONObject
        let type = m.string("type") ?? (doc.member(modelNode, "merges") != nil ? "BPE" : "")
        guard type == "BPE" else { throw TokenizerError("\(source): model type \"\(type)\" is not supported (only BPE)") }
        func wrap<T>(_ what: String, _ f: () throws -> T) throws -> T {
            do { return try f() } catch let e as TokenizerError {
                throw e.description.hasPrefix(source) ? e : TokenizerError("\(source): \(what): \(e.description)")
            }
        }
        model = try BPEModel(json: m, doc: doc, vocabNode: doc.member(modelNode, "vocab"), mergesNode: doc.member(modelNode, "merges"), file: source)
        normalizer = try wrap("normalizer") { try root.object("normalizer").map { try Normalizer(json: $0) } }
        preTokenizer = try wrap("pre_tokenizer") { try root.object("pre_tokenizer").map { try PreTokenizer(json: $0) } }
        postProcessor = try wrap("post_processor") { try root.object("post_processor").map { try PostProcessor(json: $0, file: source) } }
        decoder = try wrap("decoder") { try root.object("decoder").map { try TokenDecoder(json: $0) } }
        byteLevelModelInput = preTokenizer?.producesBytes ?? false
        // The usual ByteLevel layouts get a fused split + byte-map loop with reused buffers.
        switch preTokenizer {
        case .byteLevel(addPrefixSpace: false, useRegex: true)?: fastByteLevelSplit = try SplitRegex(SplitRegex.gpt2Pattern)
        case .sequence(let l)? where l.count == 2:
            if case .split(.regex(let r), .isolated, invert: false) = l[0], case .byteLevel(addPrefixSpace: false, useRegex: false) = l[1] {
                if case .icu = r.kind {} else { fastByteLevelSplit = r }
            }
        default: break
        }
        var list: [AddedToken] = []
        for (i, t) in (root.array("added_tokens") ?? []).enumerated() {
            guard let o = t as? JSONObject, let id = o.int("id"), let c = o.string("content") else {
                throw TokenizerError("\(source): added_tokens[\(i)] needs an integer id and a content string")
            }
            let special = o.bool("special", false)
            list.append(AddedToken(id: id, content: c, special: special, lstrip: o.bool("lstrip", false), rstrip: o.bool("rstrip", false),
                                   normalized: o.bool("normalized", !special), singleWord: o.bool("single_word", false)))
        }
        addTokens(list)
    }

    /// Adds tokens (as tokenizers' `add_tokens`): an existing content keeps its entry, flags updated.
    public func addTokens(_ list: [AddedToken]) {
        for t in list where !t.content.isEmpty {
            if let k = addedByContent[t.content] { addedTokens[k] = t; addedById[t.id] = k; continue }
            addedByContent[t.content] = addedTokens.count
            addedById[t.id] = addedTokens.count
            addedTokens.append(t)
        }
        rebuildTries()
    }

    private func rebuildTries() {
        rawTrie = TokenTrie(); normalizedTrie = TokenTrie()
        decodedContent = [:]
        // Special tokens first, then the others (tokenizers' order); the trie keeps the first index per content.
        let order = addedTokens.indices.filter { addedTokens[$0].special } + addedTokens.indices.filter { !addedTokens[$0].special }
        for k in order {
            let t = addedTokens[k]
            if t.normalized {
                var n = NormalizedText(scalarsOf(t.content)[...], offset: 0)
                normalizer?.normalize(&n)
                normalizedTrie.insert(n.scalars, k)
                decodedContent[k] = n.string  // tokenizers' id_to_token gives a normalized token's normalized form
            } else { rawTrie.insert(scalarsOf(t.content), k) }
        }
    }

    /// `len(tokenizer)`: model vocab plus added tokens beyond it.
    public var count: Int {
        var n = model.vocabSize
        for t in addedTokens where model.idToToken.count <= t.id || model.idToToken[t.id] == nil { n += 1 }
        return n
    }

    public func tokenToId(_ token: String) -> Int? {
        if let k = addedByContent[token] { return addedTokens[k].id }
        return model.id(of: token).map(Int.init)
    }
    public func idToToken(_ id: Int) -> String? {
        if let k = addedById[id] { return decodedContent[k] ?? addedTokens[k].content }
        return id >= 0 && id < model.idToToken.count ? model.idToToken[id] : nil
    }
    public func isSpecial(_ id: Int) -> Bool { addedById[id].map { addedTokens[$0].special } ?? false }
    public var bosTokenId: Int? { bosToken.flatMap(tokenToId) }
    public var eosTokenId: Int? { eosToken.flatMap(tokenToId) }
    public var padTokenId: Int? { padToken.flatMap(tokenToId) }

    // MARK: encode

    public func encode(_ text: String, addSpecialTokens: Bool = true) -> Encoding {
        var e = Encoding()
        let input = scalarsOf(text)
        var idsBuf: [Int32] = []
        // 1. added tokens matched on the raw text; 2. the rest normalized, then normalized added tokens matched.
        for seg in splitAdded(NormalizedText(input[...], offset: 0), trie: rawTrie) {
            switch seg {
            case .token(let k, let s, let a, let b): appendAdded(k, s, a, b, &e)
            case .text(var t):
                normalizer?.normalize(&t)
                for seg2 in splitAdded(t, trie: normalizedTrie) {
                    switch seg2 {
                    case .token(let k, let s, let a, let b): appendAdded(k, s, a, b, &e)
                    case .text(let t2): encodePlain(t2, &e, &idsBuf)
                    }
                }
            }
        }
        postProcessor?.process(&e, addSpecialTokens: addSpecialTokens)
        return e
    }

    /// Ids only.
    public func encodeIds(_ text: String, addSpecialTokens: Bool = true) -> [Int] { encode(text, addSpecialTokens: addSpecialTokens).ids }

    private func appendAdded(_ k: Int, _ text: String, _ a: Int, _ b: Int, _ e: inout Encoding) {
        e.ids.append(addedTokens[k].id); e.tokens.append(text); e.offsets.append((a, b)); e.specialTokensMask.append(false)
    }

    /// An added token carries the text it matched (after normalization, with stripped spaces), as tokenizers does.
    private enum Segment { case text(NormalizedText), token(Int, String, Int, Int) }

    private func splitAdded(_ t: NormalizedText, trie: TokenTrie) -> [Segment] {
        if trie.isEmpty || t.isEmpty { return t.isEmpty ? [] : [.text(t)] }
        let s = t.scalars
        var out: [Segment] = []
        var startOffset = 0
        for (r, k) in trie.matches(s) {
            let tok = addedTokens[k]
            var a = r.lowerBound, b = r.upperBound
            if tok.singleWord {
                let startOK = a == 0 || !UClass.isWord(s[a - 1])
                let stopOK = b == s.count || !UClass.isWord(s[b])
                if !startOK || !stopOK { continue }
            }
            if tok.lstrip {
                var n = a
                while n > 0 && UClass.isSpace(s[n - 1]) { n -= 1 }
                a = max(n, startOffset)
            }
            if tok.rstrip { while b < s.count && UClass.isSpace(s[b]) { b += 1 } }
            if startOffset < a { out.append(.text(t.slice(startOffset..<a))) }
            out.append(.token(k, t.slice(a..<b).string, Int(t.starts[a]), Int(t.ends[b - 1])))
            startOffset = b
        }
        if startOffset < s.count { out.append(.text(startOffset == 0 ? t : t.slice(startOffset..<s.count))) }
        return out
    }

    /// Split by the regex, map each piece to the byte alphabet in a reused buffer, tokenize: no per-piece arrays.
    private func byteLevelPieces(_ t: NormalizedText, _ r: SplitRegex, _ body: (_ units: [UInt32], _ unitSource: [Int32]) -> Void) {
        var units: [UInt32] = [], src: [Int32] = []
        units.reserveCapacity(64); src.reserveCapacity(64)
        let table = ByteLevel.byteToScalar
        for m in r.matches(t.scalars) {
            units.removeAll(keepingCapacity: true); src.removeAll(keepingCapacity: true)
            for k in m {
                let v = t.scalars[k]
                if v < 0x80 { units.append(table[Int(v)]); src.append(Int32(k)); continue }
                var bytes: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
                let n = utf8Encode(v, &bytes)
                withUnsafeBytes(of: &bytes) { p in for q in 0..<n { units.append(table[Int(p[q])]); src.append(Int32(k)) } }
            }
            body(units, src)
        }
    }

    private func encodePlain(_ t: NormalizedText, _ e: inout Encoding, _ buf: inout [Int32]) {
        if let r = fastByteLevelSplit {
            byteLevelPieces(t, r) { units, src in
                buf.removeAll(keepingCapacity: true)
                model.tokenize(units, into: &buf)
                var i = 0
                while i < buf.count {
                    let id = Int(buf[i]), a = Int(buf[i + 1]), b = Int(buf[i + 2])
                    e.ids.append(id)
                    e.tokens.append(model.idToToken[id] ?? "")
                    e.offsets.append(a < b ? (Int(t.starts[Int(src[a])]), Int(t.ends[Int(src[b - 1])])) : (0, 0))
                    e.specialTokensMask.append(false)
                    i += 3
                }
            }
            return
        }
        let pieces = preTokenizer.map { $0.run([t]) } ?? [t]
        for p in pieces where !p.isEmpty {
            buf.removeAll(keepingCapacity: true)
            model.tokenize(p.scalars, into: &buf)
            var i = 0
            while i < buf.count {
                let id = Int(buf[i]), a = Int(buf[i + 1]), b = Int(buf[i + 2])
                e.ids.append(id)
                e.tokens.append(model.idToToken[id] ?? "")
                e.offsets.append(a < b ? (Int(p.starts[a]), Int(p.ends[b - 1])) : (0, 0))
                e.specialTokensMask.append(false)
                i += 3
            }
        }
    }

    /// Fast path for bulk work: the same ids as `encode(text, addSpecialTokens:)`, without token strings or offsets.
    public func encodeIdsFast(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        let around = addSpecialTokens ? (postProcessor?.surroundingIds ?? ([], [])) : ([], [])
        var out: [Int32] = around.0
        var buf: [Int32] = []
        let input = scalarsOf(text)
        for seg in splitAdded(NormalizedText(input[...], offset: 0), trie: rawTrie) {
            switch seg {
            case .token(let k, _, _, _): out.append(Int32(addedTokens[k].id))
            case .text(var t):
                normalizer?.normalize(&t)
                for seg2 in splitAdded(t, trie: normalizedTrie) {
                    switch seg2 {
                    case .token(let k, _, _, _): out.append(Int32(addedTokens[k].id))
                    case .text(let t2):
                        if let r = fastByteLevelSplit {
                            byteLevelPieces(t2, r) { units, _ in
                                buf.removeAll(keepingCapacity: true)
                                model.tokenize(units, into: &buf)
                                var i = 0
                                while i < buf.count { out.append(buf[i]); i += 3 }
                            }
                            continue
                        }
                        for p in preTokenizer.map({ $0.run([t2]) }) ?? [t2] where !p.isEmpty {
                            buf.removeAll(keepingCapacity: true)
                            model.tokenize(p.scalars, into: &buf)
                            var i = 0
                            while i < buf.count { out.append(buf[i]); i += 3 }
                        }
                    }
                }
            }
        }
        out += around.1
        return out
    }

    // MARK: decode

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let k = addedById[id] {
                if skipSpecialTokens && addedTokens[k].special { continue }
                tokens.append(decodedContent[k] ?? addedTokens[k].content)
            } else if id >= 0 && id < model.idToToken.count, let t = model.idToToken[id] {
                tokens.append(t)
            }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}
