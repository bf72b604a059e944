import Foundation
import Tokenizers

/// Which on-disk layout a dataset was read from.
public enum DatasetLayoutKind: String, Sendable, Codable {
    /// `data/<split>-*.parquet` shards, `<split>/*.parquet`, a dataset card's `configs:`, or one parquet file.
    case parquet
    /// TRL conversational JSON / JSONL (`messages` + `images` paths relative to the file).
    case conversationalJSON = "conversational-json"
    /// MMIU-Benchmark: `all.parquet` / `all.json` + one zip of images per category.
    case mmiu
}

/// What the dataset browser shows about a dataset.
public struct DatasetInfo: Sendable {
    public var kind: DatasetLayoutKind
    /// The spec it was opened from (a path or `OWNER/NAME`).
    public var spec: String
    /// Set when the dataset came from the Hugging Face cache.
    public var hub: HubCache.Resolved?
    public var root: URL
    public var split: String
    public var availableSplits: [String]
    public var files: [URL]
    /// `name: type` per top-level field (parquet schema, or the fields of the first JSON record).
    public var fields: [String]
    public var rowCount: Int
    /// MMIU: where the zips were extracted, and how many files they held.
    public var imageFolder: URL?
    public var notes: [String]
}

/// Options for `Dataset.open`.
public struct DatasetOpenOptions: Sendable {
    public var environment: [String: String]
    /// MMIU: where zips are extracted (default: next to the data, or ~/.cache/sftdeck/mmiu).
    public var extractionRoot: URL?
    public var maxExtractedBytes: UInt64
    /// MMIU: called while image archives are extracted (first open only). Defaults to
    /// `DatasetOpenOptions.defaultExtractionProgress`, which front ends set once (the headless CLI
    /// prints a progress line with an ETA), so code that opens datasets deep inside needs no plumbing.
    public var extractionProgress: ZipExtractionProgressHandler?
    /// MMIU: set it to stop an extraction in progress (the dashboard's `x`); the open then fails with a
    /// line saying so, and the next open resumes from the files already unpacked.
    public var extractionCancellation: CancellationFlag?
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, extractionRoot: URL? = nil,
                maxExtractedBytes: UInt64 = ZipExtractor.defaultMaxTotalBytes) {
        self.environment = environment
        self.extractionRoot = extractionRoot
        self.maxExtractedBytes = maxExtractedBytes
        self.extractionProgress = DatasetOpenOptions.defaultExtractionProgress
        self.extractionCancellation = DatasetOpenOptions.defaultExtractionCancellation
    }

    private static let defaultProgressLock = NSLock()
    nonisolated(unsafe) private static var _defaultExtractionProgress: ZipExtractionProgressHandler?
    /// The progress handler new options get (process-wide; nil: silent).
    public static var defaultExtractionProgress: ZipExtractionProgressHandler? {
        get { defaultProgressLock.lock(); defer { defaultProgressLock.unlock() }; return _defaultExtractionProgress }
        set { defaultProgressLock.lock(); _defaultExtractionProgress = newValue; defaultProgressLock.unlock() }
    }
    nonisolated(unsafe) private static var _defaultExtractionCancellation: CancellationFlag?
    /// The cancellation flag new options get (process-wide, like the progress handler: the headless runner
    /// sets it on Ctrl-C so an extraction deep inside a run's data loading stops at once).
    public static var defaultExtractionCancellation: CancellationFlag? {
        get { defaultProgressLock.lock(); defer { defaultProgressLock.unlock() }; return _defaultExtractionCancellation }
        set { defaultProgressLock.lock(); _defaultExtractionCancellation = newValue; defaultProgressLock.unlock() }
    }
}

/// Rows whose images could not be found: counted over the whole split, with the first examples.
public struct MissingImageReport: Sendable, Equatable {
    public struct Example: Sendable, Equatable { public var row: Int; public var reference: String }
    public var rowsScanned: Int
    public var rowsWithMissingImages: Int
    public var missingImages: Int
    public var examples: [Example]
    public var summary: String {
        if missingImages == 0 { return "all images of \(rowsScanned) rows found" }
        let ex = examples.map { "row \($0.row): \($0.reference)" }.joined(separator: "; ")
        return "\(missingImages) images missing in \(rowsWithMissingImages) of \(rowsScanned) rows (first: \(ex))"
    }
}

