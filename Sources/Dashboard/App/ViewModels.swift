import Datasets
import Foundation
import Training

/// A dataset to list, found without opening it: the spec it opens from (a folder, a file or a hub
/// id), the name shown, and where it was found.
public struct DatasetEntry: Sendable, Equatable, Hashable {
    public var spec: String
    public var name: String
    /// "config", "recent" or "hf cache".
    public var source: String
    public init(spec: String, name: String? = nil, source: String) {
        self.spec = spec; self.name = name ?? (spec as NSString).lastPathComponent; self.source = source
    }
}

/// A dataset as the Datasets screen lists it (built by an adapter over the dataset readers).
public struct DatasetSummary: Sendable, Equatable {
    public struct Split: Sendable, Equatable {
        public var name: String, rows: Int
        public init(name: String, rows: Int) { self.name = name; self.rows = rows }
    }
    public var name: String
    public var path: String
    /// "parquet conversations", "MMIU", "JSONL", ...
    public var layout: String
    /// "config", "recent" or "hf cache": where it was found.
    public var source: String
    public var splits: [Split]
    /// "column: type" lines.
    public var schema: [String]
    /// Set when the dataset could not be read: shown instead of the details.
    public var error: String?
    /// The spec it was opened from (rows are read through it); nil: `path`.
    public var spec: String?
    public init(name: String, path: String, layout: String, source: String, splits: [Split], schema: [String], error: String? = nil,
                spec: String? = nil) {
        self.name = name; self.path = path; self.layout = layout; self.source = source
        self.splits = splits; self.schema = schema; self.error = error; self.spec = spec
    }
}

/// One message of a conversation as the model sees it.
public struct RenderedMessage: Sendable, Equatable {
    public var role: String
    public var text: String
    public var imageCount: Int
    public init(role: String, text: String, imageCount: Int = 0) { self.role = role; self.text = text; self.imageCount = imageCount }
}

/// Everything the Inspector shows for one row.
public struct InspectedRow: Sendable, Equatable {
    public var index: Int
    public var rowCount: Int
    public var messages: [RenderedMessage]
    /// The chat template's output (what the tokenizer reads), when available.
    public var renderedText: String?
    public var images: [PixelImage]
    public var tokens: [TokenCell]
    /// Why there are no tokens (no model folder, no tokenizer), or notes from encoding (warnings).
    public var tokenNote: String?
    public init(index: Int, rowCount: Int, messages: [RenderedMessage], renderedText: String? = nil, images: [PixelImage] = [],
                tokens: [TokenCell] = [], tokenNote: String? = nil) {
        self.index = index; self.rowCount = rowCount; self.messages = messages; self.renderedText = renderedText
        self.images = images; self.tokens = tokens; self.tokenNote = tokenNote
    }
}

/// A config field as the Config screen edits it.
public struct EditableField: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case int, float, bool, string, choice([String]), list
    }
    public var key: String
    public var value: String
    public var kind: Kind
    public var help: String
    /// True when the YAML file sets it (saved back); false for defaults shown for reference.
    public var isSet: Bool
    public init(key: String, value: String, kind: Kind, help: String = "", isSet: Bool = false) {
        self.key = key; self.value = value; self.kind = kind; self.help = help; self.isSet = isSet
    }

    /// Nil when `text` is a valid value for this field, else what is wrong with it.
    public func validate(_ text: String) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .int: return Int(t) == nil ? "\(key) needs a whole number, got '\(t)'" : nil
        case .float: return Double(t) == nil ? "\(key) needs a number, got '\(t)'" : nil
        case .bool: return ["true", "false"].contains(t.lowercased()) ? nil : "\(key) needs true or false, got '\(t)'"
        case .choice(let cs):
            if cs.contains(t) { return nil }
            let hint = NearestKey.suggest(t, among: cs).map { " (did you mean '\($0)'?)" } ?? ""
            return "\(key) must be one of \(cs.joined(separator: ", "))\(hint)"
        case .string, .list: return nil
        }
    }
}

public struct FieldGroup: Sendable, Equatable {
    public var name: String
    public var fields: [EditableField]
    public init(name: String, fields: [EditableField]) { self.name = name; self.fields = fields }
}

