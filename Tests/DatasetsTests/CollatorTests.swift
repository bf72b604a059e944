// Fixtures: Scripts/fixtures/gen_collator.py (transformers 5.24 Gemma3Processor + the guide's collate_fn +
// trl 1.16 DataCollatorForVisionLanguageModeling, tiny Gemma-style tokenizer, image size 24, 4 soft tokens).
import Foundation
import XCTest
import Tokenizers
@testable import Datasets

/// Answers exactly what the Python tokenizer answered for each string the reference processor tokenized
/// (tokenizations.json); any other string is a test failure, so the texts this side builds must be
/// byte-identical to the reference's. Token ids of special tokens come from tokenizer.json.
struct FixtureTokenizer: CollatorTokenizer {
    var table: [String: (ids: [Int], offsets: [Range<Int>])] = [:]
    var vocab: [String: Int] = [:]
    var inverse: [Int: String] = [:]

    init(directory: URL) throws {
        let t = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("tokenizations.json"))) as! [String: [String: Any]]
        for (k, v) in t {
            let key = try JSONSerialization.jsonObject(with: Data(k.utf8)) as! [Any]
            let ids = v["ids"] as! [Int]
            let offs = (v["offsets"] as! [[Int]]).map { $0[0]..<$0[1] }
            table[Self.key(key[0] as! String, key[1] as! Bool)] = (ids, offs)
        }
        let tj = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("model/tokenizer.json"))) as! [String: Any]
        vocab = (tj["model"] as! [String: Any])["vocab"] as! [String: Int]
        for a in tj["added_tokens"] as! [[String: Any]] { vocab[a["content"] as! String] = a["id"] as? Int }
        for (k, v) in vocab { inverse[v] = k }
    }
    static func key(_ text: String, _ special: Bool) -> String { "\(special ? 1 : 0)|\(text)" }

    func lookup(_ text: String, _ special: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        guard let hit = table[Self.key(text, special)] else {
            throw ProcessorError("FixtureTokenizer: the reference never tokenized \(text.debugDescription) (add_special_tokens=\(special))")
        }
        return hit
    }
    func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] { try lookup(text, addSpecialTokens).ids }
    func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) { try lookup(text, addSpecialTokens) }
    func tokenID(_ token: String) -> Int? { vocab[token] }
    func tokenString(_ id: Int) -> String? { inverse[id] }
}

final class CollatorTests: XCTestCase {
    struct Rows: Decodable {
        struct Row: Decodable { var messages: [ChatMessage]?; var prompt: [ChatMessage]?; var completion: [ChatMessage]?; var images: [String] }
        var rows: [String: [Row]]
        var ids: [String: Int]
        var image_seq_length: Int
        var size: Int
    }
    struct Expected: Decodable {
        var policy: String; var texts: [String]
        var input_ids: [[Int]]; var attention_mask: [[Int]]; var token_type_ids: [[Int]]; var labels: [[Int]]
    }

    let dir = fixtureURL("collator")

    func loadRows() throws -> Rows { try JSONDecoder().decode(Rows.self, from: Data(contentsOf: dir.appendingPathComponent("rows.json"))) }

    func samples(_ name: String, _ rows: Rows) throws -> [TrainingSample] {
        try rows.rows[name]!.enumerated().map { i, r in
            TrainingSample(row: i, messages: r.messages ?? r.prompt!, completion: r.completion, images: try r.images.map { try Data(contentsOf: dir.appendingPathComponent("images/\($0)")) })
        }
    }

