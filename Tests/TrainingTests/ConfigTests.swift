import XCTest
import Tensor
@testable import Training

final class ConfigTests: XCTestCase {
    func testDefaultsAreTRLs() throws {
        // Values from trl 1.16 SFTConfig / transformers 5.24 TrainingArguments / trl ModelConfig dataclass defaults.
        let c = try SFTConfig.parse(yaml: "").config
        XCTAssertEqual(c.learningRate, 2e-5)
        XCTAssertEqual(c.numTrainEpochs, 3)
        XCTAssertEqual(c.maxSteps, -1)
        XCTAssertEqual(c.perDeviceTrainBatchSize, 8)
        XCTAssertEqual(c.gradientAccumulationSteps, 1)
        XCTAssertTrue(c.gradientCheckpointing)
        XCTAssertEqual(c.loggingSteps, 10)
        XCTAssertEqual(c.maxLength, 1024)
        XCTAssertEqual(c.lrSchedulerType, .linear)
        XCTAssertEqual(c.maxGradNorm, 1)
        XCTAssertEqual(c.seed, 42)
        XCTAssertEqual(c.saveStrategy, .steps); XCTAssertEqual(c.saveSteps, 500)
        XCTAssertEqual(c.loraR, 16); XCTAssertEqual(c.loraAlpha, 32); XCTAssertEqual(c.loraDropout, 0.05)
        XCTAssertEqual(c.optim, "adamw_torch_fused")
        XCTAssertTrue(c.shuffle)
        XCTAssertEqual(c.labelMasking, .vision)
        XCTAssertEqual(c.gaLossNormalization, .tokens)
    }

    func testBF16SaysHowItRuns() throws {
        // The default bf16_matmul: auto states what this machine does (BF16ConfigTests covers the policy).
        let on = try SFTConfig.parse(yaml: "bf16: true")
        let expected = BF16Capabilities.current.nativeAvailable ? "bf16: matrix products in bfloat16 through cblas_sbgemm"
            : "bf16: true runs the matrix products in fp32: "
        XCTAssertTrue(on.warnings.contains { $0.hasPrefix(expected) }, "\(on.warnings)")
        let off = try SFTConfig.parse(yaml: "bf16: false")
        XCTAssertFalse(off.warnings.contains { $0.hasPrefix("bf16") }, "\(off.warnings)")
    }

    /// `dtype` other than float32 is said, not silently different: weights stay as stored, compute is fp32.
    func testDTypeSaysWhatSFTDeckDoes() throws {
        let bf = try SFTConfig.parse(yaml: "dtype: bfloat16\nuse_peft: true")
        XCTAssertTrue(bf.warnings.contains { $0.hasPrefix("dtype: bfloat16: SFTDeck keeps each weight in its checkpoint's storage") && $0.contains("every weight as bf16") && !$0.contains("full fine-tuning") }, "\(bf.warnings)")
        let auto = try SFTConfig.parse(yaml: "dtype: auto")
        XCTAssertTrue(auto.warnings.contains { $0.contains("the checkpoint's dtype") && $0.hasSuffix("full fine-tuning saves fp32 weights (twice the size of bf16 files)") }, "\(auto.warnings)")
        XCTAssertFalse(try SFTConfig.parse(yaml: "dtype: float32").warnings.contains { $0.hasPrefix("dtype") })
        XCTAssertFalse(try SFTConfig.parse(yaml: "learning_rate: 1e-4").warnings.contains { $0.hasPrefix("dtype") })
    }

