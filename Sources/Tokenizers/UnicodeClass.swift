/// Character classes used by the pre-tokenizer regexes (`\p{L}`, `\p{N}`, `\s`, `\w`) and normalizers, looked up
/// through a table for the Basic Multilingual Plane so the hot split loops never touch Unicode property APIs.
enum UClass {
    static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4, mark: UInt8 = 8, punct: UInt8 = 16, connector: UInt8 = 32

    static let bmp: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 { if let s = Unicode.Scalar(UInt32(v)) { t[v] = compute(s) } }
        return t
    }()

    static func compute(_ s: Unicode.Scalar) -> UInt8 {
        var f: UInt8 = 0
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: f |= letter
        case .decimalNumber, .letterNumber, .otherNumber: f |= number
        case .nonspacingMark, .spacingMark, .enclosingMark: f |= mark
        case .connectorPunctuation: f |= punct | connector
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation, .otherPunctuation: f |= punct
        default: break
        }
        if p.isWhitespace { f |= space }
        return f
    }

    @inline(__always) static func of(_ v: UInt32) -> UInt8 {
        if v < 0x10000 { return bmp[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return 0 }
        return compute(s)
    }
    @inline(__always) static func isLetter(_ v: UInt32) -> Bool { of(v) & letter != 0 }
    @inline(__always) static func isNumber(_ v: UInt32) -> Bool { of(v) & number != 0 }
    @inline(__always) static func isSpace(_ v: UInt32) -> Bool { of(v) & space != 0 }
    /// Rust regex `\w`: letters, marks, numbers, connector punctuation (plus Join_Control).
    @inline(__always) static func isWord(_ v: UInt32) -> Bool {
        of(v) & (letter | number | mark | connector) != 0 || v == 0x200C || v == 0x200D
    }
    /// tokenizers' `is_punc`: ASCII punctuation or Unicode P*.
    @inline(__always) static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 { return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E) }
        return of(v) & punct != 0
    }
}
