import Foundation
import XCTest

/// The dashboard as a user sees it: the real binary in tmux.
final class DashboardTmuxTests: XCTestCase {
    var fixtures: String { repoRoot().appendingPathComponent("Tests/DashboardTests/Fixtures/dashboard").path }

    func testOpenMoveBetweenScreensAndHelp() throws {
        let t = try TmuxSession(["--runs", fixtures])
        t.waitFor("1 Datasets")
        t.waitFor("No datasets found")
        t.send("5")
        t.waitFor("hf_run  step 6 loss 15.67")
        t.waitFor("braille curve") { $0.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) } }
        t.send("m")
        t.waitFor("Compare: learning_rate")
        t.send("?")
        t.waitFor("Runs screen")
        t.waitFor("add / remove from the overlay")
        t.send("Escape")
        t.waitFor("help closed") { !$0.contains("Runs screen") }
        t.send("4")
        t.waitFor("No run yet: press s to start training")
        t.send("q")
        t.waitFor("[exit 0]")
    }

    func testResizeAndTooSmallTerminal() throws {
        let t = try TmuxSession(["--runs", fixtures])
        t.waitFor("5 Runs")
        t.resize(width: 50, height: 12)
        t.waitFor("Terminal too small: 50x12")
        t.resize(width: 100, height: 30)
        // The layout comes back with the frame's right border at the new width.
        t.waitFor("layout at 100 columns") { s in
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            return s.contains("5 Runs") && !s.contains("too small") && lines.count > 1 && lines[1].count == 100 && lines[1].hasSuffix("┐")
        }
        t.send("q")
        t.waitFor("[exit 0]")
    }

    func testWatchShowsChartsAndFinishedRun() throws {
        let t = try TmuxSession(["watch", fixtures + "/hf_run"])
        t.waitFor("step 6/6")
        t.waitFor("finished")
        t.waitFor("{'loss': '15.67', 'grad_norm': '17.19', 'learning_rate': '0.008333', 'epoch': '1'}")
        t.waitFor("Learning rate")
        t.send("p")
        t.waitFor("no run to pause")
        t.send("q")
        t.waitFor("[exit 0]")
    }

    func testASCIIFallbackInACLocale() throws {
        let t = try TmuxSession(["watch", fixtures + "/hf_run"], env: ["LANG": "C", "LC_ALL": "C"])
        let s = t.waitFor("step 6/6")
        XCTAssertTrue(s.contains("+-"), s)
        XCTAssertFalse(s.unicodeScalars.contains { (0x2800...0x28FF).contains($0.value) || $0.value == 0x2500 }, "braille or box drawing in a C locale:\n\(s)")
        t.send("q")
        t.waitFor("[exit 0]")
    }

    func testNoColorDrawsWithoutColours() throws {
        let t = try TmuxSession(["--runs", fixtures], env: ["NO_COLOR": "1"])
        t.waitFor("5 Runs")
        let esc = t.screen(escapes: true)
        XCTAssertFalse(esc.contains("[38;") || esc.contains(";38;") || esc.contains("[3" + "1m"), "colour escapes with NO_COLOR:\n\(esc.prefix(400))")
        XCTAssertTrue(esc.contains("\u{1b}[7m") || esc.contains(";7m") || esc.contains("[1;7m"), "selection shown in reverse video")
        t.send("q")
    }

    /// The same theme on an 8-colour terminal uses the basic SGR colours (30-37 / 40-47), on a
    /// 256-colour one the xterm palette (38;5;N), and on one without colours none at all.
    func testColourDepthFollowsTheTerminal() throws {
        func escapes(term: String) throws -> String {
            let t = try TmuxSession(["--runs", fixtures], env: ["TERM": term])
            t.waitFor("5 Runs")
            let e = t.screen(escapes: true)
            t.send("q")
            return e
        }
        let e8 = try escapes(term: "screen")
        XCTAssertFalse(e8.contains("38;5;"), e8.prefix(300).description)
        XCTAssertTrue(e8.range(of: #"\[(\d+;)*3[0-7]m"#, options: .regularExpression) != nil, e8.prefix(300).description)
        let e256 = try escapes(term: "xterm-256color")
        XCTAssertTrue(e256.contains("38;5;"), e256.prefix(300).description)
        let mono = try escapes(term: "vt100")
        XCTAssertNil(mono.range(of: #"\[(\d+;)*(3|4)[0-7]m|38;5;"#, options: .regularExpression), mono.prefix(300).description)
        XCTAssertTrue(mono.contains("7m"), "selection in reverse video without colours")
    }

    /// A new MMIU folder (JSON records + image zips) opens in the background: the dashboard draws at
    /// once (no progress line before ncurses), lists it, then shows its row count; the images are
    /// unpacked next to the data; keys work and q quits cleanly.
    func testMMIUDatasetOpensInTheBackground() throws {
        let fixture = repoRoot().appendingPathComponent("Tests/DatasetsTests/Fixtures/layouts/mmiu")
        let dir = NSTemporaryDirectory() + "tmux-mmiu-\(UUID().uuidString.prefix(8))/mmiu-mini"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        for f in ["all.json", "2D-spatial.zip", "Low-level-semantic.zip"] {
            try FileManager.default.copyItem(atPath: fixture.appendingPathComponent(f).path, toPath: dir + "/" + f)
        }
        let t = try TmuxSession(["--dataset", dir])
        t.waitFor("mmiu-mini  [recent]")
        let s = t.waitFor("test  6 rows", timeout: 30)
        XCTAssertTrue(s.contains("layout  MMIU"), s)
        XCTAssertFalse(s.contains("extracting images"), "a progress line leaked onto the screen:\n\(s)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/.sftdeck-images/2D-spatial"), "images unpacked next to the data")
        t.send("2")
        t.waitFor("row 0/5", timeout: 30)
        t.send("q")
        t.waitFor("[exit 0]")
    }
}