    func testParsesGuideStyleConfig() throws {
        let r = try SFTConfig.parse(yaml: """
        model_name_or_path: google/gemma-3-4b-it
        dataset_name: HuggingFaceH4/llava-instruct-mix-vsft
        output_dir: gemma-3-4b-it-trl-sft
        num_train_epochs: 1
        per_device_train_batch_size: 8
        gradient_accumulation_steps: 4
        learning_rate: 2e-5
        warmup_ratio: 0.03
        lr_scheduler_type: cosine
        bf16: true
        use_peft: true
        lora_r: 16
        lora_alpha: 16
        lora_target_modules: all-linear
        lora_modules_to_save: [lm_head, embed_tokens]
        load_in_4bit: true
        use_bnb_nested_quant: true
        save_strategy: epoch
        report_to: tensorboard
        resume_from_checkpoint: true
        gradient_checkpointing_kwargs: {use_reentrant: false}
        dataset_kwargs:
          skip_prepare_dataset: true
        """)
        let c = r.config
        XCTAssertEqual(c.learningRate, 2e-5)    // YAML 1.1 reads 2e-5 as a string; accepted as a number
        XCTAssertEqual(c.warmupSteps, 0.03)
        XCTAssertEqual(c.lrSchedulerType, .cosine)
        XCTAssertEqual(c.loraTargetModules, ["all-linear"])
        XCTAssertEqual(c.loraModulesToSave, ["lm_head", "embed_tokens"])
        XCTAssertEqual(c.saveStrategy, .epoch)
        XCTAssertEqual(c.reportTo, ["tensorboard"])
        XCTAssertEqual(c.resumeFromCheckpoint, "true")
        XCTAssertEqual(c.bf16, true)
        XCTAssertTrue(r.warnings.contains { $0.contains("warmup_ratio") && $0.contains("warmup_steps") })
        XCTAssertTrue(r.warnings.contains { $0.contains("'gradient_checkpointing_kwargs' is a TRL key SFTDeck does not honour") })
        XCTAssertTrue(r.warnings.contains { $0.contains("'dataset_kwargs'") })
    }

    func testYAML11BooleansAndStrategyNo() throws {
        let c = try SFTConfig.parse(yaml: "shuffle: no\nsave_strategy: no\nuse_peft: yes\n").config
        XCTAssertFalse(c.shuffle)
        XCTAssertEqual(c.saveStrategy, .no)
        XCTAssertTrue(c.usePeft)
    }

