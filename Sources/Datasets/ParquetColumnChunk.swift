import Foundation

/// One leaf column of one row group, fully decoded: levels for every slot, values for defined slots,
/// and where each row starts in both (so any row of the group is assembled without a scan).
/// Writers cap pages at about 20,000 rows; a page header claiming far more is hostile (RLE could
/// otherwise expand a few bytes into gigabytes of levels).
let maxValuesPerPage = 1 << 24

final class DecodedLeafColumn {
    let maxDef: Int
    let maxRep: Int
    /// Empty when the level is always 0 (`maxRep == 0` / `maxDef == 0`).
    var repLevels: [UInt8] = []
    var defLevels: [UInt8] = []
    var slotCount = 0
    let values: LeafValueStore
    /// Row r occupies level slots `rowSlotStart[r] ..< rowSlotStart[r+1]` and values from `rowValueStart[r]`.
    var rowSlotStart: [Int32] = []
    var rowValueStart: [Int32] = []

    init(maxDef: Int, maxRep: Int, physical: ParquetPhysicalType) {
        self.maxDef = maxDef
        self.maxRep = maxRep
        values = LeafValueStore(physical: physical)
    }

    @inline(__always) func def(_ slot: Int) -> Int { maxDef == 0 ? 0 : Int(defLevels[slot]) }
    @inline(__always) func rep(_ slot: Int) -> Int { maxRep == 0 ? 0 : Int(repLevels[slot]) }

