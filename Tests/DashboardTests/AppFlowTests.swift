import XCTest
@testable import Dashboard
import Training

final class AppFlowTests: XCTestCase {
    func testScreensAndTabBar() {
        let app = makeApp(FakeSource())
        var buf = frame(app)
        XCTAssertNotNil(buf.find("1 Datasets"), buf.text)
        XCTAssertNotNil(buf.find("parquet conversations"), buf.text)
        XCTAssertNotNil(buf.find("train  3 rows"), buf.text)
        app.handle(.char("j"))
        buf = frame(app)
        XCTAssertNotNil(buf.find("error: /tmp/broken/data.jsonl:3: expected a JSON object"), buf.text)
        app.handle(.char("5"))
        XCTAssertEqual(app.screen, .runs)
        buf = frame(app)
        XCTAssertNotNil(buf.find("run-a  step 3 loss 1.5"), buf.text)
        // A click on the tab bar switches screens.
        let (_, r) = app.tabRects.first { $0.0 == .config }!
        app.handle(.mouse(x: r.lowerBound + 1, y: 0, button: 1))
        XCTAssertEqual(app.screen, .config)
    }

    func testInspectorNavigationSearchAndTrainedRuns() {
        let app = makeApp(FakeSource())
        app.handle(.enter)
        XCTAssertEqual(app.inspector.tokenCursor, 12, "cursor starts on the first trained token")
        app.handle(.char("["))
        XCTAssertEqual(app.statusMessage?.text, "no earlier trained run in this row")
        app.handle(.char("/"))
        for c in "colour" { app.handle(.char(c)) }
        app.handle(.enter)
        XCTAssertEqual(app.inspector.matches, [8])
        XCTAssertEqual(app.inspector.tokenCursor, 8)
        app.handle(.char("]"))
        XCTAssertEqual(app.inspector.tokenCursor, 12)
        app.handle(.char("l"))
        XCTAssertEqual(app.inspector.rowIndex, 1)
        app.handle(.char("g")); app.handle(.char("9")); app.handle(.enter)
        XCTAssertEqual(app.inspector.rowIndex, 2, "go to row clamps to the last row")
        XCTAssertNotNil(frame(app).find("row 2/2"))
    }

    func testConfigEditValidatesAndSuggests() {
        let src = FakeSource()
        let app = makeApp(src)
        app.handle(.char("3"))
        app.handle(.char("j"))                        // learning_rate
        XCTAssertEqual(app.config.current?.key, "learning_rate")
        app.handle(.enter)
        for _ in 0..<4 { app.handle(.backspace) }
        for c in "fast" { app.handle(.char(c)) }
        app.handle(.enter)
        XCTAssertEqual(app.prompt?.error, "learning_rate needs a number, got 'fast'")
        app.handle(.escape)
        app.handle(.char("j")); app.handle(.char("j"))  // lr_scheduler_type
        app.handle(.enter)
        for _ in 0..<6 { app.handle(.backspace) }
        for c in "cosin" { app.handle(.char(c)) }
        app.handle(.enter)
        XCTAssertEqual(app.prompt?.error, "lr_scheduler_type must be one of linear, cosine, constant (did you mean 'cosine'?)")
        app.handle(.char("e")); app.handle(.enter)
        XCTAssertNil(app.prompt)
        XCTAssertEqual(app.config.document?["lr_scheduler_type"]?.value, "cosine")
        app.handle(.char("a"))
        for c in "max_step" { app.handle(.char(c)) }
        app.handle(.enter)
        XCTAssertEqual(app.statusMessage?.text, "unknown key 'max_step'; did you mean 'max_steps'?")
        app.handle(.char("w"))
        XCTAssertEqual(src.saved.count, 1)
        let yaml = src.saved[0].yaml()
        XCTAssertTrue(yaml.contains("lr_scheduler_type: cosine\n"), yaml)
        XCTAssertTrue(yaml.contains("learning_rate: 2e-4\n"), yaml)
        XCTAssertFalse(yaml.contains("max_steps"), "defaults are not written")
    }

