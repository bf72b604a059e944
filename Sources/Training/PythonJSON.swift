import Foundation
import Tokenizers

/// JSON text as Python's `json.dumps(obj, indent=2, sort_keys=True)` writes it (what the Trainer uses for
/// trainer_state.json): floats in shortest round-trip form (repr), NaN/Infinity literals, ints as ints.
/// Foundation's JSONSerialization rounds doubles on Linux, which would break exact resume.
public enum PythonJSON {
    public static func dumps(_ value: Any, indent: Int? = 2, sortKeys: Bool = true) -> String {
        var out = ""
        write(value, indent: indent, level: 0, sortKeys: sortKeys, into: &out)
        return out
    }

    /// A float as Python's json.dumps writes it (repr digits, NaN/Infinity): Tokenizers' PythonJSONText,
    /// the project's one JSON scalar writer (shared with the chat templates' tojson).
    public static func double(_ d: Double) -> String { PythonJSONText.double(d) }

    /// A string as Python's json.dumps writes it (ensure_ascii).
    public static func string(_ s: String) -> String { PythonJSONText.string(s, ensureASCII: true) }

    private static func write(_ v: Any, indent: Int?, level: Int, sortKeys: Bool, into o: inout String) {
        let nl = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) } ?? ""
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let sep = indent == nil ? ", " : ","
        switch v {
        case is NSNull: o += "null"
        case let b as Bool: o += b ? "true" : "false"
        case let i as Int: o += String(i)
        case let d as Double: o += double(d)
        case let f as Float: o += double(Double(f))
        case let s as String: o += string(s)
        case let a as [Any]:
            if a.isEmpty { o += "[]"; return }
            o += "["
            for (i, x) in a.enumerated() {
                if i > 0 { o += sep }
                o += nl
                write(x, indent: indent, level: level + 1, sortKeys: sortKeys, into: &o)
            }
            o += close + "]"
        case let d as [String: Any]:
            if d.isEmpty { o += "{}"; return }
            o += "{"
            let keys = sortKeys ? d.keys.sorted() : Array(d.keys)
            for (i, k) in keys.enumerated() {
                if i > 0 { o += sep }
                o += nl + string(k) + ": "
                write(d[k]!, indent: indent, level: level + 1, sortKeys: sortKeys, into: &o)
            }
            o += close + "}"
        case let n as NSNumber: o += double(n.doubleValue)
        default: o += string("\(v)")
        }
    }
}

extension PythonJSON {
    /// Parses JSON as Python's `json.loads` reads it, into Foundation-style values: dictionaries, arrays,
    /// String, Bool, NSNull, and numbers as Int when their value is a whole number that fits (also "1.0",
    /// "1e2": what JSONDecoder gave before), else Double, correctly rounded (glibc `strtod`; Linux's
    /// JSONSerialization is off by ulps). Python's NaN, Infinity and -Infinity are read as Doubles.
    /// A recursive-descent pass over the bytes: ~50x faster than the JSONDecoder-based reader it replaces
    /// (which paid thrown errors per value). Bad input throws one line naming the byte offset; nesting is
    /// capped at 512 levels.
    public static func parse(_ data: Data) throws -> Any {
        try data.withUnsafeBytes { raw in
            var p = JSONReader(bytes: raw.bindMemory(to: UInt8.self))
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            guard p.i == p.b.count else { throw p.error("unexpected text after the value") }
            return v
        }
    }
}

private struct JSONReader {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0
    init(bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    func error(_ what: String) -> TrainingError { TrainingError("invalid JSON at byte \(i): \(what)") }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    mutating func value(depth: Int) throws -> Any {
        guard depth < 512 else { throw error("nested deeper than 512 levels") }
        guard i < b.count else { throw error("unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var out: [String: Any] = [:]
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return out }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try string()
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipSpace()
                out[key] = try value(depth: depth + 1)
                skipSpace()
                guard i < b.count else { throw error("unexpected end in an object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return out }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var out: [Any] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return out }
            while true {
                skipSpace()
                out.append(try value(depth: depth + 1))
                skipSpace()
                guard i < b.count else { throw error("unexpected end in an array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return out }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): if literal("true") { return true }
        case UInt8(ascii: "f"): if literal("false") { return false }
        case UInt8(ascii: "n"): if literal("null") { return NSNull() }
        case UInt8(ascii: "N"): if literal("NaN") { return Double.nan }
        case UInt8(ascii: "I"): if literal("Infinity") { return Double.infinity }
        default: return try number()
        }
        throw error("unknown literal")
    }

    mutating func number() throws -> Any {
        let start = i
        if i < b.count, b[i] == UInt8(ascii: "-") {
            i += 1
            if literal("Infinity") { return -Double.infinity }
        }
        var integral = true
        let digits0 = i
        while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
        guard i > digits0 else { i = start; throw error("expected a value") }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            integral = false; i += 1
            let f0 = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > f0 else { throw error("digits expected after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            integral = false; i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            let e0 = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > e0 else { throw error("digits expected in the exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let n = Int(text) { return n }
        let d = strtod(text, nil)
        if d == d.rounded(), abs(d) < 9.2e18 { return Int(d) }
        return d
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw error("bad hex digit in a \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    mutating func string() throws -> String {
        i += 1   // the opening quote
        var bytes: [UInt8] = []
        var runStart = i
        while true {
            guard i < b.count else { throw error("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                if bytes.isEmpty { let s = String(decoding: UnsafeBufferPointer(rebasing: b[runStart..<i]), as: UTF8.self); i += 1; return s }
                bytes.append(contentsOf: b[runStart..<i]); i += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                bytes.append(contentsOf: b[runStart..<i])
                i += 1
                guard i < b.count else { throw error("unterminated escape") }
                let e = b[i]; i += 1
                switch e {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var u = try hex4()
                    if u >= 0xD800 && u < 0xDC00, i + 6 <= b.count, b[i] == 0x5C, b[i + 1] == UInt8(ascii: "u") {
                        let save = i
                        i += 2
                        let lo = try hex4()
                        if lo >= 0xDC00 && lo < 0xE000 { u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00) } else { i = save }
                    }
                    let scalar = Unicode.Scalar(u) ?? "\u{FFFD}"   // a lone surrogate: U+FFFD
                    bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw error("bad escape")
                }
                runStart = i
                continue
            }
            if c < 0x20 { throw error("control character in a string") }
            i += 1
        }
    }
}

/// A JSON number as Double, whatever container type the parser produced.
func jsonNumber(_ v: Any?) -> Double? {
    switch v {
    case let d as Double: return d
    case let i as Int: return Double(i)
    case let b as Bool: return b ? 1 : 0
    case let n as NSNumber: return n.doubleValue
    default: return nil
    }
}
