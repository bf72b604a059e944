import Foundation
import CSnappy

/// A column type for the writer, in Arrow terms (lists become parquet's standard 3-level LIST groups).
public indirect enum ParquetColumnType: Sendable {
    case boolean, int32, int64, float, double, string, binary
    case list(ParquetField)
    case structure([ParquetField])
}

/// A named field of the writer's schema.
public struct ParquetField: Sendable {
    public var name: String
    public var type: ParquetColumnType
    public var nullable: Bool
    public init(_ name: String, _ type: ParquetColumnType, nullable: Bool = true) {
        self.name = name; self.type = type; self.nullable = nullable
    }

    /// The llava-instruct-mix-vsft schema: `messages: list<struct<content: list<struct<index, text, type>>, role>>`
    /// and `images: list<struct<bytes, path>>` (field order as in the published files).
    public static let llavaSchema: [ParquetField] = [
        ParquetField("messages", .list(ParquetField("element", .structure([
            ParquetField("content", .list(ParquetField("element", .structure([
                ParquetField("index", .int64), ParquetField("text", .string), ParquetField("type", .string),
            ])))),
            ParquetField("role", .string),
        ])))),
        ParquetField("images", .list(ParquetField("element", .structure([
            ParquetField("bytes", .binary), ParquetField("path", .string),
        ])))),
    ]
}

/// Writes parquet files: PLAIN values, RLE levels, data pages v1, uncompressed or snappy, one or more
/// row groups. Rows are `.record` values whose fields are looked up by name (a missing field is null).
/// Rows are buffered per row group and written when the group is full.
public final class ParquetWriter {
    public let url: URL
    public let compression: ParquetCompression
    public let rowGroupSize: Int
    /// A data page is closed at the first row boundary past this many value bytes.
    public var pageValueBytes = 1 << 20
    private let schema: ParquetSchema
    private let elements: [SchemaElement]
    private let handle: FileHandle
    private var offset = 0
    private var rowGroups: [RowGroupMeta] = []
    private var pending: [ShreddedLeaf]
    private var pendingRows = 0
    private var totalRows = 0
    private var closed = false

    private final class ShreddedLeaf {
        var rep: [UInt8] = []
        var def: [UInt8] = []
        var values: LeafValueStore
        init(_ p: ParquetPhysicalType) { values = LeafValueStore(physical: p) }
    }

    public init(url: URL, fields: [ParquetField], compression: ParquetCompression = .snappy, rowGroupSize: Int = 1000) throws {
        guard compression == .uncompressed || compression == .snappy else {
            throw ParquetError(file: url.path, "the writer supports UNCOMPRESSED and SNAPPY, not \(compression)")
        }
        self.url = url
        self.compression = compression
        self.rowGroupSize = max(1, rowGroupSize)
        var els = [SchemaElement(type: nil, typeLength: nil, repetition: nil, name: "schema", numChildren: Int32(fields.count),
                                 convertedType: nil, logicalType: nil)]
        func add(_ f: ParquetField, repetition: ParquetRepetition) {
            switch f.type {
            case .list(let element):
                els.append(SchemaElement(type: nil, typeLength: nil, repetition: repetition, name: f.name, numChildren: 1,
                                         convertedType: ParquetConvertedType.list.rawValue, logicalType: 3))
                els.append(SchemaElement(type: nil, typeLength: nil, repetition: .repeated, name: "list", numChildren: 1,
                                         convertedType: nil, logicalType: nil))
                add(ParquetField("element", element.type, nullable: element.nullable), repetition: element.nullable ? .optional : .required)
            case .structure(let children):
                els.append(SchemaElement(type: nil, typeLength: nil, repetition: repetition, name: f.name,
                                         numChildren: Int32(children.count), convertedType: nil, logicalType: nil))
                for c in children { add(c, repetition: c.nullable ? .optional : .required) }
            default:
                let (p, conv, logical): (ParquetPhysicalType, Int32?, Int16?) = {
                    switch f.type {
                    case .boolean: return (.boolean, nil, nil)
                    case .int32: return (.int32, nil, nil)
                    case .int64: return (.int64, nil, nil)
                    case .float: return (.float, nil, nil)
                    case .double: return (.double, nil, nil)
                    case .string: return (.byteArray, ParquetConvertedType.utf8.rawValue, 1)
                    default: return (.byteArray, nil, nil)
                    }
                }()
                els.append(SchemaElement(type: p, typeLength: nil, repetition: repetition, name: f.name, numChildren: nil,
                                         convertedType: conv, logicalType: logical))
            }
        }
        for f in fields { add(f, repetition: f.nullable ? .optional : .required) }
        elements = els
        do { schema = try ParquetSchema(elements: els) } catch {
            throw ParquetError(file: url.path, "invalid schema: \(error)")
        }
        let s = schema
        pending = schema.leaves.map { ShreddedLeaf(s.nodes[$0].physicalType!) }
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let h = FileHandle(forWritingAtPath: url.path) else {
            throw ParquetError(file: url.path, "cannot create the file")
        }
        handle = h
        try write(Array("PAR1".utf8))
    }

