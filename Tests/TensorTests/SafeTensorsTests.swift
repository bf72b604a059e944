import Foundation
import XCTest
@testable import Tensor

/// The Python-made fixture (Scripts/fixtures/gen_safetensors.py, safetensors 0.8.0 + torch) read in
/// Swift, and Swift-written files compared byte for byte with what Python wrote.
final class SafeTensorsTests: XCTestCase {
    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("safetensors") }
    static var mixedURL: URL { fixtures.appendingPathComponent("mixed.safetensors") }

    struct Expected {
        var dtype: SafeTensorsDType
        var shape: [Int]
        var bytes: [UInt8]
        var values: [Double]
        var sum: Double
        var sourceF32Bits: [UInt32]?
    }

    static func decodeNumber(_ v: Any) -> Double {
        if let s = v as? String { return s == "inf" ? .infinity : s == "-inf" ? -.infinity : .nan }
        return (v as! NSNumber).doubleValue
    }

    static func hexBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            out.append(UInt8(String(bytes: [a, b], encoding: .ascii)!, radix: 16)!)
        }
        return out
    }

    static func loadExpected() throws -> [String: Expected] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("mixed.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let tensors = root["tensors"] as! [String: [String: Any]]
        let torchToST: [String: SafeTensorsDType] = [
            "float32": .F32, "bfloat16": .BF16, "float16": .F16, "float64": .F64, "int64": .I64,
            "int32": .I32, "int16": .I16, "int8": .I8, "uint8": .U8, "bool": .BOOL,
        ]
        var out: [String: Expected] = [:]
        for (name, e) in tensors {
            out[name] = Expected(
                dtype: torchToST[e["dtype"] as! String]!,
                shape: (e["shape"] as! [NSNumber]).map(\.intValue),
                bytes: hexBytes(e["hex"] as! String),
                values: (e["values"] as! [Any]).map(decodeNumber),
                sum: decodeNumber(e["sum"]!),
                sourceF32Bits: (e["source_f32_bits"] as? [NSNumber])?.map(\.uint32Value))
        }
        return out
    }

    func testReadsEveryTensorOfThePythonFile() throws {
        let file = try SafeTensorsFile(url: Self.mixedURL)
        let expected = try Self.loadExpected()
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.names, expected.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        XCTAssertEqual(file.headerByteCount % 8, 0)
        for (name, e) in expected {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype, e.dtype, name)
            XCTAssertEqual(info.shape, e.shape, name)
            XCTAssertEqual(info.elementCount, e.values.count, name)
            XCTAssertEqual(Array(try file.rawBytes(name)), e.bytes, name)
            if e.dtype.isFloatingPoint {
                let f = try file.floats(name)
                for (a, b) in zip(f, e.values) {
                    // Exact: bf16/f16 widen exactly; F64 values here are compared after fp32 rounding.
                    if b.isNaN { XCTAssertTrue(a.isNaN, name) } else {
                        XCTAssertEqual(a, Float(b), name)
                        XCTAssertEqual(a.sign, Float(b).sign, "\(name): sign of zero")
                    }
                }
            } else {
                XCTAssertEqual(try file.int64s(name).map(Double.init), e.values, name)
                XCTAssertThrowsError(try file.floats(name))
            }
            // torch sums pairwise in fp64, Swift sums in order: equal to ~1 ulp of the magnitudes.
            let s = try file.sum(name)
            if e.sum.isInfinite { XCTAssertEqual(s, e.sum, name) } else {
                let scale = max(1, e.values.filter(\.isFinite).map(abs).reduce(0, +))
                XCTAssertEqual(s, e.sum, accuracy: 1e-15 * scale, name)
            }
        }
        XCTAssertEqual(try file.info("scalar").shape, [])
        XCTAssertEqual(try file.floats("scalar"), [2.5])
        XCTAssertEqual(try file.info("empty").elementCount, 0)
        XCTAssertEqual(try file.floats("empty"), [])
        XCTAssertThrowsError(try file.info("absent")) { XCTAssertTrue("\($0)".contains("no tensor named 'absent'")) }
    }

    /// The same tensors through SafeTensorsWriter give Python's file, byte for byte.
    func testWriterMatchesPythonByteForByte() throws {
        let pythonBytes = [UInt8](try Data(contentsOf: Self.mixedURL))
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        // Add in a scrambled order: the writer must impose safetensors' own order.
        for (name, e) in try Self.loadExpected().sorted(by: { $0.key > $1.key }) {
            try writer.add(name, dtype: e.dtype, shape: e.shape, bytes: e.bytes)
        }
        XCTAssertEqual(try writer.serialize(), pythonBytes)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-write-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model.safetensors")
        try "old contents".write(to: out, atomically: false, encoding: .utf8)
        try writer.write(to: out)
        XCTAssertEqual([UInt8](try Data(contentsOf: out)), pythonBytes)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"], "no temporary file left behind")
        // And what the writer produced reads back.
        let back = try SafeTensorsFile(url: out)
        XCTAssertEqual(back.names.count, try Self.loadExpected().count)
    }

    /// A streamed tensor (producer closure) writes the same bytes as an owned buffer.
    func testProducerSourceStreamsSameBytes() throws {
        let values: [Float] = (0..<24).map { Float($0) * 0.25 - 3 }
        var a = SafeTensorsWriter()
        try a.add("w", floats: values, shape: [4, 6])
        try a.add("b", int64s: [1, 2, 3], shape: [3], as: .I32)
        var b = SafeTensorsWriter()
        try b.add("w", dtype: .F32, shape: [4, 6], source: .producer { buf in
            values.withUnsafeBytes { buf.copyMemory(from: $0) }
        })
        try b.add("b", int64s: [1, 2, 3], shape: [3], as: .I32)
        XCTAssertEqual(try a.serialize(), try b.serialize())
        XCTAssertThrowsError(try b.add("w", floats: [1], shape: [1])) { XCTAssertTrue("\($0)".contains("added twice")) }
        XCTAssertThrowsError(try b.add("x", floats: [1, 2], shape: [3])) { XCTAssertTrue("\($0)".contains("3 elements")) }
        XCTAssertThrowsError(try b.add("y", int64s: [300], shape: [1], as: .U8)) { XCTAssertTrue("\($0)".contains("does not fit")) }
    }

    /// fp32 → bf16/f16 rounding equals torch's `.to(bfloat16/float16)` on the fixture's sources
    /// (random values plus ties, subnormals, overflow and signed zero).
    func testFloatRoundingMatchesTorch() throws {
        for (name, e) in try Self.loadExpected() {
            guard let bits = e.sourceF32Bits else { continue }
            let source = bits.map { Float(bitPattern: $0) }
            var w = SafeTensorsWriter(metadata: nil)
            try w.add(name, floats: source, shape: e.shape, as: e.dtype)
            let file = try w.serialize()
            XCTAssertEqual(Array(file.suffix(e.bytes.count)), e.bytes, name)
            for (k, f) in source.enumerated() {
                let stored = UInt16(e.bytes[2 * k]) | UInt16(e.bytes[2 * k + 1]) << 8
                let mine = e.dtype == .BF16 ? SafeTensorsConvert.floatToBF16(f) : SafeTensorsConvert.floatToF16(f)
                XCTAssertEqual(mine, stored, "\(name)[\(k)] from \(f)")
            }
        }
        // Widening is exact for every binary16 pattern: round trip through fp32.
        for h in 0...UInt16.max {
            let f = SafeTensorsConvert.f16ToFloat(h)
            if f.isNaN { continue }
            XCTAssertEqual(SafeTensorsConvert.floatToF16(f), h)
        }
    }

    func testShardedCheckpointThroughIndex() throws {
        let ckpt = try SafeTensorsCheckpoint(folder: Self.fixtures.appendingPathComponent("sharded"))
        let rows = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("weights_expected.json"))) as! [[String: Any]]
        XCTAssertEqual(ckpt.names, rows.map { $0["name"] as! String })
        XCTAssertEqual(ckpt.files.count, 2)
        XCTAssertEqual(ckpt.indexMetadata["total_size"], "208")
        for r in rows {
            let name = r["name"] as! String
            let info = try ckpt.info(name)
            XCTAssertEqual(info.dtype.rawValue, r["dtype"] as! String)
            XCTAssertEqual(info.shape, (r["shape"] as! [NSNumber]).map(\.intValue))
            XCTAssertEqual(try ckpt.sum(name), (r["sum"] as! NSNumber).doubleValue, accuracy: 1e-12)
        }
        XCTAssertEqual(try ckpt.file(containing: "lm_head.weight").url.lastPathComponent, "model-00002-of-00002.safetensors")
        // A folder with a single model.safetensors, and a file path, open the same way.
        let single = try SafeTensorsCheckpoint(url: Self.mixedURL)
        XCTAssertEqual(single.names, try SafeTensorsFile(url: Self.mixedURL).names)
    }

    func testIndexWithMissingShardsListsThem() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = Self.fixtures.appendingPathComponent("sharded")
        try FileManager.default.copyItem(at: src.appendingPathComponent("model.safetensors.index.json"),
                                         to: dir.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try SafeTensorsCheckpoint(folder: dir)) { err in
            let text = "\(err)"
            XCTAssertTrue(text.hasPrefix(dir.appendingPathComponent("model.safetensors.index.json").path), text)
            XCTAssertTrue(text.contains("2 of 2 shard files"), text)
            XCTAssertTrue(text.contains("model-00001-of-00002.safetensors, model-00002-of-00002.safetensors"), text)
        }
        // With one shard present, only the other is named.
        try FileManager.default.copyItem(at: src.appendingPathComponent("model-00001-of-00002.safetensors"),
                                         to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        XCTAssertThrowsError(try SafeTensorsCheckpoint(folder: dir)) { err in
            XCTAssertTrue("\(err)".contains("1 of 2 shard files listed in weight_map are missing: model-00002-of-00002.safetensors"), "\(err)")
        }
        let empty = try tempDir()
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try SafeTensorsCheckpoint(folder: empty)) { XCTAssertTrue("\($0)".contains("no model.safetensors"), "\($0)") }
    }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Hostile and broken files: each gives one line naming the file and the problem, never a crash.
