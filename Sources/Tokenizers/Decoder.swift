import Foundation

/// tokenizer.json `decoder`: turns token strings back into text, token list in, token list out (decode_chain).
indirect enum TokenDecoder {
    case sequence([TokenDecoder])
    case byteLevel
    case replace(TextPattern, String)
    case byteFallback
    case fuse
    case strip(content: UInt32, start: Int, stop: Int)
    case metaspace(replacement: UInt32, prependScheme: String)

    init(json: JSONObject) throws {
        let type = json.string("type") ?? ""
        switch type {
        case "Sequence":
            self = .sequence(try (json.array("decoders") ?? []).map {
                guard let o = $0 as? JSONObject else { throw TokenizerError("decoder Sequence: entries must be objects") }
                return try TokenDecoder(json: o)
            })
        case "ByteLevel": self = .byteLevel
        case "Replace": self = .replace(try TextPattern(json: json["pattern"], what: "Replace decoder"), json.string("content") ?? "")
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            self = .strip(content: (json.string("content") ?? " ").unicodeScalars.first?.value ?? 0x20,
                          start: json.int("start") ?? 0, stop: json.int("stop") ?? 0)
        case "Metaspace":
            var scheme = json.string("prepend_scheme") ?? "always"
            if json["prepend_scheme"] == nil, let add = json["add_prefix_space"] as? Bool { scheme = add ? "always" : "never" }
            self = .metaspace(replacement: (json.string("replacement") ?? "▁").unicodeScalars.first?.value ?? 0x2581, prependScheme: scheme.lowercased())
        default: throw TokenizerError("decoder type \"\(type)\" is not supported")
        }
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let list):
            var t = tokens
            for d in list { t = d.decodeChain(t) }
            return t
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                let start = bytes.count
                var ok = true
                for u in t.unicodeScalars {
                    if let b = ByteLevel.scalarToByte[u.value] { bytes.append(b) } else { ok = false; break }
                }
                if !ok { bytes.removeSubrange(start...); bytes.append(contentsOf: Array(t.utf8)) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let p, let c):
            return tokens.map { t in
                var n = NormalizedText(scalars: scalarsOf(t), starts: [], ends: [])
                let m = p.matches(n.scalars)
                if m.isEmpty { return t }
                n.starts = [Int32](repeating: 0, count: n.count); n.ends = n.starts
                n.replace(m, with: scalarsOf(c))
                return n.string
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) }
                else { out.append(contentsOf: [String](repeating: "\u{FFFD}", count: pending.count)) }
                pending.removeAll()
            }
            for t in tokens {
                let u = Array(t.utf8)
                if u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else { flush(); out.append(t) }
            }
            flush()
            return out
        case .fuse: return [tokens.joined()]
        case .strip(let c, let start, let stop):
            return tokens.map { t in
                var s = Array(t.unicodeScalars)
                var a = 0
                while a < start && a < s.count && s[a].value == c { a += 1 }
                var b = s.count
                var k = 0
                while k < stop && b > a && s[b - 1].value == c { b -= 1; k += 1 }
                s = Array(s[a..<b])
                var v = String.UnicodeScalarView(); v.append(contentsOf: s)
                return String(v)
            }
        case .metaspace(let rep, let scheme):
            return tokens.enumerated().map { i, t in
                var v = String.UnicodeScalarView()
                var first = true
                for u in t.unicodeScalars {
                    let c: Unicode.Scalar = u.value == rep ? " " : u
                    if first && i == 0 && scheme != "never" && c == " " { first = false; continue }
                    first = false
                    v.append(c)
                }
                return String(v)
            }
        }
    }
}

