import XCTest

/// `sftdeck generate` on the Models fixtures: the tokens equal transformers' greedy `generate` for the same
/// chat prompt (Scripts/fixtures/gen_gemma3.py, case_cli).
final class GenerateCommandTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ModelsTests/Fixtures/gemma3")

    func expected(_ key: String) throws -> [String: Any] {
        let d = try Data(contentsOf: fixtures.appendingPathComponent("cli/expected.json"))
        return (try JSONSerialization.jsonObject(with: d) as! [String: Any])[key] as! [String: Any]
    }

    func run(_ args: [String]) throws -> [String: Any] {
        let out = try runSFTDeck(args)
        let line = out.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? out
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    }

    func testGreedyWithImageMatchesTransformers() throws {
        let e = try expected("multimodal")
        let r = try run(["generate", "--model", fixtures.appendingPathComponent("mm_gqa1").path,
                         "--image", fixtures.appendingPathComponent("cli/image.png").path,
                         "--prompt", e["prompt"] as! String, "--max-new-tokens", "8", "--json"])
        XCTAssertEqual(r["prompt_tokens"] as? Int, (e["prompt_ids"] as! [Int]).count)
        XCTAssertEqual(r["new_token_ids"] as? [Int], e["new_ids"] as? [Int])
        XCTAssertEqual(r["text"] as? String, e["text"] as? String)
    }

    func testGreedyTextOnlyMatchesTransformers() throws {
        let e = try expected("text")
        let r = try run(["generate", "--model", fixtures.appendingPathComponent("text_gqa4").path,
                         "--prompt", e["prompt"] as! String, "--max-new-tokens", "8", "--json"])
        XCTAssertEqual(r["new_token_ids"] as? [Int], e["new_ids"] as? [Int])
    }

    func testAdapterAndStreaming() throws {
        let out = try runSFTDeck(["generate", "--model", fixtures.appendingPathComponent("mm_gqa1").path,
                                  "--adapter", fixtures.appendingPathComponent("lora_mm_gqa1/adapter").path,
                                  "--prompt", "Hello", "--max-new-tokens", "4"])
        XCTAssertFalse(out.isEmpty)
    }

    func testMissingModelIsOneLine() throws {
        let out = try runSFTDeck(["generate", "--model", "/nonexistent-model", "--prompt", "x"], expectStatus: 1)
        XCTAssertTrue(out.contains("/nonexistent-model"), out)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, out)
    }

    /// A hostile image (a PNG header claiming 100000×100000) is one line naming the file and the problem.
    func testOversizedImageNamesTheFile() throws {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let t = Array(type.utf8)
            let len = withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init)
            let crc = withUnsafeBytes(of: crc32(t + body).bigEndian, Array.init)
            return len + t + body + crc
        }
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes { c ^= UInt32(b); for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 } }
            return ~c
        }
        let side = withUnsafeBytes(of: UInt32(100_000).bigEndian, Array.init)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", side + side + [8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]) + chunk("IEND", [])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID().uuidString.prefix(8)).png").path
        try Data(png).write(to: URL(fileURLWithPath: path))
        let out = try runSFTDeck(["generate", "--model", fixtures.appendingPathComponent("mm_gqa1").path, "--image", path, "--prompt", "x"],
                                 expectStatus: 1)
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, out)
        XCTAssertTrue(out.contains("\(path): PNG is 100000x100000, over the limit"), out)
    }
}
