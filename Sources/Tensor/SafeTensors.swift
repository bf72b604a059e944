// safetensors reading: header validation against hostile files, memory-mapped data, typed access.
//
// File layout (huggingface/safetensors): u64 little-endian N, N bytes of UTF-8 JSON header
// (optionally right-padded with spaces), then the data buffer. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the buffer, end exclusive),
// plus an optional "__metadata__" string map. Tensors are C-order, little-endian.
//
// This file is independent of the Tensor type: it hands out raw bytes and converted arrays, so any
// consumer (the Tensor module, Models, the CLI) can build on it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Element types of the safetensors format (the names as they appear in headers).
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .C64, .F64, .I64, .U64: return 8
        }
    }

    /// Position in the Rust library's `Dtype` enum (declaration order on safetensors main). The
    /// writer sorts tensors by this, descending, then by name, exactly as `safetensors::serialize`
    /// does, so files written here are byte-identical to Python's `save_file`.
    var rustOrdinal: Int {
        switch self {
        // BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
        // I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64
        case .BOOL: return 0
        case .U8: return 4
        case .I8: return 5
        case .F8_E5M2: return 6
        case .F8_E4M3: return 7
        case .I16: return 11
        case .U16: return 12
        case .F16: return 13
        case .BF16: return 14
        case .I32: return 15
        case .U32: return 16
        case .F32: return 17
        case .C64: return 18
        case .F64: return 19
        case .I64: return 20
        case .U64: return 21
        }
    }

    /// Whether `floats(_:)` converts this type (floating types; integers are read with `int64s`).
    public var isFloatingPoint: Bool {
        switch self {
        case .F16, .BF16, .F32, .F64, .F8_E4M3, .F8_E5M2: return true
        default: return false
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Product of `shape` (1 for a 0-rank scalar, 0 for an empty tensor).
    public var elementCount: Int
    /// Byte range inside the data buffer (`data_offsets`).
    public var dataOffsets: Range<Int>
    public var byteCount: Int { dataOffsets.count }
}

/// A safetensors problem: one line naming the file and what is wrong.
public struct SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var path: String
    public var problem: String
    public init(path: String, problem: String) { self.path = path; self.problem = problem }
    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}