/// The run's YAML as grouped, editable fields.
public struct ConfigDocument: Sendable, Equatable {
    public var path: String?
    public var groups: [FieldGroup]
    public init(path: String?, groups: [FieldGroup]) { self.path = path; self.groups = groups }
    public var allKeys: [String] { groups.flatMap { $0.fields.map(\.key) } }
    public subscript(key: String) -> EditableField? {
        for g in groups { if let f = g.fields.first(where: { $0.key == key }) { return f } }
        return nil
    }
    public mutating func set(_ key: String, _ value: String) {
        for gi in groups.indices {
            if let fi = groups[gi].fields.firstIndex(where: { $0.key == key }) {
                groups[gi].fields[fi].value = value; groups[gi].fields[fi].isSet = true
            }
        }
    }

    /// The set fields as TRL-style flat YAML (`key: value`), grouped with comments.
    public func yaml() -> String {
        var out = "# Written by SFTDeck; the keys are TRL's, so `trl sft --config` reads this file too.\n"
        for g in groups {
            let set = g.fields.filter(\.isSet)
            guard !set.isEmpty else { continue }
            out += "\n# \(g.name)\n"
            for f in set { out += "\(f.key): \(Self.yamlScalar(f))\n" }
        }
        return out
    }
    static func yamlScalar(_ f: EditableField) -> String {
        let v = f.value
        switch f.kind {
        case .int, .float, .bool: return v
        case .list: return v.hasPrefix("[") ? v : "[\(v)]"
        case .string, .choice:
            let plain = !v.isEmpty && v.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) }
                && !["true", "false", "null", "yes", "no", "~"].contains(v.lowercased()) && Double(v) == nil
            return plain ? v : "\"" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
    }
}

/// A past (or running) run found on disk.
public struct RunSummary: Sendable, Equatable {
    public var name: String
    public var path: String
    /// "trainer_state.json" or "tfevents".
    public var source: String
    public var globalStep: Int
    public var maxSteps: Int
    /// tag → (step, value), e.g. "loss", "learning_rate", "grad_norm" (TensorBoard's "train/loss" is
    /// stored without its "train/" prefix).
    public var scalars: [String: [Point]]
    public struct Point: Sendable, Equatable { public var step: Double, value: Double
        public init(step: Double, value: Double) { self.step = step; self.value = value } }
    public init(name: String, path: String, source: String, globalStep: Int, maxSteps: Int, scalars: [String: [Point]]) {
        self.name = name; self.path = path; self.source = source; self.globalStep = globalStep
        self.maxSteps = maxSteps; self.scalars = scalars
    }
    public var lastLoss: Double? { scalars["loss"]?.last?.value }
}

/// Where the dashboard gets its data and starts runs. The command line supplies the real one
/// (dataset readers, tokenizer, trainer); tests supply fakes.
///
/// `datasetEntries`, `openDataset` and `loadRow` are called on the app's background lanes (see
/// `WorkLane`), the rest on the UI thread, so an implementation guards what they share.
public protocol DashboardDataSource: AnyObject {
    /// The datasets to list, found without opening them (cheap: names and paths only).
    func datasetEntries() -> [DatasetEntry]
    /// Opens one dataset and summarises it: slow on first open of an MMIU folder, whose image zips
    /// are unpacked then, reporting to `progress` and stopping when `cancellation` is set (the summary
    /// then carries the error line that says so). An unreadable dataset comes back with its error line.
    func openDataset(_ entry: DatasetEntry, progress: @escaping ZipExtractionProgressHandler, cancellation: CancellationFlag) -> DatasetSummary
    func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow
    func loadConfig() -> ConfigDocument?
    /// Writes the config; returns the path written.
    func saveConfig(_ doc: ConfigDocument) throws -> String
    /// Starts training on a background queue with `observer` attached before the first event, and
    /// returns its control handle.
    func startRun(_ doc: ConfigDocument?, observer: EngineObserver) throws -> EngineControl
    func listRuns() -> [RunSummary]
    /// Nil when the document with `key` set to `value` is a valid config, else why not.
    func validateEdit(_ doc: ConfigDocument, key: String, value: String) -> String?
}

extension DashboardDataSource {
    /// Every dataset opened in turn, on the calling thread (tests and tools; the app opens them in the background).
    public func listDatasets() -> [DatasetSummary] { datasetEntries().map { openDataset($0, progress: { _ in }, cancellation: CancellationFlag()) } }
    public func validateEdit(_ doc: ConfigDocument, key: String, value: String) -> String? { nil }
}

/// An error shown to the user as one line.
public struct DashboardError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public init(_ d: String) { description = d }
    public var errorDescription: String? { description }
}
