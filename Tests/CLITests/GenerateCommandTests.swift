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
}
