import XCTest
@testable import Datasets

final class ParquetThriftTests: XCTestCase {
    func read(_ bytes: [UInt8]) throws -> ThriftStruct {
        try bytes.withUnsafeBytes { var r = ThriftCompactReader($0); return try r.readStruct() }
    }

    func testWriterAndReaderAgree() throws {
        var w = ThriftCompactWriter()
        w.nestedStruct { w in
            w.i32(1, -7)
            w.i64(3, 1 << 40)
            w.string(4, "héllo")
            w.bool(5, true)
            w.bool(6, false)
            w.i32(40, 123)   // long field-id delta
            w.stringList(41, (0..<20).map { "s\($0)" })   // list longer than 14
            w.structList(42, [1, 2]) { w, v in w.i32(1, Int32(v)) }
        }
        let s = try read(w.bytes)
        XCTAssertEqual(s.int(1), -7)
        XCTAssertEqual(s.int(3), 1 << 40)
        XCTAssertEqual(s.string(4), "héllo")
        XCTAssertEqual(s.bool(5), true)
        XCTAssertEqual(s.bool(6), false)
        XCTAssertEqual(s.int(40), 123)
        XCTAssertEqual(s.list(41)?.compactMap(\.string).last, "s19")
        XCTAssertEqual(s.list(42)?.compactMap { $0.structure?.int(1) }, [1, 2])
    }

    func testHostileThriftIsRefused() {
        // binary of length 2^40 with 2 bytes left
        XCTAssertThrowsError(try read([0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x41, 0x42])) { XCTAssertTrue("\($0)".contains("runs past the end"), "\($0)") }
        // list claiming 1e9 elements
        XCTAssertThrowsError(try read([0x19, 0xF5, 0x80, 0x94, 0xEB, 0xDC, 0x03])) { XCTAssertTrue("\($0)".contains("cannot fit"), "\($0)") }
        // structs nested 1000 deep
        XCTAssertThrowsError(try read([UInt8](repeating: 0x1C, count: 1000))) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
        // truncated, unknown type
        XCTAssertThrowsError(try read([0x15])) { XCTAssertTrue("\($0)".contains("ends early"), "\($0)") }
        XCTAssertThrowsError(try read([0x1E, 0x00])) { XCTAssertTrue("\($0)".contains("unknown field type"), "\($0)") }
    }

    func testHybridDecoding() throws {
        // RLE run of 5 x value 3 (bw 2), then a bit-packed group of 8 values 0..7 (bw 3).
        var out: [UInt32] = []
        try [UInt8]([0x0A, 0x03]).withUnsafeBytes { try decodeHybrid($0, bitWidth: 2, count: 5, into: &out) }
        XCTAssertEqual(out, [3, 3, 3, 3, 3])
        out = []
        try [UInt8]([0x03, 0x88, 0xC6, 0xFA]).withUnsafeBytes { try decodeHybrid($0, bitWidth: 3, count: 8, into: &out) }
        XCTAssertEqual(out, [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertThrowsError(try [UInt8]([0x0A]).withUnsafeBytes { try decodeHybrid($0, bitWidth: 2, count: 5, into: &out) })
        XCTAssertThrowsError(try [UInt8]([0x03, 0x88]).withUnsafeBytes { try decodeHybrid($0, bitWidth: 3, count: 8, into: &out) })
    }

    func testDecompressRefusesAbsurdSizes() throws {
        let junk = [UInt8](repeating: 7, count: 16)
        try junk.withUnsafeBytes { b in
            XCTAssertThrowsError(try decompress(b, codec: 6, uncompressedSize: 2 << 30)) { XCTAssertTrue("\($0)".contains("limit"), "\($0)") }
            XCTAssertThrowsError(try decompress(b, codec: 1, uncompressedSize: 100)) { XCTAssertTrue("\($0)".contains("snappy"), "\($0)") }
            XCTAssertThrowsError(try decompress(b, codec: 6, uncompressedSize: 100)) { XCTAssertTrue("\($0)".contains("zstd"), "\($0)") }
            XCTAssertThrowsError(try decompress(b, codec: 2, uncompressedSize: 100)) { XCTAssertTrue("\($0)".contains("gzip"), "\($0)") }
            XCTAssertThrowsError(try decompress(b, codec: 4, uncompressedSize: 100)) { XCTAssertTrue("\($0)".contains("unsupported compression codec BROTLI"), "\($0)") }
        }
    }
}
