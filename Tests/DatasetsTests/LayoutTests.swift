import XCTest
import Tokenizers
@testable import Datasets

final class LayoutTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-layout-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// Copies a fixture folder into the temporary folder (layouts that write caches next to their data).
    func copyFixture(_ sub: String) throws -> URL {
        let dst = tmp.appendingPathComponent((sub as NSString).lastPathComponent)
        try FileManager.default.copyItem(at: fixturesURL(sub), to: dst)
        return dst
    }

    /// The llava message record of the generator as SFTDeck formats it (content parts in stored order).
    func expectedMessages(_ row: RowValue) -> [ChatMessage] {
        row["messages"]!.list!.map { m in
            ChatMessage(role: m["role"]!.string!, parts: m["content"]!.list!.map { p in
                p["type"]!.string! == "image" ? .image : .text(p["text"]!.string!)
            })
        }
    }

    func testLlavaFolderWithDatasetCard() throws {
        let folder = fixturesURL("layouts/llava_folder")
        let expected = try JSONDecoder().decode(RowValue.self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        let train = try Dataset.open(folder.path)
        XCTAssertEqual(train.info.kind, .parquet)
        XCTAssertEqual(train.info.availableSplits, ["train", "test"])
        XCTAssertEqual(train.info.split, "train")
        XCTAssertEqual(train.info.files.map(\.lastPathComponent), ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"])
        XCTAssertEqual(train.count, 9)
        XCTAssertEqual(train.info.fields.first?.hasPrefix("messages: list<struct<content"), true)
        let want = expected["train"]!.list!
        for i in 0..<train.count {
            let row = try train.row(i)
            XCTAssertEqual(row.messages, expectedMessages(want[i]), "row \(i)")
            let wantImages = want[i]["images"]!.list!.map { ImageReference.bytes(Data(base64Encoded: $0["bytes"]!["$b64"]!.string!)!) }
            XCTAssertEqual(row.images, wantImages, "row \(i)")
            XCTAssertTrue(row.missingImages.isEmpty)
            XCTAssertEqual(row.messages.reduce(0) { $0 + $1.imageCount }, row.images.count, "row \(i)")
        }
        // Stored part order is kept: generator row 1 has its text before its image.
        guard case .parts(let parts) = try train.row(1).messages[0].content else { return XCTFail("parts expected") }
        XCTAssertEqual(parts.count, 2)
        XCTAssertEqual(parts[1], .image)
        let test = try Dataset.open(folder.path, split: "test")
        XCTAssertEqual(test.count, 4)
        XCTAssertEqual(try test.row(3).messages, expectedMessages(expected["test"]!.list![3]))
        XCTAssertThrowsError(try Dataset.open(folder.path, split: "validation")) {
            XCTAssertTrue("\($0)".contains("has no split 'validation' (splits: train, test)"), "\($0)")
        }
        XCTAssertEqual(try train.missingImageReport().missingImages, 0)
        // Rows across both shards, back and forth (a shard switch drops the other shard's cache).
        for i in [8, 0, 5, 4, 8, 1] { XCTAssertEqual(try train.row(i).messages, expectedMessages(want[i]), "row \(i)") }
        let outline = try train.rawRow(0).outline()
        XCTAssertEqual(outline.first, "{}")
        XCTAssertTrue(outline.contains { $0.hasPrefix("  images: [1]") }, outline.joined(separator: "\n"))
        XCTAssertTrue(outline.contains { $0.contains("bytes: <") && $0.hasSuffix(" bytes>") }, outline.joined(separator: "\n"))
    }

    func testSplitFolders() throws {
        let folder = fixturesURL("layouts/split_folder")
        let d = try Dataset.open(folder.path)
        XCTAssertEqual(d.info.availableSplits, ["train", "validation"])
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(try Dataset.open(folder.path, split: "validation").count, 2)
        // One parquet file directly.
        let single = try Dataset.open(folder.appendingPathComponent("validation/part-0.parquet").path)
        XCTAssertEqual(single.count, 2)
    }

    func testDatasetCardParsing() {
        let card = """
        ---
        license: mit
        configs:
        - config_name: other
          data_files: x/*.parquet
        - config_name: default
          data_files:
          - split: train
            path:
            - "data/train-a*"
            - data/train-b*
          - split: test
            path: [data/test-*]
        task_categories:
        - vqa
        ---
        body
        """
        let m = DatasetCard.dataFiles(fromCard: card)!
        XCTAssertEqual(m.map(\.0), ["train", "test"])
        XCTAssertEqual(m[0].1, ["data/train-a*", "data/train-b*"])
        XCTAssertEqual(m[1].1, ["data/test-*"])
        XCTAssertTrue(DatasetCard.glob("data/train-*", matches: "data/train-00000-of-00002.parquet"))
        XCTAssertFalse(DatasetCard.glob("data/test-*", matches: "data/train-00000-of-00002.parquet"))
        XCTAssertEqual(Dataset.splitName(fromFile: "train-00001-of-00002.parquet"), "train")
        XCTAssertEqual(Dataset.splitName(fromFile: "test.parquet"), "test")
    }

    /// A Hub id resolves through a huggingface_hub-style cache (snapshot files are links to blobs).
    func testHubCacheResolution() throws {
        let fm = FileManager.default
        let repo = tmp.appendingPathComponent("hub/datasets--Owner--Tiny")
        let blobs = repo.appendingPathComponent("blobs")
        let old = repo.appendingPathComponent("snapshots/0ld0ld/data"), main = repo.appendingPathComponent("snapshots/abc123/data")
        for d in [blobs, old, main, repo.appendingPathComponent("refs")] { try fm.createDirectory(at: d, withIntermediateDirectories: true) }
        let src = fixturesURL("layouts/llava_folder/data/test-00000-of-00001.parquet")
        try fm.copyItem(at: src, to: blobs.appendingPathComponent("deadbeef"))
        try fm.createSymbolicLink(atPath: main.appendingPathComponent("train-00000-of-00001.parquet").path, withDestinationPath: "../../../blobs/deadbeef")
        try fm.copyItem(at: fixturesURL("layouts/llava_folder/data/train-00000-of-00002.parquet"), to: old.appendingPathComponent("train-00000-of-00001.parquet"))
        try "abc123".write(to: repo.appendingPathComponent("refs/main"), atomically: true, encoding: .utf8)

        let env = ["HF_HUB_CACHE": tmp.appendingPathComponent("hub").path, "HOME": tmp.path]
        let d = try Dataset.open("Owner/Tiny", options: DatasetOpenOptions(environment: env))
        XCTAssertEqual(d.info.hub?.revision, "abc123")
        XCTAssertEqual(d.count, 4)   // refs/main, not the other snapshot (5 rows)
        let pinned = try Dataset.open("Owner/Tiny@0ld0ld", options: DatasetOpenOptions(environment: env))
        XCTAssertEqual(pinned.count, 5)
        // $HF_HOME/hub is used when HF_HUB_CACHE is unset.
        let viaHome = try Dataset.open("Owner/Tiny", options: DatasetOpenOptions(environment: ["HF_HOME": tmp.path, "HOME": "/nonexistent"]))
        XCTAssertEqual(viaHome.count, 4)

        XCTAssertThrowsError(try Dataset.open("HuggingFaceH4/llava-instruct-mix-vsft", options: DatasetOpenOptions(environment: env))) { e in
            let text = (e as? LocalizedError)?.errorDescription ?? ""
            XCTAssertTrue(text.contains("huggingface-cli download --repo-type dataset HuggingFaceH4/llava-instruct-mix-vsft"), text)
            XCTAssertTrue(text.contains("datasets--HuggingFaceH4--llava-instruct-mix-vsft"), text)
        }
        XCTAssertThrowsError(try Dataset.open("./no/such/folder")) { XCTAssertTrue("\($0)".contains("no such file or folder"), "\($0)") }
    }

    func testConversationalJSONL() throws {
        for name in ["train.jsonl", "train.json"] {
            let url = fixturesURL("layouts/trl_json/\(name)")
            let d = try Dataset.open(url.path)
            XCTAssertEqual(d.info.kind, .conversationalJSON, name)
            XCTAssertEqual(d.count, 4)
            let r0 = try d.row(0)
            XCTAssertEqual(r0.messages, [ChatMessage(role: "user", parts: [.image, .text("Describe picture 0.")]),
                                         ChatMessage(role: "assistant", text: "Picture 0 is noise.")])
            XCTAssertEqual(r0.images, [.file(url.deletingLastPathComponent().appendingPathComponent("images/pic0.png"))])
            let r2 = try d.row(2)
            XCTAssertEqual(r2.images, [])
            XCTAssertEqual(r2.missingImages, ["images/pic2.png"])
            XCTAssertEqual(try d.row(3).images.count, 2)
            let report = try d.missingImageReport()
            XCTAssertEqual(report, MissingImageReport(rowsScanned: 4, rowsWithMissingImages: 1, missingImages: 1,
                                                      examples: [.init(row: 2, reference: "images/pic2.png")]))
            XCTAssertTrue(report.summary.contains("1 images missing in 1 of 4 rows"), report.summary)
        }
        // The folder form picks the split file by name.
        XCTAssertEqual(try Dataset.open(fixturesURL("layouts/trl_json").path).info.split, "train")
    }

    func testPromptCompletionRowsAndTrainingSamples() throws {
        let dir = tmp!
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("a.png"))
        let line = #"{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}], "completion": [{"role": "assistant", "content": "A."}], "images": ["a.png"]}"#
        try (line + "\n" + #"{"prompt": "plain", "completion": "text"}"# + "\n").write(to: dir.appendingPathComponent("pc.jsonl"), atomically: true, encoding: .utf8)
        let d = try Dataset.open(dir.appendingPathComponent("pc.jsonl").path)
        let row = try d.row(0)
        XCTAssertEqual(row.messages, [ChatMessage(role: "user", parts: [.image, .text("Q?")])])
        XCTAssertEqual(row.completion, [ChatMessage(role: "assistant", text: "A.")])
        let sample = try row.trainingSample()
        XCTAssertEqual(sample.images, [Data([1, 2, 3])])
        XCTAssertEqual(sample.placeholderCount, 1)
        XCTAssertThrowsError(try d.row(1)) { XCTAssertTrue("\($0)".contains("plain-text prompts are not supported"), "\($0)") }
    }

    func testBadJSONLNamesTheLine() throws {
        let url = tmp.appendingPathComponent("bad.jsonl")
        try "{\"messages\": []}\n{oops\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Dataset.open(url.path)) { XCTAssertEqual("\($0)", "\(url.path): line 2 is not valid JSON") }
    }

    func testMMIULayout() throws {
        let folder = try copyFixture("layouts/mmiu")
        let d = try Dataset.open(folder.path)
        XCTAssertEqual(d.info.kind, .mmiu)
        XCTAssertEqual(d.info.split, "test")
        XCTAssertEqual(d.count, 6)
        XCTAssertTrue(d.info.notes.joined().contains("extracted now"), d.info.notes.joined())
        let records = try JSONDecoder().decode(RowValue.self, from: Data(contentsOf: folder.appendingPathComponent("all.json"))).list!
        var missingRows = 0
        for i in 0..<d.count {
            let row = try d.row(i)
            let rec = records[i]
            let paths = rec["input_image_path"]!.list!.map { $0.string! }
            XCTAssertEqual(row.images.count + row.missingImages.count, paths.count)
            XCTAssertEqual(row.messages, [
                ChatMessage(role: "system", parts: [.text(rec["context"]!.string!)]),
                ChatMessage(role: "user", parts: Array(repeating: .image, count: row.images.count) + [.text(rec["question"]!.string!)]),
                ChatMessage(role: "assistant", parts: [.text(rec["output"]!.string!)]),
            ])
            for case .file(let u) in row.images { XCTAssertTrue(FileManager.default.fileExists(atPath: u.path)) }
            if !row.missingImages.isEmpty { missingRows += 1; XCTAssertEqual(row.missingImages, ["./2D-spatial/jigsaw/missing.png"]) }
        }
        XCTAssertEqual(missingRows, 1)
        let report = try d.missingImageReport()
        XCTAssertEqual(report.rowsWithMissingImages, 1)
        XCTAssertEqual(report.examples.first?.reference, "./2D-spatial/jigsaw/missing.png")
        // Second open: already extracted.
        let again = try Dataset.open(folder.path)
        XCTAssertFalse(again.info.notes.joined().contains("extracted now"))
        XCTAssertEqual(try again.row(0).images, try d.row(0).images)
        XCTAssertThrowsError(try Dataset.open(folder.path, split: "train")) { XCTAssertTrue("\($0)".contains("only the split 'test'")) }

        // JSON records instead of parquet give the same conversations.
        try FileManager.default.removeItem(at: folder.appendingPathComponent("all.parquet"))
        let fromJSON = try Dataset.open(folder.path)
        for i in 0..<d.count { XCTAssertEqual(try fromJSON.row(i).messages, try d.row(i).messages) }
    }

    func testMMIUInHubCacheExtractsUnderSFTDeckCache() throws {
        let snapshot = tmp.appendingPathComponent("hub/datasets--FanqingM--MMIU-Benchmark/snapshots/r1")
        try FileManager.default.createDirectory(at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixturesURL("layouts/mmiu"), to: snapshot)
        let env = ["HF_HUB_CACHE": tmp.appendingPathComponent("hub").path, "HOME": tmp.path]
        let d = try Dataset.open("FanqingM/MMIU-Benchmark", options: DatasetOpenOptions(environment: env))
        XCTAssertEqual(d.info.imageFolder?.path, tmp.appendingPathComponent(".cache/sftdeck/mmiu/FanqingM--MMIU-Benchmark/r1").path)
        XCTAssertEqual(try d.row(0).images.count, 2)
    }

    // MARK: zip extraction

    func testHostileZipsAreRefused() throws {
        let cases: [(String, String)] = [
            ("escape", "escapes the target folder"),
            ("absolute", "absolute path"),
            ("symlink", "symbolic link"),
            ("bomb", "extraction bound"),
        ]
        for (name, fragment) in cases {
            let zip = fixturesURL("layouts/zips/\(name).zip")
            let dest = tmp.appendingPathComponent(name + "/out")
            XCTAssertThrowsError(try ZipExtractor.extractOnce(archive: zip, into: dest, maxTotalBytes: 1 << 20), name) { e in
                let text = (e as? LocalizedError)?.errorDescription ?? ""
                XCTAssertTrue(text.contains(fragment), "\(name): \(text)")
                XCTAssertTrue(text.hasPrefix(zip.path), text)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dest.path), name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.appendingPathComponent(name + "/escaped.txt").path))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/sftdeck-absolute.txt"))
    }

    func testGoodZipExtractsOnce() throws {
        let zip = fixturesURL("layouts/zips/good.zip")
        let dest = tmp.appendingPathComponent("good")
        let first = try ZipExtractor.extractOnce(archive: zip, into: dest)
        XCTAssertEqual(first, ZipExtractor.Summary(files: 2, bytes: 9, extractedNow: true))
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("task/sub/b.txt"), encoding: .utf8), "beta")
        let second = try ZipExtractor.extractOnce(archive: zip, into: dest)
        XCTAssertEqual(second, ZipExtractor.Summary(files: 2, bytes: 9, extractedNow: false))
        // The bomb passes with a large enough bound.
        let bomb = try ZipExtractor.extractOnce(archive: fixturesURL("layouts/zips/bomb.zip"), into: tmp.appendingPathComponent("bomb"), maxTotalBytes: 4 << 20)
        XCTAssertEqual(bomb.bytes, 3 << 20)
    }
}
