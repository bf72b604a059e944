import XCTest
@testable import Tokenizers

/// trl's chat templates rendered by transformers' apply_chat_template (Scripts/fixtures/gen_chat_templates.py):
/// the Swift interpreter must give the identical text, ids and assistant mask for every case. Exact equality.
func intArray(_ v: JinjaValue?) -> [Int] {
    guard case .array(let a)? = v else { return [] }
    return a.compactMap { $0.intValue }
}

final class ChatTemplateParityTests: XCTestCase {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    func testTRLTemplatesMatchTransformers() throws {
        let dir = Self.fixtures.appendingPathComponent("chat_templates")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json")), source: "cases.json"),
              case .array(let cases)? = root["cases"] else { return XCTFail("bad cases.json") }
        var tokenizers: [String: Tokenizer] = [:]
        var seenTemplates = Set<String>()
        var failures = 0, checked = 0, masksChecked = 0
        for case .dict(let c) in cases {
            checked += 1
            let name = c["template"]!.str, folder = c["folder"]!.str
            seenTemplates.insert(name)
            if tokenizers[folder] == nil { tokenizers[folder] = try Tokenizer.load(folder: Self.fixtures.appendingPathComponent(folder)) }
            let tok = tokenizers[folder]!
            let source = try String(contentsOf: dir.appendingPathComponent("\(name).jinja"), encoding: .utf8)
            guard case .array(let messages)? = c["messages"], case .dict(let kw)? = c["kwargs"] else { return XCTFail("bad case") }
            var extra: [String: JinjaValue] = [:]
            for k in kw.keys { extra[k] = kw[k] }
            let label = "\(name)/\(c["conversation"]!.str) gen=\(c["add_generation_prompt"]!.truthy)"
            do {
                let out = try tok.applyChatTemplate(messages: messages, addGenerationPrompt: c["add_generation_prompt"]!.truthy, template: source, extra: extra)
                let ids = intArray(c["ids"])
                if out.text != c["text"]!.str || out.ids != ids { failures += 1 }
                XCTAssertEqual(out.text, c["text"]!.str, label)
                XCTAssertEqual(out.ids, ids, label)
                if case .array(let m)? = c["assistant_mask"] {
                    XCTAssertEqual(out.assistantMask, m.compactMap { $0.intValue }, "mask " + label)
                    masksChecked += 1
                    XCTAssertTrue(m.contains { $0.intValue == 1 } || !c["messages"]!.repr.contains("'assistant'"), "mask has assistant tokens " + label)
                } else {
                    XCTAssertNil(out.assistantMask, label)
                }
            } catch {
                failures += 1
                XCTFail("\(label): \(error)")
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(checked, cases.count)
        XCTAssertGreaterThanOrEqual(masksChecked, 50)
        for t in ["gemma3", "qwen2_5_vl", "qwen3_vl", "smolvlm", "idefics3", "llava_next", "llama3_2"] {
            XCTAssertTrue(seenTemplates.contains(t), t)
        }
        XCTAssertGreaterThanOrEqual(seenTemplates.count, 14)
    }

    func testRaiseExceptionSurfacesMessage() throws {
        let dir = Self.fixtures.appendingPathComponent("chat_templates")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json")), source: "cases.json"),
              case .dict(let r)? = root["raise_exception"], case .array(let msgs)? = r["messages"] else { return XCTFail("bad cases.json") }
        let tok = try Tokenizer.load(folder: Self.fixtures.appendingPathComponent("gemma-tiny"))
        XCTAssertThrowsError(try tok.applyChatTemplate(messages: msgs)) { e in
            guard let je = e as? JinjaError else { return XCTFail("\(e)") }
            XCTAssertEqual(je.kind, .raised)
            XCTAssertEqual(je.message, r["message"]!.str)
            XCTAssertTrue(je.description.contains("Conversation roles must alternate"), je.description)
            XCTAssertGreaterThan(je.line, 0)
        }
    }

    func testSyntaxErrorsReportJinjaLine() throws {
        let dir = Self.fixtures.appendingPathComponent("chat_templates")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json")), source: "cases.json"),
              case .array(let errs)? = root["syntax_errors"] else { return XCTFail("bad cases.json") }
        for case .dict(let e) in errs {
            let src = e["source"]!.str
            XCTAssertThrowsError(try JinjaTemplate(src), e["name"]!.str) { err in
                guard let je = err as? JinjaError else { return XCTFail("\(err)") }
                XCTAssertEqual(je.kind, .syntax)
                // jinja2 reports where it noticed the problem; the line must agree.
                XCTAssertEqual(je.line, e["line"]?.intValue, "\(e["name"]!.str): \(je.description) vs jinja2 \(e["message"]?.str ?? "")")
                XCTAssertGreaterThan(je.column, 0)
            }
        }
    }
}

/// Small templates covering the interpreter (loops, namespaces, macros, filters, tests, slicing, operators,
/// whitespace control, raw, set blocks) rendered by transformers' compiled jinja2 environment.
final class JinjaSnippetTests: XCTestCase {
    func testSnippetsMatchJinja2() throws {
        let dir = ChatTemplateParityTests.fixtures.appendingPathComponent("chat_templates")
        guard case .dict(let root) = try JinjaValue.parseJSON(Data(contentsOf: dir.appendingPathComponent("cases.json")), source: "cases.json"),
              case .array(let snippets)? = root["snippets"] else { return XCTFail("bad cases.json") }
        XCTAssertGreaterThan(snippets.count, 20)
        for case .dict(let s) in snippets {
            let src = s["source"]!.str
            guard case .dict(let ctxD)? = s["context"] else { return XCTFail("bad context") }
            var ctx: [String: JinjaValue] = [:]
            for k in ctxD.keys { ctx[k] = ctxD[k] }
            do {
                let out = try JinjaTemplate(src).render(ctx).text
                XCTAssertEqual(out, s["output"]!.str, src)
            } catch { XCTFail("\(src): \(error)") }
        }
    }

    func testErrorsNameLineAndColumn() throws {
        XCTAssertThrowsError(try JinjaTemplate("ab\n  {{ x | nope }}")) { e in
            XCTAssertEqual((e as? JinjaError)?.description, "chat template line 2, column 10: no filter named 'nope'")
        }
        XCTAssertThrowsError(try JinjaTemplate("{{ 1 + }}")) { e in
            XCTAssertEqual((e as? JinjaError)?.line, 1)
        }
        // Runtime errors carry the position of the failing expression.
        XCTAssertThrowsError(try JinjaTemplate("x\n{{ 1 + 'a' }}").render([:])) { e in
            let je = e as? JinjaError
            XCTAssertEqual(je?.kind, .runtime)
            XCTAssertEqual(je?.line, 2)
        }
        XCTAssertThrowsError(try JinjaTemplate("{% for m in messages %}{{ m.x.y }}{% endfor %}").render(["messages": .array([.dict(JinjaDict())])])) { e in
            XCTAssertEqual((e as? JinjaError)?.kind, .runtime)
        }
    }

    func testGenerationSpansAreScalarOffsets() throws {
        let t = try JinjaTemplate("é😀{% generation %}ab{{ x }}{% endgeneration %}z{% generation %}{% endgeneration %}")
        let r = try t.render(["x": "ü"])
        XCTAssertEqual(r.text, "é😀abüz")
        XCTAssertEqual(r.generationSpans, [2..<5, 6..<6])
        XCTAssertTrue(t.hasGenerationBlocks)
    }
}