    /// `realTokenizer`: the Tokenizers module's tokenizer on the fixture's tokenizer.json, instead of the
    /// recorded answers.
    func encoder(_ policy: LabelPolicy, realTokenizer: Bool = false) throws -> (SampleEncoder, Collator, Rows) {
        let rows = try loadRows()
        let tok: CollatorTokenizer = realTokenizer
            ? try Tokenizer(tokenizerJSON: Data(contentsOf: dir.appendingPathComponent("model/tokenizer.json")))
            : try FixtureTokenizer(directory: dir)
        let config = try Gemma3ImageProcessorConfig.load(modelDirectory: dir.appendingPathComponent("model"))
        let tokens = try Gemma3ImageTokens(tokenizer: tok, imageSeqLength: config.imageSeqLength!)
        XCTAssertEqual(tokens.imageID, rows.ids["image_soft"]); XCTAssertEqual(tokens.boiID, rows.ids["boi"])
        let enc = SampleEncoder(tokenizer: tok, renderer: Gemma3ChatFormat(), imageProcessor: try Gemma3ImageProcessor(config: config),
                                tokens: tokens, policy: policy, bosID: rows.ids["bos"])
        return (enc, Collator(padID: rows.ids["pad"]!, imageHeight: rows.size, imageWidth: rows.size), rows)
    }

    func floats(_ file: String) throws -> [Float] {
        try Data(contentsOf: dir.appendingPathComponent(file)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Every tensor equal to the reference's, exactly (ids, masks, labels are integers; pixel values are
    /// bit-identical float32: measured max |error| 0 on all 4 + 5 images).
    func check(batch name: String, policy: LabelPolicy, expectedFile: String, pixelFile: String) throws {
      for real in [false, true] {
        let (enc, collator, rows) = try encoder(policy, realTokenizer: real)
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: dir.appendingPathComponent(expectedFile)))
        let encoded = try samples(name, rows).map { try enc.encode($0) }
        XCTAssertEqual(encoded.map(\.text), expected.texts, expectedFile)
        let batch = collator.collate(encoded)
        let b = expected.input_ids.count, l = expected.input_ids[0].count
        XCTAssertEqual(batch.batchSize, b); XCTAssertEqual(batch.sequenceLength, l, expectedFile)
        XCTAssertEqual(batch.inputIDs.map(Int.init), expected.input_ids.flatMap { $0 }, "\(expectedFile) input_ids")
        XCTAssertEqual(batch.attentionMask.map(Int.init), expected.attention_mask.flatMap { $0 }, "\(expectedFile) attention_mask")
        XCTAssertEqual(batch.tokenTypeIDs.map(Int.init), expected.token_type_ids.flatMap { $0 }, "\(expectedFile) token_type_ids")
        XCTAssertEqual(batch.labels.map(Int.init), expected.labels.flatMap { $0 }, "\(expectedFile) labels")
        let pv = try floats(pixelFile)
        XCTAssertEqual(batch.pixelValues.count, pv.count, pixelFile)
        XCTAssertEqual(batch.imageCount * 3 * rows.size * rows.size, pv.count)
        let maxErr = zip(batch.pixelValues, pv).map { abs($0 - $1) }.max() ?? 0
        XCTAssertEqual(maxErr, 0, "\(expectedFile) pixel_values max error \(maxErr)")
        // Every -100 has a masking reason and every target is `trained`.
        for (lab, r) in zip(batch.labels, batch.reasons) { XCTAssertEqual(lab != -100, r == .trained) }
      }
    }

    func testGuideExactEqualsTheGuidesCollateFn() throws {
        for name in ["llava", "mmiu"] {
            try check(batch: name, policy: LabelPolicy(masking: .guideExact), expectedFile: "\(name).guide-exact.json", pixelFile: "\(name).drop.pixel_values.f32")
        }
    }

    func testVisionPolicy() throws {
        for name in ["llava", "mmiu"] {
            try check(batch: name, policy: LabelPolicy(masking: .vision), expectedFile: "\(name).vision.json", pixelFile: "\(name).drop.pixel_values.f32")
        }
    }

    /// TRL composites alpha onto white (transformers convert_to_rgb): the llava batch holds an RGBA PNG whose
    /// pixel values differ from the guide's; mmiu has none and shares the guide's file.
    func testTRLCollator() throws {
        try check(batch: "llava", policy: LabelPolicy(masking: .trl), expectedFile: "llava.trl.json", pixelFile: "llava.trl.pixel_values.f32")
        try check(batch: "mmiu", policy: LabelPolicy(masking: .trl), expectedFile: "mmiu.trl.json", pixelFile: "mmiu.drop.pixel_values.f32")
    }

