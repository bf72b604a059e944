// safetensors writing, byte-identical to Python's `safetensors.torch.save_file` (Rust `serialize`):
// - tensors ordered by dtype (Rust `Dtype` declaration order, descending), then by name; data
//   offsets assigned in that order;
// - header = compact serde_json: `__metadata__` first, then tensors in that order, each as
//   {"dtype":..,"shape":[..],"data_offsets":[b,e]};
// - header padded with spaces to a multiple of 8 so every tensor's data is 8-byte aligned.
// Files are written to a temporary name in the same folder, flushed, then renamed: a reader never
// sees a half-written file.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

public struct SafeTensorsWriter {
    /// Where a tensor's bytes come from: an owned buffer, or a closure that fills a scratch buffer
    /// of exactly the tensor's byte count when the file is written (so large checkpoints can be
    /// streamed without holding every tensor in memory).
    public enum Source {
        case bytes([UInt8])
        case producer((UnsafeMutableRawBufferPointer) throws -> Void)
    }

    struct Entry {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var byteCount: Int
        var source: Source
    }

    /// Written as `__metadata__` (keys sorted); nil writes no metadata entry.
    public var metadata: [String: String]?
    private var entries: [Entry] = []
    private var names = Set<String>()

    public init(metadata: [String: String]? = ["format": "pt"]) { self.metadata = metadata }

    public var count: Int { entries.count }

