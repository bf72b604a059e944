import Datasets
import Foundation
import Tokenizers
import Training

/// Reads datasets for the Datasets and Inspector screens through module Datasets (parquet,
/// conversational JSON, MMIU; local or HF cache) and encodes rows with the model folder's
/// processor and the run's label policy (the collator's per-token reasons), exactly what the
/// trainer will see.
///
/// The dashboard calls it from its background lanes (opening on one, rows on another), so the
/// caches are lock-protected; opening itself runs outside the lock.
public final class DatasetAdapter: @unchecked Sendable {
    private let cacheLock = NSLock()
    private var open: [String: Dataset] = [:]
    /// Held while a row is encoded: the pipeline (tokenizer, processor) is built once and reused.
    private let encoderLock = NSLock()
    private var pipeline: CollatorPipeline?
    private var pipelineError: String?
    private var pipelineFor: String?
    public init() {}

    func key(_ spec: String, _ split: String?) -> String { spec + "|" + (split ?? "") }

    /// The dataset of `spec` (cached). `progress` sees MMIU image archives unpacked by a first open;
    /// nil keeps that silent (never the process-wide default, which writes to the terminal ncurses owns).
    func dataset(_ spec: String, split: String?, progress: ZipExtractionProgressHandler? = nil,
                 cancellation: CancellationFlag? = nil) throws -> Dataset {
        cacheLock.lock()
        let cached = open[key(spec, split)]
        cacheLock.unlock()
        if let cached { return cached }
        var options = DatasetOpenOptions()
        options.extractionProgress = progress
        options.extractionCancellation = cancellation
        let d = try Dataset.open(spec, split: split, options: options)
        cacheLock.lock()
        open[key(spec, split)] = d
        open[key(spec, d.info.split)] = d
        cacheLock.unlock()
        return d
    }

    /// Drops the cached splits of `spec`, so the next open reads the files again (a rescan).
    public func forget(_ spec: String) {
        cacheLock.lock()
        open = open.filter { !$0.key.hasPrefix(spec + "|") }
        cacheLock.unlock()
    }

    static func layoutName(_ k: DatasetLayoutKind) -> String {
        switch k {
        case .parquet: return "parquet conversations"
        case .conversationalJSON: return "JSONL conversations"
        case .mmiu: return "MMIU"
        }
    }

    /// Opens each split to count its rows; an unreadable dataset is listed with its error line.
    public func summary(_ spec: String, source: String, progress: ZipExtractionProgressHandler? = nil,
                        cancellation: CancellationFlag? = nil) -> DatasetSummary {
        do {
            let d = try dataset(spec, split: nil, progress: progress, cancellation: cancellation)
            var splits: [DatasetSummary.Split] = []
            for s in d.info.availableSplits {
                let rows = (try? dataset(spec, split: s, progress: progress, cancellation: cancellation).count) ?? 0
                splits.append(.init(name: s, rows: rows))
            }
            if splits.isEmpty { splits = [.init(name: d.info.split, rows: d.count)] }
            var schema = d.info.fields
            if let hub = d.info.hub { schema.append("(hub \(hub.repoID)@\(hub.revision.prefix(8)))") }
            schema += d.info.notes.map { "note: \($0)" }
            return DatasetSummary(name: (spec as NSString).lastPathComponent, path: d.info.root.path, layout: Self.layoutName(d.info.kind),
                                  source: source, splits: splits, schema: schema)
        } catch {
            return DatasetSummary(name: (spec as NSString).lastPathComponent, path: spec, layout: "?", source: source, splits: [], schema: [],
                                  error: "\(error)")
        }
    }

