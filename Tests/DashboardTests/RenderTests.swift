import XCTest
@testable import Dashboard
import Training

final class RenderTests: XCTestCase {
    let theme = Theme.defaultTheme

    func testTooSmallTerminalShowsAMessage() {
        let app = makeApp(FakeSource())
        let buf = frame(app, width: 40, height: 10)
        XCTAssertNotNil(buf.find("Terminal too small: 40x10"), buf.text)
        XCTAssertNotNil(buf.find("needs at least 60x16"), buf.text)
        XCTAssertNil(buf.find("Datasets"), "no layout drawn when too small")
    }

    func testTokenViewLegendCountsAndColours() {
        let app = makeApp(FakeSource())
        app.handle(.enter)                        // open the first dataset in the inspector
        XCTAssertEqual(app.screen, .inspector)
        let buf = frame(app)
        for item in ["trained 3", "prompt 8", "pad 1", "image 2", "image-boundary 2", "truncated 0", "system 0"] {
            XCTAssertNotNil(buf.find(item), "legend lacks \(item)\n\(buf.text)")
        }
        XCTAssertNotNil(buf.find("16 tokens: trained 3 (18.8%), masked 13"), buf.text)
        // The trained token "Red" is drawn in the theme's trained colour, bold + underlined; the
        // masked " What" is dim in the prompt colour.
        // "Red" carries the cursor (reverse selection); " triangle" is a plain trained token.
        guard let red = buf.find("Red triangle<end_of_turn>") else { return XCTFail(buf.text) }
        XCTAssertEqual(buf[red.x, red.y].style, RenderContext(theme: theme).selection)
        let redStyle = buf[red.x + 4, red.y].style
        XCTAssertEqual(redStyle.fg, theme.tokens[.trained])
        XCTAssertTrue(redStyle.attrs.contains(.bold) && redStyle.attrs.contains(.underline))
        guard let what = buf.find("<end_of_image> What colour?") else { return XCTFail(buf.text) }
        XCTAssertEqual(buf[what.x + 15, what.y].style.fg, theme.tokens[.prompt])
        XCTAssertTrue(buf[what.x + 15, what.y].style.attrs.contains(.dim))
        XCTAssertEqual(buf[what.x, what.y].style.fg, theme.tokens[.imageBoundary])
        XCTAssertTrue(buf[what.x, what.y].style.attrs.contains(.reverse))
    }

    func testInspectorShowsRolesAndHalfBlockThumbnail() {
        let app = makeApp(FakeSource())
        app.handle(.enter)
        let buf = frame(app)
        XCTAssertNotNil(buf.find("── user (1 image)"), buf.text)
        XCTAssertNotNil(buf.find("── assistant"), buf.text)
        XCTAssertNotNil(buf.find("#1 8x8"), buf.text)
        // The 8x8 image (red over blue) fits as half blocks: top pixel fg red, bottom pixel bg.
        var found = false
        for y in 0..<buf.height { for x in 0..<buf.width where buf[x, y].text == "▀" {
            if buf[x, y].style.fg == .rgb(RGB(255, 0, 0)) { found = true }
        } }
        XCTAssertTrue(found, "no red half-block thumbnail cell")
    }

    func testChartHasAxesTicksAndLatestValue() {
        let pts = (1...20).map { (x: Double($0), y: 4.0 / Double($0)) }
        let chart = LineChart(title: "Loss", series: [ChartSeries(name: "raw", points: pts, color: theme.chartLoss)])
        var buf = ScreenBuffer(width: 60, height: 12)
        chart.draw(&buf, buf.bounds, ctx: RenderContext(theme: theme))
        XCTAssertNotNil(buf.find("raw 0.2"), buf.text)               // latest value in the legend
        XCTAssertNotNil(buf.find("└"), buf.text)                     // axis corner
        XCTAssertTrue(buf.text.contains("4"), buf.text)               // a y tick at the top value
        XCTAssertNotNil(buf.find("20"), "x tick at the last step\n\(buf.text)")
        let braille = buf.cells.filter { $0.text.unicodeScalars.first.map { (0x2801...0x28FF).contains($0.value) } ?? false }
        XCTAssertGreaterThan(braille.count, 20, buf.text)
    }

