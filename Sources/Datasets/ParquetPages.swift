import Foundation

// The page-level read path: a random row decodes only the data pages that hold it, not its row group.
//
// Per column chunk the reader first builds a page map (where each data page lies and which rows start
// in it), once, from the cheapest source available:
//  - the OffsetIndex of the footer's page index (pyarrow `write_page_index=True`, SFTDeck's writer):
//    offsets and first rows of every page, no page is touched; such pages begin at row boundaries;
//  - otherwise the page headers, read one by one without their bodies: a flat column has one slot per
//    row, so v1 `num_values` counts rows; v2 headers carry `num_rows` and v2 pages begin at row
//    boundaries;
//  - a repeated column in v1 pages without an index (pyarrow's default): a v1 page may begin in the
//    middle of a row, and only its repetition levels tell, so each page is decompressed once and its
//    levels counted (rows begin at repetition level 0). The values are not decoded.
// A row then needs the run of pages from the one where it begins through those that continue it.

/// Where the data pages of one column chunk lie, and which rows begin in each.
struct ColumnChunkPages: Equatable {
    struct Page: Equatable {
        /// File offset of the page header and the page's size with its header.
        var offset: Int
        var length: Int
        /// Rows that began in earlier pages of the chunk.
        var rowsBefore: Int
        /// The page's first slot begins a row (false: it continues the row begun before it).
        var beginsRow: Bool
    }
    var dictionaryOffset: Int?
    var pages: [Page]
    var rowCount: Int

    /// Pages `first ... last` hold every slot of row `r` (0-based in the row group); the decoded run's
    /// local row 0 is `pages[first].rowsBefore`, and it starts `rowsStarted` rows.
    func span(ofRow r: Int) -> (first: Int, last: Int, rowsStarted: Int)? {
        // The last page that begins a row at or before r.
        var lo = 0, hi = pages.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pages[mid].rowsBefore <= r { lo = mid + 1 } else { hi = mid }
        }
        // Back to a page that begins a row; past pages that begin no row (writers emit empty pages, and
        // a page may hold only the middle of a long row), so the run starts where row r's predecessor
        // rows are whole.
        var first = lo - 1
        while first > 0, !pages[first].beginsRow || pages[first - 1].rowsBefore == pages[first].rowsBefore { first -= 1 }
        guard first >= 0 else { return nil }
        // Then every page that starts inside rows up to r, or continues row r.
        var last = first
        while last + 1 < pages.count {
            let next = pages[last + 1]
            if next.rowsBefore <= r || (next.rowsBefore == r + 1 && !next.beginsRow) { last += 1 } else { break }
        }
        let end = last + 1 < pages.count ? pages[last + 1].rowsBefore : rowCount
        return (first, last, end - pages[first].rowsBefore)
    }
}

/// A small least-recently-used cache of decoded page runs and dictionaries, bounded by bytes and count,
/// so scrolling through neighbouring rows decodes each page once.
final class ParquetPageCache {
    enum Key: Hashable {
        case run(group: Int, leaf: Int, first: Int, last: Int)
        case dictionary(group: Int, leaf: Int)
        /// A v1 page the page-map scan decompressed (to count its rows): kept so decoding it next is
        /// not a second decompression.
        case page(group: Int, leaf: Int, page: Int)
    }
    enum Item {
        case run(DecodedLeafColumn)
        case dictionary(LeafValueStore)
        case page(PageHeader, [UInt8])
    }
    private var items: [Key: (item: Item, bytes: Int, tick: Int)] = [:]
    private var tick = 0
    private(set) var bytes = 0
    let byteBudget: Int
    let maxItems: Int

    init(byteBudget: Int, maxItems: Int) {
        self.byteBudget = byteBudget
        self.maxItems = maxItems
    }

    var count: Int { items.count }

    func get(_ key: Key) -> Item? {
        guard let e = items[key] else { return nil }
        tick += 1
        items[key] = (e.item, e.bytes, tick)
        return e.item
    }

    func put(_ key: Key, _ item: Item, bytes cost: Int) {
        tick += 1
        if let old = items[key] { bytes -= old.bytes }
        items[key] = (item, cost, tick)
        bytes += cost
        // Evict the least recently used, but never the item just added (a single page may exceed the budget).
        while items.count > 1, bytes > byteBudget || items.count > maxItems {
            guard let victim = items.min(by: { $0.value.tick < $1.value.tick }) else { break }
            bytes -= victim.value.bytes
            items[victim.key] = nil
        }
    }