/// Raw rows of one split, from any storage.
protocol RowStore: AnyObject {
    var count: Int { get }
    func raw(_ i: Int, fields: [String]?) throws -> RowValue
    var fieldDescriptions: [String] { get }
    func source(of i: Int) -> String
}

/// Parquet shards read as one sequence of rows (each shard opened lazily on first use, row counts
/// from the footers).
final class ParquetShardStore: RowStore {
    let files: [ParquetFile]
    let starts: [Int]
    init(urls: [URL]) throws {
        files = try urls.map { try ParquetFile(url: $0) }
        var s = [0]
        for f in files { s.append(s[s.count - 1] + f.rowCount) }
        starts = s
        if files.count > 1 {
            let first = files[0].schema.fieldDescriptions
            for f in files.dropFirst() where f.schema.fieldDescriptions != first {
                throw DatasetError(source: f.url.path, "schema differs from \(files[0].url.lastPathComponent): \(f.schema.fieldDescriptions.joined(separator: ", "))")
            }
        }
    }
    var count: Int { starts[starts.count - 1] }
    var fieldDescriptions: [String] { files.first?.schema.fieldDescriptions ?? [] }
    private func locate(_ i: Int) -> (Int, Int) {
        var lo = 0, hi = starts.count - 1   // binary search: starts[lo] <= i < starts[hi]
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if starts[mid] <= i { lo = mid } else { hi = mid }
        }
        return (lo, i - starts[lo])
    }
    /// The shard read last: only it keeps decoded pages, so memory stays at one shard's page cache
    /// however many shards a shuffled pass visits.
    private var lastShard = -1
    func raw(_ i: Int, fields: [String]?) throws -> RowValue {
        let (k, r) = locate(i)
        if k != lastShard {
            if lastShard >= 0 { files[lastShard].releaseCache() }
            lastShard = k
        }
        return try files[k].row(r, fields: fields)
    }
    func source(of i: Int) -> String { files[locate(i).0].url.path }
}

/// JSON / JSONL records held in memory.
final class JSONRowStore: RowStore {
    let url: URL
    let rows: [RowValue]
    init(url: URL) throws {
        self.url = url
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DatasetError(source: url.path, "cannot be read: \(error.localizedDescription)") }
        let decoder = JSONDecoder()
        if url.pathExtension.lowercased() == "jsonl" {
            var out: [RowValue] = []
            var lineNumber = 0
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lineNumber += 1
                if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
                do { out.append(try decoder.decode(RowValue.self, from: Data(line))) } catch {
                    throw DatasetError(source: url.path, "line \(lineNumber) is not valid JSON")
                }
            }
            rows = out
        } else {
            let doc: RowValue
            do { doc = try decoder.decode(RowValue.self, from: data) } catch {
                throw DatasetError(source: url.path, "is not valid JSON")
            }
            guard let list = doc.list else { throw DatasetError(source: url.path, "must hold a JSON list of records") }
            rows = list
        }
        for (i, r) in rows.enumerated() where r.fields == nil {
            throw DatasetError(source: url.path, "record \(i) is not a JSON object")
        }
    }
    var count: Int { rows.count }
    var fieldDescriptions: [String] {
        (rows.first?.fields ?? []).map { f in
            let t: String
            switch f.value {
            case .string: t = "string"; case .int: t = "int64"; case .double: t = "double"; case .bool: t = "bool"
            case .list: t = "list"; case .record: t = "struct"; case .bytes: t = "binary"; case .null: t = "null"
            }
            return "\(f.name): \(t)"
        }
    }
    func raw(_ i: Int, fields: [String]?) throws -> RowValue {
        guard i >= 0, i < rows.count else { throw DatasetError(source: url.path, "row \(i) out of range (\(rows.count) rows)") }
        guard let fields, case .record(let fs) = rows[i] else { return rows[i] }
        return .record(fs.filter { fields.contains($0.name) })
    }
    func source(of i: Int) -> String { url.path }
}