final class SafeTensorsCorruptFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// Writes `bytes` to a file and asserts opening it fails with a message containing `expect`.
    func assertRejected(_ bytes: [UInt8], _ expect: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = dir.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        XCTAssertThrowsError(try SafeTensorsFile(url: url), file: file, line: line) { err in
            guard let e = err as? SafeTensorsError else { return XCTFail("wrong error type \(err)", file: file, line: line) }
            let text = e.description
            XCTAssertEqual(e.errorDescription, text, file: file, line: line)
            XCTAssertTrue(text.hasPrefix(url.path + ": "), text, file: file, line: line)
            XCTAssertTrue(text.contains(expect), "expected '\(expect)' in: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
        }
    }

    /// A file from a header string and data bytes, with the length prefix correct unless overridden.
    func make(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        make(Array(header.utf8), data: data, length: length)
    }

    func make(_ header: [UInt8], data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + header + data
    }

    func testTruncatedFiles() throws {
        let good = [UInt8](try Data(contentsOf: SafeTensorsTests.mixedURL))
        assertRejected([], "too short for the 8-byte header length")
        assertRejected(Array(good.prefix(5)), "too short")
        assertRejected(Array(good.prefix(100)), "runs past the end")
        assertRejected(Array(good.dropLast(3)), "run past the")
        // Trailing junk after the last tensor is also rejected (the Rust library does the same).
        assertRejected(good + [0, 0, 0, 0], "trailing bytes")
    }

    func testOversizedHeaderLength() {
        assertRejected(make("{}", length: 1 << 40), "over the 100000000-byte limit")
        assertRejected(make("{}", length: UInt64.max), "over the 100000000-byte limit")
        assertRejected(make("{}", length: 5000), "runs past the end of the")
    }

    func testInconsistentHeaders() {
        let f4 = [UInt8](repeating: 0, count: 16)
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: [UInt8](repeating: 0, count: 12)),
                       "tensors 'a' [0, 8) and 'b' [4, 12) overlap")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: f4), "belong to no tensor")
        assertRejected(make(#"{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "tensor 'a': unknown dtype 'F17'")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "needs 12 bytes but data_offsets [0, 8] hold 8")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: Array(f4.prefix(8))), "end before they begin")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "non-negative integers")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "non-negative integers")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "overflows")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: Array(f4.prefix(8))), "data_offsets must be two")
        assertRejected(make(#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: Array(f4.prefix(8))), "missing 'dtype'")
        assertRejected(make(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: f4), "duplicate tensor name 'a'")
        assertRejected(make(#"{"__metadata__":{"format":3}}"#), "__metadata__ entry 'format' is a number")
        assertRejected(make(#"{"__metadata__":"pt"}"#), "__metadata__ is a string")
        assertRejected(make(#"{"a":[1,2]}"#), "tensor 'a': entry is an array")
    }

    func testNotJSONOrNotUTF8() {
        // A tensor name with a byte that is not UTF-8.
        var header = Array(#"{"a?":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.utf8)
        header[3] = 0xFF
        assertRejected(make(header, data: [7]), "header is not valid UTF-8")
        assertRejected(make(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#, data: [7]), "header is not valid JSON")
        assertRejected(make(#"{"a\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [7]), "lone surrogate")
        assertRejected(make("[1,2]"), "does not start with '{'")
        assertRejected(make(String(repeating: "{\"a\":", count: 200) + "1" + String(repeating: "}", count: 200)), "nesting deeper")
        assertRejected(make("{} x"), "unexpected data after the JSON value")
    }

    /// Padding spaces, unknown extra fields, zero-size tensors sharing an offset and an empty header
    /// are all legal and must be accepted.
    func testAcceptsLegalOddities() throws {
        let bytes = make(#"{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"f":{"dtype":"BF16","shape":[0,2],"data_offsets":[0,0],"extra":1},"g":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}}     "#, data: [1, 2])
        let url = dir.appendingPathComponent("ok.safetensors")
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        let f = try SafeTensorsFile(url: url)
        XCTAssertEqual(f.names, ["e", "f", "g"])
        XCTAssertEqual(try f.int64s("g"), [0x0201])
        let empty = dir.appendingPathComponent("empty.safetensors")
        FileManager.default.createFile(atPath: empty.path, contents: Data(make("{}      ")))
        XCTAssertEqual(try SafeTensorsFile(url: empty).names, [])
    }

    func testMissingFile() {
        XCTAssertThrowsError(try SafeTensorsFile(url: dir.appendingPathComponent("nope.safetensors"))) {
            XCTAssertTrue("\($0)".contains("nope.safetensors: cannot open"), "\($0)")
        }
    }
}
