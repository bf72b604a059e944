import Foundation

// The parquet footer and page headers (parquet-format `parquet.thrift`), only the fields SFTDeck reads
// or writes. Field ids are the thrift ids of that file.

public enum ParquetPhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
    public var description: String {
        switch self {
        case .boolean: return "boolean"; case .int32: return "int32"; case .int64: return "int64"
        case .int96: return "int96"; case .float: return "float"; case .double: return "double"
        case .byteArray: return "binary"; case .fixedLenByteArray: return "fixed_len_byte_array"
        }
    }
}

public enum ParquetRepetition: Int32, Sendable {
    case required = 0, optional = 1, repeated = 2
}

/// Converted (legacy) type ids that change how SFTDeck reads a column.
enum ParquetConvertedType: Int32 {
    case utf8 = 0, map = 1, mapKeyValue = 2, list = 3, enumeration = 4, decimal = 5, date = 6
    case json = 19, bson = 20
}

enum ParquetEncoding: Int32, CustomStringConvertible {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5
    case deltaLengthByteArray = 6, deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9
    var description: String {
        switch self {
        case .plain: return "PLAIN"; case .plainDictionary: return "PLAIN_DICTIONARY"; case .rle: return "RLE"
        case .bitPacked: return "BIT_PACKED"; case .deltaBinaryPacked: return "DELTA_BINARY_PACKED"
        case .deltaLengthByteArray: return "DELTA_LENGTH_BYTE_ARRAY"; case .deltaByteArray: return "DELTA_BYTE_ARRAY"
        case .rleDictionary: return "RLE_DICTIONARY"; case .byteStreamSplit: return "BYTE_STREAM_SPLIT"
        }
    }
}

public enum ParquetCompression: Int32, Sendable, CustomStringConvertible {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7
    public var description: String {
        switch self {
        case .uncompressed: return "UNCOMPRESSED"; case .snappy: return "SNAPPY"; case .gzip: return "GZIP"
        case .lzo: return "LZO"; case .brotli: return "BROTLI"; case .lz4: return "LZ4"; case .zstd: return "ZSTD"
        case .lz4Raw: return "LZ4_RAW"
        }
    }
}

/// SchemaElement (flattened depth-first, `numChildren` gives the tree shape).
struct SchemaElement {
    var type: ParquetPhysicalType?
    var typeLength: Int32?
    var repetition: ParquetRepetition?
    var name: String
    var numChildren: Int32?
    var convertedType: Int32?
    /// LogicalType union member id (1 STRING, 2 MAP, 3 LIST, 4 ENUM, 12 JSON, ...).
    var logicalType: Int16?
}

struct ColumnMetaData {
    var type: ParquetPhysicalType
    var encodings: [Int32]
    var pathInSchema: [String]
    var codec: Int32
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
}

struct ColumnChunkMeta {
    var filePath: String?
    var meta: ColumnMetaData
    /// Where the chunk's OffsetIndex (page locations) lies, when the writer wrote a page index
    /// (pyarrow `write_page_index=True`, SFTDeck's writer always).
    var offsetIndexOffset: Int64? = nil
    var offsetIndexLength: Int32? = nil
}

/// One data page of a column chunk as the OffsetIndex lists it (`PageLocation`): its file offset, its size
/// with the header, and the row-group row it begins with (such pages begin at row boundaries).
struct PageLocation: Equatable {
    var offset: Int64
    var compressedPageSize: Int32
    var firstRowIndex: Int64
}

struct RowGroupMeta {
    var columns: [ColumnChunkMeta]
    var totalByteSize: Int64
    var numRows: Int64
}

struct FileMetaData {
    var version: Int32
    var schema: [SchemaElement]
    var numRows: Int64
    var rowGroups: [RowGroupMeta]
    var keyValue: [(String, String?)]
    var createdBy: String?
}

enum PageType: Int32 { case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3 }

struct DataPageHeader { var numValues: Int32; var encoding: Int32; var defEncoding: Int32; var repEncoding: Int32 }
struct DictionaryPageHeader { var numValues: Int32; var encoding: Int32 }
struct DataPageHeaderV2 {
    var numValues: Int32; var numNulls: Int32; var numRows: Int32; var encoding: Int32
    var defLength: Int32; var repLength: Int32; var isCompressed: Bool
}

