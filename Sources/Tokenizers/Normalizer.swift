import Foundation

/// Text as Unicode scalars, each remembering the range of original scalars it came from (what tokenizers'
/// NormalizedString keeps), so token offsets can point back into the caller's string.
struct NormalizedText {
    var scalars: [UInt32]
    var starts: [Int32]
    var ends: [Int32]

    init(scalars: [UInt32], starts: [Int32], ends: [Int32]) { self.scalars = scalars; self.starts = starts; self.ends = ends }
    init(_ src: ArraySlice<UInt32>, offset: Int) {
        scalars = Array(src)
        starts = (0..<src.count).map { Int32(offset + $0) }
        ends = (0..<src.count).map { Int32(offset + $0 + 1) }
    }
    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }
    func slice(_ r: Range<Int>) -> NormalizedText {
        NormalizedText(scalars: Array(scalars[r]), starts: Array(starts[r]), ends: Array(ends[r]))
    }
    /// Original offset of the piece's first scalar (or the position where it would have been).
    var originalStart: Int { starts.first.map(Int.init) ?? 0 }
    mutating func prepend(_ s: [UInt32]) {
        guard !scalars.isEmpty else { return }
        let a = starts[0], b = ends[0]
        scalars.insert(contentsOf: s, at: 0)
        starts.insert(contentsOf: [Int32](repeating: a, count: s.count), at: 0)
        ends.insert(contentsOf: [Int32](repeating: b, count: s.count), at: 0)
    }
    /// Replaces each range in `matches` (sorted, disjoint) with `content`; inserted scalars keep the range of the
    /// match's last scalar (tokenizers' alignment rule for replacements).
    mutating func replace(_ matches: [Range<Int>], with content: [UInt32]) {
        guard !matches.isEmpty else { return }
        var s: [UInt32] = [], st: [Int32] = [], en: [Int32] = []
        s.reserveCapacity(scalars.count); st.reserveCapacity(scalars.count); en.reserveCapacity(scalars.count)
        var i = 0
        for m in matches {
            while i < m.lowerBound { s.append(scalars[i]); st.append(starts[i]); en.append(ends[i]); i += 1 }
            if m.isEmpty { continue }
            let a = starts[m.upperBound - 1], b = ends[m.upperBound - 1]
            for c in content { s.append(c); st.append(a); en.append(b) }
            i = m.upperBound
        }
        while i < scalars.count { s.append(scalars[i]); st.append(starts[i]); en.append(ends[i]); i += 1 }
        scalars = s; starts = st; ends = en
    }
    /// Maps every scalar through `f` (one scalar may become several, or none).
    mutating func transform(_ f: (UInt32) -> [UInt32]?) {
        var s: [UInt32] = [], st: [Int32] = [], en: [Int32] = []
        s.reserveCapacity(scalars.count)
        for i in 0..<scalars.count {
            if let out = f(scalars[i]) {
                for c in out { s.append(c); st.append(starts[i]); en.append(ends[i]) }
            } else { s.append(scalars[i]); st.append(starts[i]); en.append(ends[i]) }
        }
        scalars = s; starts = st; ends = en
    }
    var string: String {
        var out = String.UnicodeScalarView()
        for v in scalars { if let u = Unicode.Scalar(v) { out.append(u) } }
        return String(out)
    }
}

@inline(__always) func scalarsOf(_ s: String) -> [UInt32] { s.unicodeScalars.map { $0.value } }

/// A literal or regex pattern as tokenizer.json writes it: `{"String": "..."}` or `{"Regex": "..."}`.
enum TextPattern {
    case literal([UInt32])
    case regex(SplitRegex)

    init(json: Any?, what: String) throws {
        guard let o = json as? JSONObject else { throw TokenizerError("\(what): pattern must be {\"String\": ...} or {\"Regex\": ...}") }
        if let s = o.string("String") { self = .literal(scalarsOf(s)) }
        else if let r = o.string("Regex") { self = .regex(try SplitRegex(r)) }
        else { throw TokenizerError("\(what): pattern must be {\"String\": ...} or {\"Regex\": ...}") }
    }

