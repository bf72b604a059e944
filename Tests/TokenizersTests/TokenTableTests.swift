import XCTest
@testable import Tokenizers

/// The vocab table BPE loading builds (one byte arena, hashed slots): lookups by bytes and by a+b, last-wins
/// inserts, growth past the initial capacity, and the merge errors it feeds.
final class TokenTableTests: XCTestCase {
    func testLookupsInsertsAndGrowth() {
        var t = TokenTable(capacity: 2)
        let words = (0..<5000).map { "w\($0)" } + ["", "▁a", "a", "b", "ab", "<0x0A>"]
        for (i, w) in words.enumerated() { Array(w.utf8).withUnsafeBytes { t.insert($0, id: Int32(i)) } }
        XCTAssertEqual(t.count, words.count)
        for (i, w) in words.enumerated() { XCTAssertEqual(t.lookup(w), Int32(i), w) }
        XCTAssertNil(t.lookup("w5000"))
        XCTAssertNil(t.lookup("ba"))
        // a+b without building it, including empty halves
        let a = Array("a".utf8), b = Array("b".utf8), empty: [UInt8] = []
        a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in XCTAssertEqual(t.lookup(pa, pb), t.lookup("ab")) } }
        b.withUnsafeBytes { pb in a.withUnsafeBytes { pa in XCTAssertNil(t.lookup(pb, pa)) } }
        empty.withUnsafeBytes { pe in a.withUnsafeBytes { pa in XCTAssertEqual(t.lookup(pe, pa), t.lookup("a")) } }
        // a repeated key keeps one entry and takes the later id (as a dictionary assignment does)
        Array("ab".utf8).withUnsafeBytes { t.insert($0, id: 99) }
        XCTAssertEqual(t.count, words.count)
        XCTAssertEqual(t.lookup("ab"), 99)
    }

    func testMergeErrorsNameTheToken() throws {
        func json(_ merges: String) -> Data {
            Data(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\n": 3}, "merges": \#(merges)}}"#.utf8)
        }
        XCTAssertNoThrow(try Tokenizer(tokenizerJSON: json(#"["a b"]"#)))
        XCTAssertThrowsError(try Tokenizer(tokenizerJSON: json(#"["a c"]"#))) { e in
            XCTAssertTrue("\(e)".contains("merge 0 uses \"c\", which is not in the vocab"), "\(e)")
        }
        XCTAssertThrowsError(try Tokenizer(tokenizerJSON: json(#"[["b", "a"]]"#))) { e in
            XCTAssertTrue("\(e)".contains("merge 0 makes \"ba\", which is not in the vocab"), "\(e)")
        }
        XCTAssertThrowsError(try Tokenizer(tokenizerJSON: json(#"["a b", "ab"]"#))) { e in
            XCTAssertTrue("\(e)".contains("merge 1 \"ab\" is not two tokens separated by one space"), "\(e)")
        }
        // an escaped key ("\n") is found through its decoded bytes
        let tok = try Tokenizer(tokenizerJSON: json(#"["a b"]"#))
        XCTAssertEqual(tok.tokenToId("\n"), 3)
        XCTAssertEqual(tok.tokenToId("ab"), 2)
    }
}
