import Foundation

/// A value inside a Jinja template, with Python's semantics (what jinja2 runs on): truthiness, `str()`, `repr()`,
/// equality across int/float/bool, ordered dicts (json.dumps keeps insertion order).
public indirect enum JinjaValue: @unchecked Sendable {
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A Python tuple: behaves as a list everywhere except `repr` (`('a', 1)`).
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    public static func from(json: Any?) -> JinjaValue {
        switch json {
        case nil, is NSNull: return .none
        case let s as String: return .string(s)
        case let n as NSNumber:
            let t = String(cString: n.objCType)
            if t == "c" || t == "B" { return .bool(n.boolValue) }
            if t == "d" || t == "f" { return .double(n.doubleValue) }
            return .int(n.intValue)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(i)
        case let d as Double: return .double(d)
        case let a as [Any]: return .array(a.map { from(json: $0) })
        case let o as [String: Any]:
            // JSONSerialization loses key order; sort for determinism (callers wanting order build JinjaDict directly).
            var d = JinjaDict()
            for k in o.keys.sorted() { d[k] = from(json: o[k]) }
            return .dict(d)
        default: return .undefined("value")
        }
    }

    /// Tuples behave as lists in every operation.
    var norm: JinjaValue { if case .tuple(let a) = self { return .array(a) }; return self }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }
    var isNone: Bool { if case .none = self { return true }; return false }

    public var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .function: return true
        }
    }

    /// Python `str(value)` (jinja renders `{{ x }}` this way; undefined renders as "").
    public var str: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python `repr(value)`.
    public var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return JinjaValue.pyFloat(d)
        case .string(let s): return JinjaValue.pyRepr(s)
        case .array(let a): return "[" + a.map { $0.repr }.joined(separator: ", ") + "]"
        case .tuple(let a): return "(" + a.map { $0.repr }.joined(separator: ", ") + (a.count == 1 ? ",)" : ")")
        case .dict(let d): return "{" + d.keys.map { JinjaValue.pyRepr($0) + ": " + d[$0]!.repr }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        case .function(let f): return "<function \(f.name)>"
        }
    }

    static func pyFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        return PythonJSONText.floatRepr(d)
    }

    static func pyRepr(_ s: String) -> String {
        let q: Character = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
        var out = String(q)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u == q.unicodeScalars.first! { out += "\\" + String(q) }
                else if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\x%02x", u.value) }
                else { out.unicodeScalars.append(u) }
            }
        }
        out.append(q)
        return out
    }

    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    /// Python `==`.
    public static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        switch (a.norm, b.norm) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.dict(let x), .dict(let y)):
            return x.count == y.count && x.keys.allSatisfy { k in y[k].map { equal(x[k]!, $0) } ?? false }
        case (.namespace(let x), .namespace(let y)): return x === y
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// Numeric view (bool counts as a number, as in Python).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        case .double(let d): return Int(d)
        default: return nil
        }
    }

    /// `json.dumps(value, ensure_ascii=False)` text (key order kept, Python separators).
    public func jsonString(indent: Int? = nil) throws -> String { try PyJSON.dumps(self, indent: indent, sortKeys: false) }

    /// Converts back to JSON-compatible Foundation values.
    public var jsonObject: Any {
        switch self {
        case .undefined, .none: return NSNull()
        case .bool(let b): return b
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .array(let a), .tuple(let a): return a.map { $0.jsonObject }
        case .dict(let d): var o: [String: Any] = [:]; for k in d.keys { o[k] = d[k]!.jsonObject }; return o
        case .namespace(let n): var o: [String: Any] = [:]; for k in n.values.keys { o[k] = n.values[k]!.jsonObject }; return o
        case .function(let f): return "<function \(f.name)>"
        }
    }
}

/// An insertion-ordered string-keyed dictionary.
public struct JinjaDict {
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]
    public init() {}
    public init(_ pairs: [(String, JinjaValue)]) { for (k, v) in pairs { self[k] = v } }
    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }
    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil { keys.removeAll { $0 == key } }
        }
    }
}

/// `namespace(...)`: the one mutable object templates have (reference semantics across scopes).
public final class JinjaNamespace {
    var values: JinjaDict
    init(_ v: JinjaDict) { values = v }
}

/// A callable: builtin global, bound method, or macro.
public final class JinjaFunction {
    let name: String
    let call: ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue
    init(_ name: String, _ call: @escaping ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) { self.name = name; self.call = call }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
}

extension ChatMessage {
    /// The message as the dict a chat template sees (TRL's conversational format).
    public var jinjaValue: JinjaValue {
        var d = JinjaDict()
        d["role"] = .string(role)
        switch content {
        case .text(let s): d["content"] = .string(s)
        case .parts(let parts):
            d["content"] = .array(parts.map { p in
                switch p {
                case .text(let t): return .dict(JinjaDict([("type", "text"), ("text", .string(t))]))
                case .image: return .dict(JinjaDict([("type", "image")]))
                case .other(let t): return .dict(JinjaDict([("type", .string(t))]))
                }
            })
        }
        return .dict(d)
    }
}