    func testTrainControlsPauseResumeStopWithConfirmation() {
        let src = FakeSource()
        let app = makeApp(src, options: DashboardOptions(initialScreen: .train))
        app.handle(.char("s"))
        XCTAssertNotNil(app.engine)
        let e = src.engine
        e.emit(.started(RunInfo(outputDir: "out/run", maxSteps: 20, numEpochs: 2, stepsPerEpoch: 10, numTrainSamples: 40, trainableParameters: 1000, totalParameters: 5000)))
        e.runSteps(1...5, maxSteps: 20)
        e.emit(.logged(LogRecord(step: 5, values: [("loss", 0.6), ("grad_norm", 2.0), ("learning_rate", 7.5e-4), ("epoch", 0.5)])))
        XCTAssertEqual(app.run.steps.count, 0, "events wait in the inbox until the UI drains them")
        XCTAssertTrue(app.pump())
        XCTAssertEqual(app.run.steps.count, 5)
        var buf = frame(app)
        XCTAssertNotNil(buf.find("step 5/20"), buf.text)
        XCTAssertNotNil(buf.find("{'loss': '0.6', 'grad_norm': '2', 'learning_rate': '0.00075', 'epoch': '0.5'}"), buf.text)
        app.handle(.char("p"))
        XCTAssertEqual(e.commands, [.pause])
        e.emit(.stateChanged(.paused)); app.pump()
        app.handle(.char(" "))
        XCTAssertEqual(e.commands, [.pause, .resume])
        e.emit(.stateChanged(.running)); app.pump()
        app.handle(.char("c"))
        XCTAssertEqual(e.commands.last, .saveNow)
        app.handle(.char("x"))
        buf = frame(app)
        XCTAssertNotNil(buf.find("Stop the run? A checkpoint is saved first"), buf.text)
        app.handle(.char("n"))
        XCTAssertEqual(e.commands.last, .saveNow, "declining does not stop")
        app.handle(.char("x")); app.handle(.char("y"))
        XCTAssertEqual(e.commands.last, .stop)
        e.emit(.checkpointSaved(step: 5, path: "out/run/checkpoint-5"))
        e.emit(.stateChanged(.stopped)); app.pump()
        XCTAssertFalse(app.run.isActive)
        XCTAssertNotNil(frame(app).find("checkpoint at step 5: out/run/checkpoint-5"))
    }

    func testSmoothingKeysChangeTheSmoothedCurve() {
        let src = FakeSource()
        let app = makeApp(src, options: DashboardOptions(initialScreen: .train))
        app.handle(.char("s"))
        src.engine.runSteps(1...10, maxSteps: 10); app.pump()
        let before = app.run.lossSmoothed.map(\.y)
        app.handle(.char("+"))
        XCTAssertEqual(app.run.smoothing, 0.65, accuracy: 1e-12)
        XCTAssertNotEqual(app.run.lossSmoothed.map(\.y), before)
        XCTAssertEqual(app.run.lossSmoothed.map(\.y), TensorBoardSmoothing.smooth(app.run.steps.map(\.loss), weight: 0.65))
        XCTAssertNotNil(frame(app).find("smoothing 0.65"))
    }

    func testQuitWhileTrainingAsksFirst() {
        let src = FakeSource()
        let app = makeApp(src, options: DashboardOptions(initialScreen: .train))
        app.handle(.char("s"))
        src.engine.emit(.stateChanged(.running)); app.pump()
        app.handle(.char("q"))
        XCTAssertFalse(app.shouldQuit)
        XCTAssertNotNil(app.dialog)
        app.handle(.char("y"))
        XCTAssertTrue(app.shouldQuit)
        XCTAssertEqual(src.engine.commands, [.stop])
    }

    func testStartFailureIsOneLine() {
        let src = FakeSource()
        src.startError = DashboardError("config.yaml: model_name_or_path is not set")
        let app = makeApp(src, options: DashboardOptions(initialScreen: .train))
        app.handle(.char("s"))
        XCTAssertEqual(app.statusMessage?.text, "cannot start training: config.yaml: model_name_or_path is not set")
        XCTAssertEqual(app.statusMessage?.level, .error)
    }

    func testThemeCycling() {
        let app = makeApp(FakeSource())
        XCTAssertEqual(app.theme.name, "dark")
        app.handle(.char("T"))
        XCTAssertEqual(app.theme.name, "light")
        XCTAssertEqual(frame(app)[0, 1].style.bg, Theme.builtIn("light")!.background)
    }

    func testRunsOverlayAndTrainerState() throws {
        let run = try XCTUnwrap(RunsScanner().load(fixtureURL("hf_run").path))
        XCTAssertEqual(run.source, "trainer_state.json")
        XCTAssertEqual(run.globalStep, 6)
        XCTAssertEqual(run.scalars["loss"]?.map(\.step), [2, 4, 6])
        XCTAssertEqual(run.scalars["loss"]?[0].value ?? 0, 11.946216583251953, accuracy: 1e-12)
        XCTAssertEqual(run.scalars["learning_rate"]?[1].value ?? 0, 0.025, accuracy: 1e-15)
        let app = makeApp(FakeSource(), options: DashboardOptions(initialScreen: .runs))
        app.handle(.char(" ")); app.handle(.char("j")); app.handle(.char(" "))
        XCTAssertEqual(RunsScreen.overlayRuns(app.runs).map(\.name), ["run-a", "run-b"])
        let buf = frame(app)
        XCTAssertNotNil(buf.find("run-a 1.5"), buf.text)
        XCTAssertNotNil(buf.find("run-b 2"), buf.text)
    }
}
