import XCTest
@testable import Dashboard

final class ThemeTests: XCTestCase {
    func repoRoot() -> URL {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u
    }

    func testThemeFilesParseAndMatchTheBuiltIns() throws {
        for name in Theme.builtInNames {
            let path = repoRoot().appendingPathComponent("themes/\(name).toml").path
            let text = try String(contentsOfFile: path, encoding: .utf8)
            XCTAssertEqual(text.trimmingCharacters(in: .newlines), BuiltInThemes.text[name]!.trimmingCharacters(in: .newlines),
                           "themes/\(name).toml and BuiltInThemes.swift differ: regenerate the Swift copy")
            let t = try Theme.parse(text, file: path)
            XCTAssertEqual(t.name, name)
            XCTAssertEqual(t.tokens.count, TokenKind.allCases.count)
        }
    }

    func testBrokenThemeFallsBackWithOneLineError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("themes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bad = dir.appendingPathComponent("bad.toml")
        var text = BuiltInThemes.text["dark"]!.replacingOccurrences(of: "accent = \"#61afef\"", with: "acent = \"#61afef\"")
        try text.write(to: bad, atomically: true, encoding: .utf8)
        let (t, err) = Theme.load(bad.path)
        XCTAssertEqual(t, Theme.defaultTheme)
        XCTAssertEqual(err, "theme \(bad.path): unknown key 'ui.acent' (did you mean 'ui.accent'?); using the default theme")
        text = "name = \"x\"\n[ui]\nbackground = blue\n"
        try text.write(to: bad, atomically: true, encoding: .utf8)
        let (_, err2) = Theme.load(bad.path)
        XCTAssertEqual(err2, "theme \(bad.path):3: cannot read value 'blue' (strings need double quotes); using the default theme")
        try "[ui]\nbackground = #123456\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertEqual(Theme.load(bad.path).1, "theme \(bad.path):2: missing value; using the default theme")
        let (_, err3) = Theme.load("drak")
        XCTAssertEqual(err3, "theme 'drak' not found (did you mean 'dark'?); using the default theme")
    }

    func testTOMLSubset() throws {
        let kv = try TOMLSubset.parse("# c\nname = \"a # b\" # comment\n[t]\nx = 1.5\nflag = true\nlist = [\"#fff\", \"#000\"]\n")
        XCTAssertEqual(kv["name"], .string("a # b"))
        XCTAssertEqual(kv["t.x"], .number(1.5))
        XCTAssertEqual(kv["t.flag"], .bool(true))
        XCTAssertEqual(kv["t.list"], .array([.string("#fff"), .string("#000")]))
        XCTAssertThrowsError(try TOMLSubset.parse("a = 1\na = 2", file: "f.toml")) { e in
            XCTAssertEqual("\(e)", "f.toml:2: duplicate key 'a'")
        }
    }

    func testColourDegradation() {
        // xterm-256: pure colours land on the cube corners, greys on the grey ramp.
        XCTAssertEqual(ColorQuantizer.xterm256(RGB(255, 0, 0)), 196)
        XCTAssertEqual(ColorQuantizer.xterm256(RGB(0, 0, 0)), 16)
        XCTAssertEqual(ColorQuantizer.xterm256(RGB(128, 128, 128)), 244)
        // 8 colours keep the hue family: orange -> yellow, teal -> cyan, dark bg -> black.
        XCTAssertEqual(ColorQuantizer.ansi8(RGB(0xe6, 0x9f, 0x00)), 3)
        XCTAssertEqual(ColorQuantizer.ansi8(RGB(0x56, 0xb6, 0xc2)), 6)
        XCTAssertEqual(ColorQuantizer.ansi8(RGB(0x1b, 0x1d, 0x23)), 0)
        XCTAssertEqual(ColorQuantizer.ansi8(RGB(0xd8, 0xde, 0xe9)), 7)
        XCTAssertEqual(ColorMode.detect(colors: 256, environment: ["NO_COLOR": "1"]), .monochrome)
        XCTAssertEqual(ColorMode.detect(colors: 256, environment: ["NO_COLOR": ""]), .palette256)
        XCTAssertEqual(ColorMode.detect(colors: 8, environment: [:]), .basic8)
        XCTAssertEqual(ColorMode.detect(colors: 0x1000000, environment: [:]), .truecolor)
        XCTAssertEqual(ColorQuantizer.terminalColor(.rgb(RGB(1, 2, 3)), mode: .truecolor), 0x010203)
    }

    func testHighContrastTokenKindsDifferBeyondColour() {
        // Colour-blind safety: every masked kind differs from trained by attribute, not hue alone.
        let t = Theme.builtIn("high-contrast")!
        let trained = t.tokenStyle(.trained).attrs
        for k in TokenKind.allCases where k != .trained { XCTAssertNotEqual(t.tokenStyle(k).attrs, trained, "\(k)") }
    }
}