    func testTRLAssistantOnlyLoss() throws {
        let p = LabelPolicy(masking: .trl, assistantOnlyLoss: true)
        try check(batch: "llava", policy: p, expectedFile: "llava.trl-assistant.json", pixelFile: "llava.trl.pixel_values.f32")
        try check(batch: "mmiu", policy: p, expectedFile: "mmiu.trl-assistant.json", pixelFile: "mmiu.drop.pixel_values.f32")
    }

    /// Prompt/completion rows through TRL's `_collate_prompt_completion` (prompt left-padded with images,
    /// completion right-padded, concatenated, flush_left): the same as one right-padded sequence per row.
    func testTRLPromptCompletion() throws {
        try check(batch: "llava_pc", policy: LabelPolicy(masking: .trl, completionOnlyLoss: true),
                  expectedFile: "llava_pc.trl-completion-only.json", pixelFile: "llava_pc.trl.pixel_values.f32")
        try check(batch: "llava_pc", policy: LabelPolicy(masking: .trl, completionOnlyLoss: false),
                  expectedFile: "llava_pc.trl-completion-all.json", pixelFile: "llava_pc.trl.pixel_values.f32")
    }

    /// The model-folder entry point builds the same batch as the hand-wired encoder.
    func testPipelineFromModelFolder() throws {
        let pipe = try CollatorPipeline(modelDirectory: dir.appendingPathComponent("model"), policy: LabelPolicy(masking: .guideExact))
        let rows = try loadRows()
        let batch = try pipe.collate(try samples("mmiu", rows))
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: dir.appendingPathComponent("mmiu.guide-exact.json")))
        XCTAssertEqual(batch.labels.map(Int.init), expected.labels.flatMap { $0 })
        XCTAssertEqual(batch.pixelValues, try floats("mmiu.drop.pixel_values.f32"))
    }

    func testReasonsAndWarnings() throws {
        let (enc, collator, rows) = try encoder(LabelPolicy(masking: .guideExact))
        let batch = collator.collate(try samples("mmiu", rows).map { try enc.encode($0) })
        XCTAssertEqual(batch.warnings.filter { $0.kind == .doubleBOS }.map(\.row), [0, 1])
        XCTAssertTrue(batch.warnings[0].description.hasPrefix("row 0: "))
        // guide-exact: 5 images x 4 soft tokens masked as image; boi is a target (no image-boundary reason).
        XCTAssertEqual(batch.reasonCounts[.image], 20)
        XCTAssertNil(batch.reasonCounts[.imageBoundary])
        let (venc, _, _) = try encoder(LabelPolicy(masking: .vision, maskEndOfImage: true))
        let vb = collator.collate(try samples("mmiu", rows).map { try venc.encode($0) })
        XCTAssertEqual(vb.reasonCounts[.imageBoundary], 10)  // boi + eoi per image
        XCTAssertTrue(vb.warnings.isEmpty)
        // assistant-only with a system turn: system text tokens carry `system`, the rest of the prompt `prompt`.
        let (aenc, _, _) = try encoder(LabelPolicy(masking: .trl, assistantOnlyLoss: true))
        let s = try aenc.encode(try samples("mmiu", rows)[0])
        XCTAssertTrue(s.reasons.contains(.system)); XCTAssertTrue(s.reasons.contains(.prompt)); XCTAssertTrue(s.reasons.contains(.trained))
    }

    func testImageCountMismatchNamesTheRow() throws {
        let (enc, _, rows) = try encoder(LabelPolicy())
        var s = try samples("mmiu", rows)[1]
        s.row = 41
        s.images.removeLast()
        XCTAssertThrowsError(try enc.encode(s)) { XCTAssertEqual("\($0)", "row 41: the text has 3 <start_of_image> placeholders but the row has 2 images") }
        var bad = try samples("llava", rows)[0]
        bad.row = 7
        bad.images = [Data([0xFF, 0xD8, 0xFF, 0x00, 0x01])]
        XCTAssertThrowsError(try enc.encode(bad)) { XCTAssertTrue("\($0)".hasPrefix("row 7, image 0: corrupt JPEG"), "\($0)") }
    }

    /// Lengths in the vision policy (from llava.vision.json): row 0 31 tokens with its image run at 6...11,
    /// row 2 20 tokens with the run at 6...11.
    /// TRL inserts image parts for string-content rows; the other policies report the mismatch.
    func testTRLPlacesImagesForStringContent() throws {
        let img = try Data(contentsOf: dir.appendingPathComponent("images/llava0.png"))
        let s = TrainingSample(row: 3, messages: [ChatMessage(role: "user", text: "Hi"), ChatMessage(role: "assistant", text: "Hello")], images: [img, img])
        let placed = SampleEncoder.trlPlaceImages(s)
        XCTAssertEqual(placed.messages[0].content, .parts([.image, .image, .text("Hi")]))
        XCTAssertEqual(placed.messages[1].content, .text("Hello"))
        let (enc, _, _) = try encoder(LabelPolicy(masking: .vision))
        XCTAssertThrowsError(try enc.encode(s)) { XCTAssertTrue("\($0)".hasPrefix("row 3: the text has 0 <start_of_image> placeholders but the row has 2 images"), "\($0)") }
    }

    func testMaxLengthNeverCutsAnImageRun() throws {
        let (_, collator, rows) = try encoder(LabelPolicy())
        let all = try samples("llava", rows)
        let (enc, _, _) = try encoder(LabelPolicy(maxLength: 20, overflow: .drop))
        let e0 = try enc.encode(all[0])
        XCTAssertFalse(e0.dropped); XCTAssertEqual(e0.keptLength, 20); XCTAssertEqual(e0.inputIDs.count, 31)
        XCTAssertTrue(e0.reasons[20...].allSatisfy { $0 == .truncated })
        XCTAssertEqual(e0.warnings.map(\.kind), [.truncated])
        // A cut at 9 goes through row 2's image run: dropped (counted), or an error naming the row.
        let (cut, _, _) = try encoder(LabelPolicy(maxLength: 9, overflow: .drop))
        let e2 = try cut.encode(all[2])
        XCTAssertTrue(e2.dropped); XCTAssertTrue(e2.pixelValues.isEmpty)
        let b = collator.collate([e0, e2])
        XCTAssertEqual(b.rows, [0]); XCTAssertEqual(b.droppedRows, [2]); XCTAssertEqual(b.truncatedRows, [0])
        XCTAssertEqual(b.sequenceLength, 20); XCTAssertEqual(b.imageCount, 1)
        XCTAssertEqual(b.pixelValues.count, 3 * rows.size * rows.size)
        let (strict, _, _) = try encoder(LabelPolicy(maxLength: 9, overflow: .error))
        XCTAssertThrowsError(try strict.encode(all[2])) { XCTAssertTrue("\($0)".hasPrefix("row 2: 20 tokens exceed max_length 9"), "\($0)") }
        // A cut after the run is a plain truncation.
        let (after, _, _) = try encoder(LabelPolicy(maxLength: 12, overflow: .error))
        XCTAssertEqual(try after.encode(all[2]).keptLength, 12)
    }

    func testExpansionAndOffsetMapping() throws {
        let t = Gemma3ImageTokens(boiID: 6, eoiID: 7, imageID: 8, imageSeqLength: 2)
        let e = Gemma3TextProcessor.expand("a<start_of_image>é<start_of_image>", tokens: t)
        XCTAssertEqual(e.text, "a\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\né\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\n")
        XCTAssertEqual(e.map(0), 0); XCTAssertEqual(e.map(1), 1)
        XCTAssertEqual(e.map(17), 17 + e.bytesGainedPerImage)  // just past the first placeholder
        XCTAssertEqual(Gemma3TextProcessor.placeholderCount("<start_of_image><start_of_image>x", tokens: t), 2)
        XCTAssertEqual(SampleEncoder.pythonStrip("\u{3000} x \n").0, "x")
    }
}
