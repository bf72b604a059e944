import Foundation

/// A run of data pages of one leaf column (one row group), decoded: levels for every slot, values for
/// defined slots, and where each row starts in both (so any row of the run is assembled without a scan).
/// Local row 0 is the first row that starts in the run's first page.
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

    /// A column for the data pages of one chunk, to be filled page by page with `appendDataPage`.
    static func empty(meta: ColumnMetaData, schema: ParquetSchema, leaf: Int) throws -> DecodedLeafColumn {
        let node = schema.nodes[schema.leaves[leaf]]
        guard meta.type == node.physicalType else {
            throw ParquetDecodeError("column type \(meta.type) differs from the schema's \(node.physicalType.map { "\($0)" } ?? "group")")
        }
        return DecodedLeafColumn(maxDef: node.defLevel, maxRep: node.repLevel, physical: meta.type)
    }

    /// Decodes a dictionary page (header and its still-compressed body).
    static func decodeDictionaryPage(header: PageHeader, body: UnsafeRawBufferPointer, meta: ColumnMetaData,
                                     typeLength: Int) throws -> LeafValueStore {
        guard let dh = header.dictionaryPage else { throw ParquetDecodeError("dictionary page without its header") }
        guard dh.encoding == ParquetEncoding.plain.rawValue || dh.encoding == ParquetEncoding.plainDictionary.rawValue else {
            throw ParquetDecodeError("unsupported dictionary encoding \(encodingName(dh.encoding))")
        }
        let uncompressed = Int(header.uncompressedSize)
        if meta.totalUncompressedSize > 0, uncompressed > meta.totalUncompressedSize {
            throw ParquetDecodeError("page claims \(uncompressed) bytes, more than its whole column (\(meta.totalUncompressedSize))")
        }
        let data = try decompress(body, codec: meta.codec, uncompressedSize: uncompressed)
        guard dh.numValues >= 0 else { throw ParquetDecodeError("negative dictionary size") }
        return try LeafValueStore.dictionary(fromPlain: data, count: Int(dh.numValues), physical: meta.type, typeLength: typeLength)
    }

    /// Appends the levels and values of one data page (v1 or v2; `body` still compressed). Returns false
    /// for pages that hold no values (index pages, unknown kinds), which are skipped.
    @discardableResult
    /// `decompressedV1`: the body of a v1 page already decompressed (the page-map scan keeps it).
    func appendDataPage(header: PageHeader, body: UnsafeRawBufferPointer, meta: ColumnMetaData, dictionary: LeafValueStore?,
                        typeLength: Int, scratch: inout [UInt32], decompressedV1: [UInt8]? = nil) throws -> Bool {
        let uncompressed = Int(header.uncompressedSize)
        if meta.totalUncompressedSize > 0, uncompressed > meta.totalUncompressedSize {
            throw ParquetDecodeError("page claims \(uncompressed) bytes, more than its whole column (\(meta.totalUncompressedSize))")
        }
        let slotsRead = slotCount
        let slotsLeft = Int(meta.numValues) - slotsRead
        switch PageType(rawValue: header.type) {
        case .dictionaryPage:
            throw ParquetDecodeError("a second dictionary page inside the column chunk")
        case .dataPage:
            guard let dh = header.dataPage else { throw ParquetDecodeError("data page without its header") }
            let data = try decompressedV1 ?? decompress(body, codec: meta.codec, uncompressedSize: uncompressed)
            let n = Int(dh.numValues)
            guard n >= 0, n <= slotsLeft else { throw ParquetDecodeError("data page holds more values than its column") }
            guard n <= maxValuesPerPage else { throw ParquetDecodeError("data page claims \(n) values (limit \(maxValuesPerPage))") }
            try data.withUnsafeBytes { buf in
                var p = 0
                // v1: each level stream is RLE with a 4-byte length prefix.
                func levels(_ maxLevel: Int, _ encoding: Int32, into arr: inout [UInt8]) throws {
                    guard maxLevel > 0 else { return }
                    let len = try v1LevelStreamLength(buf, at: p, encoding: encoding)
                    p += 4
                    scratch.removeAll(keepingCapacity: true)
                    try decodeHybrid(UnsafeRawBufferPointer(rebasing: buf[p..<(p + len)]), bitWidth: bitWidth(maxLevel), count: n, into: &scratch)
                    try Self.appendLevels(scratch, maxLevel, &arr)
                    p += len
                }
                try levels(maxRep, dh.repEncoding, into: &repLevels)
                try levels(maxDef, dh.defEncoding, into: &defLevels)
                let defined = countDefined(from: slotsRead, count: n)
                try decodeValues(UnsafeRawBufferPointer(rebasing: buf[p...]), encoding: dh.encoding, count: defined,
                                 dictionary: dictionary, typeLength: typeLength, scratch: &scratch)
            }
            slotCount += n
        case .dataPageV2:
            guard let dh = header.dataPageV2 else { throw ParquetDecodeError("data page v2 without its header") }
            let n = Int(dh.numValues)
            guard n >= 0, n <= slotsLeft else { throw ParquetDecodeError("data page holds more values than its column") }
            guard n <= maxValuesPerPage else { throw ParquetDecodeError("data page claims \(n) values (limit \(maxValuesPerPage))") }
            let repLen = Int(dh.repLength), defLen = Int(dh.defLength)
            guard repLen >= 0, defLen >= 0, repLen + defLen <= body.count else {
                throw ParquetDecodeError("data page v2 level lengths pass the page")
            }
            // v2: levels are stored uncompressed, without length prefixes, before the (maybe compressed) values.
            if maxRep > 0 {
                scratch.removeAll(keepingCapacity: true)
                try decodeHybrid(UnsafeRawBufferPointer(rebasing: body[0..<repLen]), bitWidth: bitWidth(maxRep), count: n, into: &scratch)
                try Self.appendLevels(scratch, maxRep, &repLevels)
            }
            if maxDef > 0 {
                scratch.removeAll(keepingCapacity: true)
                try decodeHybrid(UnsafeRawBufferPointer(rebasing: body[repLen..<(repLen + defLen)]), bitWidth: bitWidth(maxDef), count: n, into: &scratch)
                try Self.appendLevels(scratch, maxDef, &defLevels)
            }
            let valuesBody = UnsafeRawBufferPointer(rebasing: body[(repLen + defLen)...])
            let valuesSize = uncompressed - repLen - defLen
            guard valuesSize >= 0 else { throw ParquetDecodeError("data page v2 sizes are inconsistent") }
            let data = dh.isCompressed ? try decompress(valuesBody, codec: meta.codec, uncompressedSize: valuesSize)
                                       : try decompress(valuesBody, codec: 0, uncompressedSize: valuesSize)
            let defined = countDefined(from: slotsRead, count: n)
            try data.withUnsafeBytes {
                try decodeValues($0, encoding: dh.encoding, count: defined, dictionary: dictionary,
                                 typeLength: typeLength, scratch: &scratch)
            }
            slotCount += n
        case .indexPage, .none:
            return false   // index pages (and unknown page kinds) carry no values
        }
        return true
    }

    /// Bytes held (for the reader's page cache budget).
    var approximateBytes: Int {
        repLevels.count + defLevels.count + (rowSlotStart.count + rowValueStart.count) * 4 + values.approximateBytes
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

    /// Finds where each row starts (a slot with repetition level 0 begins a row); the decoded pages
    /// must begin at a row boundary and start exactly `expected` rows.
    func indexRows(expected: Int) throws {
        guard slotCount == 0 || rep(0) == 0 else { throw ParquetDecodeError("the pages read do not begin at a row boundary") }
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
            throw ParquetDecodeError("pages hold \(rowSlotStart.count - 1) rows where \(expected) were expected")
        }
        guard Int(valueIndex) == values.count else {
            throw ParquetDecodeError("column holds \(values.count) values for \(valueIndex) defined slots")
        }
    }
}

func encodingName(_ e: Int32) -> String { ParquetEncoding(rawValue: e).map { "\($0)" } ?? "#\(e)" }

/// Length of a v1 page's RLE level stream at `p` (its 4-byte prefix), checked against the page.
func v1LevelStreamLength(_ buf: UnsafeRawBufferPointer, at p: Int, encoding: Int32) throws -> Int {
    guard encoding == ParquetEncoding.rle.rawValue else {
        throw ParquetDecodeError("unsupported level encoding \(encodingName(encoding))")
    }
    guard p + 4 <= buf.count else { throw ParquetDecodeError("level data past the end of the page") }
    let len = Int(UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: p, as: UInt32.self)))
    guard len <= buf.count - p - 4 else { throw ParquetDecodeError("level data of \(len) bytes past the end of the page") }
    return len
}
