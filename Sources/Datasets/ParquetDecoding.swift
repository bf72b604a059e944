import Foundation
import CSnappy
import CZstd
import CZ

// Page-level decoding: decompression, the RLE / bit-packed hybrid, PLAIN values, dictionary indices.
// Every read is bounds-checked against the page buffer; errors carry what went wrong, the reader adds
// the file and column.

/// Bits needed to store `maxLevel` (0 for 0).
@inline(__always) func bitWidth(_ maxValue: Int) -> Int {
    maxValue == 0 ? 0 : (Int.bitWidth - maxValue.leadingZeroBitCount)
}

// MARK: - Decompression

/// Largest page SFTDeck will inflate; a header claiming more is treated as hostile.
let maxPageUncompressedSize = 1 << 30

func decompress(_ input: UnsafeRawBufferPointer, codec: Int32, uncompressedSize: Int) throws -> [UInt8] {
    guard uncompressedSize >= 0, uncompressedSize <= maxPageUncompressedSize else {
        throw ParquetDecodeError("page claims \(uncompressedSize) uncompressed bytes (limit \(maxPageUncompressedSize))")
    }
    guard let kind = ParquetCompression(rawValue: codec) else { throw ParquetDecodeError("unknown compression codec \(codec)") }
    switch kind {
    case .uncompressed:
        guard input.count == uncompressedSize else {
            throw ParquetDecodeError("uncompressed page holds \(input.count) bytes, header says \(uncompressedSize)")
        }
        return Array(input)
    case .snappy:
        guard let src = input.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            if uncompressedSize == 0 { return [] }
            throw ParquetDecodeError("empty snappy page")
        }
        var length = 0
        guard snappy_uncompressed_length(src, input.count, &length) == SNAPPY_OK, length == uncompressedSize else {
            throw ParquetDecodeError("snappy page is corrupt or its size (\(length)) differs from the header (\(uncompressedSize))")
        }
        var out = [UInt8](repeating: 0, count: uncompressedSize)
        var outLength = uncompressedSize
        let status = out.withUnsafeMutableBytes { dst in
            snappy_uncompress(src, input.count, dst.baseAddress?.assumingMemoryBound(to: CChar.self), &outLength)
        }
        guard status == SNAPPY_OK, outLength == uncompressedSize else { throw ParquetDecodeError("snappy page is corrupt") }
        return out
    case .zstd:
        var out = [UInt8](repeating: 0, count: uncompressedSize)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_decompress(dst.baseAddress, uncompressedSize, input.baseAddress, input.count)
        }
        if ZSTD_isError(n) != 0 {
            throw ParquetDecodeError("zstd page is corrupt: \(String(cString: ZSTD_getErrorName(n)))")
        }
        guard n == uncompressedSize else { throw ParquetDecodeError("zstd page gives \(n) bytes, header says \(uncompressedSize)") }
        return out
    case .gzip:
        return try inflateGzip(input, expected: uncompressedSize)
    default:
        throw ParquetDecodeError("unsupported compression codec \(kind)")
    }
}

private func inflateGzip(_ input: UnsafeRawBufferPointer, expected: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: expected)
    var stream = z_stream()
    // 15 + 32: a 32 KiB window, accept a gzip or a zlib header.
    guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw ParquetDecodeError("zlib failed to initialise")
    }
    defer { inflateEnd(&stream) }
    var produced = 0
    let status: Int32 = out.withUnsafeMutableBytes { dst in
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = dst.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(expected)
        var s: Int32 = Z_OK
        // Concatenated gzip members are legal; keep going while input remains and room is left.
        while true {
            s = inflate(&stream, Z_FINISH)
            if s == Z_STREAM_END && stream.avail_in > 0 && stream.avail_out > 0 {
                if inflateReset(&stream) != Z_OK { return Z_DATA_ERROR }
                continue
            }
            break
        }
        produced = expected - Int(stream.avail_out)
        return s
    }
    guard status == Z_STREAM_END || (status == Z_BUF_ERROR && produced == expected) else {
        throw ParquetDecodeError("gzip page is corrupt (zlib status \(status))")
    }
    guard produced == expected else { throw ParquetDecodeError("gzip page gives \(produced) bytes, header says \(expected)") }
    return out
}

