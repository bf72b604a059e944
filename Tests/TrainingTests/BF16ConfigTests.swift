import XCTest
import Tensor
@testable import Training

/// `bf16_matmul` (SFTDeck's switch for how `bf16: true` runs) and a bf16 training run end to end.
final class BF16ConfigTests: XCTestCase {
    func testKeyParsesAndStatesTheMode() throws {
        let r = try SFTConfig.parse(yaml: "bf16: true\nbf16_matmul: emulate\n")
        XCTAssertEqual(r.config.bf16Matmul, .emulate)
        XCTAssertTrue(r.warnings.contains { $0.hasPrefix("bf16: matrix products emulated") }, "\(r.warnings)")
        XCTAssertEqual(try r.config.bf16MatmulResolution().mode, .emulated)
        XCTAssertEqual(try SFTConfig.parse(yaml: "").config.bf16Matmul, .auto)
        let fp = try SFTConfig.parse(yaml: "bf16: true\nbf16_matmul: fp32\n")
        XCTAssertEqual(try fp.config.bf16MatmulResolution().mode, .fp32)
        let off = try SFTConfig.parse(yaml: "bf16_matmul: emulate\n")
        XCTAssertTrue(off.warnings.contains { $0.contains("has no effect without bf16: true") }, "\(off.warnings)")
        // Saved and re-read, and left out of the TRL export (it is SFTDeck's own key).
        var c = SFTConfig(); c.bf16 = true; c.bf16Matmul = .emulate
        XCTAssertTrue(c.yaml(full: false).contains("bf16_matmul: emulate"))
        XCTAssertEqual(try SFTConfig.parse(yaml: c.yaml()).config.bf16Matmul, .emulate)
        XCTAssertFalse(TRLExport.render(c).config.contains("bf16_matmul"))
    }

    func testBadValuesAndKeysGetTheNearestName() {
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "bf16: true\nbf16_matmul: emulated\n")) { e in
            XCTAssertEqual("\(e)", "config key 'bf16_matmul': 'emulated' is not one of auto, sbgemm, emulate, fp32 (did you mean 'emulate'?)")
        }
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "bf16_matmull: emulate\n")) { e in
            XCTAssertEqual("\(e)", "unknown config key 'bf16_matmull' (did you mean 'bf16_matmul'?)")
        }
    }

    /// `sbgemm` where no library exports it is an error naming why; where one does, it parses.
    func testExplicitSbgemmIsAnErrorWhereUnavailable() throws {
        let yaml = "bf16: true\nbf16_matmul: sbgemm\n"
        if !BF16Capabilities.current.libraryHasSbgemm, let why = BF16Capabilities.current.unavailableReason {
            XCTAssertThrowsError(try SFTConfig.parse(yaml: yaml)) { e in
                XCTAssertEqual("\(e)", "bf16_matmul: sbgemm is unavailable here: \(why) (use auto, emulate or fp32)")
            }
        } else {
            XCTAssertEqual(try SFTConfig.parse(yaml: yaml).config.bf16MatmulResolution().mode, .sbgemm)
        }
    }

    /// Four LoRA optimizer steps of the SFTTrainer text fixture (tiny Gemma 3, batch 2, GA 2, lr 5e-3):
    /// with `bf16: true, bf16_matmul: emulate` every logged loss is within 2e-2 relative of the fp32 run
    /// and differs from it (the bf16 path is active through the trainer); fp32 still matches TRL's log.
    func testEmulatedTrainingRunIsCloseToFP32AndDiffers() throws {
        let sft = try fixtureURL("sft")
        func run(_ bf16Lines: String) throws -> [Double] {
            let yaml = try String(contentsOf: sft.appendingPathComponent("text/sft.yaml"), encoding: .utf8)
                .replacingOccurrences(of: "MODEL_DIR", with: sft.appendingPathComponent("model").path)
                .replacingOccurrences(of: "ADAPTER_DIR", with: sft.appendingPathComponent("adapter_init").path)
                .replacingOccurrences(of: "DATA_DIR", with: sft.appendingPathComponent("text").path)
                .replacingOccurrences(of: "OUTPUT_DIR", with: tempDir("bf16-\(bf16Lines.count)").path)
                .replacingOccurrences(of: "bf16: false", with: bf16Lines)
                .replacingOccurrences(of: "max_steps: 20", with: "max_steps: 4")
                .replacingOccurrences(of: "eval_strategy: steps", with: "eval_strategy: 'no'")
                .replacingOccurrences(of: "logging_steps: 2", with: "logging_steps: 1")
            let cfg = try SFTConfig.parse(yaml: yaml).config
            let prepared = try RunSetup.prepare(cfg)
            let t = try Trainer(config: cfg, model: prepared.model, train: prepared.train)
            try t.run()
            return t.logHistory.compactMap { $0["loss"] }
        }
        let fp32 = try run("bf16: false"), bf = try run("bf16: true\nbf16_matmul: emulate")
        if BF16Capabilities.current.libraryHasSbgemm {
            // Through a real cblas_sbgemm (SFTDECK_SBGEMM_LIBRARY or the loaded BLAS): the same products as the
            // emulation up to fp32 summation order, so the losses agree far more closely than bf16 vs fp32.
            let native = try run("bf16: true\nbf16_matmul: sbgemm")
            for (a, b) in zip(native, bf) { XCTAssertEqual(a, b, accuracy: 1e-4 * b) }
            print("bf16 trainer losses through cblas_sbgemm: \(native.map { String(format: "%.6f", $0) })")
        }
        XCTAssertEqual(fp32.count, 4); XCTAssertEqual(bf.count, 4)
        let trl = try XCTUnwrap(PythonJSON.parse(Data(contentsOf: sft.appendingPathComponent("text/log_history.json"))) as? [[String: Any]])
        if let first = trl.first(where: { $0["step"] as? Int == 2 }).flatMap({ jsonNumber($0["loss"] as Any) }) {
            // TRL logs every 2 steps: its step-2 loss is the mean of SFTDeck's steps 1 and 2.
            XCTAssertEqual((fp32[0] + fp32[1]) / 2, first, accuracy: 1e-4 * first)
        }
        for (a, b) in zip(bf, fp32) { XCTAssertEqual(a, b, accuracy: 2e-2 * b) }
        XCTAssertNotEqual(bf, fp32)
        print("bf16 trainer losses: fp32 \(fp32.map { String(format: "%.6f", $0) }) emulate \(bf.map { String(format: "%.6f", $0) })")
    }
}
