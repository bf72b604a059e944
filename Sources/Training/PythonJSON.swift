import Foundation
import Tensor
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
    /// Parses JSON as Python's `json.loads` reads it, into Foundation-style values: dictionaries (a repeated
    /// key: the last one, as Python), arrays, String, Bool, NSNull, and numbers as Int when their value is a
    /// whole number that fits (also "1.0", "1e2": what the JSONDecoder-based reader gave before), else
    /// Double, correctly rounded (Linux's JSONSerialization is off by ulps). Python's NaN, Infinity and
    /// -Infinity are read as Doubles. The project's strict reader (`SafeTensorsJSONParser`) does the
    /// parsing; bad input throws one line naming the byte offset, nesting is capped at 512 levels.
    /// `file`: named in the error line (the one problem a user can act on is which file to fix).
    public static func parse(_ data: Data, file: URL? = nil) throws -> Any {
        let json: SafeTensorsJSON
        do {
            json = try data.withUnsafeBytes { try SafeTensorsJSONParser.parse($0, maxDepth: 512, pythonLiterals: true) }
        } catch let e as SafeTensorsJSONError {
            throw TrainingError((file.map { $0.path + ": " } ?? "") + "invalid JSON at byte \(e.offset): \(e.message)")
        }
        return foundationValue(json)
    }

    private static func foundationValue(_ v: SafeTensorsJSON) -> Any {
        switch v {
        case .object(let members):
            var out: [String: Any] = [:]
            for (k, x) in members { out[k] = foundationValue(x) }
            return out
        case .array(let items): return items.map(foundationValue)
        case .string(let s): return s
        case .integer(let n): return Int(n)
        case .number(let d): return d == d.rounded() && abs(d) < 9.2e18 ? Int(d) : d
        case .bool(let b): return b
        case .null: return NSNull()
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