    /// Decodes every page of a column chunk held in `chunk` (the bytes from its first page to its end).
    static func decode(chunk: UnsafeRawBufferPointer, meta: ColumnMetaData, schema: ParquetSchema, leaf: Int,
                       rowCount: Int) throws -> DecodedLeafColumn {
        let node = schema.nodes[schema.leaves[leaf]]
        let col = DecodedLeafColumn(maxDef: node.defLevel, maxRep: node.repLevel, physical: meta.type)
        guard meta.type == node.physicalType else {
            throw ParquetDecodeError("column type \(meta.type) differs from the schema's \(node.physicalType.map { "\($0)" } ?? "group")")
        }
        let typeLength = Int(node.typeLength ?? 0)
        if col.values.kind == .binary, (meta.dictionaryPageOffset ?? 0) <= 0 {
            // One allocation for the whole chunk (bounded: the metadata may lie).
            col.values.bytes.reserveCapacity(Int(min(max(meta.totalUncompressedSize, 0), Int64(chunk.count) * 8, 1 << 30)))
        }
        var dictionary: LeafValueStore? = nil
        var pos = 0
        var slotsRead = 0
        let expectedSlots = Int(meta.numValues)
        guard expectedSlots >= 0, expectedSlots <= Int(Int32.max) else { throw ParquetDecodeError("column claims \(meta.numValues) values") }
        guard rowCount <= expectedSlots else { throw ParquetDecodeError("column holds \(expectedSlots) values for \(rowCount) rows") }
        var scratch: [UInt32] = []
        while slotsRead < expectedSlots {
            guard pos < chunk.count else {
                throw ParquetDecodeError("column chunk ends after \(slotsRead) of \(expectedSlots) values")
            }
            var reader = ThriftCompactReader(chunk, position: pos)
            let header: PageHeader
            do { header = try PageHeader(thrift: try reader.readStruct()) } catch {
                throw ParquetDecodeError("bad page header at chunk byte \(pos): \(error)")
            }
            let bodyStart = reader.position
            let compressed = Int(header.compressedSize)
            guard compressed >= 0, compressed <= chunk.count - bodyStart else {
                throw ParquetDecodeError("page of \(header.compressedSize) bytes runs past the column chunk")
            }
            let body = UnsafeRawBufferPointer(rebasing: chunk[bodyStart..<(bodyStart + compressed)])
            pos = bodyStart + compressed
            let uncompressed = Int(header.uncompressedSize)
            if meta.totalUncompressedSize > 0, uncompressed > meta.totalUncompressedSize {
                throw ParquetDecodeError("page claims \(uncompressed) bytes, more than its whole column (\(meta.totalUncompressedSize))")
            }
            switch PageType(rawValue: header.type) {
            case .dictionaryPage:
                guard let dh = header.dictionaryPage else { throw ParquetDecodeError("dictionary page without its header") }
                guard dh.encoding == ParquetEncoding.plain.rawValue || dh.encoding == ParquetEncoding.plainDictionary.rawValue else {
                    throw ParquetDecodeError("unsupported dictionary encoding \(encodingName(dh.encoding))")
                }
                let data = try decompress(body, codec: meta.codec, uncompressedSize: uncompressed)
                guard dh.numValues >= 0 else { throw ParquetDecodeError("negative dictionary size") }
                dictionary = try LeafValueStore.dictionary(fromPlain: data, count: Int(dh.numValues), physical: meta.type, typeLength: typeLength)
            case .dataPage:
                guard let dh = header.dataPage else { throw ParquetDecodeError("data page without its header") }
                let data = try decompress(body, codec: meta.codec, uncompressedSize: uncompressed)
                let n = Int(dh.numValues)
                guard n >= 0, n <= expectedSlots - slotsRead else { throw ParquetDecodeError("data page holds more values than its column") }
                guard n <= maxValuesPerPage else { throw ParquetDecodeError("data page claims \(n) values (limit \(maxValuesPerPage))") }
                try data.withUnsafeBytes { buf in
                    var p = 0
                    // v1: each level stream is RLE with a 4-byte length prefix.
                    func levels(_ maxLevel: Int, _ encoding: Int32, into arr: inout [UInt8]) throws {
                        guard maxLevel > 0 else { return }
                        guard encoding == ParquetEncoding.rle.rawValue else {
                            throw ParquetDecodeError("unsupported level encoding \(encodingName(encoding))")
                        }
                        guard p + 4 <= buf.count else { throw ParquetDecodeError("level data past the end of the page") }
                        let len = Int(UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
                        p += 4
                        guard len <= buf.count - p else { throw ParquetDecodeError("level data of \(len) bytes past the end of the page") }
                        scratch.removeAll(keepingCapacity: true)
                        try decodeHybrid(UnsafeRawBufferPointer(rebasing: buf[p..<(p + len)]), bitWidth: bitWidth(maxLevel), count: n, into: &scratch)
                        try appendLevels(scratch, maxLevel, &arr)
                        p += len
                    }
                    try levels(col.maxRep, dh.repEncoding, into: &col.repLevels)
                    try levels(col.maxDef, dh.defEncoding, into: &col.defLevels)
                    let defined = col.countDefined(from: slotsRead, count: n)
                    try col.decodeValues(UnsafeRawBufferPointer(rebasing: buf[p...]), encoding: dh.encoding, count: defined,
                                         dictionary: dictionary, typeLength: typeLength, scratch: &scratch)
                }
                slotsRead += n
            case .dataPageV2:
                guard let dh = header.dataPageV2 else { throw ParquetDecodeError("data page v2 without its header") }
                let n = Int(dh.numValues)
                guard n >= 0, n <= expectedSlots - slotsRead else { throw ParquetDecodeError("data page holds more values than its column") }
                guard n <= maxValuesPerPage else { throw ParquetDecodeError("data page claims \(n) values (limit \(maxValuesPerPage))") }
                let repLen = Int(dh.repLength), defLen = Int(dh.defLength)
                guard repLen >= 0, defLen >= 0, repLen + defLen <= body.count else {
                    throw ParquetDecodeError("data page v2 level lengths pass the page")
                }
                // v2: levels are stored uncompressed, without length prefixes, before the (maybe compressed) values.
                if col.maxRep > 0 {
                    scratch.removeAll(keepingCapacity: true)
                    try decodeHybrid(UnsafeRawBufferPointer(rebasing: body[0..<repLen]), bitWidth: bitWidth(col.maxRep), count: n, into: &scratch)
                    try appendLevels(scratch, col.maxRep, &col.repLevels)
                }
                if col.maxDef > 0 {
                    scratch.removeAll(keepingCapacity: true)
                    try decodeHybrid(UnsafeRawBufferPointer(rebasing: body[repLen..<(repLen + defLen)]), bitWidth: bitWidth(col.maxDef), count: n, into: &scratch)
                    try appendLevels(scratch, col.maxDef, &col.defLevels)
                }
                let valuesBody = UnsafeRawBufferPointer(rebasing: body[(repLen + defLen)...])
                let valuesSize = uncompressed - repLen - defLen
                guard valuesSize >= 0 else { throw ParquetDecodeError("data page v2 sizes are inconsistent") }
                let data = dh.isCompressed ? try decompress(valuesBody, codec: meta.codec, uncompressedSize: valuesSize)
                                           : try decompress(valuesBody, codec: 0, uncompressedSize: valuesSize)
                let defined = col.countDefined(from: slotsRead, count: n)
                try data.withUnsafeBytes {
                    try col.decodeValues($0, encoding: dh.encoding, count: defined, dictionary: dictionary,
                                         typeLength: typeLength, scratch: &scratch)
                }
                slotsRead += n
            case .indexPage, .none:
                continue   // index pages (and unknown page kinds) carry no values
            }
        }
        col.slotCount = slotsRead
        try col.indexRows(expected: rowCount)
        return col
    }

    private static func appendLevels(_ src: [UInt32], _ maxLevel: Int, _ dst: inout [UInt8]) throws {
        dst.reserveCapacity(dst.count + src.count)
        for v in src {
            guard v <= UInt32(maxLevel) else { throw ParquetDecodeError("level \(v) above the schema's maximum \(maxLevel)") }
            dst.append(UInt8(v))
        }
    }

    private func countDefined(from start: Int, count: Int) -> Int {
        if maxDef == 0 { return count }
        var n = 0
        let m = UInt8(maxDef)
        for i in start..<(start + count) where defLevels[i] == m { n += 1 }
        return n
    }

    private func decodeValues(_ buf: UnsafeRawBufferPointer, encoding: Int32, count: Int, dictionary: LeafValueStore?,
                              typeLength: Int, scratch: inout [UInt32]) throws {
        switch ParquetEncoding(rawValue: encoding) {
        case .plain:
            try values.appendPlain(buf, count: count, typeLength: typeLength)
        case .plainDictionary, .rleDictionary:
            guard let dictionary else { throw ParquetDecodeError("dictionary-encoded page without a dictionary page") }
            if count == 0 { return }
            guard buf.count >= 1 else { throw ParquetDecodeError("dictionary indices missing") }
            let bw = Int(buf[0])
            scratch.removeAll(keepingCapacity: true)
            try decodeHybrid(UnsafeRawBufferPointer(rebasing: buf[1...]), bitWidth: bw, count: count, into: &scratch)
            try values.appendGathered(from: dictionary, indices: scratch)
        case .rle where values.physical == .boolean:
            try values.appendRLEBooleans(buf, count: count)
        case .deltaBinaryPacked:
            try values.appendDeltaBinaryPacked(buf, count: count)
        case .deltaLengthByteArray:
            try values.appendDeltaLengthByteArray(buf, count: count)
        case .deltaByteArray:
            try values.appendDeltaByteArray(buf, count: count)
        case .byteStreamSplit:
            try values.appendByteStreamSplit(buf, count: count, typeLength: typeLength)
        default:
            throw ParquetDecodeError("unsupported encoding \(encodingName(encoding)) for a \(values.physical) column (SFTDeck reads PLAIN, RLE_DICTIONARY, PLAIN_DICTIONARY, RLE booleans, DELTA_*, BYTE_STREAM_SPLIT)")
        }
    }

    /// Finds where each row starts (a slot with repetition level 0 begins a row).
    private func indexRows(expected: Int) throws {
        rowSlotStart.reserveCapacity(min(expected, slotCount) + 1)
        rowValueStart.reserveCapacity(min(expected, slotCount) + 1)
        var valueIndex: Int32 = 0
        let m = maxDef
        for s in 0..<slotCount {
            if rep(s) == 0 {
                rowSlotStart.append(Int32(s))
                rowValueStart.append(valueIndex)
            }
            if def(s) == m { valueIndex += 1 }
        }
        rowSlotStart.append(Int32(slotCount))
        rowValueStart.append(valueIndex)
        guard rowSlotStart.count - 1 == expected else {
            throw ParquetDecodeError("column holds \(rowSlotStart.count - 1) rows, the row group says \(expected)")
        }
        guard Int(valueIndex) == values.count else {
            throw ParquetDecodeError("column holds \(values.count) values for \(valueIndex) defined slots")
        }
    }
}

func encodingName(_ e: Int32) -> String { ParquetEncoding(rawValue: e).map { "\($0)" } ?? "#\(e)" }
