import Foundation

/// A parquet file opened lazily: `init` reads only the footer; `row(_:)` decodes, for each needed column,
/// only the data pages that hold the row (ParquetPages.swift), and keeps recently decoded pages in a
/// small LRU cache, so neighbouring rows are cheap.
///
/// Not thread-safe: one reader per thread (the cache and file handle are shared state).
public final class ParquetFile {
    public let url: URL
    public let schema: ParquetSchema
    public let rowCount: Int
    public let fileSize: Int
    public let createdBy: String?
    /// Key/value metadata of the footer (pyarrow stores its `ARROW:schema` and `huggingface` here).
    public let keyValueMetadata: [String: String]
    let metadata: FileMetaData
    /// First row of each row group, plus the total at the end.
    let rowGroupStarts: [Int]
    let handle: FileHandle
    /// Page maps of the column chunks read so far (a few integers per page).
    var pageMaps: [PageMapKey: ColumnChunkPages] = [:]
    /// Decoded page runs and dictionaries, least recently used dropped first.
    let pageCache: ParquetPageCache
    /// Bytes the page cache may hold (default 128 MiB; one run larger than this is still kept alone).
    public var pageCacheBytes: Int { pageCache.byteBudget }

    public var rowGroupCount: Int { metadata.rowGroups.count }
    public func rowsInGroup(_ g: Int) -> Int { Int(metadata.rowGroups[g].numRows) }
    public var compressions: [String] {
        Array(Set(metadata.rowGroups.flatMap { $0.columns.map { ParquetCompression(rawValue: $0.meta.codec).map { "\($0)" } ?? "#\($0.meta.codec)" } })).sorted()
    }

    private var name: String { url.path }
    private func fail(_ problem: String) -> ParquetError { ParquetError(file: url.path, problem) }

