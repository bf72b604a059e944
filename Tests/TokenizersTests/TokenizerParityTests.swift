import XCTest
@testable import Tokenizers

/// Every id, token, offset and decoded string recorded from the `tokenizers` library
/// (Scripts/fixtures/gen_tokenizers.py) must come out of the Swift tokenizer unchanged. Exact equality.
final class TokenizerParityTests: XCTestCase {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    func check(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Self.fixtures.appendingPathComponent("tokenizers/\(family)")
        let tok = try Tokenizer(tokenizerJSON: Data(contentsOf: dir.appendingPathComponent("tokenizer.json")), source: "\(family)/tokenizer.json")
        let cases = try parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json"))) as! [String: Any]
        var failures = 0, checkedFull = 0
        for c in cases["encode"] as! [[String: Any]] {
            let text = c["text"] as! String
            let add = c["add_special_tokens"] as! Bool
            let e = tok.encode(text, addSpecialTokens: add)
            let ids = c["ids"] as! [Int]
            XCTAssertEqual(tok.encodeIdsFast(text, addSpecialTokens: add).map(Int.init), ids, "\(family) ids-only \(text.debugDescription)", file: file, line: line)
            guard let tokens = c["tokens"] as? [String], let offsets = c["offsets"] as? [[Int]] else {
                // ids-only record (adding special tokens changed nothing)
                if e.ids != ids { failures += 1; XCTFail("\(family) \(text.debugDescription) add=\(add)\n swift \(e.ids)\n hf    \(ids)", file: file, line: line) }
                continue
            }
            if e.ids != ids || e.tokens != tokens {
                failures += 1
                if failures < 6 { XCTFail("\(family) \(text.debugDescription) add=\(add)\n swift \(e.ids) \(e.tokens)\n hf    \(ids) \(tokens)", file: file, line: line) }
                continue
            }
            let gotOffsets = e.offsets.map { [$0.0, $0.1] }
            if gotOffsets != offsets {
                failures += 1
                if failures < 6 { XCTFail("\(family) offsets \(text.debugDescription)\n swift \(gotOffsets)\n hf    \(offsets)", file: file, line: line) }
            }
            XCTAssertEqual(tok.decode(ids, skipSpecialTokens: false), c["decoded"] as? String, "\(family) decode \(text.debugDescription)", file: file, line: line)
            XCTAssertEqual(tok.decode(ids, skipSpecialTokens: true), c["decoded_skip_special"] as? String, "\(family) decode skip \(text.debugDescription)", file: file, line: line)
            checkedFull += 1
        }
        XCTAssertGreaterThan(checkedFull, 60, family, file: file, line: line)
        for c in cases["decode"] as! [[String: Any]] {
            let ids = c["ids"] as! [Int]
            XCTAssertEqual(tok.decode(ids, skipSpecialTokens: false), c["decoded"] as? String, "\(family) decode \(ids)", file: file, line: line)
            XCTAssertEqual(tok.decode(ids, skipSpecialTokens: true), c["decoded_skip_special"] as? String, "\(family) decode skip \(ids)", file: file, line: line)
        }
        XCTAssertEqual(failures, 0, "\(family): \(failures) encodings differ", file: file, line: line)
    }

    func testGemma() throws { try check("gemma") }
    func testLlama3() throws { try check("llama3") }
    func testQwen2() throws { try check("qwen2") }
    func testSmolLM() throws { try check("smollm") }
    func testMisc() throws { try check("misc") }
    func testWhitespace() throws { try check("whitespace") }
}
