import Foundation
import Training

/// The data source the shipped binary uses: the config file, the dataset readers, the
/// tokenizer and collator, and the real trainer. Runs come from `RunsScanner` over the output
/// folders.
public final class LiveDataSource: DashboardDataSource {
    public let configPath: String?
    public var runRoots: [String]
    public var scanner: RunsScanner

    public init(configPath: String?, runRoots: [String] = []) {
        self.configPath = configPath
        self.runRoots = runRoots
        self.scanner = RunsScanner()
    }

    public func listDatasets() -> [DatasetSummary] { [] }

    public func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow {
        throw DashboardError("\(dataset.path): this build cannot read datasets yet")
    }

    public func loadConfig() -> ConfigDocument? { nil }

    public func saveConfig(_ doc: ConfigDocument) throws -> String {
        guard let path = doc.path ?? configPath else { throw DashboardError("no config path to save to") }
        do { try doc.yaml().write(toFile: path, atomically: true, encoding: .utf8) }
        catch { throw DashboardError("\(path): cannot write (\(error.localizedDescription))") }
        return path
    }

    public func startRun(_ doc: ConfigDocument?) throws -> EngineControl {
        throw DashboardError("this build has no training engine yet")
    }

    public func listRuns() -> [RunSummary] {
        var roots = runRoots
        let cwd = FileManager.default.currentDirectoryPath
        roots += [cwd + "/runs", cwd + "/outputs", cwd + "/trainer_output"]
        return scanner.scan(roots: roots)
    }
}
