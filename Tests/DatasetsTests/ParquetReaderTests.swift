import XCTest
@testable import Datasets

/// Fixture folder of this test target.
func fixturesURL(_ sub: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(sub)
}

/// The generator's JSON form of a row (Scripts/fixtures/gen_parquet.py `canon`): bytes as {"$b64"},
/// floats as {"$f"}, records with sorted keys (as RowValue's JSON decoding produces them).
func canonical(_ v: RowValue) -> RowValue {
    switch v {
    case .bytes(let d): return .record([RowField(name: "$b64", value: .string(d.base64EncodedString()))])
    case .double(let x): return .record([RowField(name: "$f", value: .double(x))])
    case .list(let items): return .list(items.map(canonical))
    case .record(let fs): return .record(fs.sorted { $0.name < $1.name }.map { RowField(name: $0.name, value: canonical($0.value)) })
    default: return v
    }
}

func expectedRows(_ name: String) throws -> [RowValue] {
    let data = try Data(contentsOf: fixturesURL("parquet/\(name).expected.json"))
    let doc = try JSONDecoder().decode(RowValue.self, from: data)
    return doc["rows"]!.list!.map(floatsAsDouble)
}

/// JSON cannot tell 18.0 from 18: a `{"$f": 18}` tag means the double 18.0.
func floatsAsDouble(_ v: RowValue) -> RowValue {
    switch v {
    case .list(let items): return .list(items.map(floatsAsDouble))
    case .record(let fs):
        if fs.count == 1, fs[0].name == "$f", let i = fs[0].value.int { return .record([RowField(name: "$f", value: .double(Double(i)))]) }
        return .record(fs.map { RowField(name: $0.name, value: floatsAsDouble($0.value)) })
    default: return v
    }
}

/// Trials of the corruption tests (SFTDECK_FUZZ_TRIALS raises it for a longer local run).
func fuzzTrials(_ normal: Int) -> Int { Int(ProcessInfo.processInfo.environment["SFTDECK_FUZZ_TRIALS"] ?? "") ?? normal }

final class ParquetReaderTests: XCTestCase {
    let pyarrowFiles = [
        "llava_none", "llava_snappy", "llava_gzip", "llava_zstd", "llava_v2_nodict_snappy", "llava_v2_dict_zstd",
        "llava_smallpages_v1", "llava_smallpages_v2", "types_v1_snappy", "types_v2_zstd_nodict", "types_v1_gzip_smallpages",
        "encodings_v1", "encodings_v2_zstd", "llava_dict_fallback",
        "llava_pages_index_v1", "llava_pages_noindex_v1", "llava_pages_index_v2", "types_pages_index_v1", "binary_stats_pages",
    ]

    /// Every row of every pyarrow-written fixture equals pyarrow's own reading, exactly (floats bit-exact).
    func testRowsMatchPyarrow() throws {
        for name in pyarrowFiles {
            let file = try ParquetFile(url: fixturesURL("parquet/\(name).parquet"))
            let expected = try expectedRows(name)
            XCTAssertEqual(file.rowCount, expected.count, name)
            for i in 0..<file.rowCount {
                let row = try file.row(i)
                let got = canonical(row)
                if got != expected[i] { XCTFail("\(name) row \(i):\n got  \(got.preview())\n want \(expected[i].preview())") }
            }
        }
    }

    /// Random access across row groups (cache misses back and forth) gives the same rows.
    func testRandomAccessAcrossRowGroups() throws {
        let file = try ParquetFile(url: fixturesURL("parquet/llava_zstd.parquet"))
        XCTAssertEqual(file.rowGroupCount, 4)
        let expected = try expectedRows("llava_zstd")
        for i in [22, 0, 15, 7, 6, 21, 1, 14, 8, 22] {
            XCTAssertEqual(canonical(try file.row(i)), expected[i], "row \(i)")
        }
    }

    func testProjectionAndSchema() throws {
        let file = try ParquetFile(url: fixturesURL("parquet/llava_snappy.parquet"))
        XCTAssertEqual(file.schema.topLevelNames, ["messages", "images"])
        XCTAssertEqual(file.schema.fieldDescriptions, [
            "messages: list<struct<content: list<struct<index: int64?, text: string?, type: string?>?>?, role: string?>?>?",
            "images: list<struct<bytes: binary?, path: string?>?>?",
        ])
        let row = try file.row(3, fields: ["images"])
        XCTAssertEqual(row.fields?.map(\.name), ["images"])
        XCTAssertEqual(file.compressions, ["SNAPPY"])
        XCTAssertThrowsError(try file.row(0, fields: ["nope"])) { e in
            XCTAssertTrue("\(e)".contains("no column 'nope'"), "\(e)")
        }
        XCTAssertThrowsError(try file.row(23)) { e in XCTAssertTrue("\(e)".contains("out of range"), "\(e)") }
    }