    /// Datasets found in the Hugging Face cache (`datasets--OWNER--NAME`), as hub ids.
    public static func hubDatasetIDs() -> [String] {
        var out: [String] = []
        for root in HubCache.cacheRoots() {
            for n in ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).sorted() where n.hasPrefix("datasets--") {
                let parts = n.dropFirst(10).components(separatedBy: "--")
                if parts.count == 2 { out.append(parts.joined(separator: "/")) }
            }
        }
        return out
    }

    /// Call with `encoderLock` held.
    func encoder(for config: SFTConfig?) -> (CollatorPipeline?, String?) {
        guard let config, let model = config.modelNameOrPath else { return (nil, "No tokens: the config has no model_name_or_path (its tokenizer and chat template encode the rows).") }
        if pipelineFor == model { return (pipeline, pipelineError) }
        pipelineFor = model
        do {
            let dir = try RunSetup.resolveModelDir(model)
            let masking = Datasets.LabelMasking(rawValue: config.labelMasking.rawValue) ?? .vision
            let policy = LabelPolicy(masking: masking, assistantOnlyLoss: config.assistantOnlyLoss,
                                     completionOnlyLoss: config.completionOnlyLoss ?? true, maxLength: config.maxLength)
            var template: String? = nil
            if let p = config.chatTemplatePath { template = try? String(contentsOfFile: p, encoding: .utf8) }
            pipeline = try CollatorPipeline(modelDirectory: dir, policy: policy, chatTemplate: template)
            pipelineError = nil
        } catch {
            pipeline = nil
            pipelineError = "No tokens: \(error)"
        }
        return (pipeline, pipelineError)
    }

    static func kind(_ r: LabelReason) -> TokenKind {
        switch r {
        case .pad: return .pad
        case .image: return .image
        case .imageBoundary: return .imageBoundary
        case .prompt: return .prompt
        case .system: return .system
        case .truncated: return .truncated
        case .trained: return .trained
        }
    }

    static func text(of m: ChatMessage) -> String {
        switch m.content {
        case .text(let t): return t
        case .parts(let parts):
            return parts.map { p -> String in
                switch p { case .text(let t): return t; case .image: return "[image]"; case .other(let type): return "[\(type)]" }
            }.joined()
        }
    }

    public func row(spec: String, split: String, index: Int, config: SFTConfig?) throws -> InspectedRow {
        let d = try dataset(spec, split: split)
        let row = try d.row(index)
        // Thumbnails: an image that cannot be read or decoded is named in the row's note, never dropped silently.
        var imageProblems: [String] = []
        let numbered: [(Int, Data)] = row.images.enumerated().compactMap { k, ref in
            switch ref {
            case .bytes(let b): return (k, b)
            case .file(let u):
                do { return (k, try Data(contentsOf: u)) } catch { imageProblems.append("image \(k + 1): cannot read \(u.path)"); return nil }
            }
        }
        let imageData = numbered.map(\.1)
        var images: [PixelImage] = []
        for (k, data) in numbered {
            do {
                let img = try ImageDecoder.decodeRGB(data)
                images.append(PixelImage(width: img.width, height: img.height, rgb: img.pixels))
            } catch { imageProblems.append("image \(k + 1): \(error)") }
        }
        let all = row.messages + (row.completion ?? [])
        let messages = all.map { RenderedMessage(role: $0.role, text: Self.text(of: $0), imageCount: $0.imageCount) }
        var tokens: [TokenCell] = []
        var rendered: String? = nil
        var note: String? = row.missingImages.isEmpty ? nil : "missing images: \(row.missingImages.joined(separator: ", "))"
        encoderLock.lock(); defer { encoderLock.unlock() }
        let (pipeline, err) = encoder(for: config)
        if let pipeline {
            do {
                let enc = try pipeline.encode(TrainingSample(row: index, messages: row.messages, completion: row.completion, images: imageData))
                rendered = enc.text
                for (i, id) in enc.inputIDs.enumerated() {
                    let k = Self.kind(enc.reasons[i])
                    if let last = tokens.last, last.id == Int(id), last.kind == k, k == .image { tokens[tokens.count - 1].count += 1; continue }
                    tokens.append(TokenCell(text: pipeline.tokenizer.decode([Int(id)]), id: Int(id), kind: k))
                }
                if !enc.warnings.isEmpty { note = enc.warnings.map(\.description).joined(separator: "; ") }
            } catch {
                note = "cannot encode row \(index): \(error)"
            }
        } else {
            note = err
        }
        if !imageProblems.isEmpty { note = (imageProblems + [note].compactMap { $0 }).joined(separator: "; ") }
        return InspectedRow(index: index, rowCount: d.count, messages: messages, renderedText: rendered, images: images, tokens: tokens, tokenNote: note)
    }
}