    func testASCIIFallbackUsesNoUnicode() {
        let src = FakeSource()
        let app = makeApp(src, options: DashboardOptions(initialScreen: .train))
        app.handle(.char("s"))
        src.engine.emit(.started(RunInfo(outputDir: "out", maxSteps: 10, numEpochs: 1, stepsPerEpoch: 10, numTrainSamples: 40, trainableParameters: 10, totalParameters: 100)))
        src.engine.runSteps(1...6, maxSteps: 10)
        app.pump()
        for screen in ScreenID.allCases {
            app.switchTo(screen)
            if screen == .inspector { app.switchTo(.datasets); app.handle(.enter) }
            let buf = frame(app, glyphs: .ascii, mode: .monochrome)
            let nonASCII = buf.cells.filter { !$0.text.unicodeScalars.allSatisfy(\.isASCII) }
            XCTAssertTrue(nonASCII.isEmpty, "\(screen): non-ASCII cells \(nonASCII.prefix(5).map(\.text))\n\(buf.text)")
            // Monochrome: no colour reaches the buffer's meaning-bearing cells except through attributes.
        }
        app.switchTo(.train)
        let buf = frame(app, glyphs: .ascii, mode: .monochrome)
        XCTAssertNotNil(buf.find("step 6/10"), buf.text)
        XCTAssertTrue(buf.text.contains("+-"), buf.text)
    }

    func testProgressBarETAAndDetails() {
        let info = ProgressInfo(step: 25, maxSteps: 100, epoch: 0.5, numEpochs: 2, elapsed: 50, tokensPerSecond: 812, residentBytes: 3 << 29, state: .running)
        XCTAssertEqual(info.eta, 150)
        var buf = ScreenBuffer(width: 100, height: 2)
        ProgressBar(info).draw(&buf, buf.bounds, ctx: RenderContext(theme: theme))
        XCTAssertTrue(buf.line(0).hasPrefix("step 25/100 "), buf.text)
        XCTAssertTrue(buf.line(0).contains(" 25% running"), buf.text)
        XCTAssertEqual(buf.line(1).trimmingCharacters(in: .whitespaces), "epoch 0.50/2  elapsed 00:50  ETA 02:30  812 tok/s  RSS 1.5 GiB")
    }

    func testWideCharactersTakeTwoCells() {
        var buf = ScreenBuffer(width: 10, height: 1)
        let end = buf.put("a猫b", x: 0, y: 0)
        XCTAssertEqual(end, 4)
        XCTAssertEqual(buf[1, 0].text, "猫")
        XCTAssertTrue(buf[2, 0].isContinuation)
        XCTAssertEqual(buf[3, 0].text, "b")
        XCTAssertEqual(buf.line(0), "a猫b      ")
    }

    func testHelpOverlayListsScreenBindings() {
        let app = makeApp(FakeSource(), options: DashboardOptions(initialScreen: .train))
        app.handle(.char("?"))
        let buf = frame(app)
        XCTAssertNotNil(buf.find("Train screen"), buf.text)
        XCTAssertNotNil(buf.find("save a checkpoint now"), buf.text)
        XCTAssertNotNil(buf.find("cycle theme"), buf.text)
        app.handle(.escape)
        XCTAssertNil(frame(app).find("Train screen"))
    }

    func testThumbnailFitKeepsAspect() {
        XCTAssertEqual(Thumbnail.fit(width: 896, height: 896, maxCols: 20, maxRows: 8).cols, 16)
        XCTAssertEqual(Thumbnail.fit(width: 896, height: 896, maxCols: 20, maxRows: 8).rows, 8)
        XCTAssertEqual(Thumbnail.fit(width: 200, height: 100, maxCols: 20, maxRows: 8).cols, 20)
        XCTAssertEqual(Thumbnail.fit(width: 200, height: 100, maxCols: 20, maxRows: 8).rows, 5)
    }
}

final class DecimationTests: XCTestCase {
    func testDecimationKeepsExtremesAndEnds() {
        var pts: [(x: Double, y: Double)] = []
        for i in 0..<1000 {
            let y: Double = i == 517 ? 99 : (i == 233 ? -5 : sin(Double(i) / 30))
            pts.append((x: Double(i), y: y))
        }
        let d = LineChart.decimate(pts, columns: 50, x: 0...999)
        XCTAssertLessThanOrEqual(d.count, 200)
        XCTAssertEqual(d.first?.x, 0); XCTAssertEqual(d.last?.x, 999)
        XCTAssertTrue(d.contains { $0.y == 99 } && d.contains { $0.y == -5 })
        let xs = d.map { $0.x }
        XCTAssertEqual(xs, xs.sorted(), "x order kept")
        // Few points pass through untouched.
        XCTAssertEqual(LineChart.decimate(Array(pts.prefix(100)), columns: 50, x: 0...99).count, 100)
    }
}
