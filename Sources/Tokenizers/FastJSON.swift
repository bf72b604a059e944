import Foundation

/// A JSON reader for tokenizer.json: JSONSerialization takes seconds on a 30 MB Gemma file (an object per vocab
/// entry), so the document is parsed into byte ranges; `vocab` and `merges` are read straight from those, the
/// rest is turned into Foundation values for the component parsers.
struct FastJSON {
    indirect enum Node {
        case object([(key: Str, value: Node)])
        case array([Node])
        case string(Str)
        case number(Int, Int)  // byte range
        case bool(Bool)
        case null
    }
    /// A string's bytes between the quotes; `escaped` when it holds backslash escapes.
    struct Str { var start: Int; var end: Int; var escaped: Bool }

    let bytes: [UInt8]
    let source: String
    private(set) var root: Node = .null

    init(_ data: Data, source: String) throws {
        bytes = [UInt8](data)
        self.source = source
        var i = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        root = try bytes.withUnsafeBufferPointer { p in
            var parser = Parser(p: p, i: i, source: source)
            let v = try parser.value()
            parser.skipWS()
            guard parser.i == p.count else { throw parser.error("unexpected trailing characters") }
            return v
        }
    }

    struct Parser {
        let p: UnsafeBufferPointer<UInt8>
        var i: Int
        let source: String

        func error(_ m: String) -> TokenizerError {
            var line = 1
            for k in 0..<min(i, p.count) where p[k] == 0x0A { line += 1 }
            return TokenizerError("\(source): not valid JSON (line \(line): \(m))")
        }
        @inline(__always) mutating func skipWS() {
            while i < p.count { let c = p[i]; if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break } }
        }
        mutating func value() throws -> Node {
            skipWS()
            guard i < p.count else { throw error("unexpected end of input") }
            switch p[i] {
            case 0x7B:  // {
                i += 1
                var items: [(key: Str, value: Node)] = []
                skipWS()
                if i < p.count && p[i] == 0x7D { i += 1; return .object(items) }
                while true {
                    skipWS()
                    guard i < p.count, p[i] == 0x22 else { throw error("expected a string key") }
                    let k = try string()
                    skipWS()
                    guard i < p.count, p[i] == 0x3A else { throw error("expected ':'") }
                    i += 1
                    items.append((k, try value()))
                    skipWS()
                    guard i < p.count else { throw error("unterminated object") }
                    if p[i] == 0x2C { i += 1; continue }
                    if p[i] == 0x7D { i += 1; return .object(items) }
                    throw error("expected ',' or '}'")
                }
            case 0x5B:  // [
                i += 1
                var items: [Node] = []
                skipWS()
                if i < p.count && p[i] == 0x5D { i += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipWS()
                    guard i < p.count else { throw error("unterminated array") }
                    if p[i] == 0x2C { i += 1; continue }
                    if p[i] == 0x5D { i += 1; return .array(items) }
                    throw error("expected ',' or ']'")
                }
            case 0x22: return .string(try string())
            case 0x74: try word([0x74, 0x72, 0x75, 0x65]); return .bool(true)
            case 0x66: try word([0x66, 0x61, 0x6C, 0x73, 0x65]); return .bool(false)
            case 0x6E: try word([0x6E, 0x75, 0x6C, 0x6C]); return .null
            default:
                let s = i
                while i < p.count, let c = Optional(p[i]), (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2B || c == 0x2E || c == 0x65 || c == 0x45 { i += 1 }
                guard i > s else { throw error("unexpected character") }
                return .number(s, i)
            }
        }
        mutating func word(_ w: [UInt8]) throws {
            guard i + w.count <= p.count else { throw error("unexpected end of input") }
            for k in 0..<w.count where p[i + k] != w[k] { throw error("unexpected character") }
            i += w.count
        }
        @inline(__always) mutating func string() throws -> Str {
            i += 1
            let s = i
            var esc = false
            while i < p.count {
                let c = p[i]
                if c == 0x22 { let r = Str(start: s, end: i, escaped: esc); i += 1; return r }
                if c == 0x5C { esc = true; i += 2; continue }
                i += 1
            }
            throw error("unterminated string")
        }
    }

