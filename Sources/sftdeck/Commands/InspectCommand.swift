import ArgumentParser
import Datasets
import Foundation
import Tensor
import Tokenizers
import Training

/// `sftdeck inspect`: how rows become model inputs, under the config's label policy.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show how dataset rows become model inputs (messages, rendered text, tokens with labels and reasons), or dump a collated batch.",
        discussion: """
        --index N shows row N of the train split: the formatted messages, the rendered text and, per token, \
        its id, text, label and the reason for the label (pad, image, image-boundary, prompt, system, \
        truncated, trained), with warnings (double BOS, image count mismatch, nothing trained).

        --batch K --dump DIR writes DIR/batch.safetensors with the collated tensors of batch K \
        (per_device_train_batch_size rows, dataset order, no shuffling).
        """
    )

    @Option(name: .long, help: "TRL-style YAML config (model_name_or_path, dataset_name, label_masking, ...).")
    var config: String
    @Option(name: .long, help: "Row to show.")
    var index: Int?
    @Option(name: .long, help: "Batch number to collate.")
    var batch: Int?
    @Option(name: .long, help: "Folder for batch.safetensors (with --batch).")
    var dump: String?
    @Option(name: .long, help: "Split to read (default: the config's dataset_train_split).")
    var split: String?
    @Flag(name: .long, help: "Machine-readable output.")
    var json = false

    func run() throws {
        guard (index == nil) != (batch == nil) else { throw CLIError("sftdeck inspect: give exactly one of --index N or --batch K") }
        if batch != nil && dump == nil && !json { throw CLIError("sftdeck inspect --batch K needs --dump DIR (or --json for a summary)") }
        let loaded: ConfigLoadResult
        do { loaded = try SFTConfig.load(path: config) } catch { throw CLIError("\(error)") }
        let cfg = loaded.config
        guard let modelSpec = cfg.modelNameOrPath else { throw CLIError("\(config): model_name_or_path is not set") }
        guard let datasetSpec = cfg.datasetName else { throw CLIError("\(config): dataset_name is not set") }
        guard let masking = LabelMasking(rawValue: cfg.labelMasking.rawValue) else {
            throw CLIError("\(config): label_masking '\(cfg.labelMasking.rawValue)' is not a collator policy")
        }
        var notes = loaded.warnings
        // The guide's collate_fn never truncates (TRL's max_length is unused with a custom collator).
        let maxLength = masking == .guideExact ? nil : cfg.maxLength
        if masking == .guideExact {
            notes.append("label_masking guide-exact reproduces the guide's collate_fn: two BOS tokens, <start_of_image> left as a target, no truncation; use it only to reproduce published runs")
        }
        let policy = LabelPolicy(masking: masking, assistantOnlyLoss: cfg.assistantOnlyLoss,
                                 completionOnlyLoss: cfg.completionOnlyLoss ?? true, maxLength: maxLength, overflow: .drop)
        let modelDir = try Self.resolveModel(modelSpec)
        let template = try cfg.chatTemplatePath.map { p -> String in
            do { return try String(contentsOfFile: p, encoding: .utf8) } catch { throw CLIError("\(p): cannot read the chat template") }
        }
        let pipe: CollatorPipeline
        do { pipe = try CollatorPipeline(modelDirectory: modelDir, policy: policy, chatTemplate: template) } catch { throw CLIError("\(error)") }
        let dataset: Dataset
        do { dataset = try Dataset.open(datasetSpec, split: split ?? cfg.datasetTrainSplit) } catch { throw CLIError("\(error)") }

        if let i = index {
            try showRow(i, dataset: dataset, pipe: pipe, notes: notes)
        } else if let k = batch {
            try dumpBatch(k, size: cfg.perDeviceTrainBatchSize, dataset: dataset, pipe: pipe, notes: notes)
        }
    }

    /// A local folder, or a Hub id found in the local cache (`models--OWNER--NAME/snapshots/<rev>`).
    static func resolveModel(_ spec: String) throws -> URL {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let expanded = spec.hasPrefix("~/") ? fm.homeDirectoryForCurrentUser.path + spec.dropFirst(1) : spec
        if fm.fileExists(atPath: expanded, isDirectory: &isDir), isDir.boolValue { return URL(fileURLWithPath: expanded) }
        if HubCache.looksLikeRepoID(spec) {
            for root in HubCache.cacheRoots() {
                let repo = root.appendingPathComponent("models--" + spec.replacingOccurrences(of: "/", with: "--"))
                let snaps = repo.appendingPathComponent("snapshots")
                let ref = (try? String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if let r = ref, fm.fileExists(atPath: snaps.appendingPathComponent(r).path) { return snaps.appendingPathComponent(r) }
                if let first = (try? fm.contentsOfDirectory(atPath: snaps.path))?.sorted().first { return snaps.appendingPathComponent(first) }
            }
        }
        throw CLIError("\(spec): no such model folder, and not found in the local Hugging Face cache")
    }

    static func sample(_ row: DatasetRow) throws -> (TrainingSample, [DatasetWarning]) {
        do { return try TrainingSample.from(row) } catch { throw CLIError("\(error)") }
    }

    func showRow(_ i: Int, dataset: Dataset, pipe: CollatorPipeline, notes: [String]) throws {
        let row: DatasetRow
        do { row = try dataset.row(i) } catch { throw CLIError("\(error)") }
        let (sample, rowWarnings) = try Self.sample(row)
        var encoded: EncodedSample?
        var failure: String?
        do { encoded = try pipe.encode(sample) } catch { failure = "\(error)" }
        let warnings = rowWarnings + (encoded?.warnings ?? [])
        let tok = pipe.tokenizer
        if json {
            var tokens = [[String: Any]]()
            if let e = encoded {
                for t in 0..<e.inputIDs.count {
                    let id = Int(e.inputIDs[t])
                    tokens.append(["id": id, "text": tok.decode([id]), "token": tok.idToToken(id) ?? "", "label": Int(e.labels[t]),
                                   "reason": e.reasons[t].rawValue])
                }
            }
            let messages = try JSONSerialization.jsonObject(with: JSONEncoder().encode(row.messages))
            var obj: [String: Any] = [
                "row": i, "dataset": dataset.info.spec, "split": dataset.info.split, "label_masking": pipe.policy.masking.rawValue,
                "chat_template": pipe.templateNote, "messages": messages,
                "images": row.images.map(\.summary), "rendered_text": encoded?.text ?? NSNull(),
                "warnings": warnings.map(\.description), "notes": notes, "tokens": tokens,
            ]
            if let e = encoded {
                var counts = [String: Int]()
                for r in e.reasons { counts[r.rawValue, default: 0] += 1 }
                obj["reason_counts"] = counts
                obj["kept_length"] = e.keptLength
                obj["dropped"] = e.dropped
            }
            if let f = failure { obj["error"] = f }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("row \(i) of \(dataset.info.spec) [\(dataset.info.split)], label_masking \(pipe.policy.masking.rawValue)")
        for n in notes { print("note: \(n)") }
        for m in row.messages {
            let body: String
            switch m.content {
            case .text(let t): body = t
            case .parts(let p): body = p.map { if case .text(let t) = $0 { return t }; if case .image = $0 { return "<image>" }; return "" }.joined(separator: " ")
            }
            print("  \(m.role): \(body)")
        }
        for w in warnings { print("warning: \(w)") }
        if let f = failure { throw CLIError(f) }
        guard let e = encoded else { return }
        print("rendered text:\n\(e.text)")
        func pad(_ s: String, _ n: Int, left: Bool = true) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? fill + s : s + fill
        }
        print("\(pad("pos", 5)) \(pad("id", 8)) \(pad("label", 8)) \(pad("reason", 15, left: false)) text")
        var t = 0
        while t < e.inputIDs.count {
            // Runs of image soft tokens print as one line.
            var end = t + 1
            if e.inputIDs[t] == Int32(pipe.encoder.tokens.imageID) {
                while end < e.inputIDs.count && e.inputIDs[end] == e.inputIDs[t] && e.reasons[end] == e.reasons[t] { end += 1 }
            }
            let id = Int(e.inputIDs[t])
            let text = (end - t > 1 ? "\(tok.idToToken(id) ?? "") x\(end - t)" : tok.decode([id])).debugDescription
            print("\(pad(String(t), 5)) \(pad(String(id), 8)) \(pad(String(e.labels[t]), 8)) \(pad(e.reasons[t].rawValue, 15, left: false)) \(text)")
            t = end
        }
    }

    func dumpBatch(_ k: Int, size: Int, dataset: Dataset, pipe: CollatorPipeline, notes: [String]) throws {
        let lo = k * size, hi = min(lo + size, dataset.count)
        guard k >= 0, lo < dataset.count else { throw CLIError("batch \(k) is past the end (\(dataset.count) rows, batch size \(size))") }
        var samples = [TrainingSample]()
        var warnings = [DatasetWarning]()
        for i in lo..<hi {
            let row: DatasetRow
            do { row = try dataset.row(i) } catch { throw CLIError("\(error)") }
            let (s, w) = try Self.sample(row)
            samples.append(s); warnings += w
        }
        let b: CollatedBatch
        do { b = try pipe.collate(samples) } catch { throw CLIError("\(error)") }
        warnings += b.warnings
        if let dir = dump {
            let url = URL(fileURLWithPath: dir)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            var w = SafeTensorsWriter(metadata: ["format": "pt", "label_masking": pipe.policy.masking.rawValue,
                                                  "rows": b.rows.map(String.init).joined(separator: ",")])
            let shape = [b.batchSize, b.sequenceLength]
            try w.add("input_ids", int64s: b.inputIDs.map(Int64.init), shape: shape)
            try w.add("attention_mask", int64s: b.attentionMask.map(Int64.init), shape: shape)
            try w.add("token_type_ids", int64s: b.tokenTypeIDs.map(Int64.init), shape: shape)
            try w.add("labels", int64s: b.labels.map(Int64.init), shape: shape)
            try w.add("pixel_values", floats: b.pixelValues, shape: [b.imageCount, 3, b.imageHeight, b.imageWidth])
            try w.write(to: url.appendingPathComponent("batch.safetensors"))
        }
        var counts = [String: Int]()
        for (r, n) in b.reasonCounts { counts[r.rawValue] = n }
        if json {
            let obj: [String: Any] = ["batch": k, "rows": b.rows, "dropped_rows": b.droppedRows, "truncated_rows": b.truncatedRows,
                                      "input_ids": [b.batchSize, b.sequenceLength], "pixel_values": [b.imageCount, 3, b.imageHeight, b.imageWidth],
                                      "reason_counts": counts, "warnings": warnings.map(\.description), "notes": notes,
                                      "dump": dump.map { URL(fileURLWithPath: $0).appendingPathComponent("batch.safetensors").path } ?? NSNull()]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            print("batch \(k): rows \(b.rows.map(String.init).joined(separator: ",")); input_ids [\(b.batchSize), \(b.sequenceLength)], pixel_values [\(b.imageCount), 3, \(b.imageHeight), \(b.imageWidth)]")
            print("labels: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if !b.droppedRows.isEmpty { print("dropped (max_length would cut an image): rows \(b.droppedRows)") }
            for n in notes { print("note: \(n)") }
            for w in warnings { print("warning: \(w)") }
            if let d = dump { print("wrote \(URL(fileURLWithPath: d).appendingPathComponent("batch.safetensors").path)") }
        }
    }
}
