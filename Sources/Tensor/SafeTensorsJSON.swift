// A small strict JSON reader/writer for safetensors headers and index files.
//
// Why not Foundation's JSONSerialization: it silently keeps one of two duplicate keys, loses key
// order, turns integers into Double/NSNumber (losing exactness above 2^53), and gives no byte
// position on errors. A hostile header must be rejected with a clear reason, so the parser here
// keeps objects as ordered (key, value) pairs, integers as exact Int64, bounds nesting depth, and
// reports the byte offset of the first problem.

/// A parsed JSON value. Objects keep their members in file order (duplicates are kept, so callers
/// can reject them with a precise message).
public indirect enum SafeTensorsJSON: Equatable, Sendable {
    case object([(String, SafeTensorsJSON)])
    case array([SafeTensorsJSON])
    case string(String)
    /// An integer literal that fits in Int64 (no fraction, no exponent).
    case integer(Int64)
    /// Any other number.
    case number(Double)
    case bool(Bool)
    case null

    public static func == (a: SafeTensorsJSON, b: SafeTensorsJSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// Why a JSON text could not be parsed; `offset` is the byte position of the problem.
public struct SafeTensorsJSONError: Error, Sendable {
    public var message: String
    public var offset: Int
}

public enum SafeTensorsJSONParser {
    /// Deepest nesting accepted: a safetensors header needs 3 levels; this bound keeps a hostile
    /// `[[[[...` from exhausting the stack.
    public static let maxDepth = 64

    /// Parses one JSON value from UTF-8 bytes; trailing whitespace (spaces are the safetensors
    /// padding) is allowed, anything else after the value is an error. The bytes must already be
    /// valid UTF-8 (the caller checks, so it can report that problem by name).
    ///
    /// `maxDepth` bounds the nesting (other readers of the project's JSON use larger bounds);
    /// `pythonLiterals` also accepts Python's `NaN`, `Infinity` and `-Infinity` (json.dumps writes them,
    /// e.g. a NaN grad_norm in trainer_state.json) as numbers.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = SafeTensorsJSONParser.maxDepth,
                             pythonLiterals: Bool = false) throws -> SafeTensorsJSON {
        var p = Parser(bytes: bytes, maxDepth: maxDepth, pythonLiterals: pythonLiterals)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        if p.i != bytes.count { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws -> SafeTensorsJSON {
        try bytes.withUnsafeBytes { try parse($0) }
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        let pythonLiterals: Bool
        var i = 0
        init(bytes: UnsafeRawBufferPointer, maxDepth: Int, pythonLiterals: Bool) {
            self.bytes = bytes; self.maxDepth = maxDepth; self.pythonLiterals = pythonLiterals
        }

        func fail(_ message: String) -> SafeTensorsJSONError { SafeTensorsJSONError(message: message, offset: i) }

        mutating func skipWhitespace() {
            while i < bytes.count {
                let c = bytes[i]
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
            }
        }

        mutating func value(depth: Int) throws -> SafeTensorsJSON {
            guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
            guard i < bytes.count else { throw fail("unexpected end of JSON") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "N") where pythonLiterals: try literal("NaN"); return .number(.nan)
            case UInt8(ascii: "I") where pythonLiterals: try literal("Infinity"); return .number(.infinity)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[i])))'")
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count else { throw fail("unexpected end of JSON") }
            for k in 0..<w.count where bytes[i + k] != w[k] { throw fail("invalid literal") }
            i += w.count
        }

        mutating func object(depth: Int) throws -> SafeTensorsJSON {
            i += 1  // {
            var members: [(String, SafeTensorsJSON)] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                i += 1
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of JSON inside an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}' in an object")
            }
        }

        mutating func array(depth: Int) throws -> SafeTensorsJSON {
            i += 1  // [
            var items: [SafeTensorsJSON] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard i < bytes.count else { throw fail("unexpected end of JSON inside an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']' in an array")
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw fail("invalid hex digit in \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw fail("control character inside a string") }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // High surrogate: a low surrogate escape must follow.
                        guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("lone surrogate in \\u escape (not valid UTF-8 text)")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw fail("lone surrogate in \\u escape (not valid UTF-8 text)") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw fail("lone surrogate in \\u escape (not valid UTF-8 text)")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default: throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            }
            // The bytes were checked as UTF-8 by the caller, and escapes produce valid scalars.
            return String(decoding: out, as: UTF8.self)
        }

        mutating func number() throws -> SafeTensorsJSON {
            let start = i
            var isInteger = true
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            if pythonLiterals, i < bytes.count, bytes[i] == UInt8(ascii: "I") { try literal("Infinity"); return .number(-.infinity) }
            guard i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") else { throw fail("invalid number") }
            if bytes[i] == UInt8(ascii: "0") {
                i += 1
                if i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { throw fail("leading zero in a number") }
            } else {
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                isInteger = false
                i += 1
                guard i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") else { throw fail("invalid fraction") }
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                isInteger = false
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") else { throw fail("invalid exponent") }
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            if isInteger, let v = Int64(text) { return .integer(v) }
            guard let d = Double(text) else { throw SafeTensorsJSONError(message: "invalid number", offset: start) }
            return .number(d)
        }
    }
}

/// Writes JSON the way Rust's serde_json does in compact mode (what the safetensors library emits):
/// no whitespace, `"` and `\` escaped, control characters as \b \t \n \f \r or \u00xx, everything
/// else (including non-ASCII) copied as UTF-8.
public enum SafeTensorsJSONWriter {
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }

    public static func append(_ v: SafeTensorsJSON, to out: inout [UInt8]) {
        switch v {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (k, (key, value)) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                append(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let s): appendString(s, to: &out)
        case .integer(let n): out.append(contentsOf: Array(String(n).utf8))
        case .number(let d): out.append(contentsOf: Array((d.isFinite ? "\(d)" : "null").utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .null: out.append(contentsOf: Array("null".utf8))
        }
    }

    public static func encode(_ v: SafeTensorsJSON) -> [UInt8] {
        var out: [UInt8] = []
        append(v, to: &out)
        return out
    }
}