    func remove(_ key: Key) {
        if let e = items.removeValue(forKey: key) { bytes -= e.bytes }
    }

    func removeAll() {
        items = [:]
        bytes = 0
    }
}

extension ParquetFile {
    /// Builds the page map of a column chunk from its OffsetIndex when present (and `useOffsetIndex`),
    /// else from page headers.
    /// `keepPages` receives the v1 pages the scan decompresses (index, header, decompressed body).
    func buildPageMap(group: Int, leaf: Int, useOffsetIndex: Bool = true,
                      keepPages: ((Int, PageHeader, [UInt8]) -> Void)? = nil) throws -> ColumnChunkPages {
        let rg = metadata.rowGroups[group]
        let cc = rg.columns[leaf]
        let m = cc.meta
        let chunkStart = Int(m.dictionaryPageOffset.flatMap { $0 > 0 ? min($0, m.dataPageOffset) : nil } ?? m.dataPageOffset)
        let chunkEnd = chunkStart + Int(m.totalCompressedSize)
        let rows = Int(rg.numRows)
        let maxRep = schema.nodes[schema.leaves[leaf]].repLevel
        if useOffsetIndex, let ioff = cc.offsetIndexOffset, let ilen = cc.offsetIndexLength {
            return try pageMapFromOffsetIndex(offset: Int(ioff), length: Int(ilen), chunkStart: chunkStart, chunkEnd: chunkEnd, rows: rows)
        }
        var map = ColumnChunkPages(dictionaryOffset: nil, pages: [], rowCount: rows)
        var pos = chunkStart
        var rowsSeen = 0, slotsSeen = 0
        var scratch: [UInt32] = []
        while pos < chunkEnd, slotsSeen < Int(m.numValues) {
            let (header, headerLength) = try readPageHeader(at: pos, limit: chunkEnd)
            let length = headerLength + Int(header.compressedSize)
            guard header.compressedSize >= 0, length <= chunkEnd - pos else {
                throw ParquetDecodeError("page of \(header.compressedSize) bytes at file byte \(pos) runs past the column chunk")
            }
            switch PageType(rawValue: header.type) {
            case .dictionaryPage:
                guard map.pages.isEmpty, map.dictionaryOffset == nil else {
                    throw ParquetDecodeError("a dictionary page after the first page of the column chunk")
                }
                map.dictionaryOffset = pos
            case .dataPage:
                guard let dh = header.dataPage, dh.numValues >= 0, Int(dh.numValues) <= maxValuesPerPage else {
                    throw ParquetDecodeError("data page at file byte \(pos) without a valid header")
                }
                let n = Int(dh.numValues)
                var started = n, begins = n > 0
                if maxRep > 0 {
                    // Only the repetition levels tell where rows begin in a v1 page; they lead its body.
                    let body = try readBytes(at: pos + headerLength, count: Int(header.compressedSize))
                    let data = try body.withUnsafeBytes {
                        try decompress($0, codec: m.codec, uncompressedSize: Int(header.uncompressedSize))
                    }
                    if let keep = keepPages {
                        keep(map.pages.count, header, data)
                    }
                    (started, begins) = try data.withUnsafeBytes { buf in
                        let len = try v1LevelStreamLength(buf, at: 0, encoding: dh.repEncoding)
                        scratch.removeAll(keepingCapacity: true)
                        try decodeHybrid(UnsafeRawBufferPointer(rebasing: buf[4..<(4 + len)]), bitWidth: bitWidth(maxRep),
                                         count: n, into: &scratch)
                        return (scratch.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }, scratch.first == 0)
                    }
                }
                map.pages.append(.init(offset: pos, length: length, rowsBefore: rowsSeen, beginsRow: begins))
                rowsSeen += started
                slotsSeen += n
            case .dataPageV2:
                guard let dh = header.dataPageV2, dh.numValues >= 0, dh.numRows >= 0, Int(dh.numValues) <= maxValuesPerPage else {
                    throw ParquetDecodeError("data page v2 at file byte \(pos) without a valid header")
                }
                // v2 pages begin at row boundaries (parquet.thrift, DataPageHeaderV2.num_rows).
                map.pages.append(.init(offset: pos, length: length, rowsBefore: rowsSeen, beginsRow: dh.numRows > 0))
                rowsSeen += Int(dh.numRows)
                slotsSeen += Int(dh.numValues)
            case .indexPage, .none:
                break
            }
            pos += length
        }
        guard rowsSeen == rows else {
            throw ParquetDecodeError("the column's pages begin \(rowsSeen) rows, the row group holds \(rows)")
        }
        return map
    }

    private func pageMapFromOffsetIndex(offset: Int, length: Int, chunkStart: Int, chunkEnd: Int, rows: Int) throws -> ColumnChunkPages {
        guard offset >= 4, length > 0, length <= fileSize, offset <= fileSize - length else {
            throw ParquetDecodeError("offset index of \(length) bytes at \(offset) lies outside the file")
        }
        let bytes = try readBytes(at: offset, count: length)
        let locations: [PageLocation]
        do {
            locations = try bytes.withUnsafeBytes { buf in
                var r = ThriftCompactReader(buf)
                return try decodeOffsetIndex(thrift: try r.readStruct())
            }
        } catch { throw ParquetDecodeError("corrupt offset index: \(error)") }
        var map = ColumnChunkPages(dictionaryOffset: nil, pages: [], rowCount: rows)
        var previousEnd = chunkStart
        for (k, l) in locations.enumerated() {
            let o = Int(l.offset), n = Int(l.compressedPageSize), first = Int(l.firstRowIndex)
            guard o >= previousEnd, n > 0, o <= chunkEnd - n else {
                throw ParquetDecodeError("offset index page \(k) (\(n) bytes at \(o)) lies outside its column chunk or overlaps another")
            }
            // Non-decreasing: pyarrow writes an empty page now and then, which shares its first row.
            guard k > 0 ? first >= map.pages[k - 1].rowsBefore : first == 0, first < max(rows, 1) else {
                throw ParquetDecodeError("offset index page \(k) begins at row \(first), out of order for \(rows) rows")
            }
            map.pages.append(.init(offset: o, length: n, rowsBefore: first, beginsRow: true))
            previousEnd = o + n
        }
        guard !map.pages.isEmpty || rows == 0 else { throw ParquetDecodeError("offset index lists no pages for \(rows) rows") }
        // A dictionary page, when there is one, lies before the first data page.
        if let firstPage = map.pages.first?.offset, chunkStart < firstPage {
            let (header, _) = try readPageHeader(at: chunkStart, limit: firstPage)
            if PageType(rawValue: header.type) == .dictionaryPage { map.dictionaryOffset = chunkStart }
        }
        return map
    }

    /// Reads `count` bytes at a file offset (bounded by the file's size).
    func readBytes(at offset: Int, count: Int) throws -> Data {
        guard offset >= 0, count >= 0, offset <= fileSize - count else {
            throw ParquetDecodeError("\(count) bytes at \(offset) lie outside the file")
        }
        let d: Data
        do {
            try handle.seek(toOffset: UInt64(offset))
            d = try handle.read(upToCount: count) ?? Data()
        } catch { throw ParquetDecodeError("read failed: \(error.localizedDescription)") }
        guard d.count == count else { throw ParquetDecodeError("file ends early (wanted \(count) bytes at \(offset))") }
        return d
    }

    /// Reads one page header at `offset` without its body: a small window first, widened while the
    /// header does not parse in it (pyarrow's page statistics hold up to 4 KiB min and max values, and a
    /// cut-off binary field reads as malformed, not only as truncated), never past `limit`.
    func readPageHeader(at offset: Int, limit: Int) throws -> (PageHeader, Int) {
        let most = min(limit - offset, 1 << 24)
        var window = min(1024, most)
        while true {
            guard window > 0 else { throw ParquetDecodeError("page header at file byte \(offset) lies past the column chunk") }
            let bytes = try readBytes(at: offset, count: window)
            do {
                return try bytes.withUnsafeBytes { buf in
                    var r = ThriftCompactReader(buf)
                    let h = try PageHeader(thrift: try r.readStruct())
                    return (h, r.position)
                }
            } catch where window < most {
                window = min(window * 8, most)
            } catch {
                throw ParquetDecodeError("bad page header at file byte \(offset): \(error)")
            }
        }
    }

    /// The decoded dictionary of a column chunk (cached), nil when it has none.
    func dictionary(group: Int, leaf: Int, map: ColumnChunkPages) throws -> LeafValueStore? {
        guard let at = map.dictionaryOffset else { return nil }
        if case .dictionary(let d)? = pageCache.get(.dictionary(group: group, leaf: leaf)) { return d }
        let m = metadata.rowGroups[group].columns[leaf].meta
        let end = map.pages.first?.offset ?? (Int(m.dataPageOffset) > at ? Int(m.dataPageOffset) : at + Int(m.totalCompressedSize))
        let (header, headerLength) = try readPageHeader(at: at, limit: end)
        guard header.compressedSize >= 0, Int(header.compressedSize) <= end - at - headerLength else {
            throw ParquetDecodeError("dictionary page of \(header.compressedSize) bytes runs past the column chunk")
        }
        let body = try readBytes(at: at + headerLength, count: Int(header.compressedSize))
        let typeLength = Int(schema.nodes[schema.leaves[leaf]].typeLength ?? 0)
        let dict = try body.withUnsafeBytes {
            try DecodedLeafColumn.decodeDictionaryPage(header: header, body: $0, meta: m, typeLength: typeLength)
        }
        pageCache.put(.dictionary(group: group, leaf: leaf), .dictionary(dict), bytes: dict.approximateBytes)
        return dict
    }

    /// The decoded run of pages holding row `r` of a row group's leaf column (cached), and the row's
    /// index inside that run.
    func decodedRun(group: Int, leaf: Int, row r: Int) throws -> (DecodedLeafColumn, Int) {
        let map: ColumnChunkPages
        if let cached = pageMaps[PageMapKey(group: group, leaf: leaf)] { map = cached } else {
            // The scan's decompressed pages go to the cache, least recent first out: the row's own
            // pages, scanned last, are then decoded without decompressing them again.
            map = try buildPageMap(group: group, leaf: leaf) { k, header, data in
                self.pageCache.put(.page(group: group, leaf: leaf, page: k), .page(header, data), bytes: data.count)
            }
            pageMaps[PageMapKey(group: group, leaf: leaf)] = map
        }
        guard let span = map.span(ofRow: r) else { throw ParquetDecodeError("no page begins row \(r)") }
        let local = r - map.pages[span.first].rowsBefore
        let key = ParquetPageCache.Key.run(group: group, leaf: leaf, first: span.first, last: span.last)
        if case .run(let col)? = pageCache.get(key) { return (col, local) }

        let m = metadata.rowGroups[group].columns[leaf].meta
        let dictionary = try self.dictionary(group: group, leaf: leaf, map: map)
        let typeLength = Int(schema.nodes[schema.leaves[leaf]].typeLength ?? 0)
        let col = try DecodedLeafColumn.empty(meta: m, schema: schema, leaf: leaf)
        var scratch: [UInt32] = []
        for p in span.first...span.last {
            let pageKey = ParquetPageCache.Key.page(group: group, leaf: leaf, page: p)
            if case .page(let header, let data)? = pageCache.get(pageKey) {
                try data.withUnsafeBytes { empty in
                    _ = try col.appendDataPage(header: header, body: UnsafeRawBufferPointer(rebasing: empty[0..<0]), meta: m,
                                               dictionary: dictionary, typeLength: typeLength, scratch: &scratch, decompressedV1: data)
                }
                pageCache.remove(pageKey)   // decoded now: the run holds its values
                continue
            }
            let bytes = try readBytes(at: map.pages[p].offset, count: map.pages[p].length)
            try bytes.withUnsafeBytes { buf in
                var reader = ThriftCompactReader(buf)
                let header: PageHeader
                do { header = try PageHeader(thrift: try reader.readStruct()) } catch {
                    throw ParquetDecodeError("bad page header at file byte \(map.pages[p].offset): \(error)")
                }
                let bodyStart = reader.position
                guard header.compressedSize >= 0, Int(header.compressedSize) <= buf.count - bodyStart else {
                    throw ParquetDecodeError("page of \(header.compressedSize) bytes runs past its page location")
                }
                let body = UnsafeRawBufferPointer(rebasing: buf[bodyStart..<(bodyStart + Int(header.compressedSize))])
                guard try col.appendDataPage(header: header, body: body, meta: m, dictionary: dictionary,
                                             typeLength: typeLength, scratch: &scratch) else {
                    throw ParquetDecodeError("the page at file byte \(map.pages[p].offset) is not a data page")
                }
            }
        }
        try col.indexRows(expected: span.rowsStarted)
        pageCache.put(key, .run(col), bytes: col.approximateBytes)
        return (col, local)
    }
}

struct PageMapKey: Hashable { var group: Int; var leaf: Int }