// MARK: - RLE / bit-packed hybrid

/// Decodes `count` values of the hybrid encoding (parquet Encodings.md, "RLE") from `buf`, appending to `out`.
func decodeHybrid(_ buf: UnsafeRawBufferPointer, bitWidth bw: Int, count: Int, into out: inout [UInt32]) throws {
    guard bw >= 0, bw <= 32 else { throw ParquetDecodeError("bit width \(bw) out of range") }
    out.reserveCapacity(out.count + count)
    if bw == 0 { out.append(contentsOf: repeatElement(0, count: count)); return }
    var pos = 0
    var remaining = count
    let byteWidth = (bw + 7) / 8
    let mask: UInt64 = bw == 32 ? 0xffff_ffff : (1 << UInt64(bw)) - 1
    while remaining > 0 {
        // varint run header
        var header: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard pos < buf.count else { throw ParquetDecodeError("RLE data ends early (\(remaining) of \(count) values missing)") }
            let b = buf[pos]; pos += 1
            header |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 35 { throw ParquetDecodeError("RLE run header too long") }
        }
        if header & 1 == 0 {
            let run = Int(header >> 1)
            guard pos + byteWidth <= buf.count else { throw ParquetDecodeError("RLE run value past the end of the data") }
            var v: UInt32 = 0
            for k in 0..<byteWidth { v |= UInt32(buf[pos + k]) << (8 * UInt32(k)) }
            pos += byteWidth
            let n = min(run, remaining)
            if run == 0 { throw ParquetDecodeError("RLE run of length 0") }
            out.append(contentsOf: repeatElement(v, count: n))
            remaining -= n
        } else {
            let groups = Int(header >> 1)
            guard groups > 0 else { throw ParquetDecodeError("bit-packed run of 0 groups") }
            let runValues = groups * 8
            let n = min(runValues, remaining)
            let bytesNeeded = (n * bw + 7) / 8
            guard pos + bytesNeeded <= buf.count else { throw ParquetDecodeError("bit-packed run past the end of the data") }
            let end = buf.count
            for j in 0..<n {
                let bit = j * bw
                let byte = pos + bit >> 3
                var window: UInt64 = 0
                for k in 0..<5 where byte + k < end { window |= UInt64(buf[byte + k]) << (8 * UInt64(k)) }
                out.append(UInt32((window >> UInt64(bit & 7)) & mask))
            }
            pos += min(groups * bw, buf.count - pos)   // a last, short run may omit its padding bytes
            remaining -= n
        }
    }
}

// MARK: - Values

/// Decoded values of one leaf column (one row group): only defined (non-null) values are stored.
final class LeafValueStore {
    enum Kind { case boolean, int32, int64, float, double, binary }
    let kind: Kind
    let physical: ParquetPhysicalType
    var bools: [Bool] = []
    var int32s: [Int32] = []
    var int64s: [Int64] = []
    var floats: [Float] = []
    var doubles: [Double] = []
    /// BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY and INT96 values, concatenated; value k is `offsets[k] ..< offsets[k+1]`.
    var bytes: [UInt8] = []
    var offsets: [Int] = [0]
    /// Dictionary-encoded binary values are kept as indices into the dictionary instead of copies (a
    /// pyarrow image column puts most of a row group's images in its dictionary). Once a dictionary is
    /// in use, every value has an entry here: a dictionary index, or `ownValueFlag | k` for value k of
    /// `bytes`/`offsets` (PLAIN pages after the dictionary fell back).
    private(set) var indirectDictionary: LeafValueStore?
    private(set) var indirectIndices: [UInt32] = []
    static let ownValueFlag: UInt32 = 1 << 31
    /// True for a dictionary that adopted its PLAIN page as `bytes`: value k then ends 4 bytes (the next
    /// value's length prefix) before `offsets[k+1]`.
    private(set) var lengthPrefixed = false