    func testUnknownKeySuggestsNearest() {
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "learnig_rate: 1e-4\n")) { e in
            XCTAssertEqual("\(e)", "unknown config key 'learnig_rate' (did you mean 'learning_rate'?)")
        }
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "per_device_batch_size: 2\n")) { e in
            XCTAssertTrue("\(e)".contains("did you mean 'per_device_train_batch_size'") || "\(e)".contains("did you mean 'per_device_eval_batch_size'"), "\(e)")
        }
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "zzzzzzzzzzzz: 1\n")) { e in
            XCTAssertEqual("\(e)", "unknown config key 'zzzzzzzzzzzz'")
        }
    }

    /// transformers raises for "none" inside a list of reporters; so does SFTDeck, in one line.
    func testReportToNoneInsideAListIsAnError() throws {
        XCTAssertThrowsError(try SFTConfig.parse(yaml: "report_to: [none, tensorboard]\n")) { e in
            XCTAssertTrue("\(e)".contains("report_to lists 'none' with other integrations"), "\(e)")
        }
        XCTAssertTrue(try SFTConfig.parse(yaml: "report_to: [tensorboard]\n").config.reportsToTensorBoard)
    }

    func testValidationMessages() {
        func err(_ y: String) -> String { do { _ = try SFTConfig.parse(yaml: y); return "" } catch { return "\(error)" } }
        XCTAssertEqual(err("gradient_accumulation_steps: 0"), "gradient_accumulation_steps must be at least 1 (got 0)")
        XCTAssertEqual(err("lr_scheduler_type: cosin"),
                       "config key 'lr_scheduler_type': 'cosin' is not one of linear, cosine, constant, constant_with_warmup (did you mean 'cosine'?)")
        XCTAssertEqual(err("load_in_4bit: true"), "load_in_4bit needs use_peft: true (4-bit weights are frozen; only adapters train)")
        XCTAssertEqual(err("per_device_train_batch_size: two"), "config key 'per_device_train_batch_size': expected an integer, got two")
        XCTAssertEqual(err("label_masking: guide"), "config key 'label_masking': 'guide' is not one of vision, guide-exact, trl")
        XCTAssertTrue(err("[1, 2]").contains("mapping"))
        XCTAssertTrue(err("a: [b").contains("not valid YAML"))
    }

    func testSaveRoundTripAndGroups() throws {
        var c = SFTConfig()
        c.modelNameOrPath = "google/gemma-3-4b-it"; c.usePeft = true; c.loraModulesToSave = ["lm_head", "embed_tokens"]
        c.learningRate = 2e-4; c.labelMasking = .guideExact; c.gaLossNormalization = .legacySum; c.resumeFromCheckpoint = "true"
        c.runName = "a: b"; c.warmupSteps = 0.1; c.evalSteps = 50
        let text = c.yaml()
        let back = try SFTConfig.parse(yaml: text)
        XCTAssertEqual(back.config, c)
        XCTAssertTrue(text.contains("# --- peft\nuse_peft: true"))
        XCTAssertEqual(Set(SFTConfig.fields.map(\.group)), Set(ConfigGroup.allCases))
        XCTAssertEqual(SFTConfig.fields.count, Set(SFTConfig.fields.map(\.key)).count, "duplicate keys")
        // Every TRL key SFTDeck claims to honour is really one of TRL's (or SFTDeck's own).
        let own: Set = ["adapter_name_or_path", "shuffle", "label_masking", "ga_loss_normalization", "bf16_matmul", "theme"]
        for f in SFTConfig.fields where !own.contains(f.key) { XCTAssertTrue(SFTConfig.trlKeys.contains(f.key), f.key) }
        // The editor path: set a field from its text form.
        var d = SFTConfig()
        try SFTConfig.field("learning_rate")!.set(&d, .string("3e-4"))
        XCTAssertEqual(d.learningRate, 3e-4)
        XCTAssertEqual(SFTConfig.field("lr_scheduler_type")!.choices, ["linear", "cosine", "constant", "constant_with_warmup"])
    }

    /// The bundled guide configs load without errors or warnings about unknown keys.
    func testSampleConfigsLoad() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("sample-configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 2)
        for f in files {
            let r = try SFTConfig.load(path: dir.appendingPathComponent(f).path)
            XCTAssertTrue(r.config.usePeft && r.config.loadIn4bit, f)
            XCTAssertEqual(r.config.loraModulesToSave, ["lm_head", "embed_tokens"], f)
            XCTAssertFalse(r.warnings.contains { $0.contains("does not honour") }, "\(f): \(r.warnings)")
        }
    }

    func testTRLExportTranslatesSFTDeckKeys() throws {
        var c = SFTConfig()
        c.modelNameOrPath = "google/gemma-3-4b-it"; c.shuffle = false; c.labelMasking = .guideExact
        c.gaLossNormalization = .legacySum; c.theme = "nord"; c.learningRate = 1e-4
        let f = TRLExport.render(c)
        XCTAssertTrue(f.config.contains("train_sampling_strategy: sequential"))
        XCTAssertTrue(f.config.contains("learning_rate: 0.0001"))
        for own in ["label_masking", "ga_loss_normalization:", "theme", "shuffle:"] { XCTAssertFalse(f.config.contains("\n" + own), own) }
        XCTAssertTrue(f.config.contains("NOTE: ga_loss_normalization legacy-sum"))
        XCTAssertTrue(f.script.contains("masked_ids = [processor.tokenizer.pad_token_id, image_token_id]"))
        XCTAssertTrue(f.script.contains("SFTTrainer("))
        XCTAssertTrue(f.accelerate.contains("num_processes: 1"))
        // Every key written to the TRL config is a TRL key (so `trl sft --config` accepts it).
        for line in f.config.split(separator: "\n") where !line.hasPrefix("#") && line.contains(":") {
            let key = String(line.split(separator: ":")[0])
            XCTAssertTrue(SFTConfig.trlKeys.contains(key), key)
        }
    }
}