    // MARK: conversions

    func stringBytes(_ s: Str) -> [UInt8] {
        if !s.escaped { return Array(bytes[s.start..<s.end]) }
        var out: [UInt8] = []
        out.reserveCapacity(s.end - s.start)
        var i = s.start
        func hex4(_ k: Int) -> UInt32 {
            guard k + 4 <= s.end else { return 0xFFFD }
            return UInt32(String(decoding: bytes[k..<(k + 4)], as: UTF8.self), radix: 16) ?? 0xFFFD
        }
        while i < s.end {
            let c = bytes[i]
            if c != 0x5C { out.append(c); i += 1; continue }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case 0x6E: out.append(0x0A)
            case 0x74: out.append(0x09)
            case 0x72: out.append(0x0D)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x75:
                var v = hex4(i); i += 4
                if v >= 0xD800 && v < 0xDC00, i + 6 <= s.end, bytes[i] == 0x5C, bytes[i + 1] == 0x75 {
                    let lo = hex4(i + 2)
                    if lo >= 0xDC00 && lo < 0xE000 { v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00); i += 6 }
                }
                if v >= 0xD800 && v < 0xE000 { v = 0xFFFD }
                var b: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
                let n = utf8Encode(v, &b)
                withUnsafeBytes(of: &b) { p in for k in 0..<n { out.append(p[k]) } }
            default: out.append(e)  // \" \\ \/
            }
        }
        return out
    }
    /// A string's decoded bytes, without a copy when it has no escapes.
    func withStringBytes<R>(_ s: Str, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if !s.escaped { return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[s.start..<s.end])) } }
        return try stringBytes(s).withUnsafeBytes { try body($0) }
    }
    func string(_ s: Str) -> String {
        if !s.escaped { return String(decoding: bytes[s.start..<s.end], as: UTF8.self) }
        return String(decoding: stringBytes(s), as: UTF8.self)
    }
    func number(_ a: Int, _ b: Int) -> NSNumber {
        let t = String(decoding: bytes[a..<b], as: UTF8.self)
        if let n = Int(t) { return NSNumber(value: n) }
        return NSNumber(value: Double(t) ?? 0)
    }
    func int(_ n: Node) -> Int? {
        guard case .number(let a, let b) = n else { return nil }
        var v = 0, neg = false, k = a
        if k < b && bytes[k] == 0x2D { neg = true; k += 1 }
        guard k < b else { return nil }
        while k < b { let c = bytes[k]; guard c >= 0x30 && c <= 0x39 else { return number(a, b).intValue }; v = v * 10 + Int(c - 0x30); k += 1 }
        return neg ? -v : v
    }
    func foundation(_ n: Node, skipping: Set<String> = []) -> Any {
        switch n {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let a, let b): return number(a, b)
        case .string(let s): return string(s)
        case .array(let a): return a.map { foundation($0) }
        case .object(let items):
            var o: [String: Any] = [:]
            for (k, v) in items { let key = string(k); if !skipping.contains(key) { o[key] = foundation(v) } }
            return o
        }
    }
    func member(_ n: Node, _ key: String) -> Node? {
        guard case .object(let items) = n else { return nil }
        let kb = Array(key.utf8)
        for (k, v) in items where k.end - k.start == kb.count && !k.escaped && Array(bytes[k.start..<k.end]) == kb { return v }
        return nil
    }
}

/// A token's UTF-8 bytes as a dictionary key, hashed in one call (String hashing normalizes non-ASCII text).
struct ByteKey: Hashable {
    let bytes: [UInt8]
    init(_ b: [UInt8]) { bytes = b }
    init(_ s: String) { bytes = Array(s.utf8) }
    func hash(into h: inout Hasher) { bytes.withUnsafeBytes { h.combine(bytes: $0) } }
    static func == (a: ByteKey, b: ByteKey) -> Bool { a.bytes == b.bytes }
}
