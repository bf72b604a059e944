import ArgumentParser
import Dashboard
import Datasets
import Foundation
import Tokenizers
import Training

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Generate a synthetic vision-question dataset and a tiny Gemma-3-shaped model, then train it in the dashboard.",
        discussion: """
        Nothing is downloaded. Writes into --dir: datasets/llava-shapes (parquet conversations, single \
        image), datasets/mmiu-shapes (MMIU layout, multi-image), model/ (tokenizer, chat template, \
        processor and random weights) and demo-llava.yaml / demo-mmiu.yaml, then opens the dashboard on \
        demo-llava.yaml (headless training when there is no terminal).
        """)

    @Option(name: .long, help: "Folder for the generated files.")
    var dir: String = "sftdeck-demo"

    @Flag(name: .long, help: "Only generate the files; do not open the dashboard or train.")
    var noOpen = false

    @Option(name: .long, help: "Optimizer steps of the demo runs.")
    var maxSteps: Int = 400

    @OptionGroup var frontEnd: FrontEndOptions

    func run() throws {
        let root = URL(fileURLWithPath: dir).standardizedFileURL
        let data = root.appendingPathComponent("datasets"), model = root.appendingPathComponent("model")
        let summary: DemoDataset.Summary
        do { summary = try DemoDataset.write(to: data) } catch { throw failure("\(error)", code: 1) }
        // The tokenizer learns its merges from the demo's own questions and answers.
        var corpus: [String] = []
        for split in ["train", "test"] {
            if let ds = try? Dataset.open(summary.llavaFolder.path, split: split) {
                for i in 0..<ds.count { if let r = try? ds.row(i) { corpus += r.messages.map(Self.text) } }
            }
        }
        let tokenizer: GemmaTokenizerBuilder.Built
        do { tokenizer = try GemmaTokenizerBuilder.writeFolder(model, corpus: corpus) } catch { throw failure("\(error)", code: 1) }
        let llavaConfig = root.appendingPathComponent("demo-llava.yaml").path
        let mmiuConfig = root.appendingPathComponent("demo-mmiu.yaml").path
        try Self.config(model: model.path, data: summary.llavaFolder.path, out: root.appendingPathComponent("runs/llava").path, steps: maxSteps)
            .write(toFile: llavaConfig, atomically: true, encoding: .utf8)
        try Self.config(model: model.path, data: summary.mmiuFolder.path, out: root.appendingPathComponent("runs/mmiu").path, steps: maxSteps,
                        split: "test")   // MMIU-Benchmark ships one split
            .write(toFile: mmiuConfig, atomically: true, encoding: .utf8)
        try DemoModel.write(to: model, tokenizer: tokenizer)
        FileHandle.standardError.write(Data("""
        demo: \(summary.trainRows) + \(summary.testRows) single-image rows, \(summary.multiImageRows) multi-image rows (\(summary.images) images)
        demo: wrote \(llavaConfig) and \(mmiuConfig)

        """.utf8))
        if noOpen { return }
        var args = ["--config", llavaConfig, "--runs", root.appendingPathComponent("runs").path, "--dataset", summary.mmiuFolder.path]
        if let t = frontEnd.theme { args += ["--theme", t] }
        if frontEnd.headless { args.append("--headless") }
        if frontEnd.jsonl { args.append("--jsonl") }
        if frontEnd.noMouse { args.append("--no-mouse") }
        var dash = try DashboardCommand.parse(args)
        try dash.run()
    }

    static func text(_ m: ChatMessage) -> String {
        switch m.content {
        case .text(let t): return t
        case .parts(let p): return p.compactMap { if case .text(let t) = $0 { return t }; return nil }.joined(separator: " ")
        }
    }

    /// A short LoRA run on the tiny model that visibly learns in a couple of minutes on 2 cores.
    static func config(model: String, data: String, out: String, steps: Int, split: String = "train") -> String {
        """
        # SFTDeck demo run (TRL keys: `trl sft --config` reads the same file)
        model_name_or_path: \(model)
        dataset_name: \(data)
        dataset_train_split: \(split)
        output_dir: \(out)
        use_peft: true
        lora_r: 8
        lora_alpha: 16
        lora_dropout: 0.0
        # The tiny random model starts with a near-zero output head: train it (as the guide does) so the
        # demo visibly learns (loss 6.0 -> ~0.25 in 120 steps, ~0.13 in 600; LoRA alone stalls near ln(vocab)).
        lora_modules_to_save: [lm_head, embed_tokens]
        per_device_train_batch_size: 4
        gradient_accumulation_steps: 1
        max_steps: \(steps)
        learning_rate: 0.005
        lr_scheduler_type: linear
        warmup_steps: 5
        logging_steps: 2
        save_steps: \(max(1, steps / 4))
        save_total_limit: 2
        max_length: 512
        report_to: [tensorboard]
        seed: 42

        """
    }
}