    deinit { if !closed { try? handle.close() } }

    /// Convenience: writes all rows and closes the file.
    public static func write(url: URL, fields: [ParquetField], rows: [RowValue], compression: ParquetCompression = .snappy,
                             rowGroupSize: Int = 1000) throws {
        let w = try ParquetWriter(url: url, fields: fields, compression: compression, rowGroupSize: rowGroupSize)
        for r in rows { try w.append(r) }
        try w.close()
    }

    public func append(_ row: RowValue) throws {
        guard !closed else { throw ParquetError(file: url.path, "append after close") }
        guard case .record = row else { throw ParquetError(file: url.path, "row \(totalRows) is not a record") }
        do {
            for c in schema.root.children { try shredField(row[schema.nodes[c].name] ?? .null, node: c, r: 0, d: 0) }
        } catch {
            throw ParquetError(file: url.path, "row \(totalRows): \(error)")
        }
        pendingRows += 1
        totalRows += 1
        if pendingRows >= rowGroupSize { try flushRowGroup() }
    }

    public func close() throws {
        guard !closed else { return }
        if pendingRows > 0 { try flushRowGroup() }
        let meta = FileMetaData(version: 1, schema: elements, numRows: Int64(totalRows), rowGroups: rowGroups,
                                keyValue: [], createdBy: "SFTDeck parquet writer")
        let footer = meta.encode()
        try write(footer)
        let n = UInt32(footer.count)
        try write([UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)] + Array("PAR1".utf8))
        closed = true
        try handle.close()
    }

    // MARK: shredding (Dremel striping: the inverse of RowAssembler)

    private func shredField(_ value: RowValue, node: Int, r: Int, d: Int) throws {
        let n = schema.nodes[node]
        switch n.repetition {
        case .repeated:
            let items: [RowValue]
            switch value {
            case .null: items = []
            case .list(let l): items = l
            default: throw ParquetDecodeError("field '\(n.name)' needs a list, got \(value.preview(maxString: 20))")
            }
            if items.isEmpty { emitEmpty(node, r: r, d: d); return }
            for (k, item) in items.enumerated() { try shredDefined(item, node: node, r: k == 0 ? r : n.repLevel, d: n.defLevel) }
        case .optional:
            if value.isNull { emitEmpty(node, r: r, d: d); return }
            try shredDefined(value, node: node, r: r, d: n.defLevel)
        case .required:
            if value.isNull { throw ParquetDecodeError("required field '\(n.name)' is null") }
            try shredDefined(value, node: node, r: r, d: d)
        }
    }

    private func shredDefined(_ value: RowValue, node: Int, r: Int, d: Int) throws {
        let n = schema.nodes[node]
        if n.isLeaf {
            let leaf = pending[n.leafStart]
            leaf.rep.append(UInt8(r))
            leaf.def.append(UInt8(d))
            try leaf.values.appendValue(value, field: n.name)
            return
        }
        if n.isListWrapper {
            guard case .list(let items) = value else {
                throw ParquetDecodeError("field '\(n.name)' needs a list, got \(value.preview(maxString: 20))")
            }
            let rep = n.children[0]
            let elementName = schema.nodes[schema.nodes[rep].children[0]].name
            let wrapped = n.unwrapElement ? items.map { RowValue.record([RowField(name: elementName, value: $0)]) } : items
            try shredField(.list(wrapped), node: rep, r: r, d: d)
            return
        }
        guard case .record = value else {
            throw ParquetDecodeError("field '\(n.name)' needs a struct, got \(value.preview(maxString: 20))")
        }
        for c in n.children { try shredField(value[schema.nodes[c].name] ?? .null, node: c, r: r, d: d) }
    }

    /// A null or empty occurrence: one slot in every leaf below, no value.
    private func emitEmpty(_ node: Int, r: Int, d: Int) {
        let n = schema.nodes[node]
        for leaf in n.leafStart..<n.leafEnd {
            pending[leaf].rep.append(UInt8(r))
            pending[leaf].def.append(UInt8(d))
        }
    }

    // MARK: encoding

    private func write(_ bytes: [UInt8]) throws {
        do { try handle.write(contentsOf: Data(bytes)) } catch {
            throw ParquetError(file: url.path, "write failed: \(error.localizedDescription)")
        }
        offset += bytes.count
    }

    private func flushRowGroup() throws {
        var chunks: [ColumnChunkMeta] = []
        var pageLocations: [[PageLocation]] = []
        var groupBytes: Int64 = 0
        for (leafIndex, leaf) in pending.enumerated() {
            let node = schema.nodes[schema.leaves[leafIndex]]
            let chunkStart = offset
            var uncompressedTotal = 0
            // Page boundaries at row starts, once the page's values pass `pageValueBytes`.
            var slot = 0, value = 0, rowsBefore = 0
            let slots = leaf.rep.count
            var locations: [PageLocation] = []
            while slot < slots {
                let pageSlotStart = slot, pageValueStart = value
                let pageOffset = offset
                var bytes = 0
                repeat {
                    if Int(leaf.def[slot]) == node.defLevel { bytes += leaf.values.plainSize(value); value += 1 }
                    slot += 1
                } while slot < slots && !(leaf.rep[slot] == 0 && bytes >= pageValueBytes)
                var body: [UInt8] = []
                if node.repLevel > 0 { appendLevels(leaf.rep[pageSlotStart..<slot], maxLevel: node.repLevel, to: &body) }
                if node.defLevel > 0 { appendLevels(leaf.def[pageSlotStart..<slot], maxLevel: node.defLevel, to: &body) }
                leaf.values.appendPlainEncoded(pageValueStart..<value, to: &body)
                let stored = try compress(body)
                let header = PageHeader(type: PageType.dataPage.rawValue, uncompressedSize: Int32(body.count),
                                        compressedSize: Int32(stored.count),
                                        dataPage: DataPageHeader(numValues: Int32(slot - pageSlotStart), encoding: ParquetEncoding.plain.rawValue,
                                                                 defEncoding: ParquetEncoding.rle.rawValue, repEncoding: ParquetEncoding.rle.rawValue),
                                        dictionaryPage: nil, dataPageV2: nil).encode()
                try write(header)
                try write(stored)
                uncompressedTotal += header.count + body.count
                // The page index: pages begin at row starts, so random reads can go straight to one.
                locations.append(PageLocation(offset: Int64(pageOffset), compressedPageSize: Int32(offset - pageOffset),
                                              firstRowIndex: Int64(rowsBefore)))
                rowsBefore += leaf.rep[pageSlotStart..<slot].reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            }
            let path = pathInSchema(schema.leaves[leafIndex])
            let compressedTotal = offset - chunkStart
            chunks.append(ColumnChunkMeta(filePath: nil, meta: ColumnMetaData(
                type: node.physicalType!, encodings: [ParquetEncoding.plain.rawValue, ParquetEncoding.rle.rawValue],
                pathInSchema: path, codec: compression.rawValue, numValues: Int64(slots),
                totalUncompressedSize: Int64(uncompressedTotal), totalCompressedSize: Int64(compressedTotal),
                dataPageOffset: Int64(chunkStart), dictionaryPageOffset: nil)))
            groupBytes += Int64(uncompressedTotal)
            pageLocations.append(locations)
        }
        // Offset indexes after the group's chunks (readers find them through the footer's offsets).
        for (c, locations) in pageLocations.enumerated() {
            let index = encodeOffsetIndex(locations)
            chunks[c].offsetIndexOffset = Int64(offset)
            chunks[c].offsetIndexLength = Int32(index.count)
            try write(index)
        }
        rowGroups.append(RowGroupMeta(columns: chunks, totalByteSize: groupBytes, numRows: Int64(pendingRows)))
        let s = schema
        pending = schema.leaves.map { ShreddedLeaf(s.nodes[$0].physicalType!) }
        pendingRows = 0
    }

    private func pathInSchema(_ node: Int) -> [String] {
        var path: [String] = []
        var n: Int? = node
        while let i = n, i != 0 { path.append(schema.nodes[i].name); n = schema.nodes[i].parent }
        return path.reversed()
    }

    /// v1 levels: a 4-byte length, then the hybrid encoding written as RLE runs only.
    private func appendLevels(_ levels: ArraySlice<UInt8>, maxLevel: Int, to out: inout [UInt8]) {
        var runs: [UInt8] = []
        let byteWidth = (bitWidth(maxLevel) + 7) / 8
        var i = levels.startIndex
        while i < levels.endIndex {
            let v = levels[i]
            var j = i + 1
            while j < levels.endIndex && levels[j] == v { j += 1 }
            var header = UInt64(j - i) << 1
            while header >= 0x80 { runs.append(UInt8(header & 0x7f) | 0x80); header >>= 7 }
            runs.append(UInt8(header))
            runs.append(v)
            for _ in 1..<max(byteWidth, 1) { runs.append(0) }
            i = j
        }
        let n = UInt32(runs.count)
        out += [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)]
        out += runs
    }

    private func compress(_ body: [UInt8]) throws -> [UInt8] {
        guard compression == .snappy else { return body }
        var length = snappy_max_compressed_length(body.count)
        var out = [UInt8](repeating: 0, count: length)
        let status = body.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                snappy_compress(src.baseAddress?.assumingMemoryBound(to: CChar.self), body.count,
                                dst.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
        }
        guard status == SNAPPY_OK else { throw ParquetError(file: url.path, "snappy compression failed") }
        out.removeSubrange(length...)
        return out
    }
}

