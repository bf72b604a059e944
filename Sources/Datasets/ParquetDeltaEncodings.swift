import Foundation

// The encodings newer writers (DuckDB, polars, pyarrow's `column_encoding=`) may choose: DELTA_BINARY_PACKED,
// DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT (parquet-format Encodings.md).

/// Reads `width` bits (0...64) at bit offset `bit` of `buf`, LSB first; bytes past the end read as 0.
@inline(__always) private func readBits(_ buf: UnsafeRawBufferPointer, _ bit: Int, _ width: Int) -> UInt64 {
    if width == 0 { return 0 }
    let byte = bit >> 3, shift = UInt64(bit & 7)
    var lo: UInt64 = 0
    let end = buf.count
    for k in 0..<8 where byte + k < end { lo |= UInt64(buf[byte + k]) << (8 * UInt64(k)) }
    var v = lo >> shift
    if Int(shift) + width > 64, byte + 8 < end { v |= UInt64(buf[byte + 8]) << (64 - shift) }
    return width == 64 ? v : v & ((1 << UInt64(width)) - 1)
}

/// DELTA_BINARY_PACKED: decodes up to `count` values (wrapping arithmetic, as the spec asks), returning
/// the values and the bytes consumed (the encodings built on it continue after).
func decodeDeltaBinaryPacked(_ buf: UnsafeRawBufferPointer, count: Int, bits: Int) throws -> ([Int64], Int) {
    var pos = 0
    func varint() throws -> UInt64 {
        var result: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard pos < buf.count else { throw ParquetDecodeError("DELTA_BINARY_PACKED data ends early") }
            let b = buf[pos]; pos += 1
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ParquetDecodeError("DELTA_BINARY_PACKED varint too long") }
        }
    }
    func zigzag() throws -> Int64 { let u = try varint(); return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1))) }
    let blockSize = Int(try varint()), miniblocks = Int(try varint()), total = Int(clamping: try varint())
    var last = try zigzag()
    guard blockSize > 0, blockSize % 128 == 0, miniblocks > 0, blockSize % miniblocks == 0, (blockSize / miniblocks) % 32 == 0,
          blockSize <= 1 << 20 else {
        throw ParquetDecodeError("DELTA_BINARY_PACKED header is invalid (block \(blockSize), miniblocks \(miniblocks))")
    }
    guard total >= count else { throw ParquetDecodeError("DELTA_BINARY_PACKED holds \(total) values, \(count) needed") }
    let perMini = blockSize / miniblocks
    var out: [Int64] = []
    out.reserveCapacity(count)
    if count > 0 { out.append(last) }
    while out.count < count {
        let minDelta = try zigzag()
        guard pos + miniblocks <= buf.count else { throw ParquetDecodeError("DELTA_BINARY_PACKED bit widths past the end") }
        let widths = (0..<miniblocks).map { Int(buf[pos + $0]) }
        pos += miniblocks
        for m in 0..<miniblocks where out.count < count {
            let w = widths[m]
            guard w <= bits else { throw ParquetDecodeError("DELTA_BINARY_PACKED miniblock bit width \(w) over \(bits)") }
            let bytes = perMini * w / 8
            let body = UnsafeRawBufferPointer(rebasing: buf[pos..<min(pos + bytes, buf.count)])
            let n = min(perMini, count - out.count)
            guard (n * w + 7) / 8 <= body.count else { throw ParquetDecodeError("DELTA_BINARY_PACKED miniblock past the end") }
            for j in 0..<n {
                last = last &+ minDelta &+ Int64(bitPattern: readBits(body, j * w, w))
                if bits == 32 { last = Int64(Int32(truncatingIfNeeded: last)) }
                out.append(last)
            }
            pos += min(bytes, buf.count - pos)
        }
    }
    return (out, pos)
}

extension LeafValueStore {
    func appendDeltaBinaryPacked(_ buf: UnsafeRawBufferPointer, count: Int) throws {
        switch kind {
        case .int32:
            let (v, _) = try decodeDeltaBinaryPacked(buf, count: count, bits: 32)
            int32s.append(contentsOf: v.lazy.map { Int32(truncatingIfNeeded: $0) })
        case .int64:
            let (v, _) = try decodeDeltaBinaryPacked(buf, count: count, bits: 64)
            int64s.append(contentsOf: v)
        default:
            throw ParquetDecodeError("DELTA_BINARY_PACKED on a \(physical) column")
        }
    }

    /// DELTA_LENGTH_BYTE_ARRAY: the lengths (delta-packed), then the concatenated bytes. Returns bytes consumed.
    @discardableResult
    func appendDeltaLengthByteArray(_ buf: UnsafeRawBufferPointer, count: Int) throws -> Int {
        guard kind == .binary else { throw ParquetDecodeError("DELTA_LENGTH_BYTE_ARRAY on a \(physical) column") }
        let ownBefore = offsets.count - 1
        defer { noteOwnValues(from: ownBefore) }
        let (lengths, used) = try decodeDeltaBinaryPacked(buf, count: count, bits: 32)
        var pos = used
        for l in lengths {
            guard l >= 0, Int(l) <= buf.count - pos else { throw ParquetDecodeError("DELTA_LENGTH_BYTE_ARRAY value past the end of the page") }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[pos..<(pos + Int(l))]))
            offsets.append(bytes.count)
            pos += Int(l)
        }
        return pos
    }

    /// DELTA_BYTE_ARRAY: prefix lengths (delta-packed), then suffixes (DELTA_LENGTH_BYTE_ARRAY);
    /// each value is the previous value's prefix followed by its suffix.
    func appendDeltaByteArray(_ buf: UnsafeRawBufferPointer, count: Int) throws {
        guard kind == .binary else { throw ParquetDecodeError("DELTA_BYTE_ARRAY on a \(physical) column") }
        let ownBefore = offsets.count - 1
        defer { noteOwnValues(from: ownBefore) }
        let (prefixes, used) = try decodeDeltaBinaryPacked(buf, count: count, bits: 32)
        let suffixes = LeafValueStore(physical: .byteArray)
        try suffixes.appendDeltaLengthByteArray(UnsafeRawBufferPointer(rebasing: buf[used...]), count: count)
        var previous: [UInt8] = []
        for i in 0..<count {
            let p = Int(prefixes[i])
            guard p >= 0, p <= previous.count else { throw ParquetDecodeError("DELTA_BYTE_ARRAY prefix \(p) longer than the previous value") }
            var value = Array(previous[0..<p])
            value.append(contentsOf: suffixes.bytes[suffixes.offsets[i]..<suffixes.offsets[i + 1]])
            bytes.append(contentsOf: value)
            offsets.append(bytes.count)
            previous = value
        }
    }

    /// BYTE_STREAM_SPLIT: byte k of every value is stored in stream k.
    func appendByteStreamSplit(_ buf: UnsafeRawBufferPointer, count: Int, typeLength: Int) throws {
        let width: Int
        switch physical {
        case .float, .int32: width = 4
        case .double, .int64: width = 8
        case .fixedLenByteArray: width = typeLength
        default: throw ParquetDecodeError("BYTE_STREAM_SPLIT on a \(physical) column")
        }
        guard width > 0, count <= buf.count / width else { throw ParquetDecodeError("BYTE_STREAM_SPLIT data too short") }
        var joined = [UInt8](repeating: 0, count: count * width)
        for i in 0..<count { for k in 0..<width { joined[i * width + k] = buf[k * count + i] } }
        try joined.withUnsafeBytes { try appendPlain($0, count: count, typeLength: typeLength) }
    }
}
