import Foundation

extension JinjaValue {
    /// Parses JSON keeping object key order (chat templates serialize dicts with `tojson`, which keeps order).
    public static func parseJSON(_ data: Data, source: String) throws -> JinjaValue {
        var p = OrderedJSONParser(bytes: [UInt8](data), source: source)
        p.skipWS()
        if p.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3; p.skipWS() }
        let v = try p.value()
        p.skipWS()
        guard p.i == p.bytes.count else { throw p.error("unexpected trailing characters") }
        return v
    }
}

struct OrderedJSONParser {
    let bytes: [UInt8]
    let source: String
    var i = 0
    init(bytes: [UInt8], source: String) { self.bytes = bytes; self.source = source }

    func error(_ msg: String) -> TokenizerError {
        var line = 1, col = 1
        for b in bytes[0..<min(i, bytes.count)] { if b == 0x0A { line += 1; col = 1 } else { col += 1 } }
        return TokenizerError("\(source): invalid JSON at line \(line), column \(col): \(msg)")
    }
    mutating func skipWS() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }

    mutating func value() throws -> JinjaValue {
        skipWS()
        guard i < bytes.count else { throw error("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var d = JinjaDict()
            skipWS()
            if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
            while true {
                skipWS()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let k = try string()
                skipWS()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                d[k] = try value()
                skipWS()
                guard i < bytes.count else { throw error("unterminated object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var a: [JinjaValue] = []
            skipWS()
            if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
            while true {
                a.append(try value())
                skipWS()
                guard i < bytes.count else { throw error("unterminated array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .none
        default:
            let start = i
            var isFloat = false
            while i < bytes.count, let c = Optional(bytes[i]), (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2B || c == 0x2E || c == 0x65 || c == 0x45 {
                if c == 0x2E || c == 0x65 || c == 0x45 { isFloat = true }
                i += 1
            }
            let s = String(decoding: bytes[start..<i], as: UTF8.self)
            if !isFloat, let n = Int(s) { return .int(n) }
            if let d = Double(s), !s.isEmpty { return .double(d) }
            i = start
            throw error("unexpected character")
        }
    }

    mutating func literal(_ w: String) throws {
        let u = Array(w.utf8)
        guard i + u.count <= bytes.count, Array(bytes[i..<(i + u.count)]) == u else { throw error("unexpected character") }
        i += u.count
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else { throw error("bad \\u escape") }
        i += 4
        return v
    }

    mutating func string() throws -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { throw error("unterminated string") }
                let e = bytes[i]; i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if v >= 0xD800 && v < 0xDC00, i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let lo = try hex4()
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    out.append(contentsOf: Array(String(Unicode.Scalar(v).map(Character.init) ?? "\u{FFFD}").utf8))
                default: throw error("bad escape")
                }
                continue
            }
            out.append(c); i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
