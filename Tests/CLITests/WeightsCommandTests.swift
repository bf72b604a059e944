import Foundation
import XCTest

/// `sftdeck weights` against the safetensors fixtures of TensorTests (made by Python's safetensors).
final class WeightsCommandTests: XCTestCase {
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TensorTests/Fixtures/safetensors")
    }

    /// The sharded checkpoint: names, dtypes, shapes and fp64 sums equal what torch computed.
    func testJSONForShardedCheckpoint() throws {
        let out = try runSFTDeck(["weights", Self.fixtures.appendingPathComponent("sharded").path, "--json"])
        let root = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let tensors = root["tensors"] as! [[String: Any]]
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("weights_expected.json"))) as! [[String: Any]]
        XCTAssertEqual(tensors.count, expected.count)
        XCTAssertEqual(root["tensor_count"] as? Int, expected.count)
        XCTAssertEqual(root["files"] as? [String], ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        for (t, e) in zip(tensors, expected) {
            XCTAssertEqual(t["name"] as? String, e["name"] as? String)
            XCTAssertEqual(t["dtype"] as? String, e["dtype"] as? String)
            XCTAssertEqual(t["shape"] as? [Int], e["shape"] as? [Int])
            // torch sums pairwise, sftdeck in order: both fp64, agreeing to ~1e-15 of the magnitude.
            XCTAssertEqual((t["sum"] as! NSNumber).doubleValue, (e["sum"] as! NSNumber).doubleValue, accuracy: 1e-12)
        }
        let params = expected.reduce(0) { $0 + ($1["shape"] as! [Int]).reduce(1, *) }
        XCTAssertEqual(root["parameter_count"] as? Int, params)
    }

    func testTableForSingleFile() throws {
        let out = try runSFTDeck(["weights", Self.fixtures.appendingPathComponent("mixed.safetensors").path])
        XCTAssertTrue(out.hasPrefix("NAME"), out)
        XCTAssertTrue(out.contains("scalar"), out)
        XCTAssertTrue(out.contains("naïve.wéight"), out)
        XCTAssertTrue(out.contains("17 tensors"), out)
    }

    func testBadInputIsOneLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("mixed.safetensors")))
        bytes.removeLast(10)
        let bad = dir.appendingPathComponent("cut.safetensors")
        try Data(bytes).write(to: bad)
        let out = try runSFTDeck(["weights", bad.path], expectStatus: 1)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, out)
        XCTAssertTrue(out.contains(bad.path) && out.contains("truncated"), out)

        let missing = try runSFTDeck(["weights", dir.appendingPathComponent("nothing-here").path], expectStatus: 1)
        XCTAssertTrue(missing.contains("no such file or folder"), missing)
    }

    func testHelpExplainsPaths() throws {
        let out = try runSFTDeck(["weights", "--help"])
        XCTAssertTrue(out.contains("model.safetensors.index.json"), out)
        XCTAssertTrue(out.contains("--json"), out)
    }
}
