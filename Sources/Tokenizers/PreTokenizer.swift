import Foundation

/// How a split keeps its delimiters (tokenizers' SplitDelimiterBehavior).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    init(json: Any?, default d: SplitBehavior) throws {
        guard let s = json as? String else { self = d; return }
        guard let b = SplitBehavior(rawValue: s) ?? SplitBehavior(rawValue: s.prefix(1).uppercased() + s.dropFirst()) else {
            throw TokenizerError("split behavior \"\(s)\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
        }
        self = b
    }

    /// Splits `t` given its delimiter ranges (sorted, disjoint), as NormalizedString::split does.
    func apply(_ t: NormalizedText, _ matches: [Range<Int>], invert: Bool) -> [NormalizedText] {
        // (range, isDelimiter) covering the whole text
        var parts: [(Range<Int>, Bool)] = []
        var pos = 0
        for m in matches where !m.isEmpty {
            if pos < m.lowerBound { parts.append((pos..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            pos = m.upperBound
        }
        if pos < t.count { parts.append((pos..<t.count, invert)) }
        var ranges: [Range<Int>] = []
        switch self {
        case .isolated: ranges = parts.map { $0.0 }
        case .removed: ranges = parts.filter { !$0.1 }.map { $0.0 }
        case .mergedWithPrevious:
            var prevWasMatch = false
            for (r, isMatch) in parts {
                if isMatch && !ranges.isEmpty && !prevWasMatch { ranges[ranges.count - 1] = ranges[ranges.count - 1].lowerBound..<r.upperBound }
                else { ranges.append(r) }
                prevWasMatch = isMatch
            }
        case .mergedWithNext:
            var prevWasMatch = false
            for (r, isMatch) in parts {
                if !isMatch && prevWasMatch && !ranges.isEmpty { ranges[ranges.count - 1] = ranges[ranges.count - 1].lowerBound..<r.upperBound }
                else { ranges.append(r) }
                prevWasMatch = isMatch
            }
        case .contiguous:
            var prevWasMatch = false
            for (r, isMatch) in parts {
                if isMatch && prevWasMatch && !ranges.isEmpty { ranges[ranges.count - 1] = ranges[ranges.count - 1].lowerBound..<r.upperBound }
                else { ranges.append(r) }
                prevWasMatch = isMatch
            }
        }
        if ranges.count == 1 && ranges[0] == 0..<t.count { return [t] }
        return ranges.filter { !$0.isEmpty }.map { t.slice($0) }
    }
}

/// tokenizer.json `pre_tokenizer`. ByteLevel pieces come out already mapped to the GPT-2 byte alphabet.
indirect enum PreTokenizer {
    case sequence([PreTokenizer])
    case split(TextPattern, SplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: UInt32, prependScheme: String, split: Bool)
    case whitespace
    case whitespaceSplit
    case digits(individual: Bool)
    case punctuation(SplitBehavior)

    init(json: JSONObject) throws {
        let type = json.string("type") ?? ""
        switch type {
        case "Sequence":
            self = .sequence(try (json.array("pretokenizers") ?? []).map {
                guard let o = $0 as? JSONObject else { throw TokenizerError("pre_tokenizer Sequence: entries must be objects") }
                return try PreTokenizer(json: o)
            })
        case "Split":
            self = .split(try TextPattern(json: json["pattern"], what: "Split pre-tokenizer"),
                          try SplitBehavior(json: json["behavior"], default: .isolated), invert: json.bool("invert", false))
        case "ByteLevel": self = .byteLevel(addPrefixSpace: json.bool("add_prefix_space", true), useRegex: json.bool("use_regex", true))
        case "Metaspace":
            let r = json.string("replacement") ?? "▁"
            var scheme = json.string("prepend_scheme") ?? "always"
            if json["prepend_scheme"] == nil, let add = json["add_prefix_space"] as? Bool { scheme = add ? "always" : "never" }
            self = .metaspace(replacement: r.unicodeScalars.first?.value ?? 0x2581, prependScheme: scheme.lowercased(), split: json.bool("split", true))
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Digits": self = .digits(individual: json.bool("individual_digits", false))
        case "Punctuation": self = .punctuation(try SplitBehavior(json: json["behavior"], default: .isolated))
        default: throw TokenizerError("pre_tokenizer type \"\(type)\" is not supported")
        }
    }

    /// True when the pieces are already in the byte alphabet (the model then looks up mapped scalars).
    var producesBytes: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let l): return l.contains { $0.producesBytes }
        default: return false
        }
    }

    func run(_ pieces: [NormalizedText]) -> [NormalizedText] {
        switch self {
        case .sequence(let list):
            var p = pieces
            for pt in list { p = pt.run(p) }
            return p
        default:
            var out: [NormalizedText] = []
            out.reserveCapacity(pieces.count * 2)
            for piece in pieces { out.append(contentsOf: splitOne(piece)) }
            return out
        }
    }

    private func splitOne(_ t: NormalizedText) -> [NormalizedText] {
        switch self {
        case .sequence: return run([t])
        case .split(let p, let b, let inv): return b.apply(t, p.matches(t.scalars), invert: inv)
        case .byteLevel(let addPrefix, let useRegex):
            var t = t
            if addPrefix && t.scalars.first != 0x20 { t.prepend([0x20]) }
            let pieces = useRegex ? SplitBehavior.isolated.apply(t, SplitRegex.allMatches(t.scalars) { SplitRegex.gpt2At($0, $1) }, invert: false) : [t]
            return pieces.map(ByteLevel.encode)
        case .metaspace(let rep, let scheme, let split):
            var t = t
            for i in 0..<t.count where t.scalars[i] == 0x20 { t.scalars[i] = rep }
            if t.scalars.first != rep {
                if scheme == "always" || (scheme == "first" && t.originalStart == 0) { t.prepend([rep]) }
            }
            if !split { return [t] }
            var m: [Range<Int>] = []
            for i in 0..<t.count where t.scalars[i] == rep { m.append(i..<(i + 1)) }
            return SplitBehavior.mergedWithNext.apply(t, m, invert: false)
        case .whitespace:
            // \w+|[^\w\s]+, keeping only the matches
            var m: [Range<Int>] = []
            var i = 0
            let s = t.scalars
            while i < s.count {
                if UClass.isWord(s[i]) {
                    var e = i + 1
                    while e < s.count && UClass.isWord(s[e]) { e += 1 }
                    m.append(i..<e); i = e
                } else if !UClass.isSpace(s[i]) {
                    var e = i + 1
                    while e < s.count && !UClass.isWord(s[e]) && !UClass.isSpace(s[e]) { e += 1 }
                    m.append(i..<e); i = e
                } else { i += 1 }
            }
            return SplitBehavior.removed.apply(t, m, invert: true)
        case .whitespaceSplit:
            return SplitBehavior.removed.apply(t, PreTokenizer.charMatches(t.scalars, UClass.isSpace), invert: false)
        case .digits(let individual):
            return (individual ? SplitBehavior.isolated : .contiguous).apply(t, PreTokenizer.charMatches(t.scalars, UClass.isNumber), invert: false)
        case .punctuation(let b):
            return b.apply(t, PreTokenizer.charMatches(t.scalars, UClass.isPunctuation), invert: false)
        }
    }

    static func charMatches(_ s: [UInt32], _ pred: (UInt32) -> Bool) -> [Range<Int>] {
        var m: [Range<Int>] = []
        for i in 0..<s.count where pred(s[i]) { m.append(i..<(i + 1)) }
        return m
    }
}