    /// Adds a tensor from raw little-endian bytes.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) throws {
        try add(name, dtype: dtype, shape: shape, byteCount: bytes.count, source: .bytes(bytes))
    }

    /// Adds a tensor whose bytes are produced at write time.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], source: Source) throws {
        let n = try SafeTensorsWriter.elementCount(name, shape) * dtype.byteSize
        if case .bytes(let b) = source, b.count != n {
            throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': \(dtype.rawValue) shape \(shape) needs \(n) bytes, got \(b.count)")
        }
        try add(name, dtype: dtype, shape: shape, byteCount: n, source: source)
    }

    /// Adds fp32 values stored as F32, BF16 (round-to-nearest-even) or F16.
    public mutating func add(_ name: String, floats: [Float], shape: [Int], as dtype: SafeTensorsDType = .F32) throws {
        let n = try SafeTensorsWriter.elementCount(name, shape)
        guard n == floats.count else {
            throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': shape \(shape) has \(n) elements, got \(floats.count) values")
        }
        var bytes = [UInt8](repeating: 0, count: n * dtype.byteSize)
        switch dtype {
        case .F32:
            bytes.withUnsafeMutableBytes { dst in floats.withUnsafeBytes { src in dst.copyMemory(from: src) } }
        case .BF16:
            bytes.withUnsafeMutableBytes { dst in
                for i in 0..<n { dst.storeBytes(of: SafeTensorsConvert.floatToBF16(floats[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            }
        case .F16:
            bytes.withUnsafeMutableBytes { dst in
                for i in 0..<n { dst.storeBytes(of: SafeTensorsConvert.floatToF16(floats[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            }
        case .F64:
            bytes.withUnsafeMutableBytes { dst in
                for i in 0..<n { dst.storeBytes(of: Double(floats[i]), toByteOffset: 8 * i, as: Double.self) }
            }
        default:
            throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': cannot store floats as \(dtype.rawValue)")
        }
        try add(name, dtype: dtype, shape: shape, byteCount: bytes.count, source: .bytes(bytes))
    }

    /// Adds integers stored as I64, I32, I16, I8, U8 or BOOL (values must fit).
    public mutating func add(_ name: String, int64s: [Int64], shape: [Int], as dtype: SafeTensorsDType = .I64) throws {
        let n = try SafeTensorsWriter.elementCount(name, shape)
        guard n == int64s.count else {
            throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': shape \(shape) has \(n) elements, got \(int64s.count) values")
        }
        var bytes = [UInt8](repeating: 0, count: n * dtype.byteSize)
        func fits(_ lo: Int64, _ hi: Int64) throws {
            if let bad = int64s.first(where: { $0 < lo || $0 > hi }) {
                throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': value \(bad) does not fit in \(dtype.rawValue)")
            }
        }
        try bytes.withUnsafeMutableBytes { dst in
            switch dtype {
            case .I64: for i in 0..<n { dst.storeBytes(of: int64s[i], toByteOffset: 8 * i, as: Int64.self) }
            case .I32: try fits(Int64(Int32.min), Int64(Int32.max)); for i in 0..<n { dst.storeBytes(of: Int32(int64s[i]), toByteOffset: 4 * i, as: Int32.self) }
            case .I16: try fits(Int64(Int16.min), Int64(Int16.max)); for i in 0..<n { dst.storeBytes(of: Int16(int64s[i]), toByteOffset: 2 * i, as: Int16.self) }
            case .I8: try fits(-128, 127); for i in 0..<n { dst.storeBytes(of: Int8(int64s[i]), toByteOffset: i, as: Int8.self) }
            case .U8: try fits(0, 255); for i in 0..<n { dst.storeBytes(of: UInt8(int64s[i]), toByteOffset: i, as: UInt8.self) }
            case .BOOL: try fits(0, 1); for i in 0..<n { dst.storeBytes(of: UInt8(int64s[i]), toByteOffset: i, as: UInt8.self) }
            default: throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': cannot store integers as \(dtype.rawValue)")
            }
        }
        try add(name, dtype: dtype, shape: shape, byteCount: bytes.count, source: .bytes(bytes))
    }

    private mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], byteCount: Int, source: Source) throws {
        guard name != "__metadata__" else { throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': '__metadata__' is reserved") }
        guard names.insert(name).inserted else { throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': tensor name added twice") }
        entries.append(Entry(name: name, dtype: dtype, shape: shape, byteCount: byteCount, source: source))
    }

    static func elementCount(_ name: String, _ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': negative dimension in shape \(shape)") }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw SafeTensorsError(path: "safetensors writer", problem: "tensor '\(name)': shape \(shape) overflows") }
            n = m
        }
        return n
    }

    /// Entries in file order (dtype ordinal descending, then name by UTF-8 bytes as Rust compares).
    private var ordered: [Entry] {
        entries.sorted { a, b in
            if a.dtype.rustOrdinal != b.dtype.rustOrdinal { return a.dtype.rustOrdinal > b.dtype.rustOrdinal }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The 8-byte length prefix plus the padded header.
    public func headerBytes() -> [UInt8] {
        var members: [(String, SafeTensorsJSON)] = []
        if let metadata {
            let sortedKeys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            members.append(("__metadata__", .object(sortedKeys.map { ($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for e in ordered {
            members.append((e.name, .object([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .integer(Int64($0)) })),
                ("data_offsets", .array([.integer(Int64(offset)), .integer(Int64(offset + e.byteCount))])),
            ])))
            offset += e.byteCount
        }
        var header = SafeTensorsJSONWriter.encode(.object(members))
        header.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8))
        var out = [UInt8](repeating: 0, count: 8)
        let n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: n) { for k in 0..<8 { out[k] = $0[k] } }
        out.append(contentsOf: header)
        return out
    }

    /// The whole file in memory.
    public func serialize() throws -> [UInt8] {
        var out = headerBytes()
        for e in ordered {
            switch e.source {
            case .bytes(let b): out.append(contentsOf: b)
            case .producer(let fill):
                var scratch = [UInt8](repeating: 0, count: e.byteCount)
                try scratch.withUnsafeMutableBytes { try fill($0) }
                out.append(contentsOf: scratch)
            }
        }
        return out
    }

    /// Writes the file atomically: a temporary file beside `url`, fsync, then rename over `url`.
    public func write(to url: URL) throws {
        let path = url.path
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw fail("cannot create temporary file: \(String(cString: strerror(errno)))") }
        var done = false
        defer {
            if !done { close(fd); unlink(tmp) }
        }
        func writeAll(_ p: UnsafeRawBufferPointer) throws {
            var off = 0
            while off < p.count {
                let w = Glibc_write(fd, p.baseAddress! + off, p.count - off)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw fail("write failed: \(String(cString: strerror(errno)))")
                }
                off += w
            }
        }
        try headerBytes().withUnsafeBytes { try writeAll($0) }
        var scratch: [UInt8] = []
        for e in ordered where e.byteCount > 0 {
            switch e.source {
            case .bytes(let b): try b.withUnsafeBytes { try writeAll($0) }
            case .producer(let fill):
                if scratch.count < e.byteCount { scratch = [UInt8](repeating: 0, count: e.byteCount) }
                try scratch.withUnsafeMutableBytes { buf in
                    let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<e.byteCount])
                    try fill(slice)
                    try writeAll(UnsafeRawBufferPointer(slice))
                }
            }
        }
        guard fsync(fd) == 0 else { throw fail("fsync failed: \(String(cString: strerror(errno)))") }
        guard close(fd) == 0 else { done = true; unlink(tmp); throw fail("close failed: \(String(cString: strerror(errno)))") }
        done = true
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw fail("cannot rename temporary file into place: \(reason)")
        }
    }
}

@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
