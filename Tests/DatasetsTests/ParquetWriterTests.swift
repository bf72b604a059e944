import XCTest
@testable import Datasets

/// JSON text of the generator's canonical row form (for swift_written.expected.json).
func canonicalJSONObject(_ v: RowValue) -> Any {
    switch canonical(v) {
    case .null: return NSNull()
    case .bool(let b): return b
    case .int(let i): return NSNumber(value: i)
    case .double(let d): return NSNumber(value: d)
    case .string(let s): return s
    case .bytes: fatalError("canonical form has no bytes")
    case .list(let items): return items.map(canonicalJSONObject)
    case .record(let fs):
        var d: [String: Any] = [:]
        for f in fs { d[f.name] = canonicalJSONObject(f.value) }
        return d
    }
}

/// Rows of the llava schema with nulls, empty lists and both content orders.
func sampleLlavaRows(_ n: Int) -> [RowValue] {
    (0..<n).map { i in
        func part(_ type: String, _ text: String?, _ index: Int64?) -> RowValue {
            .record([RowField(name: "index", value: index.map { .int($0) } ?? .null),
                     RowField(name: "text", value: text.map { .string($0) } ?? .null),
                     RowField(name: "type", value: .string(type))])
        }
        let image = part("image", nil, 0), text = part("text", "Question \(i) — ünïcode?", nil)
        let user = RowValue.record([RowField(name: "content", value: .list(i % 2 == 0 ? [image, text] : [text, image])),
                                    RowField(name: "role", value: .string("user"))])
        let assistant = RowValue.record([RowField(name: "content", value: i % 5 == 4 ? .list([]) : .list([part("text", "Answer \(i)", nil)])),
                                         RowField(name: "role", value: .string("assistant"))])
        let images: RowValue = i % 6 == 5 ? .list([]) : .list([.record([
            RowField(name: "bytes", value: .bytes(Data((0..<(i * 7 % 50)).map { UInt8(($0 * 31 + i) & 0xff) }))),
            RowField(name: "path", value: i % 3 == 0 ? .string("img\(i).png") : .null)])])
        return .record([RowField(name: "messages", value: i % 11 == 10 ? .null : .list([user, assistant])),
                        RowField(name: "images", value: images)])
    }
}

final class ParquetWriterTests: XCTestCase {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-pqw-\(getpid())")
    override func setUpWithError() throws { try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func testLlavaRoundTrip() throws {
        let rows = sampleLlavaRows(37)
        for compression in [ParquetCompression.uncompressed, .snappy] {
            for groupSize in [1, 10, 100] {
                let url = tmp.appendingPathComponent("llava-\(compression)-\(groupSize).parquet")
                let w = try ParquetWriter(url: url, fields: ParquetField.llavaSchema, compression: compression, rowGroupSize: groupSize)
                w.pageValueBytes = 64   // many pages per chunk
                for r in rows { try w.append(r) }
                try w.close()
                let f = try ParquetFile(url: url)
                XCTAssertEqual(f.rowCount, rows.count)
                XCTAssertEqual(f.rowGroupCount, (rows.count + groupSize - 1) / groupSize)
                for (i, r) in rows.enumerated() { XCTAssertEqual(try f.row(i), r, "\(compression) \(groupSize) row \(i)") }
            }
        }
    }

    func testScalarTypesRoundTrip() throws {
        let fields = [ParquetField("b", .boolean), ParquetField("i", .int32, nullable: false), ParquetField("l", .int64),
                      ParquetField("f", .float), ParquetField("d", .double), ParquetField("s", .string),
                      ParquetField("ll", .list(ParquetField("element", .list(ParquetField("element", .int64, nullable: false)))))]
        var rows: [RowValue] = []
        for i in 0..<30 {
            let b: RowValue = i % 4 == 3 ? .null : .bool(i % 2 == 0)
            let l: RowValue = i % 5 == 0 ? .null : .int(Int64(i) << 40)
            var ll: [RowValue] = []
            for k in 0..<(i % 3) { ll.append(.list((0..<k).map { RowValue.int(Int64($0 + i)) })) }
            let fs: [RowField] = [
                RowField(name: "b", value: b), RowField(name: "i", value: .int(Int64(i) * -1000)), RowField(name: "l", value: l),
                RowField(name: "f", value: .double(Double(Float(i) * 0.25))), RowField(name: "d", value: .double(Double(i) / 3)),
                RowField(name: "s", value: .string(String(repeating: "x", count: i % 7))), RowField(name: "ll", value: .list(ll)),
            ]
            rows.append(.record(fs))
        }
        let url = tmp.appendingPathComponent("types.parquet")
        try ParquetWriter.write(url: url, fields: fields, rows: rows, rowGroupSize: 8)
        let f = try ParquetFile(url: url)
        for (i, r) in rows.enumerated() { XCTAssertEqual(try f.row(i), r, "row \(i)") }
        XCTAssertEqual(f.schema.fieldDescriptions[6], "ll: list<list<int64>?>?")
    }

    func testWriterRejectsMismatchedValues() throws {
        let url = tmp.appendingPathComponent("bad.parquet")
        let w = try ParquetWriter(url: url, fields: [ParquetField("i", .int32, nullable: false)])
        XCTAssertThrowsError(try w.append(.record([]))) { XCTAssertTrue("\($0)".contains("required field 'i' is null"), "\($0)") }
        XCTAssertThrowsError(try w.append(.record([RowField(name: "i", value: .string("x"))]))) {
            XCTAssertTrue("\($0)".contains("cannot hold"), "\($0)")
        }
        XCTAssertThrowsError(try ParquetWriter(url: url, fields: [], compression: .zstd))
    }

    /// The committed Swift-written fixture still reads back the same (pyarrow checks it in gen_parquet.py).
    /// With SFTDECK_WRITE_FIXTURE=1 the test rewrites it into the source tree.
    func testSwiftWrittenFixture() throws {
        let rows = sampleLlavaRows(12)
        if ProcessInfo.processInfo.environment["SFTDECK_WRITE_FIXTURE"] == "1" {
            let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/parquet")
            let w = try ParquetWriter(url: dir.appendingPathComponent("swift_written.parquet"), fields: ParquetField.llavaSchema,
                                      compression: .snappy, rowGroupSize: 5)
            w.pageValueBytes = 100
            for r in rows { try w.append(r) }
            try w.close()
            let json = try JSONSerialization.data(withJSONObject: ["rows": rows.map(canonicalJSONObject)], options: [.sortedKeys])
            try json.write(to: dir.appendingPathComponent("swift_written.expected.json"))
        }
        let f = try ParquetFile(url: fixturesURL("parquet/swift_written.parquet"))
        XCTAssertEqual(f.rowGroupCount, 3)
        for (i, r) in rows.enumerated() { XCTAssertEqual(try f.row(i), r) }
        XCTAssertEqual(try expectedRows("swift_written").count, rows.count)
    }
}