extension LeafValueStore {
    /// Appends one value (type-checked against the column).
    func appendValue(_ v: RowValue, field: String) throws {
        func bad() -> ParquetDecodeError { ParquetDecodeError("field '\(field)' (\(physical)) cannot hold \(v.preview(maxString: 20))") }
        switch (kind, v) {
        case (.boolean, .bool(let b)): bools.append(b)
        case (.int32, .int(let i)):
            guard let x = Int32(exactly: i) else { throw bad() }
            int32s.append(x)
        case (.int64, .int(let i)): int64s.append(i)
        case (.float, _):
            guard let x = v.double else { throw bad() }
            floats.append(Float(x))
        case (.double, _):
            guard let x = v.double else { throw bad() }
            doubles.append(x)
        case (.binary, .string(let s)): bytes.append(contentsOf: s.utf8); offsets.append(bytes.count)
        case (.binary, .bytes(let d)): bytes.append(contentsOf: d); offsets.append(bytes.count)
        default: throw bad()
        }
    }

    func plainSize(_ k: Int) -> Int {
        switch kind {
        case .boolean: return 1
        case .int32, .float: return 4
        case .int64, .double: return 8
        case .binary: return 4 + offsets[k + 1] - offsets[k]
        }
    }

    func appendPlainEncoded(_ range: Range<Int>, to out: inout [UInt8]) {
        func le<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) } }
        switch kind {
        case .boolean:
            var byte: UInt8 = 0, n = 0
            for k in range {
                if bools[k] { byte |= 1 << UInt8(n) }
                n += 1
                if n == 8 { out.append(byte); byte = 0; n = 0 }
            }
            if n > 0 { out.append(byte) }
        case .int32: for k in range { le(int32s[k]) }
        case .int64: for k in range { le(int64s[k]) }
        case .float: for k in range { le(floats[k].bitPattern) }
        case .double: for k in range { le(doubles[k].bitPattern) }
        case .binary:
            for k in range {
                le(UInt32(offsets[k + 1] - offsets[k]))
                out.append(contentsOf: bytes[offsets[k]..<offsets[k + 1]])
            }
        }
    }
}
