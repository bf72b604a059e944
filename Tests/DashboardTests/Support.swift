import Foundation
import XCTest
@testable import Dashboard
import Training
import Datasets

/// The app with its background work run inline (each job at once, its result applied before the
/// call that started it returns), so flows read like the synchronous code they drive.
func makeApp(_ source: DashboardDataSource, options: DashboardOptions = DashboardOptions()) -> DashboardApp {
    DashboardApp(source: source, options: options, work: InlineWork())
}

func fixtureURL(_ name: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("dashboard").appendingPathComponent(name)
}

/// A scripted engine for tests only: records commands, emits what the test tells it to.
final class ScriptedEngine: EngineControl, @unchecked Sendable {
    var observers: [EngineObserver] = []
    var commands: [EngineCommand] = []
    var state: RunState = .running
    func send(_ command: EngineCommand) { commands.append(command) }
    func addObserver(_ observer: EngineObserver) { observers.append(observer) }
    func emit(_ e: EngineEvent) {
        if case .stateChanged(let s) = e { state = s }
        if case .finished = e { state = .finished }
        for o in observers { o.engine(didEmit: e) }
    }
    func runSteps(_ range: ClosedRange<Int>, maxSteps: Int) {
        for s in range {
            emit(.step(StepMetrics(step: s, epoch: Double(s) / Double(maxSteps), loss: 3.0 / Double(s), gradNorm: 1 + Double(s % 3),
                                   learningRate: 1e-3 * Double(maxSteps - s) / Double(maxSteps), tokens: 100 * s,
                                   tokensPerSecond: 250, elapsedSeconds: Double(s), residentBytes: 300 << 20)))
        }
    }
}

/// A fake data source for tests only.
final class FakeSource: DashboardDataSource {
    var engine = ScriptedEngine()
    var saved: [ConfigDocument] = []
    var startError: Error?
    func datasetEntries() -> [DatasetEntry] { summaries.map { DatasetEntry(spec: $0.path, name: $0.name, source: $0.source) } }
    func openDataset(_ entry: DatasetEntry, progress: @escaping ZipExtractionProgressHandler, cancellation: CancellationFlag) -> DatasetSummary {
        summaries.first { $0.path == entry.spec }!
    }
    var summaries: [DatasetSummary] {
        [DatasetSummary(name: "shapes-vqa", path: "/tmp/shapes", layout: "parquet conversations", source: "config",
                        splits: [.init(name: "train", rows: 3), .init(name: "test", rows: 1)], schema: ["messages: list<struct>", "images: list<image>"]),
         DatasetSummary(name: "broken", path: "/tmp/broken", layout: "JSONL", source: "recent", splits: [], schema: [],
                        error: "/tmp/broken/data.jsonl:3: expected a JSON object")]
    }
    func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow {
        let tokens: [TokenCell] = [
            TokenCell(text: "<bos>", id: 2, kind: .prompt), TokenCell(text: "<start_of_turn>", id: 105, kind: .prompt),
            TokenCell(text: "user\n", id: 9, kind: .prompt), TokenCell(text: "<start_of_image>", id: 255999, kind: .imageBoundary),
            TokenCell(text: "<img>", id: 262144, kind: .image), TokenCell(text: "<img>", id: 262144, kind: .image),
            TokenCell(text: "<end_of_image>", id: 256000, kind: .imageBoundary), TokenCell(text: " What", id: 11, kind: .prompt),
            TokenCell(text: " colour", id: 12, kind: .prompt), TokenCell(text: "?", id: 13, kind: .prompt),
            TokenCell(text: "<start_of_turn>", id: 105, kind: .prompt), TokenCell(text: "model\n", id: 14, kind: .prompt),
            TokenCell(text: "Red", id: 15, kind: .trained), TokenCell(text: " triangle", id: 16, kind: .trained),
            TokenCell(text: "<end_of_turn>", id: 106, kind: .trained), TokenCell(text: "<pad>", id: 0, kind: .pad),
        ]
        var img = [UInt8](repeating: 0, count: 8 * 8 * 3)
        for i in 0..<(8 * 4) { img[i * 3] = 255 }                   // top half red
        for i in (8 * 4)..<(8 * 8) { img[i * 3 + 2] = 255 }         // bottom half blue
        return InspectedRow(index: index, rowCount: 3,
                            messages: [RenderedMessage(role: "user", text: "What colour is the shape?", imageCount: 1),
                                       RenderedMessage(role: "assistant", text: "Red triangle")],
                            renderedText: "<bos><start_of_turn>user\n...", images: [PixelImage(width: 8, height: 8, rgb: img)], tokens: tokens)
    }
    func loadConfig() -> ConfigDocument? {
        ConfigDocument(path: "/tmp/x.yaml", groups: [
            FieldGroup(name: "Model", fields: [EditableField(key: "model_name_or_path", value: "demo/tiny", kind: .string, isSet: true)]),
            FieldGroup(name: "Training", fields: [
                EditableField(key: "learning_rate", value: "2e-4", kind: .float, isSet: true),
                EditableField(key: "max_steps", value: "-1", kind: .int),
                EditableField(key: "lr_scheduler_type", value: "linear", kind: .choice(["linear", "cosine", "constant"]), isSet: true),
            ]),
        ])
    }
    func saveConfig(_ doc: ConfigDocument) throws -> String { saved.append(doc); return doc.path ?? "/tmp/out.yaml" }
    func startRun(_ doc: ConfigDocument?, observer: EngineObserver) throws -> EngineControl {
        if let startError { throw startError }
        engine.addObserver(observer)
        return engine
    }
    func listRuns() -> [RunSummary] {
        [RunSummary(name: "run-a", path: "/runs/a", source: "trainer_state.json", globalStep: 3, maxSteps: 3,
                    scalars: ["loss": [.init(step: 1, value: 3), .init(step: 2, value: 2), .init(step: 3, value: 1.5)]]),
         RunSummary(name: "run-b", path: "/runs/b", source: "tfevents", globalStep: 3, maxSteps: 3,
                    scalars: ["loss": [.init(step: 1, value: 2.5), .init(step: 2, value: 2.2), .init(step: 3, value: 2)]])]
    }
}

/// Renders an app at a size, UTF-8 and 256 colours unless told otherwise.
func frame(_ app: DashboardApp, width: Int = 120, height: Int = 40, glyphs: Glyphs = .utf8, mode: ColorMode = .palette256) -> ScreenBuffer {
    var buf = ScreenBuffer(width: width, height: height)
    app.render(into: &buf, ctx: app.renderContext(glyphs: glyphs, colorMode: mode))
    return buf
}
