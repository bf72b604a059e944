import XCTest
@testable import Tokenizers

final class TokenizerFolderTests: XCTestCase {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// Ids as transformers' AutoTokenizer reports them for the fixture folder (gen_tokenizers.py prints them).
    func testGemmaTinyFolder() throws {
        let tok = try Tokenizer.load(folder: Self.fixtures.appendingPathComponent("gemma-tiny"))
        let expected = ["<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 262, "<end_of_turn>": 263,
                        "<start_of_image>": 1290, "<end_of_image>": 1291, "<image_soft_token>": 1292]
        for (t, id) in expected { XCTAssertEqual(tok.tokenToId(t), id, t) }
        XCTAssertEqual(tok.count, 1293)
        XCTAssertEqual(tok.bosTokenId, 2)
        XCTAssertEqual(tok.eosTokenId, 1)
        XCTAssertEqual(tok.padTokenId, 0)
        XCTAssertEqual(tok.chatTemplate, GemmaTokenizerBuilder.gemma3ChatTemplate)
        XCTAssertEqual(tok.encode("<start_of_turn>user\n").ids.first, 2)
    }

    func testChatTemplatePrecedence() throws {
        let d = try tempDir()
        let src = Self.fixtures.appendingPathComponent("gemma-tiny/tokenizer.json")
        try FileManager.default.copyItem(at: src, to: d.appendingPathComponent("tokenizer.json"))
        try #"{"bos_token": "<bos>", "chat_template": "from-config"}"#.write(to: d.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer.load(folder: d).chatTemplate, "from-config")
        try "from-jinja".write(to: d.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer.load(folder: d).chatTemplate, "from-jinja")
        try #"{"chat_template": "from-legacy-json"}"#.write(to: d.appendingPathComponent("chat_template.json"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer.load(folder: d).chatTemplate, "from-legacy-json")
        try #"{"processor_class": "X", "chat_template": "from-processor"}"#.write(to: d.appendingPathComponent("processor_config.json"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer.load(folder: d).chatTemplate, "from-processor")
    }

    func testBadFilesGiveOneReadableLine() throws {
        let d = try tempDir()
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in
            XCTAssertTrue("\(e)".contains("no tokenizer.json"), "\(e)")
        }
        try "{not json".write(to: d.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.json: not valid JSON"), "\(e)")
        }
        try #"{"model": {"type": "Unigram", "vocab": []}}"#.write(to: d.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in XCTAssertTrue("\(e)".contains("Unigram"), "\(e)") }
        try #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"], "dropout": 0.1}}"#.write(to: d.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in XCTAssertTrue("\(e)".contains("dropout"), "\(e)") }
        try #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#.write(to: d.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in XCTAssertTrue("\(e)".contains("merge 0"), "\(e)") }
        try #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Frobnicate"}}"#.write(to: d.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: d)) { e in XCTAssertTrue("\(e)".contains("pre_tokenizer type \"Frobnicate\""), "\(e)") }
    }

    func testGemmaBuilderRoundTripsAndRenders() throws {
        let corpus = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "Fine-tune the model on images."]
        let d = try tempDir()
        let built = try GemmaTokenizerBuilder.writeFolder(d, corpus: corpus, mergeCount: 40)
        let tok = try Tokenizer.load(folder: d)
        XCTAssertEqual(tok.tokenToId("<bos>"), 2)
        XCTAssertEqual(tok.tokenToId("<0x00>"), 5)
        XCTAssertEqual(tok.tokenToId("<0xFF>"), 260)
        XCTAssertEqual(tok.tokenToId("<image_soft_token>"), built.specialTokenIds["<image_soft_token>"])
        XCTAssertEqual(tok.count, built.vocabularySize)
        let text = "the cat sat — on ünïcode 😀 <start_of_turn>model\n  two  spaces"
        let e = tok.encode(text)
        XCTAssertEqual(e.ids.first, 2)
        XCTAssertEqual(tok.decode(e.ids, skipSpecialTokens: false), "<bos>" + text)
        XCTAssertEqual(tok.decode(e.ids, skipSpecialTokens: true), text.replacingOccurrences(of: "<start_of_turn>", with: ""))
        // Merges were learned: "the" is one token after training.
        XCTAssertNotNil(tok.tokenToId("▁the"))
        XCTAssertLessThan(tok.encode(" the the the", addSpecialTokens: false).ids.count, 4)
        let out = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", parts: [.image, .text("hi")]), ChatMessage(role: "assistant", text: "yo")])
        XCTAssertEqual(out.text, "<bos><start_of_turn>user\n<start_of_image>hi<end_of_turn>\n<start_of_turn>model\nyo<end_of_turn>\n")
        XCTAssertEqual(out.ids.first, 2)
        XCTAssertTrue(out.ids.contains(built.specialTokenIds["<start_of_image>"]!))
        XCTAssertNil(out.assistantMask)
    }

    /// The hand-written Llama 3 / Qwen 2 / GPT-2 matchers agree with ICU running the same regex.
    func testBuiltInSplitMatchersAgreeWithICU() throws {
        let dir = Self.fixtures.appendingPathComponent("tokenizers/llama3")
        let cases = try parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json"))) as! [String: Any]
        let texts = Set((cases["encode"] as! [[String: Any]]).map { $0["text"] as! String }).sorted()
        for pattern in [SplitRegex.llama3Pattern, SplitRegex.qwen2Pattern, SplitRegex.gpt2Pattern] {
            let fast = try SplitRegex(pattern), icu = try SplitRegex(pattern, forceICU: true)
            if case .icu = fast.kind { XCTFail("built-in matcher not selected") }
            for t in texts {
                let s = scalarsOf(t)
                XCTAssertEqual(fast.matches(s), icu.matches(s), "\(pattern.prefix(12)) \(t.debugDescription)")
            }
        }
    }
}
