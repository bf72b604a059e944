import XCTest

/// `sftdeck tokenize` on the gemma-tiny fixture folder prints what transformers' AutoTokenizer /
/// apply_chat_template give for it (Tests/TokenizersTests/Fixtures/chat_templates/cli_expected.json).
final class TokenizeCommandTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("TokenizersTests/Fixtures")
    var folder: String { Self.fixtures.appendingPathComponent("gemma-tiny").path }
    var expected: [String: Any] {
        let d = try! Data(contentsOf: Self.fixtures.appendingPathComponent("chat_templates/cli_expected.json"))
        return try! JSONSerialization.jsonObject(with: d) as! [String: Any]
    }

    func json(_ out: String) throws -> [String: Any] {
        let line = out.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    }

    func testTextJSON() throws {
        let e = expected
        let out = try json(try runSFTDeck(["tokenize", "--model", folder, "--text", e["text"] as! String, "--json"]))
        XCTAssertEqual(out["ids"] as? [Int], e["text_ids"] as? [Int])
        XCTAssertEqual(out["tokens"] as? [String], e["text_tokens"] as? [String])
    }

    func testMessagesJSON() throws {
        let e = expected
        let msgs = Self.fixtures.appendingPathComponent("chat_templates/cli_messages.json").path
        var out = try json(try runSFTDeck(["tokenize", "--model", folder, "--messages", msgs, "--json"]))
        XCTAssertEqual(out["text"] as? String, e["messages_text"] as? String)
        XCTAssertEqual(out["ids"] as? [Int], e["messages_ids"] as? [Int])
        XCTAssertNil(out["assistant_mask"])

        let training = Self.fixtures.appendingPathComponent("chat_templates/gemma3_training.jinja").path
        out = try json(try runSFTDeck(["tokenize", "--model", folder, "--messages", msgs, "--chat-template", training, "--json"]))
        XCTAssertEqual(out["text"] as? String, e["training_text"] as? String)
        XCTAssertEqual(out["ids"] as? [Int], e["training_ids"] as? [Int])
        XCTAssertEqual(out["assistant_mask"] as? [Int], e["training_mask"] as? [Int])
    }

    func testGenerationPromptAndHumanOutput() throws {
        let e = expected
        // The generation prompt is rendered after the conversation minus its last (assistant) turn.
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-cli-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: d) }
        let all = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("chat_templates/cli_messages.json"))) as! [Any]
        try JSONSerialization.data(withJSONObject: Array(all.dropLast())).write(to: d)
        let out = try json(try runSFTDeck(["tokenize", "--model", folder, "--messages", d.path, "--add-generation-prompt", "--json"]))
        XCTAssertEqual(out["text"] as? String, e["gen_text"] as? String)
        XCTAssertEqual(out["ids"] as? [Int], e["gen_ids"] as? [Int])
        let human = try runSFTDeck(["tokenize", "--model", folder, "--text", "Hello"])
        XCTAssertTrue(human.contains("tokens"), human)
        XCTAssertTrue(human.contains("'<bos>'"), human)
    }

    func testErrorsAreOneLine() throws {
        let out = try runSFTDeck(["tokenize", "--model", "/nonexistent/model", "--text", "x"], expectStatus: 1)
        XCTAssertTrue(out.contains("/nonexistent/model"), out)
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-bad-\(UUID().uuidString).jinja")
        defer { try? FileManager.default.removeItem(at: bad) }
        try "{% if x %}unclosed".write(to: bad, atomically: true, encoding: .utf8)
        let msgs = Self.fixtures.appendingPathComponent("chat_templates/cli_messages.json").path
        let o2 = try runSFTDeck(["tokenize", "--model", folder, "--messages", msgs, "--chat-template", bad.path], expectStatus: 1)
        XCTAssertTrue(o2.contains("line 1, column 1"), o2)
    }
}