/// A dataset split: the uniform API over every layout. `count` and `row(i)` (formatted conversation
/// + image references + raw record). Thread-safe (a lock around the lazily decoding readers).
public final class Dataset: @unchecked Sendable {
    public let info: DatasetInfo
    let store: RowStore
    let formatter: RowFormatter
    private let lock = NSLock()

    init(info: DatasetInfo, store: RowStore, formatter: RowFormatter) {
        self.info = info
        self.store = store
        self.formatter = formatter
    }

    public var count: Int { info.rowCount }

    /// Row `i` formatted as a conversation, with its images (unresolvable ones listed in `missingImages`).
    public func row(_ i: Int) throws -> DatasetRow {
        guard i >= 0, i < count else { throw DatasetError(source: info.spec, "row \(i) out of range (\(count) rows in split \(info.split))") }
        lock.lock(); defer { lock.unlock() }
        let raw = try store.raw(i, fields: nil)
        return try formatter.format(raw, index: i, source: store.source(of: i))
    }

    /// The stored record of row `i`.
    public func rawRow(_ i: Int) throws -> RowValue {
        guard i >= 0, i < count else { throw DatasetError(source: info.spec, "row \(i) out of range (\(count) rows in split \(info.split))") }
        lock.lock(); defer { lock.unlock() }
        return try store.raw(i, fields: nil)
    }

    /// Scans the image references of `rows` (default: all) and counts the ones that cannot be found.
    /// Reads only the image column of parquet files.
    public func missingImageReport(rows: Range<Int>? = nil, maxExamples: Int = 5) throws -> MissingImageReport {
        let range = rows ?? 0..<count
        let column: String
        switch formatter {
        case .messages: column = info.fields.contains { $0.hasPrefix("images:") } || !info.fields.contains { $0.hasPrefix("image:") } ? "images" : "image"
        case .mmiu: column = "input_image_path"
        }
        var report = MissingImageReport(rowsScanned: 0, rowsWithMissingImages: 0, missingImages: 0, examples: [])
        lock.lock(); defer { lock.unlock() }
        let hasColumn = info.fields.contains { $0.hasPrefix(column + ":") }
        for i in range {
            report.rowsScanned += 1
            guard hasColumn else { continue }
            let raw = try store.raw(i, fields: [column])
            let missing = formatter.imageReferences(raw, source: store.source(of: i)).filter { $0.1 == nil }
            if missing.isEmpty { continue }
            report.rowsWithMissingImages += 1
            report.missingImages += missing.count
            for m in missing where report.examples.count < maxExamples { report.examples.append(.init(row: i, reference: m.0)) }
        }
        return report
    }

    // MARK: opening

