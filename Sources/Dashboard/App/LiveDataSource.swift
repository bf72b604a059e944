import Foundation
import Training

/// The data source the shipped binary uses: the config file (Training's `SFTConfig`), the dataset
/// readers, the tokenizer and collator, and the real trainer. Runs come from `RunsScanner` over the
/// output folders, reading trainer_state.json and TensorBoard event files.
public final class LiveDataSource: DashboardDataSource {
    public let configPath: String?
    public var runRoots: [String]
    public var scanner: RunsScanner
    public private(set) var config: SFTConfig?
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

    public func listDatasets() -> [DatasetSummary] { [] }

    public func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow {
        throw DashboardError("\(dataset.path): this build cannot read datasets yet")
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
