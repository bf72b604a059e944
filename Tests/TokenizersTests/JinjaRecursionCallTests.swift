import XCTest
@testable import Tokenizers

/// Recursive for-loops and `{% call %}` blocks against jinja2 itself: Scripts/fixtures/gen_jinja.py renders
/// each case with transformers' template compiler (ImmutableSandboxedEnvironment, trim_blocks,
/// lstrip_blocks, loopcontrols). Outputs must be identical; where jinja2 raised, the Swift side must
/// throw with jinja2's message.
final class JinjaRecursionCallTests: XCTestCase {
    func testCasesMatchJinja2() throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("jinja/cases.json")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: url), source: "cases.json"),
              case .array(let cases)? = root["cases"] else { return XCTFail("bad cases.json") }
        var outputs = 0, errors = 0
        for case .dict(let c) in cases {
            let name = c["name"]!.str, source = c["template"]!.str
            var context: [String: JinjaValue] = [:]
            if case .dict(let d)? = c["context"] { for k in d.keys { context[k] = d[k] } }
            if let expected = c["output"] {
                outputs += 1
                do {
                    let got = try JinjaTemplate(source).render(context).text
                    XCTAssertEqual(got, expected.str, name)
                } catch { XCTFail("\(name): \(error)") }
            } else {
                errors += 1
                guard case .dict(let e)? = c["error"] else { XCTFail("\(name): no output nor error"); continue }
                let message = e["message"]!.str
                XCTAssertThrowsError(try JinjaTemplate(source).render(context), name) { err in
                    let text = "\(err)"
                    XCTAssertTrue(text.contains(message), "\(name): \(text) lacks jinja2's '\(message)'")
                    XCTAssertFalse(text.contains("\n"), text)
                }
            }
        }
        XCTAssertGreaterThanOrEqual(outputs, 18)
        XCTAssertGreaterThanOrEqual(errors, 4)
    }

    /// The depth seen through loop.depth/depth0 at each level of a four-level tree.
    func testDepthCounters() throws {
        let leaf: JinjaValue = .dict(JinjaDict([("c", .array([]))]))
        func node(_ children: [JinjaValue]) -> JinjaValue { .dict(JinjaDict([("c", .array(children))])) }
        let tree: JinjaValue = .array([node([node([node([leaf])])])])
        let t = try JinjaTemplate("{% for n in tree recursive %}{{ loop.depth }}{{ loop.depth0 }}{{ loop(n.c) }}{% endfor %}")
        XCTAssertEqual(try t.render(["tree": tree]).text, "10213243")
    }
}

/// PythonJSONText, the project's one JSON scalar writer, against Python's json.dumps (gen_jinja.py):
/// strings with ensure_ascii on (Training's files) and off (tojson), floats from their exact bits.
final class PythonJSONTextTests: XCTestCase {
    func testMatchesPythonJSONDumps() throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("jinja/json_text.json")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: url), source: "json_text.json"),
              case .array(let strings)? = root["strings"], case .array(let floats)? = root["floats"] else { return XCTFail("bad json_text.json") }
        for case .dict(let c) in strings {
            let s = c["s"]!.str
            XCTAssertEqual(PythonJSONText.string(s, ensureASCII: true), c["ascii"]!.str, s.debugDescription)
            XCTAssertEqual(PythonJSONText.string(s, ensureASCII: false), c["utf8"]!.str, s.debugDescription)
            // The chat templates' tojson (transformers: ensure_ascii=False) goes through it.
            XCTAssertEqual(try JinjaTemplate("{{ s | tojson }}").render(["s": .string(s)]).text, c["utf8"]!.str)
        }
        for case .dict(let c) in floats {
            let bits = try XCTUnwrap(UInt64(c["bits"]!.str, radix: 16))
            XCTAssertEqual(PythonJSONText.double(Double(bitPattern: bits)), c["dumps"]!.str, "bits \(bits)")
        }
        XCTAssertGreaterThanOrEqual(strings.count, 7)
        XCTAssertGreaterThanOrEqual(floats.count, 20)
    }
}