    /// The values of a dictionary page. BYTE_ARRAY pages are adopted as they are (no copy of the values).
    static func dictionary(fromPlain page: [UInt8], count: Int, physical: ParquetPhysicalType, typeLength: Int) throws -> LeafValueStore {
        let store = LeafValueStore(physical: physical)
        guard physical == .byteArray else {
            try page.withUnsafeBytes { try store.appendPlain($0, count: count, typeLength: typeLength) }
            return store
        }
        guard count >= 0, count <= page.count / 4 else { throw ParquetDecodeError("\(count) byte arrays cannot fit in \(page.count) bytes") }
        var offsets: [Int] = []
        offsets.reserveCapacity(count + 1)
        var pos = 0
        try page.withUnsafeBytes { buf in
            for _ in 0..<count {
                guard pos + 4 <= buf.count else { throw ParquetDecodeError("PLAIN byte array length past the end of the page") }
                let len = Int(UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
                pos += 4
                guard len <= buf.count - pos else { throw ParquetDecodeError("byte array of \(len) bytes runs past the end of the page") }
                offsets.append(pos)
                pos += len
            }
        }
        offsets.append(pos + 4)
        store.bytes = page
        store.offsets = offsets
        store.lengthPrefixed = true
        return store
    }

    init(physical: ParquetPhysicalType) {
        self.physical = physical
        switch physical {
        case .boolean: kind = .boolean
        case .int32: kind = .int32
        case .int64: kind = .int64
        case .float: kind = .float
        case .double: kind = .double
        case .byteArray, .fixedLenByteArray, .int96: kind = .binary
        }
    }

    /// Bytes held, roughly (a shared dictionary is not counted: it is cached on its own).
    var approximateBytes: Int {
        bools.count + int32s.count * 4 + int64s.count * 8 + floats.count * 4 + doubles.count * 8
            + bytes.count + offsets.count * 8 + indirectIndices.count * 4
    }

    var count: Int {
        switch kind {
        case .boolean: return bools.count
        case .int32: return int32s.count
        case .int64: return int64s.count
        case .float: return floats.count
        case .double: return doubles.count
        case .binary: return indirectDictionary == nil ? offsets.count - 1 : indirectIndices.count
        }
    }

    func value(_ k: Int, asString: Bool) -> RowValue {
        switch kind {
        case .boolean: return .bool(bools[k])
        case .int32: return .int(Int64(int32s[k]))
        case .int64: return .int(int64s[k])
        case .float: return .double(Double(floats[k]))
        case .double: return .double(doubles[k])
        case .binary:
            var own = k
            if let dict = indirectDictionary {
                let x = indirectIndices[k]
                if x & Self.ownValueFlag == 0 { return dict.value(Int(x), asString: asString) }
                own = Int(x & ~Self.ownValueFlag)
            }
            let end = offsets[own + 1] - (lengthPrefixed ? 4 : 0)
            return bytes.withUnsafeBytes { b in
                let slice = UnsafeRawBufferPointer(rebasing: b[offsets[own]..<end])
                return asString ? .string(String(decoding: slice, as: UTF8.self)) : .bytes(Data(slice))
            }
        }
    }

    /// Appends `dictionary[indices[i]]` for each index.
    func appendGathered(from dict: LeafValueStore, indices: [UInt32]) throws {
        let n = dict.count
        for i in indices where Int(i) >= n { throw ParquetDecodeError("dictionary index \(i) past the dictionary (\(n) entries)") }
        switch kind {
        case .boolean: bools.append(contentsOf: indices.lazy.map { dict.bools[Int($0)] })
        case .int32: int32s.append(contentsOf: indices.lazy.map { dict.int32s[Int($0)] })
        case .int64: int64s.append(contentsOf: indices.lazy.map { dict.int64s[Int($0)] })
        case .float: floats.append(contentsOf: indices.lazy.map { dict.floats[Int($0)] })
        case .double: doubles.append(contentsOf: indices.lazy.map { dict.doubles[Int($0)] })
        case .binary:
            guard dict.indirectDictionary == nil, dict.count < Int(Self.ownValueFlag) else {
                throw ParquetDecodeError("dictionary of an unexpected shape")
            }
            if indirectDictionary == nil {
                // Values already stored (PLAIN pages before the dictionary) become own entries.
                indirectIndices = (0..<UInt32(offsets.count - 1)).map { Self.ownValueFlag | $0 }
                indirectDictionary = dict
            } else if indirectDictionary !== dict {
                throw ParquetDecodeError("two dictionaries in one column chunk")
            }
            indirectIndices.append(contentsOf: indices)
        }
    }

    /// After values were appended to `bytes`/`offsets` (from `ownBefore` on): give them entries when a
    /// dictionary is in use.
    func noteOwnValues(from ownBefore: Int) {
        guard indirectDictionary != nil else { return }
        let ownNow = offsets.count - 1
        if ownNow > ownBefore { indirectIndices.append(contentsOf: (UInt32(ownBefore)..<UInt32(ownNow)).lazy.map { Self.ownValueFlag | $0 }) }
    }

    /// Appends `count` PLAIN-encoded values from `buf`.
    func appendPlain(_ buf: UnsafeRawBufferPointer, count: Int, typeLength: Int) throws {
        let ownBefore = offsets.count - 1
        defer { noteOwnValues(from: ownBefore) }
        func fixed<T>(_ size: Int, _ arr: inout [T], _ load: (Int) -> T) throws {
            guard count <= buf.count / size else {
                throw ParquetDecodeError("PLAIN data holds \(buf.count) bytes, \(count) values of \(size) bytes need \(count * size)")
            }
            arr.reserveCapacity(arr.count + count)
            for k in 0..<count { arr.append(load(k * size)) }
        }
        switch physical {
        case .boolean:
            guard (count + 7) / 8 <= buf.count else { throw ParquetDecodeError("PLAIN boolean data too short") }
            bools.reserveCapacity(bools.count + count)
            for k in 0..<count { bools.append(buf[k >> 3] >> UInt8(k & 7) & 1 == 1) }
        case .int32: try fixed(4, &int32s) { Int32(littleEndian: buf.loadUnaligned(fromByteOffset: $0, as: Int32.self)) }
        case .int64: try fixed(8, &int64s) { Int64(littleEndian: buf.loadUnaligned(fromByteOffset: $0, as: Int64.self)) }
        case .float: try fixed(4, &floats) { Float(bitPattern: UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: $0, as: UInt32.self))) }
        case .double: try fixed(8, &doubles) { Double(bitPattern: UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: $0, as: UInt64.self))) }
        case .int96, .fixedLenByteArray:
            let size = physical == .int96 ? 12 : typeLength
            guard size > 0 else { throw ParquetDecodeError("FIXED_LEN_BYTE_ARRAY without a positive type_length") }
            guard count <= buf.count / size else { throw ParquetDecodeError("PLAIN fixed-length data too short") }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[0..<(count * size)]))
            let base = offsets[offsets.count - 1]
            for k in 1...max(count, 1) where count > 0 { offsets.append(base + k * size) }
        case .byteArray:
            guard count <= buf.count / 4 else { throw ParquetDecodeError("\(count) byte arrays cannot fit in \(buf.count) bytes") }
            var pos = 0
            offsets.reserveCapacity(offsets.count + count)
            if bytes.count + buf.count > bytes.capacity {   // grow geometrically: pages arrive one by one
                bytes.reserveCapacity(max(bytes.count + buf.count, bytes.capacity * 2))
            }
            for _ in 0..<count {
                guard pos + 4 <= buf.count else { throw ParquetDecodeError("PLAIN byte array length past the end of the page") }
                let len = Int(UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: UInt32.self)))
                pos += 4
                guard len <= buf.count - pos else {
                    throw ParquetDecodeError("byte array of \(len) bytes runs past the end of the page")
                }
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + len)]))   // memcpy, not a byte loop
                pos += len
                offsets.append(bytes.count)
            }
        }
    }

    /// Appends `count` RLE-encoded booleans (4-byte length prefix, then the hybrid with bit width 1).
    func appendRLEBooleans(_ buf: UnsafeRawBufferPointer, count: Int) throws {
        guard buf.count >= 4 else { throw ParquetDecodeError("RLE boolean data too short") }
        let len = Int(UInt32(littleEndian: buf.loadUnaligned(as: UInt32.self)))
        guard len <= buf.count - 4 else { throw ParquetDecodeError("RLE boolean length past the end of the page") }
        var out: [UInt32] = []
        try decodeHybrid(UnsafeRawBufferPointer(rebasing: buf[4..<(4 + len)]), bitWidth: 1, count: count, into: &out)
        bools.append(contentsOf: out.lazy.map { $0 != 0 })
    }
}
