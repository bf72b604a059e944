import XCTest
@testable import Training

/// `PythonJSON.parse`: the value types the trainer's readers rely on (whole numbers as Int, also "1.0"
/// and "1e2"; other numbers as correctly rounded Doubles), Python's NaN/Infinity, escapes, and one error
/// line with the byte offset for bad input, deep nesting included.
final class PythonJSONTests: XCTestCase {
    func parse(_ s: String) throws -> Any { try PythonJSON.parse(Data(s.utf8)) }

    func testNumbersKeepTheTypesTheReadersExpect() throws {
        let v = try XCTUnwrap(parse("[1.0, 1e2, -0, 1.5, 12345678901234567890, 0.1, -5, 2E-3, 1.0e0, 9007199254740993]") as? [Any])
        XCTAssertEqual(v[0] as? Int, 1)
        XCTAssertEqual(v[1] as? Int, 100)
        XCTAssertEqual(v[2] as? Int, 0)
        XCTAssertEqual(v[3] as? Double, 1.5)
        XCTAssertEqual(v[4] as? Double, 12345678901234567890.0)
        XCTAssertEqual((v[5] as? Double)?.bitPattern, 0.1.bitPattern)
        XCTAssertEqual(v[6] as? Int, -5)
        XCTAssertEqual(v[7] as? Double, 0.002)
        XCTAssertEqual(v[8] as? Int, 1)
        XCTAssertEqual(v[9] as? Int, 9007199254740993, "integer literals are exact, not through a Double")
    }

    func testDoublesRoundTripThroughDumps() throws {
        let values: [Double] = [0.1, 1 / 3, 2.5e-7, 1e300, -123.456, 6.02214076e23, 5e-324, .pi]
        let text = PythonJSON.dumps(["x": values], indent: 2)
        let back = try XCTUnwrap((parse(text) as? [String: Any])?["x"] as? [Any])
        for (a, b) in zip(values, back) { XCTAssertEqual(a.bitPattern, ((b as? Double) ?? .nan).bitPattern, "\(a)") }
    }

    func testPythonLiteralsStringsAndContainers() throws {
        let v = try XCTUnwrap(parse(#" {"a": [true, false, null, NaN, Infinity, -Infinity], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "e": {}, "l": []} "#) as? [String: Any])
        let a = try XCTUnwrap(v["a"] as? [Any])
        XCTAssertEqual(a[0] as? Bool, true)
        XCTAssertEqual(a[1] as? Bool, false)
        XCTAssertTrue(a[2] is NSNull)
        XCTAssertTrue((a[3] as? Double)?.isNaN == true)
        XCTAssertEqual(a[4] as? Double, .infinity)
        XCTAssertEqual(a[5] as? Double, -.infinity)
        XCTAssertEqual(v["s"] as? String, "q\"\\/\u{8}\u{c}\n\r\té😀")
        XCTAssertEqual((v["e"] as? [String: Any])?.count, 0)
        XCTAssertEqual((v["l"] as? [Any])?.count, 0)
    }

    func testBadInputIsOneLineWithTheOffset() {
        for (text, offset) in [("[1, 2", 5), ("{\"a\" 1}", 5), ("[1] x", 4), ("\"abc", 4), ("[01x]", 2), ("tru", 0), ("[1.]", 3), ("", 0)] {
            XCTAssertThrowsError(try parse(text), text) { e in
                let msg = "\(e)"
                XCTAssertTrue(msg.hasPrefix("invalid JSON at byte \(offset):"), "\(text): \(msg)")
                XCTAssertFalse(msg.contains("\n"))
            }
        }
        XCTAssertThrowsError(try PythonJSON.parse(Data("[1,".utf8), file: URL(fileURLWithPath: "/data/d.json"))) { e in
            XCTAssertEqual("\(e)", "/data/d.json: invalid JSON at byte 3: unexpected end of JSON")
        }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep)) { e in XCTAssertTrue("\(e)".contains("deeper than 512"), "\(e)") }
    }
}