    /// Opens a dataset: a folder (parquet shards, `<split>/` folders, a dataset card's `configs:`,
    /// MMIU), a single `.parquet` / `.json` / `.jsonl` file, or a Hub id (`OWNER/NAME[@rev]`) found in
    /// the local Hugging Face cache. `split` nil picks `train` when present, else the first split.
    public static func open(_ spec: String, split: String? = nil, options: DatasetOpenOptions = DatasetOpenOptions()) throws -> Dataset {
        let fm = FileManager.default
        let expanded = spec.hasPrefix("~/") ? fm.homeDirectoryForCurrentUser.path + spec.dropFirst(1) : spec
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: expanded, isDirectory: &isDir) {
            let url = URL(fileURLWithPath: expanded)
            return isDir.boolValue ? try openFolder(url, spec: spec, split: split, hub: nil, options: options)
                                   : try openFile(url, spec: spec, split: split, options: options)
        }
        if HubCache.looksLikeRepoID(spec) {
            let resolved = try HubCache.resolve(spec, environment: options.environment)
            return try openFolder(resolved.snapshot, spec: spec, split: split, hub: resolved, options: options)
        }
        throw DatasetError(source: spec, "no such file or folder, and not a Hub id of the form OWNER/NAME")
    }

    private static func openFile(_ url: URL, spec: String, split: String?, options: DatasetOpenOptions) throws -> Dataset {
        let ext = url.pathExtension.lowercased()
        let base = url.deletingLastPathComponent()
        let splitName = split ?? splitName(fromFile: url.lastPathComponent) ?? "train"
        switch ext {
        case "parquet":
            if url.lastPathComponent == "all.parquet", !MMIU.zips(in: base).isEmpty {
                return try openFolder(base, spec: spec, split: split, hub: nil, options: options)
            }
            let store = try ParquetShardStore(urls: [url])
            return make(.parquet, spec: spec, hub: nil, root: base, split: splitName, splits: [splitName], files: [url], store: store,
                        formatter: .messages(baseDirectory: base))
        case "json", "jsonl":
            let store = try JSONRowStore(url: url)
            if let first = store.rows.first, MMIU.isMMIURecord(first) {
                return try openMMIU(folder: base, records: url, spec: spec, split: split, hub: nil, options: options)
            }
            return make(.conversationalJSON, spec: spec, hub: nil, root: base, split: splitName, splits: [splitName], files: [url],
                        store: store, formatter: .messages(baseDirectory: base))
        default:
            throw DatasetError(source: url.path, "unknown dataset file type '.\(ext)' (expected .parquet, .json or .jsonl)")
        }
    }

    private static func openFolder(_ folder: URL, spec: String, split: String?, hub: HubCache.Resolved?, options: DatasetOpenOptions) throws -> Dataset {
        if let records = MMIU.recordsFile(in: folder) {
            return try openMMIU(folder: folder, records: records, spec: spec, split: split, hub: hub, options: options)
        }
        let splits = try parquetSplits(in: folder)
        if !splits.isEmpty {
            let names = splits.map(\.0)
            let chosen = try choose(split, from: names, in: folder)
            let urls = splits.first { $0.0 == chosen }!.1
            let store = try ParquetShardStore(urls: urls)
            return make(.parquet, spec: spec, hub: hub, root: folder, split: chosen, splits: names, files: urls, store: store,
                        formatter: .messages(baseDirectory: folder))
        }
        // Conversational JSON files named after their split: train.jsonl, test.json, ...
        let jsons = (try? fm.contentsOfDirectory(atPath: folder.path))?.filter { ["json", "jsonl"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted() ?? []
        if !jsons.isEmpty {
            let names = jsons.map { ($0 as NSString).deletingPathExtension }
            let chosen = try choose(split, from: Array(Set(names)).sorted(), in: folder)
            let file = folder.appendingPathComponent(jsons[names.firstIndex(of: chosen)!])
            return try openFile(file, spec: spec, split: chosen, options: options)
        }
        let what = hub != nil ? "this cache snapshot holds no parquet, JSON or MMIU files (incomplete download?)" : "holds no parquet shards, JSON/JSONL files or MMIU records"
        throw DatasetError(source: folder.path, what)
    }
    private static var fm: FileManager { FileManager.default }

    private static func openMMIU(folder: URL, records: URL, spec: String, split: String?, hub: HubCache.Resolved?,
                                 options: DatasetOpenOptions) throws -> Dataset {
        if let split, split != MMIU.split {
            throw DatasetError(source: folder.path, "MMIU has only the split '\(MMIU.split)', not '\(split)'")
        }
        let cacheName = hub.map { $0.repoID.replacingOccurrences(of: "/", with: "--") + "/" + $0.revision }
            ?? folder.standardizedFileURL.path.replacingOccurrences(of: "/", with: "_")
        let root = options.extractionRoot ?? MMIU.defaultExtractionRoot(for: folder, cacheName: cacheName, environment: options.environment)
        let summaries = try MMIU.extractArchives(in: folder, root: root, maxTotalBytes: options.maxExtractedBytes,
                                                 progress: options.extractionProgress, cancellation: options.extractionCancellation)
        let store: RowStore = records.pathExtension.lowercased() == "parquet" ? try ParquetShardStore(urls: [records]) : try JSONRowStore(url: records)
        var notes: [String] = []
        let zips = MMIU.zips(in: folder)
        if zips.isEmpty { notes.append("no image zips beside \(records.lastPathComponent); images resolve against \(folder.path)") }
        else {
            let files = summaries.reduce(0) { $0 + $1.files }
            notes.append("\(zips.count) image archives in \(root.path)" + (summaries.contains { $0.extractedNow } ? " (extracted now, \(files) files)" : ""))
        }
        var info = DatasetInfo(kind: .mmiu, spec: spec, hub: hub, root: folder, split: MMIU.split, availableSplits: [MMIU.split],
                               files: [records] + zips, fields: store.fieldDescriptions, rowCount: store.count,
                               imageFolder: zips.isEmpty ? nil : root, notes: notes)
        let missingFields = MMIU.recordFields.filter { f in !info.fields.contains { $0.hasPrefix(f + ":") } }
        for f in missingFields where ["question", "context", "output", "input_image_path"].contains(f) {
            throw DatasetError(source: records.path, "MMIU records lack the field '\(f)'")
        }
        if !missingFields.isEmpty { info.notes.append("fields absent: \(missingFields.joined(separator: ", "))") }
        return Dataset(info: info, store: store, formatter: .mmiu(imageRoots: [root, folder]))
    }

    private static func make(_ kind: DatasetLayoutKind, spec: String, hub: HubCache.Resolved?, root: URL, split: String, splits: [String],
                             files: [URL], store: RowStore, formatter: RowFormatter) -> Dataset {
        Dataset(info: DatasetInfo(kind: kind, spec: spec, hub: hub, root: root, split: split, availableSplits: splits, files: files,
                                  fields: store.fieldDescriptions, rowCount: store.count, imageFolder: nil, notes: []),
                store: store, formatter: formatter)
    }

    private static func choose(_ split: String?, from names: [String], in folder: URL) throws -> String {
        if let split {
            guard names.contains(split) else {
                throw DatasetError(source: folder.path, "has no split '\(split)' (splits: \(names.joined(separator: ", ")))")
            }
            return split
        }
        return names.contains("train") ? "train" : names[0]
    }

    /// `train-00000-of-00002.parquet` → `train`; `test.parquet` → `test`.
    static func splitName(fromFile name: String) -> String? {
        let stem = (name as NSString).deletingPathExtension
        guard !stem.isEmpty else { return nil }
        if let r = stem.range(of: #"-\d+-of-\d+$"#, options: .regularExpression) { return String(stem[..<r.lowerBound]) }
        if let dash = stem.firstIndex(of: "-") { return String(stem[..<dash]) }
        return stem
    }

    /// Splits of a parquet folder, each with its shard files in order: the dataset card's `configs:`
    /// when present, else `data/<split>-*.parquet`, else `<split>/*.parquet`, else `*.parquet` at the top.
    static func parquetSplits(in folder: URL) throws -> [(String, [URL])] {
        let files = allFiles(under: folder)
        let parquet = files.filter { $0.hasSuffix(".parquet") }
        if parquet.isEmpty { return [] }
        let card = folder.appendingPathComponent("README.md")
        if let text = try? String(contentsOf: card, encoding: .utf8), let mapping = DatasetCard.dataFiles(fromCard: text), !mapping.isEmpty {
            var out: [(String, [URL])] = []
            for (split, patterns) in mapping {
                let matched = parquet.filter { f in patterns.contains { DatasetCard.glob($0, matches: f) } }.sorted()
                if !matched.isEmpty { out.append((split, matched.map { folder.appendingPathComponent($0) })) }
            }
            if !out.isEmpty { return out }
        }
        var groups: [String: [String]] = [:]
        let inData = parquet.filter { $0.hasPrefix("data/") && !$0.dropFirst(5).contains("/") }
        if !inData.isEmpty {
            for f in inData { groups[splitName(fromFile: String(f.dropFirst(5))) ?? "train", default: []].append(f) }
        } else {
            for f in parquet {
                let parts = f.split(separator: "/")
                if parts.count >= 2 { groups[String(parts[parts.count - 2]), default: []].append(f) }
                else { groups[splitName(fromFile: f) ?? "train", default: []].append(f) }
            }
        }
        return groups.keys.sorted().map { k in (k, groups[k]!.sorted().map { folder.appendingPathComponent($0) }) }
    }

    /// Relative paths of regular files (following links, as Hub snapshots are links to blobs), skipping hidden folders.
    static func allFiles(under folder: URL) -> [String] {
        var out: [String] = []
        func walk(_ dir: URL, _ prefix: String, depth: Int) {
            guard depth < 6, let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
            for n in names.sorted() where !n.hasPrefix(".") {
                let u = dir.appendingPathComponent(n)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir) else { continue }
                if isDir.boolValue { walk(u, prefix + n + "/", depth: depth + 1) } else { out.append(prefix + n) }
            }
        }
        walk(folder, "", depth: 0)
        return out
    }
}

/// The `configs:` block of a dataset card's YAML front matter (only the subset the Hub writes).
enum DatasetCard {
    /// split → file patterns of the `default` config (or the first one).
    static func dataFiles(fromCard text: String) -> [(String, [String])]? {
        let lines = text.components(separatedBy: "\n")
        guard lines.first?.trimmingCharacters(in: .whitespaces) == "---",
              let end = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" }) else { return nil }
        let yaml = Array(lines[1..<end])
        guard let start = yaml.firstIndex(where: { $0.hasPrefix("configs:") }) else { return nil }
        var configs: [(name: String, files: [(String, [String])])] = []
        var currentSplit: String? = nil
        var inPathList = false
        func unquote(_ s: Substring) -> String {
            var t = s.trimmingCharacters(in: .whitespaces)
            if t.count >= 2, let f = t.first, f == t.last, f == "\"" || f == "'" { t = String(t.dropFirst().dropLast()) }
            return t
        }
        for raw in yaml[(start + 1)...] {
            if !raw.hasPrefix(" ") && !raw.hasPrefix("-") && !raw.isEmpty { break }   // next top-level key
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("- config_name:") {
                configs.append((unquote(line.dropFirst("- config_name:".count)), []))
                currentSplit = nil; inPathList = false
            } else if line.hasPrefix("- split:") || line.hasPrefix("split:") {
                currentSplit = unquote(line[line.index(after: line.firstIndex(of: ":")!)...])
                inPathList = false
            } else if line.hasPrefix("path:"), let split = currentSplit, !configs.isEmpty {
                let value = unquote(line.dropFirst(5))
                if value.isEmpty { inPathList = true; configs[configs.count - 1].files.append((split, [])) }
                else if value.hasPrefix("[") {
                    let items = value.dropFirst().dropLast().split(separator: ",").map { unquote($0) }
                    configs[configs.count - 1].files.append((split, items))
                } else { configs[configs.count - 1].files.append((split, [value])) }
            } else if inPathList, line.hasPrefix("- "), !configs.isEmpty, !configs[configs.count - 1].files.isEmpty {
                let k = configs[configs.count - 1].files.count - 1
                configs[configs.count - 1].files[k].1.append(unquote(line.dropFirst(2)))
            } else if line.hasPrefix("data_files:") {
                let value = unquote(line.dropFirst("data_files:".count))
                if !value.isEmpty, !configs.isEmpty { configs[configs.count - 1].files.append(("train", [value])) }
            }
        }
        let chosen = configs.first { $0.name == "default" } ?? configs.first
        return chosen?.files
    }

    /// fnmatch-style `*`, `?` and `**` matching of a relative path.
    static func glob(_ pattern: String, matches path: String) -> Bool {
        let p = Array(pattern.hasPrefix("./") ? String(pattern.dropFirst(2)) : pattern), s = Array(path)
        func m(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == s.count }
            if p[i] == "*" {
                var k = j
                while true {
                    if m(i + 1, k) { return true }
                    if k == s.count { return false }
                    k += 1
                }
            }
            guard j < s.count else { return false }
            return (p[i] == "?" || p[i] == s[j]) && m(i + 1, j + 1)
        }
        return m(0, 0)
    }
}