struct PageHeader {
    var type: Int32
    var uncompressedSize: Int32
    var compressedSize: Int32
    var dataPage: DataPageHeader?
    var dictionaryPage: DictionaryPageHeader?
    var dataPageV2: DataPageHeaderV2?
}

// MARK: - Decoding from thrift

private func need<T>(_ v: T?, _ what: String) throws -> T {
    guard let v else { throw ThriftError.malformed("missing required field \(what)") }
    return v
}

extension FileMetaData {
    init(thrift s: ThriftStruct) throws {
        version = s.int32(1) ?? 1
        schema = try need(s.list(2), "FileMetaData.schema").map { v in
            let e = try need(v.structure, "SchemaElement")
            var logical: Int16? = nil
            if let lt = e.structure(10) { logical = lt.fields.keys.min() }
            var physical: ParquetPhysicalType? = nil
            if let t = e.int32(1) {
                guard let p = ParquetPhysicalType(rawValue: t) else { throw ThriftError.malformed("unknown physical type \(t)") }
                physical = p
            }
            var repetition: ParquetRepetition? = nil
            if let r = e.int32(3) {
                guard let rr = ParquetRepetition(rawValue: r) else { throw ThriftError.malformed("unknown repetition \(r)") }
                repetition = rr
            }
            return SchemaElement(type: physical, typeLength: e.int32(2), repetition: repetition,
                                 name: try need(e.string(4), "SchemaElement.name"), numChildren: e.int32(5),
                                 convertedType: e.int32(6), logicalType: logical)
        }
        numRows = try need(s.int(3), "FileMetaData.num_rows")
        rowGroups = try need(s.list(4), "FileMetaData.row_groups").map { v in
            let rg = try need(v.structure, "RowGroup")
            let cols = try need(rg.list(1), "RowGroup.columns").map { c -> ColumnChunkMeta in
                let cc = try need(c.structure, "ColumnChunk")
                let m = try need(cc.structure(3), "ColumnChunk.meta_data (encrypted or external columns are not supported)")
                let t = try need(m.int32(1), "ColumnMetaData.type")
                return ColumnChunkMeta(filePath: cc.string(1), meta: ColumnMetaData(
                    type: try need(ParquetPhysicalType(rawValue: t), "a known physical type"),
                    encodings: (m.list(2) ?? []).compactMap { $0.int.flatMap { Int32(exactly: $0) } },
                    pathInSchema: (m.list(3) ?? []).compactMap { $0.string },
                    codec: try need(m.int32(4), "ColumnMetaData.codec"),
                    numValues: try need(m.int(5), "ColumnMetaData.num_values"),
                    totalUncompressedSize: try need(m.int(6), "ColumnMetaData.total_uncompressed_size"),
                    totalCompressedSize: try need(m.int(7), "ColumnMetaData.total_compressed_size"),
                    dataPageOffset: try need(m.int(9), "ColumnMetaData.data_page_offset"),
                    dictionaryPageOffset: m.int(11)),
                    offsetIndexOffset: cc.int(4), offsetIndexLength: cc.int32(5))
            }
            return RowGroupMeta(columns: cols, totalByteSize: rg.int(2) ?? 0,
                                numRows: try need(rg.int(3), "RowGroup.num_rows"))
        }
        keyValue = (s.list(5) ?? []).compactMap { v in
            guard let kv = v.structure, let k = kv.string(1) else { return nil }
            return (k, kv.string(2))
        }
        createdBy = s.string(6)
    }
}

/// OffsetIndex: `1: list<PageLocation> page_locations` (field 2, the unencoded byte-array sizes, is skipped).
func decodeOffsetIndex(thrift s: ThriftStruct) throws -> [PageLocation] {
    try need(s.list(1), "OffsetIndex.page_locations").map { v in
        let l = try need(v.structure, "PageLocation")
        return PageLocation(offset: try need(l.int(1), "PageLocation.offset"),
                            compressedPageSize: try need(l.int32(2), "PageLocation.compressed_page_size"),
                            firstRowIndex: try need(l.int(3), "PageLocation.first_row_index"))
    }
}