/// GPT-2's reversible byte ↔ printable-scalar map.
enum ByteLevel {
    static let byteToScalar: [UInt32] = {
        var bs: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + n); n += 1 }
        var table = [UInt32](repeating: 0, count: 256)
        for (b, c) in zip(bs, cs) { table[b] = UInt32(c) }
        return table
    }()
    static let scalarToByte: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, c) in byteToScalar.enumerated() { d[c] = UInt8(b) }
        return d
    }()

    /// UTF-8 bytes of each scalar, mapped; every byte keeps its scalar's original range.
    static func encode(_ t: NormalizedText) -> NormalizedText {
        var s: [UInt32] = [], st: [Int32] = [], en: [Int32] = []
        s.reserveCapacity(t.count + t.count / 2); st.reserveCapacity(t.count); en.reserveCapacity(t.count)
        for i in 0..<t.count {
            let v = t.scalars[i]
            let a = t.starts[i], b = t.ends[i]
            if v < 0x80 { s.append(byteToScalar[Int(v)]); st.append(a); en.append(b); continue }
            var bytes: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
            let n = utf8Encode(v, &bytes)
            withUnsafeBytes(of: &bytes) { p in
                for k in 0..<n { s.append(byteToScalar[Int(p[k])]); st.append(a); en.append(b) }
            }
        }
        return NormalizedText(scalars: s, starts: st, ends: en)
    }
}

/// UTF-8 bytes of a scalar into `out`; returns how many.
@inline(__always) func utf8Encode(_ v: UInt32, _ out: inout (UInt8, UInt8, UInt8, UInt8)) -> Int {
    if v < 0x80 { out.0 = UInt8(v); return 1 }
    if v < 0x800 { out.0 = UInt8(0xC0 | (v >> 6)); out.1 = UInt8(0x80 | (v & 0x3F)); return 2 }
    if v < 0x10000 {
        out.0 = UInt8(0xE0 | (v >> 12)); out.1 = UInt8(0x80 | ((v >> 6) & 0x3F)); out.2 = UInt8(0x80 | (v & 0x3F)); return 3
    }
    out.0 = UInt8(0xF0 | (v >> 18)); out.1 = UInt8(0x80 | ((v >> 12) & 0x3F)); out.2 = UInt8(0x80 | ((v >> 6) & 0x3F)); out.3 = UInt8(0x80 | (v & 0x3F))
    return 4
}
