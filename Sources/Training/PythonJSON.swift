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
    /// Parses JSON into Foundation-style values (Double/Int/Bool/String/NSNull/arrays/dictionaries) with
    /// exact doubles (JSONDecoder's number parsing; JSONSerialization's on Linux is off by ulps).
    public static func parse(_ data: Data) throws -> Any {
        try JSONDecoder().decode(AnyJSON.self, from: data).value
    }

    private struct AnyJSON: Decodable {
        let value: Any
        init(from decoder: Decoder) throws {
            if var a = try? decoder.unkeyedContainer() {
                var out: [Any] = []
                while !a.isAtEnd { out.append(try a.decode(AnyJSON.self).value) }
                value = out; return
            }
            if let k = try? decoder.container(keyedBy: Key.self) {
                var out: [String: Any] = [:]
                for key in k.allKeys { out[key.stringValue] = try k.decode(AnyJSON.self, forKey: key).value }
                value = out; return
            }
            let s = try decoder.singleValueContainer()
            if s.decodeNil() { value = NSNull() }
            else if let b = try? s.decode(Bool.self) { value = b }
            else if let i = try? s.decode(Int.self) { value = i }
            else if let d = try? s.decode(Double.self) { value = d }
            else { value = try s.decode(String.self) }
        }
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { return nil }
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