/// A memory-mapped safetensors file with a validated header.
///
/// The data stays on disk (the kernel pages it in on access); `rawBytes` pointers stay valid for
/// the lifetime of this object.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The largest header accepted, as in the Rust library (100 MB).
    public static let maxHeaderBytes = 100_000_000

    public let url: URL
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Every tensor, in data-offset order (file order).
    public let tensors: [SafeTensorInfo]
    /// Byte length of the JSON header (without the 8-byte length prefix).
    public let headerByteCount: Int
    /// Total file size in bytes.
    public let fileByteCount: Int

    private let index: [String: Int]
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    /// Tensor names sorted by code point (like Python's `safe_open(...).keys()`).
    public var names: [String] { tensors.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }

        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw fail("cannot open: \(reason)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw fail("not a regular file") }
        let size = Int(st.st_size)
        fileByteCount = size
        guard size >= 8 else {
            throw fail("truncated: the file is \(size) bytes, too short for the 8-byte header length")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw fail("cannot memory-map: \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(mapped)
        var ok = false
        defer { if !ok { munmap(mapped, size) } }

        let n = base.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw fail("header length \(n) is over the \(SafeTensorsFile.maxHeaderBytes)-byte limit (corrupt or not a safetensors file)")
        }
        let headerLength = Int(n)
        guard 8 + headerLength <= size else {
            throw fail("truncated: header length \(headerLength) runs past the end of the \(size)-byte file")
        }
        let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: headerLength)
        guard SafeTensorsFile.isValidUTF8(headerBytes) else { throw fail("header is not valid UTF-8") }
        guard headerLength > 0, headerBytes[0] == UInt8(ascii: "{") else {
            throw fail("header does not start with '{' (not a safetensors file?)")
        }
        let json: SafeTensorsJSON
        do { json = try SafeTensorsJSONParser.parse(headerBytes) } catch let e as SafeTensorsJSONError {
            throw fail("header is not valid JSON: \(e.message) at header byte \(e.offset)")
        }
        let (meta, infos) = try SafeTensorsFile.validate(header: json, dataLength: size - 8 - headerLength, fail: fail)

        self.metadata = meta
        self.tensors = infos
        self.headerByteCount = headerLength
        self.base = base
        self.mappedLength = size
        self.dataStart = 8 + headerLength
        var idx: [String: Int] = [:]
        for (k, t) in infos.enumerated() { idx[t.name] = k }
        self.index = idx
        ok = true
    }

    public convenience init(path: String) throws { try self.init(url: URL(fileURLWithPath: path)) }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// Checks every rule a well-formed header obeys; returns the metadata and tensors in offset order.
    static func validate(header: SafeTensorsJSON, dataLength: Int,
                         fail: (String) -> SafeTensorsError) throws -> ([String: String], [SafeTensorInfo]) {
        guard case .object(let members) = header else { throw fail("header is not a JSON object") }
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        var infos: [SafeTensorInfo] = []
        infos.reserveCapacity(members.count)
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw fail("duplicate tensor name '\(name)' in header") }
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw fail("__metadata__ is \(value.kindName), expected a map of strings") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw fail("__metadata__ entry '\(k)' is \(v.kindName), expected a string") }
                    guard metadata[k] == nil else { throw fail("duplicate __metadata__ key '\(k)'") }
                    metadata[k] = s
                }
                continue
            }
            guard case .object(let fields) = value else { throw fail("tensor '\(name)': entry is \(value.kindName), expected an object") }
            var dtypeText: String?
            var shapeValue: SafeTensorsJSON?
            var offsetsValue: SafeTensorsJSON?
            for (k, v) in fields {
                switch k {
                case "dtype":
                    guard dtypeText == nil else { throw fail("tensor '\(name)': duplicate field 'dtype'") }
                    guard case .string(let s) = v else { throw fail("tensor '\(name)': dtype is \(v.kindName), expected a string") }
                    dtypeText = s
                case "shape":
                    guard shapeValue == nil else { throw fail("tensor '\(name)': duplicate field 'shape'") }
                    shapeValue = v
                case "data_offsets":
                    guard offsetsValue == nil else { throw fail("tensor '\(name)': duplicate field 'data_offsets'") }
                    offsetsValue = v
                default: continue  // the Rust library ignores unknown fields too
                }
            }
            guard let dtypeText else { throw fail("tensor '\(name)': missing 'dtype'") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
                throw fail("tensor '\(name)': unknown dtype '\(dtypeText)'")
            }
            guard case .array(let dims)? = shapeValue else { throw fail("tensor '\(name)': missing or non-array 'shape'") }
            var shape: [Int] = []
            var count = 1
            for d in dims {
                guard case .integer(let v) = d, v >= 0 else {
                    throw fail("tensor '\(name)': shape must be a list of non-negative integers")
                }
                let (c, overflow) = count.multipliedReportingOverflow(by: Int(v))
                guard !overflow else { throw fail("tensor '\(name)': element count of shape \(dims.map { "\($0)" }) overflows") }
                count = c
                shape.append(Int(v))
            }
            guard case .array(let offs)? = offsetsValue, offs.count == 2,
                  case .integer(let begin) = offs[0], case .integer(let end) = offs[1], begin >= 0, end >= 0 else {
                throw fail("tensor '\(name)': data_offsets must be two non-negative integers")
            }
            guard begin <= end else { throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] end before they begin") }
            guard end <= Int64(dataLength) else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] run past the \(dataLength)-byte data area (truncated file?)")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow else { throw fail("tensor '\(name)': byte count overflows") }
            guard Int64(bytes) == end - begin else {
                throw fail("tensor '\(name)': \(dtype.rawValue) shape \(shape) needs \(bytes) bytes but data_offsets [\(begin), \(end)] hold \(end - begin)")
            }
            infos.append(SafeTensorInfo(name: name, dtype: dtype, shape: shape, elementCount: count,
                                        dataOffsets: Int(begin)..<Int(end)))
        }
        // Tensors tile the data buffer exactly: sorted by offset, each begins where the last ended.
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var position = 0
        var previous: SafeTensorInfo?
        for t in infos {
            if t.dataOffsets.lowerBound < position, let p = previous {
                throw fail("tensors '\(p.name)' [\(p.dataOffsets.lowerBound), \(p.dataOffsets.upperBound)) and '\(t.name)' [\(t.dataOffsets.lowerBound), \(t.dataOffsets.upperBound)) overlap")
            }
            if t.dataOffsets.lowerBound > position {
                throw fail("data bytes [\(position), \(t.dataOffsets.lowerBound)) before tensor '\(t.name)' belong to no tensor")
            }
            position = t.dataOffsets.upperBound
            previous = t
        }
        if position != dataLength {
            throw fail("the data area has \(dataLength) bytes but the tensors cover \(position) (\(dataLength > position ? "trailing bytes" : "truncated"))")
        }
        return (metadata, infos)
    }

    // MARK: Access

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let k = index[name] else { throw SafeTensorsError(path: url.path, problem: "no tensor named '\(name)'") }
        return tensors[k]
    }

    /// The tensor's bytes inside the mapping (little-endian, C order; possibly unaligned when the
    /// writer did not pad the header). Valid while this object is alive.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try info(name)
        return rawBytes(t)
    }

    public func rawBytes(_ t: SafeTensorInfo) -> UnsafeRawBufferPointer {
        guard let base, t.byteCount > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataStart + t.dataOffsets.lowerBound, count: t.byteCount)
    }

    /// A floating-point tensor converted to fp32 (F32 copied, BF16/F16/F8 widened exactly, F64
    /// rounded to nearest).
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { try floats(t, into: $0) }
        return out
    }

    /// Converts into a caller-owned buffer of exactly `elementCount` floats (no allocation).
    public func floats(_ t: SafeTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard out.count == t.elementCount else {
            throw SafeTensorsError(path: url.path, problem: "tensor '\(t.name)': destination holds \(out.count) floats, tensor has \(t.elementCount)")
        }
        guard t.dtype.isFloatingPoint else {
            throw SafeTensorsError(path: url.path, problem: "tensor '\(t.name)' is \(t.dtype.rawValue), not a floating-point type")
        }
        let src = rawBytes(t)
        SafeTensorsConvert.toFloats(src, dtype: t.dtype, into: out)
    }

    /// An integer or BOOL tensor widened to Int64 (U64 values above Int64.max are an error).
    public func int64s(_ name: String) throws -> [Int64] {
        let t = try info(name)
        let src = rawBytes(t)
        guard let v = SafeTensorsConvert.toInt64s(src, dtype: t.dtype, count: t.elementCount) else {
            throw SafeTensorsError(path: url.path, problem: "tensor '\(t.name)' (\(t.dtype.rawValue)) cannot be read as integers")
        }
        return v
    }

    /// Sum of all elements as fp64 (any dtype; C64 sums real and imaginary parts together).
    public func sum(_ name: String) throws -> Double {
        let t = try info(name)
        return SafeTensorsConvert.sum(rawBytes(t), dtype: t.dtype, count: t.elementCount)
    }
}

