import XCTest
import Tensor
@testable import Training

/// `LoRAMerge` against PEFT 0.21.2 `merge_and_unload()` + `save_pretrained` of the adapter SFTTrainer
/// trained on the tiny Gemma 3 (Scripts/fixtures/gen_training_sft.py, merged_mm_summary.json: per-tensor
/// sum, |sum| and first values). Tolerance: 1e-5 relative on sums, 1e-6 absolute on values (fp32).
final class MergeTests: XCTestCase {
    func testMergeMatchesPEFT() throws {
        let sft = try fixtureURL("sft")
        let out = tempDir()
        let r = try LoRAMerge.merge(model: sft.appendingPathComponent("model"), adapter: sft.appendingPathComponent("adapter_trained_mm"), out: out)
        XCTAssertGreaterThan(r.merged, 10)
        XCTAssertEqual(r.replaced, 2)   // lm_head, embed_tokens
        let want = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: sft.appendingPathComponent("merged_mm_summary.json"))) as? [String: [String: Any]])
        let file = try SafeTensorsFile(url: r.written)
        XCTAssertEqual(Set(file.names), Set(want.keys))
        for (name, w) in want { try assertTensorSummary(file, name, w, relative: 1e-5, headAccuracy: 1e-6) }
        // The trained head of a tied checkpoint is kept and the config untied.
        let cfg = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual(cfg["tie_word_embeddings"] as? Bool, false)
    }

    func testMergeErrorsNameTheFile() throws {
        let sft = try fixtureURL("sft")
        XCTAssertThrowsError(try LoRAMerge.merge(model: sft.appendingPathComponent("model"), adapter: sft.appendingPathComponent("mm"), out: tempDir())) { e in
            XCTAssertTrue("\(e)".contains("adapter_config.json"), "\(e)")
        }
    }
}
