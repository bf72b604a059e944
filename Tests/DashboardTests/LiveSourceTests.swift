import XCTest
@testable import Dashboard
import Datasets
import Training

/// The shipped data source over real files: a tiny Gemma 3 processor and a parquet dataset from
/// the Training fixtures, and the sample configs.
final class LiveSourceTests: XCTestCase {
    override func setUp() {
        super.setUp()
        // the recent-datasets list goes to a temporary file, never the user's ~/.cache
        RecentDatasets.fileOverride = FileManager.default.temporaryDirectory.appendingPathComponent("recent-\(UUID().uuidString).txt").path
    }
    var root: URL { var u = URL(fileURLWithPath: #filePath); for _ in 0..<3 { u.deleteLastPathComponent() }; return u }
    var llava: URL { root.appendingPathComponent("Tests/TrainingTests/Fixtures/training/sft/llava") }

    func writeConfig(_ extra: String = "") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("live-\(UUID().uuidString).yaml").path
        try """
        model_name_or_path: \(llava.appendingPathComponent("model").path)
        dataset_name: \(llava.appendingPathComponent("dataset").path)
        max_steps: 3
        \(extra)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testDatasetSummaryAndInspectedRowMatchTheCollator() throws {
        let src = LiveDataSource(configPath: try writeConfig())
        let ds = src.listDatasets()
        let d = try XCTUnwrap(ds.first { $0.source == "config" })
        XCTAssertEqual(d.layout, "parquet conversations")
        XCTAssertEqual(d.splits, [.init(name: "train", rows: 4)])
        XCTAssertTrue(d.schema.contains { $0.hasPrefix("messages: ") }, "\(d.schema)")
        let row = try src.loadRow(dataset: d, split: "train", index: 0)
        XCTAssertEqual(row.rowCount, 4)
        XCTAssertEqual(row.messages.map(\.role), ["user", "assistant", "user", "assistant"])
        XCTAssertEqual(row.images.count, 1)
        XCTAssertEqual(row.images[0].rgb.count, row.images[0].width * row.images[0].height * 3)
        // The token view's counts are the collator's label reasons for the same row.
        let pipeline = try CollatorPipeline(modelDirectory: llava.appendingPathComponent("model"), policy: LabelPolicy())
        let r = try Dataset.open(llava.appendingPathComponent("dataset").path).row(0)
        let images: [Data] = r.images.map { if case .bytes(let b) = $0 { return b }; if case .file(let u) = $0 { return try! Data(contentsOf: u) }; return Data() }
        let enc = try pipeline.encode(TrainingSample(row: 0, messages: r.messages, images: images))
        let counts = TokenView(tokens: row.tokens).counts
        XCTAssertEqual(counts.trained, enc.reasons.filter { $0 == .trained }.count)
        XCTAssertEqual(counts.trained + counts.masked, enc.inputIDs.count)
        XCTAssertEqual(counts.byKind[.image] ?? 0, enc.reasons.filter { $0 == .image }.count)
        XCTAssertEqual(row.renderedText, enc.text)
    }

    /// An image the Inspector cannot decode is named in the row's note (not silently left out of the thumbnails).
    func testUndecodableImageIsNamedInTheRowNote() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("live-badimg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("images"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("not a png".utf8).write(to: dir.appendingPathComponent("images/bad.png"))
        try """
        {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}, {"role": "assistant", "content": "Noise."}], "images": ["images/bad.png"]}

        """.write(to: dir.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
        let src = LiveDataSource(configPath: try writeConfig())
        let d = src.openDataset(DatasetEntry(spec: dir.path, source: "recent"), progress: { _ in }, cancellation: CancellationFlag())
        XCTAssertNil(d.error, d.error ?? "")
        let row = try src.loadRow(dataset: d, split: "train", index: 0)
        XCTAssertTrue(row.images.isEmpty)
        let note = try XCTUnwrap(row.tokenNote)
        XCTAssertTrue(note.hasPrefix("image 1: "), note)
    }

    func testConfigAdapterRoundTripAndValidation() throws {
        let path = try writeConfig("learning_rate: 0.0002\nlr_scheduler_type: cosine")
        let src = LiveDataSource(configPath: path)
        let doc = try XCTUnwrap(src.loadConfig())
        XCTAssertEqual(doc.groups.map(\.name), Training.ConfigGroup.allCases.map(\.rawValue))
        XCTAssertEqual(doc["learning_rate"]?.isSet, true)
        XCTAssertEqual(doc["lr_scheduler_type"]?.value, "cosine")
        if case .choice(let c)? = doc["lr_scheduler_type"]?.kind { XCTAssertTrue(c.contains("linear")) } else { XCTFail("lr_scheduler_type is a choice") }
        XCTAssertEqual(doc["max_steps"]?.kind, .int)
        // Cross-field validation comes from SFTConfig.validate.
        XCTAssertEqual(src.validateEdit(doc, key: "max_steps", value: "0"), "max_steps must be positive or -1 (got 0)")
        XCTAssertNil(src.validateEdit(doc, key: "max_steps", value: "7"))
        var edited = doc
        edited.set("max_steps", "7")
        XCTAssertEqual(try src.saveConfig(edited), path)
        let reloaded = try SFTConfig.load(path: path).config
        XCTAssertEqual(reloaded.maxSteps, 7)
        XCTAssertEqual(reloaded.learningRate, 0.0002)
        XCTAssertEqual(reloaded.lrSchedulerType.rawValue, "cosine")
    }

    func testSampleConfigsLoadIntoTheEditor() throws {
        let dir = root.appendingPathComponent("sample-configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let src = LiveDataSource(configPath: dir.appendingPathComponent(f).path)
            XCTAssertNotNil(src.loadConfig(), "\(f): \(src.configMessages)")
        }
    }

    func testRunsFromTensorBoardEventFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tbrun-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixtureURL("hf_run/runs"), to: dir.appendingPathComponent("runs"))
        let run = try XCTUnwrap(RunsScanner(readEvents: LiveDataSource.readEventFile).load(dir.path))
        XCTAssertEqual(run.source, "tfevents")
        XCTAssertEqual(run.scalars["loss"]?.map(\.step), [2, 4, 6])
        // Event files hold float32: the HF Trainer's float64 loss rounded to float.
        XCTAssertEqual(run.scalars["loss"]?[0].value ?? 0, Double(Float(11.946216583251953)))
    }
}