    /// Non-overlapping matches, left to right, as scalar index ranges.
    func matches(_ s: [UInt32]) -> [Range<Int>] {
        switch self {
        case .regex(let r): return r.matches(s)
        case .literal(let p):
            guard !p.isEmpty, s.count >= p.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            let first = p[0], n = p.count
            while i + n <= s.count {
                if s[i] == first {
                    var k = 1
                    while k < n && s[i + k] == p[k] { k += 1 }
                    if k == n { out.append(i..<(i + n)); i += n; continue }
                }
                i += 1
            }
            return out
        }
    }
}

/// tokenizer.json `normalizer`.
indirect enum Normalizer {
    case sequence([Normalizer])
    case replace(TextPattern, [UInt32])
    case prepend([UInt32])
    case unicode(Form)
    case lowercase
    case strip(left: Bool, right: Bool)

    enum Form { case nfc, nfd, nfkc, nfkd }

    init(json: JSONObject) throws {
        let type = json.string("type") ?? ""
        switch type {
        case "Sequence":
            self = .sequence(try (json.array("normalizers") ?? []).map {
                guard let o = $0 as? JSONObject else { throw TokenizerError("normalizer Sequence: entries must be objects") }
                return try Normalizer(json: o)
            })
        case "Replace": self = .replace(try TextPattern(json: json["pattern"], what: "Replace normalizer"), scalarsOf(json.string("content") ?? ""))
        case "Prepend": self = .prepend(scalarsOf(json.string("prepend") ?? ""))
        case "NFC": self = .unicode(.nfc)
        case "NFD": self = .unicode(.nfd)
        case "NFKC": self = .unicode(.nfkc)
        case "NFKD": self = .unicode(.nfkd)
        case "Lowercase": self = .lowercase
        case "Strip": self = .strip(left: json.bool("strip_left", true), right: json.bool("strip_right", true))
        default: throw TokenizerError("normalizer type \"\(type)\" is not supported")
        }
    }

    func normalize(_ t: inout NormalizedText) {
        switch self {
        case .sequence(let list): for n in list { n.normalize(&t) }
        case .replace(let p, let c):
            // One scalar for one scalar (Gemma's " " → "▁"): in place, alignments unchanged.
            if case .literal(let lit) = p, lit.count == 1, c.count == 1 {
                let a = lit[0], b = c[0]
                for i in 0..<t.scalars.count where t.scalars[i] == a { t.scalars[i] = b }
                return
            }
            t.replace(p.matches(t.scalars), with: c)
        case .prepend(let p): t.prepend(p)
        case .lowercase:
            t.transform { v in
                if v < 0x80 { return (v >= 0x41 && v <= 0x5A) ? [v + 32] : nil }
                guard let u = Unicode.Scalar(v) else { return nil }
                return scalarsOf(u.properties.lowercaseMapping)
            }
        case .strip(let l, let r):
            var a = 0, b = t.count
            if l { while a < b && UClass.isSpace(t.scalars[a]) { a += 1 } }
            if r { while b > a && UClass.isSpace(t.scalars[b - 1]) { b -= 1 } }
            if a != 0 || b != t.count { t = t.slice(a..<b) }
        case .unicode(let form): Normalizer.unicodeNormalize(&t, form)
        }
    }

    /// Normalizes grapheme cluster by cluster (composition never crosses a cluster boundary), so each output
    /// scalar keeps the original range of its cluster. ASCII-only runs are stable under every form.
    static func unicodeNormalize(_ t: inout NormalizedText, _ form: Form) {
        let limit: UInt32 = (form == .nfc) ? 0x300 : 0xA0
        if !t.scalars.contains(where: { $0 >= limit }) { return }
        var s: [UInt32] = [], st: [Int32] = [], en: [Int32] = []
        var i = 0
        let str = t.string
        for ch in str {
            let n = ch.unicodeScalars.count
            let src = String(ch)
            let out: String
            switch form {
            case .nfc: out = src.precomposedStringWithCanonicalMapping
            case .nfd: out = src.decomposedStringWithCanonicalMapping
            case .nfkc: out = src.precomposedStringWithCompatibilityMapping
            case .nfkd: out = src.decomposedStringWithCompatibilityMapping
            }
            let o = scalarsOf(out)
            // As tokenizers' alignments: the k-th output scalar keeps the k-th input's range, extra outputs the last one's.
            for (k, c) in o.enumerated() {
                let src = i + min(k, n - 1)
                s.append(c); st.append(t.starts[src]); en.append(t.ends[src])
            }
            i += n
        }
        t = NormalizedText(scalars: s, starts: st, ends: en)
    }
}