/// tokenizer.json `post_processor`: adds special tokens around a sequence, and/or adjusts offsets.
indirect enum PostProcessor {
    case sequence([PostProcessor])
    case template(single: [Piece], pair: [Piece], specials: [String: (ids: [Int32], tokens: [String])])
    case byteLevel(trimOffsets: Bool, addPrefixSpace: Bool)

    enum Piece { case special(String, typeId: Int), sequence(String, typeId: Int) }

    init(json: JSONObject, file: String) throws {
        let type = json.string("type") ?? ""
        switch type {
        case "Sequence":
            self = .sequence(try (json.array("processors") ?? []).map {
                guard let o = $0 as? JSONObject else { throw TokenizerError("\(file): post_processor Sequence entries must be objects") }
                return try PostProcessor(json: o, file: file)
            })
        case "ByteLevel": self = .byteLevel(trimOffsets: json.bool("trim_offsets", true), addPrefixSpace: json.bool("add_prefix_space", true))
        case "TemplateProcessing":
            func pieces(_ a: Any?) throws -> [Piece] {
                try ((a as? [Any]) ?? []).map { p in
                    guard let o = p as? JSONObject else { throw TokenizerError("\(file): TemplateProcessing piece must be an object") }
                    if let s = o.object("SpecialToken") { return .special(s.string("id") ?? "", typeId: s.int("type_id") ?? 0) }
                    if let s = o.object("Sequence") { return .sequence(s.string("id") ?? "A", typeId: s.int("type_id") ?? 0) }
                    throw TokenizerError("\(file): TemplateProcessing piece must be SpecialToken or Sequence")
                }
            }
            var specials: [String: (ids: [Int32], tokens: [String])] = [:]
            for (k, v) in json.object("special_tokens") ?? [:] {
                guard let o = v as? JSONObject else { continue }
                specials[k] = (((o.array("ids") as? [NSNumber]) ?? []).map { $0.int32Value }, (o.array("tokens") as? [String]) ?? [])
            }
            let single = try pieces(json["single"])
            for case .special(let name, _) in single where specials[name] == nil {
                throw TokenizerError("\(file): TemplateProcessing uses special token \(name.debugDescription) missing from special_tokens")
            }
            self = .template(single: single, pair: try pieces(json["pair"]), specials: specials)
        default: throw TokenizerError("\(file): post_processor type \"\(type)\" is not supported")
        }
    }

    /// The ids the single-sequence template puts before and after the text (for the ids-only path).
    var surroundingIds: (prefix: [Int32], suffix: [Int32]) {
        switch self {
        case .byteLevel: return ([], [])
        case .sequence(let list):
            var p: [Int32] = [], s: [Int32] = []
            for x in list { let (a, b) = x.surroundingIds; p = a + p; s += b }
            return (p, s)
        case .template(let single, _, let specials):
            var p: [Int32] = [], s: [Int32] = []
            var seen = false
            for piece in single {
                switch piece {
                case .sequence: seen = true
                case .special(let name, _): if seen { s += specials[name]?.ids ?? [] } else { p += specials[name]?.ids ?? [] }
                }
            }
            return (p, s)
        }
    }

    func process(_ e: inout Encoding, addSpecialTokens: Bool) {
        switch self {
        case .sequence(let list): for p in list { p.process(&e, addSpecialTokens: addSpecialTokens) }
        case .byteLevel(let trim, let addPrefix):
            guard trim else { return }
            let space = ByteLevel.byteToScalar[0x20]
            // tokenizers' process_offsets: leading and trailing spaces counted independently over the whole token.
            for i in 0..<e.ids.count {
                let s = Array(e.tokens[i].unicodeScalars)
                var lead = 0
                while lead < s.count && (s[lead].value == space || s[lead].properties.isWhitespace) { lead += 1 }
                var trail = 0
                while trail < s.count && (s[s.count - 1 - trail].value == space || s[s.count - 1 - trail].properties.isWhitespace) { trail += 1 }
                var (a, b) = e.offsets[i]
                if lead > 0 {
                    if (i == 0 || a == 0) && addPrefix && lead == 1 { lead = 0 }
                    a = min(a + lead, b)
                }
                if trail > 0 && b >= trail { b = max(b - trail, a) }
                e.offsets[i] = (a, b)
            }
        case .template(let single, _, let specials):
            guard addSpecialTokens else { return }
            var out = Encoding()
            for p in single {
                switch p {
                case .sequence:
                    out.ids += e.ids; out.tokens += e.tokens; out.offsets += e.offsets; out.specialTokensMask += e.specialTokensMask
                case .special(let name, _):
                    guard let sp = specials[name] else { continue }
                    for (k, id) in sp.ids.enumerated() {
                        out.ids.append(Int(id)); out.tokens.append(k < sp.tokens.count ? sp.tokens[k] : name)
                        out.offsets.append((0, 0)); out.specialTokensMask.append(true)
                    }
                }
            }
            e = out
        }
    }
}
