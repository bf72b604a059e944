import XCTest

/// `sftdeck inspect` on the collator fixtures (Scripts/fixtures/gen_collator.py): the dumped batch equals the
/// guide's collate_fn / TRL's collator output for the same llava-layout parquet file.
final class InspectCommandTests: XCTestCase {
    let collator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("DatasetsTests/Fixtures/collator")

    /// `mmiu`: the MMIU layout copied to a temporary folder first (its zip is extracted next to the data).
    func config(_ masking: String, mmiu: Bool = false) throws -> URL {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("inspect-\(masking)-\(mmiu)-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: dir)
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        var dataset = collator.appendingPathComponent("llava.parquet").path
        if mmiu {
            let copy = dir.appendingPathComponent("mmiu")
            try fm.copyItem(at: collator.appendingPathComponent("mmiu_layout"), to: copy)
            dataset = copy.path
        }
        let yaml = """
        model_name_or_path: \(collator.appendingPathComponent("model").path)
        dataset_name: \(dataset)
        dataset_train_split: \(mmiu ? "test" : "train")
        label_masking: \(masking)
        per_device_train_batch_size: \(mmiu ? 2 : 4)
        max_length: null
        """
        let url = dir.appendingPathComponent("config.yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Minimal safetensors reader: name -> (dtype, shape, bytes).
    func readSafetensors(_ url: URL) throws -> [String: (String, [Int], Data)] {
        let d = try Data(contentsOf: url)
        let n = d.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        var out = [String: (String, [Int], Data)]()
        for (k, v) in header where k != "__metadata__" {
            let e = v as! [String: Any]
            let off = e["data_offsets"] as! [Int]
            out[k] = (e["dtype"] as! String, e["shape"] as! [Int], d.subdata(in: (8 + n + off[0])..<(8 + n + off[1])))
        }
        return out
    }

    func check(masking: String, expected: String, pixels: String, mmiu: Bool = false) throws {
        let dump = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-dump-\(masking)-\(mmiu)-\(ProcessInfo.processInfo.processIdentifier)")
        let out = try runSFTDeck(["inspect", "--config", try config(masking, mmiu: mmiu).path, "--batch", "0", "--dump", dump.path])
        XCTAssertTrue(out.contains("wrote "), out)
        let t = try readSafetensors(dump.appendingPathComponent("batch.safetensors"))
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: collator.appendingPathComponent(expected))) as! [String: Any]
        for key in ["input_ids", "attention_mask", "token_type_ids", "labels"] {
            let rows = e[key] as! [[Int]]
            let (dtype, shape, bytes) = try XCTUnwrap(t[key], key)
            XCTAssertEqual(dtype, "I64"); XCTAssertEqual(shape, [rows.count, rows[0].count], key)
            let got: [Int] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int($0) }
            XCTAssertEqual(got, rows.flatMap { $0 }, "\(masking) \(key)")
        }
        let (dtype, shape, bytes) = try XCTUnwrap(t["pixel_values"])
        XCTAssertEqual(dtype, "F32"); XCTAssertEqual(shape, [mmiu ? 5 : 4, 3, 24, 24])
        XCTAssertEqual(bytes, try Data(contentsOf: collator.appendingPathComponent(pixels)), "\(masking) pixel_values")
    }

    func testDumpEqualsTheGuidesCollateFn() throws {
        try check(masking: "guide-exact", expected: "llava.guide-exact.json", pixels: "llava.drop.pixel_values.f32")
    }

    func testDumpEqualsTRLCollator() throws {
        try check(masking: "trl", expected: "llava.trl.json", pixels: "llava.trl.pixel_values.f32")
    }

    /// The MMIU-Benchmark layout (all.parquet + category zip): extraction, the guide's formatting and the
    /// collator together give the guide's batch.
    func testMMIULayoutDumpEqualsTheGuide() throws {
        try check(masking: "guide-exact", expected: "mmiu.guide-exact.json", pixels: "mmiu.drop.pixel_values.f32", mmiu: true)
        try check(masking: "trl", expected: "mmiu.trl.json", pixels: "mmiu.drop.pixel_values.f32", mmiu: true)
    }

    func testIndexJSONListsEveryTokenWithItsReason() throws {
        let out = try runSFTDeck(["inspect", "--config", try config("vision").path, "--index", "2", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let tokens = obj["tokens"] as! [[String: Any]]
        let e = try JSONSerialization.jsonObject(with: Data(contentsOf: collator.appendingPathComponent("llava.vision.json"))) as! [String: Any]
        let ids = (e["input_ids"] as! [[Int]])[2], labels = (e["labels"] as! [[Int]])[2], mask = (e["attention_mask"] as! [[Int]])[2]
        let n = mask.reduce(0, +)
        XCTAssertEqual(tokens.map { $0["id"] as! Int }, Array(ids[0..<n]))
        XCTAssertEqual(tokens.map { $0["label"] as! Int }, Array(labels[0..<n]))
        XCTAssertEqual(tokens.filter { $0["reason"] as! String == "image" }.count, 4)
        XCTAssertEqual(tokens.filter { $0["reason"] as! String == "image-boundary" }.count, 1)
        XCTAssertEqual((obj["rendered_text"] as! String), (e["texts"] as! [String])[2])
        XCTAssertEqual((obj["warnings"] as! [String]), [])
    }

    func testBadArgumentsAreOneLine() throws {
        let out = try runSFTDeck(["inspect", "--config", try config("vision").path], expectStatus: 1)
        XCTAssertTrue(out.contains("give exactly one of --index N or --batch K"), out)
        let past = try runSFTDeck(["inspect", "--config", try config("vision").path, "--batch", "9", "--json"], expectStatus: 1)
        XCTAssertTrue(past.contains("batch 9 is past the end (4 rows, batch size 4)"), past)
    }
}
