import XCTest
@testable import Datasets

/// The page-level random-row path (ParquetPages.swift): page maps from the OffsetIndex and from page
/// headers, runs of pages decoded per row, the LRU page cache. Expected rows are pyarrow's reading
/// (gen_parquet.py); every row of each multi-page fixture is compared in shuffled order.
final class ParquetPageReadTests: XCTestCase {
    let multiPage = ["llava_pages_index_v1", "llava_pages_noindex_v1", "llava_pages_index_v2", "types_pages_index_v1",
                     "llava_smallpages_v1", "llava_smallpages_v2", "types_v1_gzip_smallpages", "llava_dict_fallback",
                     "binary_stats_pages"]

    private func shuffled(_ n: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<n)
        var state = seed
        for i in stride(from: n - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(i, Int((state >> 33) % UInt64(i + 1)))
        }
        return order
    }

    /// Every row, in shuffled order, with a cache too small to keep anything but the last run (so every
    /// read decodes its pages again) and with the default cache; both equal pyarrow's rows exactly.
    func testEveryRowInShuffledOrderMatchesPyarrow() throws {
        for name in multiPage {
            let expected = try expectedRows(name)
            for budget in [1, 128 << 20] {
                let file = try ParquetFile(url: fixturesURL("parquet/\(name).parquet"), pageCacheBytes: budget)
                for i in shuffled(file.rowCount, seed: UInt64(budget)) + [0, file.rowCount - 1, 0] {
                    let got = canonical(try file.row(i))
                    if got != expected[i] { XCTFail("\(name) (cache \(budget)) row \(i):\n got  \(got.preview())\n want \(expected[i].preview())") }
                }
                if budget == 1 { XCTAssertEqual(file.pageCacheUsage.items, 1, name) }
            }
        }
    }

    /// The fixtures exercise what they are meant to: many pages per chunk, a page index or none, and
    /// (without the index) v1 pages of repeated columns that begin inside a row.
    func testFixturesHaveManyPagesAndContinuations() throws {
        for name in ["llava_pages_index_v1", "llava_pages_index_v2", "types_pages_index_v1"] {
            let file = try ParquetFile(url: fixturesURL("parquet/\(name).parquet"))
            XCTAssertTrue(file.metadata.rowGroups.allSatisfy { $0.columns.allSatisfy { $0.offsetIndexOffset != nil } }, name)
        }
        let file = try ParquetFile(url: fixturesURL("parquet/llava_pages_noindex_v1.parquet"))
        XCTAssertTrue(file.metadata.rowGroups.allSatisfy { $0.columns.allSatisfy { $0.offsetIndexOffset == nil } })
        var continuations = 0, maxPages = 0
        for g in 0..<file.rowGroupCount {
            for leaf in 0..<file.schema.leaves.count {
                let map = try file.buildPageMap(group: g, leaf: leaf)
                continuations += map.pages.filter { !$0.beginsRow }.count
                maxPages = max(maxPages, map.pages.count)
            }
        }
        XCTAssertGreaterThan(continuations, 0, "no v1 page begins inside a row: the fixture does not test continuations")
        XCTAssertGreaterThan(maxPages, 4)
    }

    /// The OffsetIndex and a scan of the page headers give the same page map (two independent sources).
    func testOffsetIndexAgreesWithHeaderScan() throws {
        for name in ["llava_pages_index_v1", "llava_pages_index_v2", "types_pages_index_v1"] {
            let file = try ParquetFile(url: fixturesURL("parquet/\(name).parquet"))
            for g in 0..<file.rowGroupCount {
                for leaf in 0..<file.schema.leaves.count {
                    let indexed = try file.buildPageMap(group: g, leaf: leaf)
                    let scanned = try file.buildPageMap(group: g, leaf: leaf, useOffsetIndex: false)
                    // (Whether an empty page "begins a row" only the header scan can tell; compare the rest.)
                    XCTAssertEqual(indexed.pages.map { [$0.offset, $0.length, $0.rowsBefore] },
                                   scanned.pages.map { [$0.offset, $0.length, $0.rowsBefore] }, "\(name) group \(g) leaf \(leaf)")
                    XCTAssertEqual(indexed.dictionaryOffset, scanned.dictionaryOffset)
                }
            }
        }
    }

    /// One row decodes only the run of pages holding it, not its column chunk.
    func testOneRowDecodesOnlyItsPages() throws {
        for name in ["llava_pages_index_v1", "llava_pages_noindex_v1"] {
            let file = try ParquetFile(url: fixturesURL("parquet/\(name).parquet"))
            let leaf = file.schema.leaves.firstIndex { file.schema.nodes[$0].name == "text" }!
            let (run, local) = try file.decodedRun(group: 0, leaf: leaf, row: 13)
            let chunkSlots = Int(file.metadata.rowGroups[0].columns[leaf].meta.numValues)
            XCTAssertLessThan(run.slotCount * 3, chunkSlots, name)
            XCTAssertLessThan(local, run.rowSlotStart.count - 1)
            // The cached run serves the row again (same object).
            let (again, _) = try file.decodedRun(group: 0, leaf: leaf, row: 13)
            XCTAssertTrue(run === again)
        }
    }

    /// SFTDeck's writer records an OffsetIndex that agrees with its pages; rows read back through it.
    func testWriterWritesOffsetIndex() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-pq-index-\(getpid()).parquet")
        defer { try? FileManager.default.removeItem(at: url) }
        let rows = sampleLlavaRows(30)
        let w = try ParquetWriter(url: url, fields: ParquetField.llavaSchema, compression: .snappy, rowGroupSize: 17)
        w.pageValueBytes = 60
        for r in rows { try w.append(r) }
        try w.close()
        let file = try ParquetFile(url: url)
        var pages = 0
        for g in 0..<file.rowGroupCount {
            for leaf in 0..<file.schema.leaves.count {
                XCTAssertNotNil(file.metadata.rowGroups[g].columns[leaf].offsetIndexOffset)
                let indexed = try file.buildPageMap(group: g, leaf: leaf)
                XCTAssertEqual(indexed, try file.buildPageMap(group: g, leaf: leaf, useOffsetIndex: false))
                pages += indexed.pages.count
            }
        }
        XCTAssertGreaterThan(pages, 2 * file.schema.leaves.count * file.rowGroupCount)
        for i in shuffled(rows.count, seed: 7) { XCTAssertEqual(try file.row(i), rows[i], "row \(i)") }
    }

    /// Garbage in the offset indexes never traps: each row decodes or throws one line naming the file.
    func testCorruptOffsetIndexNeverCrashes() throws {
        let source = fixturesURL("parquet/llava_pages_index_v1.parquet")
        let original = [UInt8](try Data(contentsOf: source))
        let probe = try ParquetFile(url: source)
        let spans = probe.metadata.rowGroups.flatMap { $0.columns }.compactMap { c -> Range<Int>? in
            guard let o = c.offsetIndexOffset, let l = c.offsetIndexLength else { return nil }
            return Int(o)..<Int(o) + Int(l)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-pq-oi-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var state: UInt64 = 42
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        var failures = 0, successes = 0
        for trial in 0..<fuzzTrials(30) {
            var bytes = original
            for _ in 0..<(1 + trial % 3) {
                let span = spans[Int(next() % UInt64(spans.count))]
                bytes[span.lowerBound + Int(next() % UInt64(span.count))] = UInt8(truncatingIfNeeded: next())
            }
            let url = dir.appendingPathComponent("f\(trial).parquet")
            try Data(bytes).write(to: url)
            let file = try ParquetFile(url: url)
            for i in 0..<file.rowCount {
                do { _ = try file.row(i); successes += 1 } catch {
                    failures += 1
                    XCTAssertTrue("\(error)".hasPrefix(url.path), "\(error)")
                    XCTAssertFalse("\(error)".contains("\n"))
                }
            }
        }
        XCTAssertGreaterThan(failures, 0)
        XCTAssertGreaterThan(successes, 0)
    }

    func testCacheEvictsLeastRecentlyUsed() {
        let cache = ParquetPageCache(byteBudget: 100, maxItems: 3)
        let store = LeafValueStore(physical: .int32)
        for k in 0..<3 { cache.put(.dictionary(group: k, leaf: 0), .dictionary(store), bytes: 30) }
        _ = cache.get(.dictionary(group: 0, leaf: 0))          // 0 is now the most recent
        cache.put(.dictionary(group: 3, leaf: 0), .dictionary(store), bytes: 30)
        XCTAssertNil(cache.get(.dictionary(group: 1, leaf: 0)))  // 1 was the least recent
        XCTAssertNotNil(cache.get(.dictionary(group: 0, leaf: 0)))
        cache.put(.dictionary(group: 4, leaf: 0), .dictionary(store), bytes: 500)   // over budget alone: kept alone
        XCTAssertEqual(cache.count, 1)
        XCTAssertNotNil(cache.get(.dictionary(group: 4, leaf: 0)))
    }
}