    public init(url: URL, pageCacheBytes: Int = 128 << 20) throws {
        self.url = url
        pageCache = ParquetPageCache(byteBudget: pageCacheBytes, maxItems: 512)
        let path = url.path
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw ParquetError(file: path, FileManager.default.fileExists(atPath: path) ? "cannot be opened for reading" : "no such file")
        }
        handle = h
        // The handle's end, not the path's attributes: Hub cache snapshots are symbolic links to blobs.
        let size = Int((try? h.seekToEnd()) ?? 0)
        fileSize = size
        func readAt(_ offset: Int, _ count: Int) throws -> [UInt8] {
            try h.seek(toOffset: UInt64(offset))
            let d = try h.read(upToCount: count) ?? Data()
            guard d.count == count else { throw ParquetError(file: path, "file ends early (wanted \(count) bytes at \(offset))") }
            return [UInt8](d)
        }
        guard size >= 12 else { throw ParquetError(file: path, "not a parquet file (only \(size) bytes)") }
        let head = try readAt(0, 4)
        let tail = try readAt(size - 8, 8)
        guard head == Array("PAR1".utf8) else {
            throw ParquetError(file: path, head == Array("PARE".utf8) ? "encrypted parquet files are not supported" : "not a parquet file (bad magic at the start)")
        }
        guard Array(tail[4..<8]) == Array("PAR1".utf8) else {
            throw ParquetError(file: path, "bad magic at the end: the file is truncated or not parquet")
        }
        let footerLength = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLength > 0, footerLength <= size - 12 else {
            throw ParquetError(file: path, "footer length \(footerLength) does not fit in a file of \(size) bytes")
        }
        let footer = try readAt(size - 8 - footerLength, footerLength)
        let meta: FileMetaData
        do {
            meta = try footer.withUnsafeBytes { buf -> FileMetaData in
                var r = ThriftCompactReader(buf)
                return try FileMetaData(thrift: try r.readStruct())
            }
        } catch {
            throw ParquetError(file: path, "corrupt footer: \(error)")
        }
        metadata = meta
        do { schema = try ParquetSchema(elements: meta.schema) } catch {
            throw ParquetError(file: path, "bad schema: \(error)")
        }
        var starts = [0]
        for (g, rg) in meta.rowGroups.enumerated() {
            guard rg.numRows >= 0, rg.numRows <= Int64(Int32.max) else {
                throw ParquetError(file: path, "row group \(g) claims \(rg.numRows) rows")
            }
            guard rg.columns.count == schema.leaves.count else {
                throw ParquetError(file: path, "row group \(g) has \(rg.columns.count) columns, the schema \(schema.leaves.count)")
            }
            for (c, cc) in rg.columns.enumerated() {
                if cc.filePath != nil { throw ParquetError(file: path, "column chunks in other files are not supported") }
                let m = cc.meta
                let start = m.dictionaryPageOffset.flatMap { $0 > 0 ? min($0, m.dataPageOffset) : nil } ?? m.dataPageOffset
                guard start >= 4, m.totalCompressedSize >= 0, start <= Int64(size), m.totalCompressedSize <= Int64(size) - start else {
                    throw ParquetError(file: path, "row group \(g) column \(c) (\(m.pathInSchema.joined(separator: "."))) lies outside the file")
                }
            }
            starts.append(starts[starts.count - 1] + Int(rg.numRows))
        }
        rowGroupStarts = starts
        rowCount = Int(meta.numRows)
        guard rowCount == starts[starts.count - 1] else {
            throw ParquetError(file: path, "footer says \(rowCount) rows, its row groups hold \(starts[starts.count - 1])")
        }
        createdBy = meta.createdBy
        var kv: [String: String] = [:]
        for (k, v) in meta.keyValue { kv[k] = v ?? "" }
        keyValueMetadata = kv
    }

    deinit { try? handle.close() }

    /// The pages of one column chunk as `KIND/ENCODING` strings (`DICT/PLAIN`, `DATA/RLE_DICTIONARY`,
    /// `DATA_V2/PLAIN`), read from the page headers only: for the browser's file view and for tests.
    public func pageSummary(rowGroup g: Int, column leaf: Int) throws -> [String] {
        guard g >= 0, g < rowGroupCount, leaf >= 0, leaf < schema.leaves.count else { throw fail("no row group \(g) column \(leaf)") }
        let m = metadata.rowGroups[g].columns[leaf].meta
        let start = m.dictionaryPageOffset.flatMap { $0 > 0 ? min($0, m.dataPageOffset) : nil } ?? m.dataPageOffset
        try handle.seek(toOffset: UInt64(start))
        let bytes = try handle.read(upToCount: Int(m.totalCompressedSize)) ?? Data()
        return try bytes.withUnsafeBytes { buf in
            var out: [String] = []
            var pos = 0
            while pos < buf.count {
                var r = ThriftCompactReader(buf, position: pos)
                let h: PageHeader
                do { h = try PageHeader(thrift: try r.readStruct()) } catch { throw fail("bad page header: \(error)") }
                pos = r.position + Int(max(h.compressedSize, 0))
                switch PageType(rawValue: h.type) {
                case .dictionaryPage: out.append("DICT/" + encodingName(h.dictionaryPage?.encoding ?? -1))
                case .dataPage: out.append("DATA/" + encodingName(h.dataPage?.encoding ?? -1))
                case .dataPageV2: out.append("DATA_V2/" + encodingName(h.dataPageV2?.encoding ?? -1))
                default: out.append("OTHER")
                }
            }
            return out
        }
    }

    /// Drops the decoded pages (their memory), e.g. when a reader moves on to another shard. The page
    /// maps stay: a few integers per page, and rebuilding one can mean decompressing a whole chunk (v1
    /// pages of a repeated column without a page index).
    public func releaseCache() {
        pageCache.removeAll()
    }

    /// Decoded page runs and dictionaries held now, and their bytes (for tests and the inspector).
    public var pageCacheUsage: (items: Int, bytes: Int) { (pageCache.count, pageCache.bytes) }

    /// Row group holding row `i`, and the row's index inside it.
    func locate(_ i: Int) -> (group: Int, row: Int) {
        var lo = 0, hi = rowGroupStarts.count - 1   // binary search over starts
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if rowGroupStarts[mid] <= i { lo = mid } else { hi = mid }
        }
        return (lo, i - rowGroupStarts[lo])
    }

    /// Row `i` with every top-level field.
    public func row(_ i: Int) throws -> RowValue { try row(i, fields: nil) }

    /// Row `i` with only the named top-level fields (nil: all), in schema order.
    public func row(_ i: Int, fields names: [String]?) throws -> RowValue {
        guard i >= 0, i < rowCount else { throw fail("row \(i) out of range (\(rowCount) rows)") }
        let fieldNodes: [Int]
        if let names {
            fieldNodes = try names.map { n in
                guard let f = schema.topLevelField(n) else {
                    throw fail("no column '\(n)' (columns: \(schema.topLevelNames.joined(separator: ", ")))")
                }
                return f
            }
        } else {
            fieldNodes = schema.root.children
        }
        var leaves: [Int] = []
        for f in fieldNodes { leaves.append(contentsOf: schema.nodes[f].leafStart..<schema.nodes[f].leafEnd) }
        let (group, r) = locate(i)
        var columns = [DecodedLeafColumn?](repeating: nil, count: schema.leaves.count)
        var localRows = [Int](repeating: 0, count: schema.leaves.count)
        for leaf in leaves {
            do {
                (columns[leaf], localRows[leaf]) = try decodedRun(group: group, leaf: leaf, row: r)
            } catch {
                let path = metadata.rowGroups[group].columns[leaf].meta.pathInSchema.joined(separator: ".")
                throw fail("row group \(group), column \(path): \(error)")
            }
        }
        var assembler = RowAssembler(schema: schema, columns: columns, rows: localRows)
        do { return try assembler.assemble(fields: fieldNodes, row: i) } catch {
            throw fail("row \(i): \(error)")
        }
    }
}
