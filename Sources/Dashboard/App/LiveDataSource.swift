import Datasets
import Foundation
import Training

/// The data source the shipped binary uses: the config file (Training's `SFTConfig`), the dataset
/// readers, the tokenizer and collator, and the real trainer. Runs come from `RunsScanner` over the
/// output folders, reading trainer_state.json and TensorBoard event files.
public final class LiveDataSource: DashboardDataSource {
    public let configPath: String?
    public var runRoots: [String]
    public var scanner: RunsScanner
    /// The loaded (or last saved) config. Set on the UI thread; the background lanes read it through
    /// `config`.
    public private(set) var config: SFTConfig? {
        get { configLock.lock(); defer { configLock.unlock() }; return _config }
        set { configLock.lock(); _config = newValue; configLock.unlock() }
    }
    private var _config: SFTConfig?
    private let configLock = NSLock()
    /// Warnings and errors from loading the config, shown on the status line.
    public private(set) var configMessages: [String] = []

    public init(configPath: String?, runRoots: [String] = []) {
        self.configPath = configPath
        self.runRoots = runRoots
        self.scanner = RunsScanner(readEvents: LiveDataSource.readEventFile)
        if let configPath {
            do {
                let r = try SFTConfig.load(path: configPath)
                config = r.config
                configMessages = r.warnings
            } catch {
                configMessages = ["\(error)"]
            }
        }
    }

    /// TensorBoard scalars of one event file as tag → points.
    public static func readEventFile(_ path: String) throws -> [String: [RunSummary.Point]] {
        let r = try TensorBoardReader(path: URL(fileURLWithPath: path))
        var out: [String: [RunSummary.Point]] = [:]
        for tag in r.tags { out[tag] = r.series(tag).map { RunSummary.Point(step: Double($0.step), value: $0.value) } }
        return out
    }

    public let datasets = DatasetAdapter()
    /// Extra dataset specs (paths or hub ids) to list, e.g. from `--dataset` or the demo.
    public var extraDatasets: [String] = []

    /// The config's dataset, extra ones, recently opened paths and the HF cache's datasets, without
    /// opening any (runs on the listing lane).
    public func datasetEntries() -> [DatasetEntry] {
        var seen = Set<String>()
        var out: [DatasetEntry] = []
        func add(_ spec: String, _ source: String) {
            guard seen.insert(spec).inserted else { return }
            out.append(DatasetEntry(spec: spec, source: source))
        }
        if let d = config?.datasetName { add(d, "config") }
        for d in extraDatasets { add(d, "recent") }
        for d in RecentDatasets.load() { add(d, "recent") }
        for d in DatasetAdapter.hubDatasetIDs() { add(d, "hf cache") }
        return out
    }

    /// Opens (re-reads: a rescan sees files changed on disk) and summarises one dataset (runs on the
    /// opening lane).
    public func openDataset(_ entry: DatasetEntry, progress: @escaping ZipExtractionProgressHandler,
                            cancellation: CancellationFlag) -> DatasetSummary {
        datasets.forget(entry.spec)
        var s = datasets.summary(entry.spec, source: entry.source, progress: progress, cancellation: cancellation)
        s.spec = entry.spec
        return s
    }

    public func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow {
        let spec = dataset.spec ?? dataset.path
        let row = try datasets.row(spec: spec, split: split, index: index, config: config)
        RecentDatasets.remember(spec)
        return row
    }

    public func loadConfig() -> ConfigDocument? {
        guard let config else { return configPath == nil ? nil : nil }
        return ConfigAdapter.document(config, path: configPath)
    }

    public func validateEdit(_ doc: ConfigDocument, key: String, value: String) -> String? {
        ConfigAdapter.validate(doc, key: key, text: value)
    }

    public func saveConfig(_ doc: ConfigDocument) throws -> String {
        guard let path = doc.path ?? configPath else { throw DashboardError("no config path to save to") }
        let (c, _) = try ConfigAdapter.config(from: doc)
        try c.save(to: path)
        config = c
        return path
    }

    /// The config a run would use: the edited document, else the loaded file.
    public func runConfig(_ doc: ConfigDocument?) throws -> SFTConfig {
        if let doc { return try ConfigAdapter.config(from: doc).0 }
        if let config { return config }
        throw DashboardError(configMessages.first ?? "no config: start sftdeck with --config FILE")
    }

    /// The real engine (Training's `TrainingEngine`: the model and data load on its queue).
    public func startRun(_ doc: ConfigDocument?, observer: EngineObserver) throws -> EngineControl {
        let engine = try TrainingRun.makeEngine(config: try runConfig(doc))
        engine.addObserver(observer)
        engine.start()
        return engine
    }

    public func listRuns() -> [RunSummary] {
        var roots = runRoots
        if let out = config?.resolvedOutputDir {
            roots.append(out)
            roots.append((out as NSString).deletingLastPathComponent.isEmpty ? "." : (out as NSString).deletingLastPathComponent)
        }
        let cwd = FileManager.default.currentDirectoryPath
        roots += [cwd + "/runs", cwd + "/outputs", cwd + "/trainer_output"]
        return scanner.scan(roots: roots)
    }
}

/// Recently inspected dataset paths (~/.cache/sftdeck/recent-datasets.txt, newest first).
enum RecentDatasets {
    /// Tests point this at a temporary file so that they never write the user's list.
    nonisolated(unsafe) static var fileOverride: String?
    static var file: String {
        if let f = fileOverride { return f }
        let env = ProcessInfo.processInfo.environment
        let cache = env["XDG_CACHE_HOME"] ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache")
        return cache + "/sftdeck/recent-datasets.txt"
    }
    static func load() -> [String] {
        guard let t = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
        return t.split(separator: "\n").map(String.init).filter { FileManager.default.fileExists(atPath: $0) }
    }
    static func remember(_ spec: String) {
        guard FileManager.default.fileExists(atPath: spec) else { return }   // hub ids are listed from the cache anyway
        let abs = URL(fileURLWithPath: spec).standardizedFileURL.path
        let list = ([abs] + load().filter { $0 != abs }).prefix(10)
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? (list.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
    }
}
