import Foundation

/// The regexes tokenizer.json files use to split text. The GPT-2, Llama 3 and Qwen 2 patterns (nearly every
/// ByteLevel BPE in use) run through hand-written matchers over scalars that follow Oniguruma's leftmost-first
/// semantics exactly; any other pattern runs on ICU (NSRegularExpression), which supports the same syntax.
struct SplitRegex {
    enum Kind {
        case gpt2
        /// Llama 3 (`maxDigits` 3) and Qwen 2 (`maxDigits` 1).
        case llama3(maxDigits: Int)
        case icu(NSRegularExpression)
    }
    let pattern: String
    let kind: Kind

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init(_ pattern: String, forceICU: Bool = false) throws {
        self.pattern = pattern
        if !forceICU && pattern == SplitRegex.gpt2Pattern { kind = .gpt2; return }
        if !forceICU && pattern == SplitRegex.llama3Pattern { kind = .llama3(maxDigits: 3); return }
        if !forceICU && pattern == SplitRegex.qwen2Pattern { kind = .llama3(maxDigits: 1); return }
        do { kind = .icu(try NSRegularExpression(pattern: pattern, options: [])) }
        catch { throw TokenizerError("regex \(pattern.debugDescription) does not compile: \(error.localizedDescription)") }
    }

    func matches(_ s: [UInt32]) -> [Range<Int>] {
        switch kind {
        case .gpt2: return SplitRegex.allMatches(s) { SplitRegex.gpt2At($0, $1) }
        case .llama3(let d): return SplitRegex.allMatches(s) { SplitRegex.llama3At($0, $1, maxDigits: d) }
        case .icu(let re): return SplitRegex.icuMatches(re, s)
        }
    }

    /// The built-in patterns match at every position, so matches tile the input.
    @inline(__always) static func allMatches(_ s: [UInt32], _ at: ([UInt32], Int) -> Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(s.count / 3 + 1)
        var i = 0
        while i < s.count {
            let e = at(s, i)
            out.append(i..<e)
            i = e
        }
        return out
    }

    @inline(__always) static func isCRLF(_ c: UInt32) -> Bool { c == 0x0A || c == 0x0D }
    @inline(__always) static func isOther(_ c: UInt32) -> Bool { UClass.of(c) & (UClass.letter | UClass.number | UClass.space) == 0 }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (Oniguruma folds U+017F to s and U+212A to k).
    @inline(__always) static func contraction(_ s: [UInt32], _ i: Int, caseless: Bool) -> Int {
        guard s[i] == 0x27, i + 1 < s.count else { return 0 }
        var a = s[i + 1]
        if caseless { if a >= 0x41 && a <= 0x5A { a += 32 } else if a == 0x17F { a = 0x73 } }
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76, 0x6C:  // r(e) v(e) l(l)
            guard i + 2 < s.count else { return 0 }
            var b = s[i + 2]
            if caseless && b >= 0x41 && b <= 0x5A { b += 32 }
            if a == 0x6C { return b == 0x6C ? 3 : 0 }
            return b == 0x65 ? 3 : 0
        default: return 0
        }
    }

    /// Whitespace alternatives shared by all three patterns: `\s+(?!\S)|\s+` (Llama 3 tries `\s*[\r\n]+` first).
    @inline(__always) static func whitespace(_ s: [UInt32], _ i: Int, newlineRule: Bool) -> Int {
        var e = i
        while e < s.count && UClass.isSpace(s[e]) { e += 1 }
        if newlineRule {
            var k = e - 1
            while k >= i && !isCRLF(s[k]) { k -= 1 }
            if k >= i { return k + 1 }
        }
        if e == s.count { return e }
        if e - i >= 2 { return e - 1 }
        return e
    }

    static func gpt2At(_ s: [UInt32], _ i: Int) -> Int {
        let n = s.count
        let c = s[i]
        let m = contraction(s, i, caseless: false)
        if m > 0 { return i + m }
        var j = i
        if c == 0x20 && i + 1 < n { j = i + 1 }
        let cj = s[j]
        let cls = UClass.of(cj)
        if j < n && (c == 0x20 || j == i) {
            if cls & UClass.letter != 0 {
                var e = j + 1
                while e < n && UClass.isLetter(s[e]) { e += 1 }
                return e
            }
            if cls & UClass.number != 0 {
                var e = j + 1
                while e < n && UClass.isNumber(s[e]) { e += 1 }
                return e
            }
            if cls & (UClass.letter | UClass.number | UClass.space) == 0 {
                var e = j + 1
                while e < n && isOther(s[e]) { e += 1 }
                return e
            }
        }
        // `c` is whitespace here (a lone space before whitespace, or other whitespace).
        return whitespace(s, i, newlineRule: false)
    }

    static func llama3At(_ s: [UInt32], _ i: Int, maxDigits: Int) -> Int {
        let n = s.count
        let c = s[i]
        let m = contraction(s, i, caseless: true)
        if m > 0 { return i + m }
        let cls = UClass.of(c)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if cls & UClass.letter != 0 {
            var e = i + 1
            while e < n && UClass.isLetter(s[e]) { e += 1 }
            return e
        }
        if cls & UClass.number == 0 && !isCRLF(c) && i + 1 < n && UClass.isLetter(s[i + 1]) {
            var e = i + 2
            while e < n && UClass.isLetter(s[e]) { e += 1 }
            return e
        }
        // \p{N}{1,maxDigits}
        if cls & UClass.number != 0 {
            var e = i + 1
            while e < n && e - i < maxDigits && UClass.isNumber(s[e]) { e += 1 }
            return e
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var j = i
        if c == 0x20 && i + 1 < n && isOther(s[i + 1]) { j = i + 1 }
        if isOther(s[j]) {
            var e = j + 1
            while e < n && isOther(s[e]) { e += 1 }
            while e < n && isCRLF(s[e]) { e += 1 }
            return e
        }
        return whitespace(s, i, newlineRule: true)
    }

    static func icuMatches(_ re: NSRegularExpression, _ s: [UInt32]) -> [Range<Int>] {
        var view = String.UnicodeScalarView()
        for v in s { view.append(Unicode.Scalar(v) ?? "\u{FFFD}") }
        let str = String(view)
        // UTF-16 offset → scalar index.
        var u16ToScalar = [Int](repeating: 0, count: str.utf16.count + 1)
        var u = 0
        for (k, v) in s.enumerated() {
            u16ToScalar[u] = k
            u += v > 0xFFFF ? 2 : 1
            if v > 0xFFFF { u16ToScalar[u - 1] = k }
        }
        u16ToScalar[u] = s.count
        let ns = str as NSString
        return re.matches(in: str, options: [], range: NSRange(location: 0, length: ns.length)).compactMap { m in
            let a = u16ToScalar[m.range.location], b = u16ToScalar[m.range.location + m.range.length]
            return a < b ? a..<b : nil
        }
    }
}