/// Bit-level conversions between the storage types and fp32, shared by reader and writer.
public enum SafeTensorsConvert {
    /// bf16 is the upper half of an fp32 bit pattern: widening is exact.
    @inlinable public static func bf16ToFloat(_ bits: UInt16) -> Float { float(fromBF16Bits: bits) }

    /// fp32 → bf16 with round-to-nearest-even, NaN as the quiet NaN 0x7FC0, as torch does.
    @inlinable public static func floatToBF16(_ f: Float) -> UInt16 { bf16Bits(fromFloat: f) }

    /// IEEE binary16 → fp32, exact (subnormals, infinities, NaN payloads included).
    @inlinable public static func f16ToFloat(_ h: UInt16) -> Float { float(fromF16Bits: h) }

    /// fp32 → IEEE binary16 with round-to-nearest-even, overflow to infinity.
    @inlinable public static func floatToF16(_ f: Float) -> UInt16 { f16Bits(fromFloat: f) }

    /// OCP FP8 E4M3 (finite-only, NaN at S.1111.111) → fp32.
    @inlinable public static func f8e4m3ToFloat(_ b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let exp = Int((b >> 3) & 0xF), mant = Int(b & 7)
        if exp == 0xF && mant == 7 { return .nan }
        if exp == 0 { return sign * Float(mant) * 0x1p-9 }
        return sign * (1 + Float(mant) / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }

    /// FP8 E5M2 is the upper byte of binary16.
    @inlinable public static func f8e5m2ToFloat(_ b: UInt8) -> Float { f16ToFloat(UInt16(b) << 8) }

    public static func toFloats(_ src: UnsafeRawBufferPointer, dtype: SafeTensorsDType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        guard n > 0, let p = src.baseAddress, let o = out.baseAddress else { return }
        switch dtype {
        case .F32:
            memcpy(o, p, n * 4)
        case .BF16:
            for i in 0..<n { o[i] = bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .F16:
            for i in 0..<n { o[i] = f16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .F64:
            for i in 0..<n { o[i] = Float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .F8_E4M3:
            for i in 0..<n { o[i] = f8e4m3ToFloat(p.load(fromByteOffset: i, as: UInt8.self)) }
        case .F8_E5M2:
            for i in 0..<n { o[i] = f8e5m2ToFloat(p.load(fromByteOffset: i, as: UInt8.self)) }
        default:
            break
        }
    }

    public static func toInt64s(_ src: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count n: Int) -> [Int64]? {
        var out = [Int64](repeating: 0, count: n)
        guard n > 0, let p = src.baseAddress else { return dtype.isFloatingPoint || dtype == .C64 ? nil : out }
        switch dtype {
        case .BOOL, .U8: for i in 0..<n { out[i] = Int64(p.load(fromByteOffset: i, as: UInt8.self)) }
        case .I8: for i in 0..<n { out[i] = Int64(p.load(fromByteOffset: i, as: Int8.self)) }
        case .I16: for i in 0..<n { out[i] = Int64(p.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .U16: for i in 0..<n { out[i] = Int64(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .I32: for i in 0..<n { out[i] = Int64(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .U32: for i in 0..<n { out[i] = Int64(p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .I64: for i in 0..<n { out[i] = p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self) }
        case .U64:
            for i in 0..<n {
                let v = p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                guard v <= UInt64(Int64.max) else { return nil }
                out[i] = Int64(v)
            }
        default: return nil
        }
        return out
    }

    /// Sum as fp64, element by element in file order (a plain running sum: the CLI prints it as a
    /// checksum, so a reproducible order matters more than compensated accuracy).
    public static func sum(_ src: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count n: Int) -> Double {
        guard n > 0, let p = src.baseAddress else { return 0 }
        var s = 0.0
        switch dtype {
        case .F32: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)) }
        case .BF16: for i in 0..<n { s += Double(bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .F16: for i in 0..<n { s += Double(f16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .F64: for i in 0..<n { s += p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self) }
        case .F8_E4M3: for i in 0..<n { s += Double(f8e4m3ToFloat(p.load(fromByteOffset: i, as: UInt8.self))) }
        case .F8_E5M2: for i in 0..<n { s += Double(f8e5m2ToFloat(p.load(fromByteOffset: i, as: UInt8.self))) }
        case .C64: for i in 0..<(2 * n) { s += Double(p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)) }
        case .BOOL, .U8: for i in 0..<n { s += Double(p.load(fromByteOffset: i, as: UInt8.self)) }
        case .I8: for i in 0..<n { s += Double(p.load(fromByteOffset: i, as: Int8.self)) }
        case .I16: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .U16: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .I32: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .U32: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .I64: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .U64: for i in 0..<n { s += Double(p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        }
        return s
    }
}