func encodeOffsetIndex(_ pages: [PageLocation]) -> [UInt8] {
    var w = ThriftCompactWriter()
    w.nestedStruct { w in
        w.structList(1, pages) { w, p in
            w.i64(1, p.offset); w.i32(2, p.compressedPageSize); w.i64(3, p.firstRowIndex)
        }
    }
    return w.bytes
}

extension PageHeader {
    init(thrift s: ThriftStruct) throws {
        type = try need(s.int32(1), "PageHeader.type")
        uncompressedSize = try need(s.int32(2), "PageHeader.uncompressed_page_size")
        compressedSize = try need(s.int32(3), "PageHeader.compressed_page_size")
        if let d = s.structure(5) {
            dataPage = DataPageHeader(numValues: try need(d.int32(1), "DataPageHeader.num_values"),
                                      encoding: try need(d.int32(2), "DataPageHeader.encoding"),
                                      defEncoding: d.int32(3) ?? 3, repEncoding: d.int32(4) ?? 3)
        }
        if let d = s.structure(7) {
            dictionaryPage = DictionaryPageHeader(numValues: try need(d.int32(1), "DictionaryPageHeader.num_values"),
                                                  encoding: d.int32(2) ?? 0)
        }
        if let d = s.structure(8) {
            dataPageV2 = DataPageHeaderV2(
                numValues: try need(d.int32(1), "DataPageHeaderV2.num_values"), numNulls: d.int32(2) ?? 0,
                numRows: try need(d.int32(3), "DataPageHeaderV2.num_rows"),
                encoding: try need(d.int32(4), "DataPageHeaderV2.encoding"),
                defLength: try need(d.int32(5), "DataPageHeaderV2.definition_levels_byte_length"),
                repLength: try need(d.int32(6), "DataPageHeaderV2.repetition_levels_byte_length"),
                isCompressed: d.bool(7) ?? true)
        }
    }
}

// MARK: - Encoding (the writer)

extension FileMetaData {
    func encode() -> [UInt8] {
        var w = ThriftCompactWriter()
        w.nestedStruct { w in
            w.i32(1, version)
            w.structList(2, schema) { w, e in
                if let t = e.type { w.i32(1, t.rawValue) }
                if let l = e.typeLength { w.i32(2, l) }
                if let r = e.repetition { w.i32(3, r.rawValue) }
                w.string(4, e.name)
                if let n = e.numChildren { w.i32(5, n) }
                if let c = e.convertedType { w.i32(6, c) }
                if let l = e.logicalType { w.structField(10) { w in w.structField(l) { _ in } } }
            }
            w.i64(3, numRows)
            w.structList(4, rowGroups) { w, rg in
                w.structList(1, rg.columns) { w, cc in
                    w.i64(2, cc.meta.dataPageOffset)
                    w.structField(3) { w in
                        let m = cc.meta
                        w.i32(1, m.type.rawValue)
                        w.i32List(2, m.encodings)
                        w.stringList(3, m.pathInSchema)
                        w.i32(4, m.codec)
                        w.i64(5, m.numValues)
                        w.i64(6, m.totalUncompressedSize)
                        w.i64(7, m.totalCompressedSize)
                        w.i64(9, m.dataPageOffset)
                    }
                    if let o = cc.offsetIndexOffset, let l = cc.offsetIndexLength { w.i64(4, o); w.i32(5, l) }
                }
                w.i64(2, rg.totalByteSize)
                w.i64(3, rg.numRows)
            }
            if !keyValue.isEmpty {
                w.structList(5, keyValue) { w, kv in
                    w.string(1, kv.0)
                    if let v = kv.1 { w.string(2, v) }
                }
            }
            if let c = createdBy { w.string(6, c) }
        }
        return w.bytes
    }
}

extension PageHeader {
    func encode() -> [UInt8] {
        var w = ThriftCompactWriter()
        w.nestedStruct { w in
            w.i32(1, type)
            w.i32(2, uncompressedSize)
            w.i32(3, compressedSize)
            if let d = dataPage {
                w.structField(5) { w in
                    w.i32(1, d.numValues); w.i32(2, d.encoding); w.i32(3, d.defEncoding); w.i32(4, d.repEncoding)
                }
            }
        }
        return w.bytes
    }
}
