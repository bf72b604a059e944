import Foundation

// Thrift compact protocol (https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md),
// the encoding of parquet's footer (FileMetaData) and page headers. The reader parses a struct into a
// generic field map first (field id -> value) so unknown or future fields are skipped for free; the typed
// parquet structs are then read out of that map (ParquetMetadata.swift).

/// One decoded compact-protocol value.
indirect enum ThriftValue {
    case bool(Bool)
    case int(Int64)          // byte, i16, i32, i64 (zigzag-decoded)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case map([(ThriftValue, ThriftValue)])
    case structure(ThriftStruct)

    var int: Int64? { if case .int(let v) = self { return v }; return nil }
    var bool: Bool? { if case .bool(let v) = self { return v }; return nil }
    var binary: [UInt8]? { if case .binary(let v) = self { return v }; return nil }
    var string: String? { binary.map { String(decoding: $0, as: UTF8.self) } }
    var list: [ThriftValue]? { if case .list(let v) = self { return v }; return nil }
    var structure: ThriftStruct? { if case .structure(let v) = self { return v }; return nil }
}

/// A decoded struct: field id -> value. Getters return nil for absent or wrongly typed fields.
struct ThriftStruct {
    var fields: [Int16: ThriftValue] = [:]
    subscript(_ id: Int16) -> ThriftValue? { fields[id] }
    func int(_ id: Int16) -> Int64? { fields[id]?.int }
    func int32(_ id: Int16) -> Int32? { fields[id]?.int.flatMap { Int32(exactly: $0) } }
    func bool(_ id: Int16) -> Bool? { fields[id]?.bool }
    func string(_ id: Int16) -> String? { fields[id]?.string }
    func structure(_ id: Int16) -> ThriftStruct? { fields[id]?.structure }
    func list(_ id: Int16) -> [ThriftValue]? { fields[id]?.list }
}

enum ThriftError: Error, CustomStringConvertible {
    case truncated(at: Int)
    case malformed(String)
    var description: String {
        switch self {
        case .truncated(let at): return "thrift data ends early (at byte \(at))"
        case .malformed(let what): return "malformed thrift data: \(what)"
        }
    }
}

/// Reads compact-protocol structs from a byte buffer. Every length is checked against the bytes left,
/// and nesting is bounded, so hostile input ends in a `ThriftError`, never a trap or a huge allocation.
struct ThriftCompactReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    private var depth = 0
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) { self.bytes = bytes; self.position = position }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw ThriftError.truncated(at: position) }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ThriftError.malformed("varint longer than 10 bytes at \(position)") }
        }
    }

    mutating func zigzag() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// Reads one struct (up to its STOP byte).
    mutating func readStruct() throws -> ThriftStruct {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth { throw ThriftError.malformed("structs nested deeper than \(Self.maxDepth)") }
        var out = ThriftStruct()
        var lastID: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return out }
            let type = header & 0x0f
            let delta = header >> 4
            let id: Int16
            if delta != 0 {
                id = lastID &+ Int16(delta)
            } else {
                let z = try zigzag()
                guard let v = Int16(exactly: z) else { throw ThriftError.malformed("field id \(z) out of range") }
                id = v
            }
            lastID = id
            out.fields[id] = try readValue(type: type, inList: false)
        }
    }

    private mutating func readValue(type: UInt8, inList: Bool) throws -> ThriftValue {
        switch type {
        case 1: return .bool(inList ? try byte() == 1 : true)
        case 2: return .bool(inList ? try byte() == 1 : false)
        case 3: return .int(Int64(Int8(bitPattern: try byte())))
        case 4, 5, 6: return .int(try zigzag())
        case 7:
            guard position + 8 <= bytes.count else { throw ThriftError.truncated(at: position) }
            var bits: UInt64 = 0
            for k in 0..<8 { bits |= UInt64(bytes[position + k]) << (8 * UInt64(k)) }
            position += 8
            return .double(Double(bitPattern: bits))
        case 8:
            let n = try varint()
            guard n <= UInt64(bytes.count - position) else {
                throw ThriftError.malformed("binary length \(n) runs past the end (\(bytes.count - position) bytes left)")
            }
            let start = position
            position += Int(n)
            return .binary(Array(bytes[start..<position]))
        case 9, 10:
            let h = try byte()
            var size = UInt64(h >> 4)
            if size == 15 { size = try varint() }
            let elemType = h & 0x0f
            // Each element takes at least one byte except bools-in-struct, which cannot occur in lists.
            guard size <= UInt64(bytes.count - position) else {
                throw ThriftError.malformed("list of \(size) elements cannot fit in \(bytes.count - position) bytes")
            }
            depth += 1
            defer { depth -= 1 }
            if depth > Self.maxDepth { throw ThriftError.malformed("lists nested deeper than \(Self.maxDepth)") }
            var items: [ThriftValue] = []
            items.reserveCapacity(Int(size))
            for _ in 0..<Int(size) { items.append(try readValue(type: elemType, inList: true)) }
            return .list(items)
        case 11:
            let size = try varint()
            guard size <= UInt64(bytes.count - position) else {
                throw ThriftError.malformed("map of \(size) entries cannot fit in \(bytes.count - position) bytes")
            }
            if size == 0 { return .map([]) }
            let kv = try byte()
            var entries: [(ThriftValue, ThriftValue)] = []
            for _ in 0..<Int(size) {
                let k = try readValue(type: kv >> 4, inList: true)
                let v = try readValue(type: kv & 0x0f, inList: true)
                entries.append((k, v))
            }
            return .map(entries)
        case 12: return .structure(try readStruct())
        default: throw ThriftError.malformed("unknown field type \(type) at byte \(position - 1)")
        }
    }
}

