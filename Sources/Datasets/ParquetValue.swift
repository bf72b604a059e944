import Foundation

/// One value of a dataset row, whatever file it came from (parquet, JSON): the generic shape the
/// dataset browser shows and the row formatters read.
public indirect enum RowValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes(Data)
    case list([RowValue])
    /// Fields in schema order.
    case record([RowField])

    public var isNull: Bool { if case .null = self { return true }; return false }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int64? { if case .int(let v) = self { return v }; return nil }
    public var double: Double? {
        switch self { case .double(let v): return v; case .int(let v): return Double(v); default: return nil }
    }
    public var bool: Bool? { if case .bool(let v) = self { return v }; return nil }
    public var bytes: Data? { if case .bytes(let v) = self { return v }; return nil }
    public var list: [RowValue]? { if case .list(let v) = self { return v }; return nil }
    public var fields: [RowField]? { if case .record(let v) = self { return v }; return nil }

    /// A field of a record by name (nil when absent or when this is not a record).
    public subscript(_ name: String) -> RowValue? {
        guard case .record(let fs) = self else { return nil }
        return fs.first { $0.name == name }?.value
    }

    /// An indented multi-line rendering for the dataset browser: one line per field or list item,
    /// nested values indented by two spaces; bytes by size, strings cut at `maxString`.
    public func outline(maxString: Int = 120, name: String? = nil, depth: Int = 0) -> [String] {
        let pad = String(repeating: "  ", count: depth)
        let label = name.map { "\($0): " } ?? ""
        switch self {
        case .list(let items) where !items.isEmpty:
            return [pad + label + "[\(items.count)]"] + items.enumerated().flatMap { $0.element.outline(maxString: maxString, name: "[\($0.offset)]", depth: depth + 1) }
        case .record(let fs) where !fs.isEmpty:
            return [pad + label + "{}"] + fs.flatMap { $0.value.outline(maxString: maxString, name: $0.name, depth: depth + 1) }
        default:
            return [pad + label + preview(maxString: maxString)]
        }
    }

    /// A compact one-line rendering for the dataset browser (bytes shown by size, long text cut).
    public func preview(maxString: Int = 80) -> String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let s):
            let cut = s.count > maxString ? String(s.prefix(maxString)) + "…" : s
            return "\"" + cut.replacingOccurrences(of: "\n", with: "\\n") + "\""
        case .bytes(let d): return "<\(d.count) bytes>"
        case .list(let items): return "[" + items.map { $0.preview(maxString: maxString) }.joined(separator: ", ") + "]"
        case .record(let fs): return "{" + fs.map { "\($0.name): \($0.value.preview(maxString: maxString))" }.joined(separator: ", ") + "}"
        }
    }
}

public struct RowField: Sendable, Equatable {
    public var name: String
    public var value: RowValue
    public init(name: String, value: RowValue) { self.name = name; self.value = value }
}

/// JSON rows decode straight into row values (object keys sorted, since JSON objects are unordered).
extension RowValue: Decodable {
    private struct AnyKey: CodingKey {
        var stringValue: String; var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }
    public init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            self = .record(try keyed.allKeys.map { $0.stringValue }.sorted().map {
                RowField(name: $0, value: try keyed.decode(RowValue.self, forKey: AnyKey(stringValue: $0)))
            })
            return
        }
        if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [RowValue] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(RowValue.self)) }
            self = .list(items)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }
}