/// The demo's tiny Gemma-3-shaped model: `config.json` (Gemma3ForConditionalGeneration with a
/// SigLIP tower), processor files and seeded random fp32 weights named and shaped as transformers
/// saves them, so the same folder loads in `Gemma3ForConditionalGeneration.from_pretrained`.
enum DemoModel {
    // Sizes: small enough to learn in a couple of minutes on 2 cores in a release build.
    static let textHidden = 64, textIntermediate = 128, textLayers = 2, heads = 2, kvHeads = 1, headDim = 32
    static let visionHidden = 32, visionIntermediate = 64, visionLayers = 1, visionHeads = 2
    static let imageSize = 48, patchSize = 8, tokensPerImage = 4

    static func write(to folder: URL, tokenizer: GemmaTokenizerBuilder.Built, seed: UInt64 = 42) throws {
        let ids = tokenizer.specialTokenIds
        guard let boi = ids["<start_of_image>"], let eoi = ids["<end_of_image>"], let img = ids["<image_soft_token>"],
              let eos = ids["<eos>"], let eot = ids["<end_of_turn>"], let bos = ids["<bos>"], let pad = ids["<pad>"] else {
            throw failure("\(folder.path): the demo tokenizer lacks Gemma 3's special tokens", code: 1)
        }
        let vocab = tokenizer.vocabularySize
        let text: [String: Any] = [
            "model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": textHidden, "intermediate_size": textIntermediate,
            "num_hidden_layers": textLayers, "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": headDim,
            "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 1024, "rms_norm_eps": 1e-6,
            "query_pre_attn_scalar": headDim, "sliding_window": 64, "_sliding_window_pattern": 2,
            "layer_types": ["sliding_attention", "full_attention"], "attention_bias": false, "attention_dropout": 0.0,
            "attn_logit_softcapping": NSNull(), "final_logit_softcapping": NSNull(), "initializer_range": 0.02,
            "rope_parameters": ["full_attention": ["rope_theta": 1_000_000.0, "rope_type": "default"],
                                "sliding_attention": ["rope_theta": 10_000.0, "rope_type": "default"]],
            "tie_word_embeddings": true, "use_bidirectional_attention": false, "use_cache": true,
            "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        ]
        let vision: [String: Any] = [
            "model_type": "siglip_vision_model", "hidden_size": visionHidden, "intermediate_size": visionIntermediate,
            "num_hidden_layers": visionLayers, "num_attention_heads": visionHeads, "num_channels": 3, "image_size": imageSize,
            "patch_size": patchSize, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6, "attention_dropout": 0.0,
            "vision_use_head": false,
        ]
        let config: [String: Any] = [
            "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text, "vision_config": vision,
            "boi_token_index": boi, "eoi_token_index": eoi, "image_token_index": img, "mm_tokens_per_image": tokensPerImage,
            "bos_token_id": bos, "eos_token_id": [eos, eot], "pad_token_id": pad, "initializer_range": 0.02,
            "tie_word_embeddings": true, "dtype": "float32", "transformers_version": "5.24.0",
        ]
        let preprocessor: [String: Any] = [
            "image_processor_type": "Gemma3ImageProcessor", "do_resize": true, "size": ["height": imageSize, "width": imageSize],
            "resample": 2, "do_rescale": true, "rescale_factor": 1.0 / 255.0, "do_normalize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_convert_rgb": NSNull(), "do_pan_and_scan": NSNull(),
            "image_seq_length": tokensPerImage,
        ]
        let processor: [String: Any] = ["image_seq_length": tokensPerImage, "processor_class": "Gemma3Processor"]
        let generation: [String: Any] = ["bos_token_id": bos, "eos_token_id": [eos, eot], "pad_token_id": pad]
        do {
            for (name, obj) in [("config.json", config), ("preprocessor_config.json", preprocessor),
                                ("processor_config.json", processor), ("generation_config.json", generation)] {
                let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
                try d.write(to: folder.appendingPathComponent(name))
            }
            try SafetensorsFile.write(weights(vocab: vocab, seed: seed), metadata: ["format": "pt"],
                                      to: folder.appendingPathComponent("model.safetensors"))
        } catch let e as ExitCode { throw e } catch {
            throw failure("\(folder.path): cannot write the demo model (\(error.localizedDescription))", code: 1)
        }
    }

    /// Weights as HF initialises them in spirit: projections ~ N(0, 0.02), Gemma RMSNorm weights 0
    /// (they scale by 1 + w), LayerNorm weights 1 and biases 0. Seeded, so the demo is repeatable.
    static func weights(vocab: Int, seed: UInt64) -> [(name: String, shape: [Int], values: [Float])] {
        var rng = DemoDataset.Random(seed: seed)
        func normal(_ shape: [Int]) -> [Float] {
            let n = shape.reduce(1, *)
            var out = [Float](repeating: 0, count: n)
            var i = 0
            while i < n {   // Box-Muller
                let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
                let r = (-2 * log(u1)).squareRoot()
                out[i] = Float(0.02 * r * cos(2 * .pi * u2)); i += 1
                if i < n { out[i] = Float(0.02 * r * sin(2 * .pi * u2)); i += 1 }
            }
            return out
        }
        func fill(_ shape: [Int], _ v: Float) -> [Float] { [Float](repeating: v, count: shape.reduce(1, *)) }
        var t: [(name: String, shape: [Int], values: [Float])] = []
        func add(_ name: String, _ shape: [Int], _ values: [Float]) { t.append((name, shape, values)) }
        let h = textHidden, lm = "language_model.model"
        add("\(lm).embed_tokens.weight", [vocab, h], normal([vocab, h]))
        for l in 0..<textLayers {
            let p = "\(lm).layers.\(l)"
            add("\(p).self_attn.q_proj.weight", [heads * headDim, h], normal([heads * headDim, h]))
            add("\(p).self_attn.k_proj.weight", [kvHeads * headDim, h], normal([kvHeads * headDim, h]))
            add("\(p).self_attn.v_proj.weight", [kvHeads * headDim, h], normal([kvHeads * headDim, h]))
            add("\(p).self_attn.o_proj.weight", [h, heads * headDim], normal([h, heads * headDim]))
            add("\(p).self_attn.q_norm.weight", [headDim], fill([headDim], 0))
            add("\(p).self_attn.k_norm.weight", [headDim], fill([headDim], 0))
            add("\(p).mlp.gate_proj.weight", [textIntermediate, h], normal([textIntermediate, h]))
            add("\(p).mlp.up_proj.weight", [textIntermediate, h], normal([textIntermediate, h]))
            add("\(p).mlp.down_proj.weight", [h, textIntermediate], normal([h, textIntermediate]))
            for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
                add("\(p).\(n).weight", [h], fill([h], 0))
            }
        }
        add("\(lm).norm.weight", [h], fill([h], 0))
        let v = visionHidden, patches = (imageSize / patchSize) * (imageSize / patchSize)
        add("vision_tower.embeddings.patch_embedding.weight", [v, 3, patchSize, patchSize], normal([v, 3, patchSize, patchSize]))
        add("vision_tower.embeddings.patch_embedding.bias", [v], fill([v], 0))
        add("vision_tower.embeddings.position_embedding.weight", [patches, v], normal([patches, v]))
        for l in 0..<visionLayers {
            let p = "vision_tower.encoder.layers.\(l)"
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                add("\(p).self_attn.\(proj).weight", [v, v], normal([v, v]))
                add("\(p).self_attn.\(proj).bias", [v], fill([v], 0))
            }
            add("\(p).mlp.fc1.weight", [visionIntermediate, v], normal([visionIntermediate, v]))
            add("\(p).mlp.fc1.bias", [visionIntermediate], fill([visionIntermediate], 0))
            add("\(p).mlp.fc2.weight", [v, visionIntermediate], normal([v, visionIntermediate]))
            add("\(p).mlp.fc2.bias", [v], fill([v], 0))
            for n in ["layer_norm1", "layer_norm2"] {
                add("\(p).\(n).weight", [v], fill([v], 1))
                add("\(p).\(n).bias", [v], fill([v], 0))
            }
        }
        add("vision_tower.post_layernorm.weight", [v], fill([v], 1))
        add("vision_tower.post_layernorm.bias", [v], fill([v], 0))
        add("multi_modal_projector.mm_input_projection_weight", [v, h], normal([v, h]))
        add("multi_modal_projector.mm_soft_emb_norm.weight", [v], fill([v], 0))
        return t
    }
}