/// Writes compact-protocol structs. Fields must be written in increasing id order within a struct
/// (the writer uses the short delta form when it can).
struct ThriftCompactWriter {
    private(set) var bytes: [UInt8] = []
    private var lastIDs: [Int16] = [0]

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    private mutating func fieldHeader(_ id: Int16, _ type: UInt8) {
        let delta = Int(id) - Int(lastIDs[lastIDs.count - 1])
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type)
        } else {
            bytes.append(type)
            zigzag(Int64(id))
        }
        lastIDs[lastIDs.count - 1] = id
    }

    mutating func i32(_ id: Int16, _ v: Int32) { fieldHeader(id, 5); zigzag(Int64(v)) }
    mutating func i64(_ id: Int16, _ v: Int64) { fieldHeader(id, 6); zigzag(v) }
    mutating func bool(_ id: Int16, _ v: Bool) { fieldHeader(id, v ? 1 : 2) }
    mutating func binary(_ id: Int16, _ v: [UInt8]) { fieldHeader(id, 8); varint(UInt64(v.count)); bytes += v }
    mutating func string(_ id: Int16, _ v: String) { binary(id, Array(v.utf8)) }

    /// A struct field: `body` writes the nested fields.
    mutating func structField(_ id: Int16, _ body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, 12)
        nestedStruct(body)
    }
    /// A struct value without a field header (list elements, the top-level struct).
    mutating func nestedStruct(_ body: (inout ThriftCompactWriter) -> Void) {
        lastIDs.append(0)
        body(&self)
        bytes.append(0)   // STOP
        lastIDs.removeLast()
    }
    private mutating func listHeader(_ id: Int16, count: Int, elemType: UInt8) {
        fieldHeader(id, 9)
        if count < 15 { bytes.append(UInt8(count) << 4 | elemType) } else { bytes.append(0xf0 | elemType); varint(UInt64(count)) }
    }
    mutating func i32List(_ id: Int16, _ values: [Int32]) {
        listHeader(id, count: values.count, elemType: 5)
        for v in values { zigzag(Int64(v)) }
    }
    mutating func stringList(_ id: Int16, _ values: [String]) {
        listHeader(id, count: values.count, elemType: 8)
        for v in values { let u = Array(v.utf8); varint(UInt64(u.count)); bytes += u }
    }
    mutating func structList<T>(_ id: Int16, _ values: [T], _ body: (inout ThriftCompactWriter, T) -> Void) {
        listHeader(id, count: values.count, elemType: 12)
        for v in values { nestedStruct { body(&$0, v) } }
    }
}
