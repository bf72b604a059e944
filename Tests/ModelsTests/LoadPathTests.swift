import XCTest
import Tensor
@testable import Models

/// The start-up and save paths that avoid copies: safetensors written straight from tensor buffers, F32
/// tensors read with pread into their destination (in pieces, as the adapter loader splits them).
final class LoadPathTests: XCTestCase {
    func testSafetensorsRoundTripThroughPread() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-loadpath-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let big = (0..<300_001).map { Float($0) * 0.5 - 7 }, small = (0..<10).map { Float($0) }
        let url = dir.appendingPathComponent("t.safetensors")
        try big.withUnsafeBufferPointer { b in
            try small.withUnsafeBufferPointer { s in
                try writeSafeTensorsF32([(name: "z.big", shape: [300_001], data: b), (name: "a.small", shape: [2, 5], data: s)],
                                        metadata: ["format": "pt"], to: url)
            }
        }
        // No temporary file is left next to it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["t.safetensors"])
        let st = try MappedSafeTensors(url: url)
        XCTAssertEqual(st.entries["a.small"]?.shape, [2, 5])
        let tb = try XCTUnwrap(try st.tensor("z.big")), ts = try XCTUnwrap(try st.tensor("a.small"))
        let whole = FBuf(big.count, zero: false)
        try st.readF32(tb, into: whole.p, count: big.count)
        XCTAssertEqual(whole.array, big)
        // pieces at offsets, as the adapter loader splits large tensors
        let pieces = FBuf(big.count, zero: true)
        var lo = 0
        while lo < big.count { let n = min(70_000, big.count - lo); try st.readF32(tb, into: pieces.p + lo, start: lo, count: n); lo += n }
        XCTAssertEqual(pieces.array, big)
        let s = FBuf(10)
        try st.readF32(ts, into: s.p, count: 10)
        XCTAssertEqual(s.array, small)
        // A file cut short fails with a line naming it.
        let cut = dir.appendingPathComponent("cut.safetensors")
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count - 4).write(to: cut)
        XCTAssertThrowsError(try MappedSafeTensors(url: cut)) { XCTAssertTrue("\($0)".contains("cut.safetensors"), "\($0)") }
    }
}