    /// The delta and byte-stream-split fixtures really use those encodings (so the row test covers them).
    func testEncodingFixturesUseTheirEncodings() throws {
        let file = try ParquetFile(url: fixturesURL("parquet/encodings_v1.parquet"))
        let used = Set(file.metadata.rowGroups[0].columns.flatMap { $0.meta.encodings }.compactMap { ParquetEncoding(rawValue: $0)?.description })
        XCTAssertTrue(used.isSuperset(of: ["DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "BYTE_STREAM_SPLIT"]), "\(used)")
        XCTAssertEqual(file.rowGroupCount, 3)
    }

    /// The fallback fixture's image bytes column has dictionary pages and then PLAIN pages in one chunk
    /// (values read through the dictionary, then copied once PLAIN values follow).
    func testDictionaryFallbackChunk() throws {
        let file = try ParquetFile(url: fixturesURL("parquet/llava_dict_fallback.parquet"))
        let leaf = file.schema.leaves.firstIndex { file.schema.nodes[$0].name == "bytes" }!
        let pages = try file.pageSummary(rowGroup: 0, column: leaf)
        XCTAssertEqual(pages.first, "DICT/PLAIN")
        XCTAssertTrue(pages.contains("DATA/RLE_DICTIONARY"), "\(pages)")
        XCTAssertTrue(pages.contains("DATA/PLAIN"), "\(pages)")
        let v2 = try ParquetFile(url: fixturesURL("parquet/llava_v2_nodict_snappy.parquet"))
        XCTAssertEqual(Set(try v2.pageSummary(rowGroup: 0, column: leaf)), ["DATA_V2/PLAIN"])
    }

    func testHostileFilesGiveOneLineErrors() throws {
        let cases: [(String, String)] = [
            ("bad_truncated", "bad magic at the end"),
            ("bad_magic", "bad magic at the start"),
            ("bad_footer_length", "footer length"),
            ("bad_footer_garbage", "corrupt footer"),
            ("does_not_exist", "no such file"),
        ]
        for (name, fragment) in cases {
            let url = fixturesURL("parquet/\(name).parquet")
            XCTAssertThrowsError(try ParquetFile(url: url), name) { e in
                let text = (e as? LocalizedError)?.errorDescription ?? ""
                XCTAssertTrue(text.contains(fragment), "\(name): \(text)")
                XCTAssertTrue(text.hasPrefix(url.path), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }

    /// Flipping bytes inside the footer never traps: opening (and reading rows, when it opens) throws or works.
    func testCorruptedFootersNeverCrash() throws {
        let original = [UInt8](try Data(contentsOf: fixturesURL("parquet/types_v1_snappy.parquet")))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-pq-footer-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let footerLength = Int(original[original.count - 8]) | Int(original[original.count - 7]) << 8
        let footerStart = original.count - 8 - footerLength
        var state: UInt64 = 12345
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        var opened = 0, refused = 0
        for trial in 0..<fuzzTrials(100) {
            var bytes = original
            for _ in 0..<(1 + trial % 3) {
                let at = footerStart + Int(next() % UInt64(footerLength))
                bytes[at] = trial % 2 == 0 ? UInt8(truncatingIfNeeded: next()) : bytes[at] ^ (1 << UInt8(next() % 8))
            }
            let url = dir.appendingPathComponent("f\(trial).parquet")
            try Data(bytes).write(to: url)
            do {
                let f = try ParquetFile(url: url)
                opened += 1
                for i in 0..<min(f.rowCount, 40) { _ = try? f.row(i) }
            } catch {
                refused += 1
                XCTAssertTrue("\(error)".hasPrefix(url.path), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
        XCTAssertGreaterThan(opened, 0)
        XCTAssertGreaterThan(refused, 0)
    }

    /// Flipping bytes inside column data never traps: each row either decodes or throws.
    func testCorruptedPagesNeverCrash() throws {
        let original = try Data(contentsOf: fixturesURL("parquet/llava_snappy.parquet"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-pq-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        var failures = 0, successes = 0
        for trial in 0..<fuzzTrials(60) {
            var bytes = [UInt8](original)
            let footerLength = Int(bytes[bytes.count - 8]) | Int(bytes[bytes.count - 7]) << 8
            let dataEnd = bytes.count - 8 - footerLength
            for _ in 0..<(1 + trial % 4) {
                let at = 4 + Int(next() % UInt64(dataEnd - 4))
                bytes[at] = UInt8(truncatingIfNeeded: next())
            }
            let url = dir.appendingPathComponent("f\(trial).parquet")
            try Data(bytes).write(to: url)
            let file = try ParquetFile(url: url)   // footer untouched: opens
            for i in 0..<file.rowCount {
                do { _ = try file.row(i); successes += 1 } catch {
                    failures += 1
                    XCTAssertTrue("\(error)".hasPrefix(url.path))
                }
            }
        }
        XCTAssertGreaterThan(failures, 0)
        XCTAssertGreaterThan(successes, 0)
    }
}
