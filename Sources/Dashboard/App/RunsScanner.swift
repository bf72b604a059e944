import Foundation
import Training

/// Finds runs under output folders: a folder with `trainer_state.json` (its own or its newest
/// `checkpoint-N/`), or TensorBoard event files (`events.out.tfevents.*`, in the folder or in a
/// `runs/` subfolder, as the HF Trainer writes them — including runs made by TRL elsewhere), or
/// SFTDeck's `train_log.jsonl` (a run with report_to none).
public struct RunsScanner {
    /// Reads the scalars of one event file as tag → points (Training's TensorBoard reader).
    public typealias EventFileReader = (String) throws -> [String: [RunSummary.Point]]
    public var readEvents: EventFileReader?
    public init(readEvents: EventFileReader? = nil) { self.readEvents = readEvents }

    /// Scans each root and its immediate subfolders.
    public func scan(roots: [String]) -> [RunSummary] {
        var out: [RunSummary] = []
        var seen = Set<String>()
        let fm = FileManager.default
        for root in roots {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { continue }
            let children = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted().map { root + "/" + $0 }
            for dir in [root] + children {
                let std = URL(fileURLWithPath: dir).standardizedFileURL.path
                guard !seen.contains(std), let run = load(dir) else { continue }
                seen.insert(std)
                out.append(run)
            }
        }
        return out
    }

    /// The run in `dir`, or nil when it holds neither a trainer state nor event files.
    public func load(_ dir: String) -> RunSummary? {
        let name = (dir as NSString).lastPathComponent
        if let state = Self.trainerStatePath(dir), let run = try? Self.readTrainerState(state, name: name, runPath: dir) {
            return run
        }
        let events = Self.eventFiles(dir)
        if !events.isEmpty, let readEvents {
            var scalars: [String: [RunSummary.Point]] = [:]
            for f in events {
                guard let s = try? readEvents(f) else { continue }
                for (tag, pts) in s { scalars[Self.shortTag(tag), default: []].append(contentsOf: pts) }
            }
            for k in scalars.keys { scalars[k]!.sort { $0.step < $1.step } }
            let last = Int(scalars.values.compactMap { $0.last?.step }.max() ?? 0)
            return RunSummary(name: name, path: dir, source: "tfevents", globalStep: last, maxSteps: last, scalars: scalars)
        }
        // A run with report_to none that has not saved yet: only SFTDeck's JSONL log is there.
        let log = dir + "/train_log.jsonl"
        if FileManager.default.fileExists(atPath: log), let records = try? Self.readTrainLog(log), !records.isEmpty {
            var scalars: [String: [RunSummary.Point]] = [:]
            for r in records {
                guard let step = (r["step"] as? NSNumber)?.doubleValue else { continue }
                for (k, v) in r where k != "step" && k != "time" {
                    if let n = v as? NSNumber { scalars[k, default: []].append(RunSummary.Point(step: step, value: n.doubleValue)) }
                }
            }
            let last = records.compactMap { ($0["step"] as? NSNumber)?.intValue }.max() ?? 0
            return RunSummary(name: name, path: dir, source: "train_log.jsonl", globalStep: last, maxSteps: last, scalars: scalars)
        }
        return nil
    }

    /// `train_log.jsonl` as SFTDeck's RunWriter writes it: one log_history dict per line (with "step" and
    /// the wall-clock "time"). A last line without its newline is a record still being written and is left
    /// for the next read; any other line that is not a JSON object is an error naming the file and line.
    public static func readTrainLog(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DashboardError("\(path): cannot read the file") }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let lastLine = lines.last, !text.hasSuffix("\n") || lastLine.isEmpty { lines.removeLast() }
        var out: [[String: Any]] = []
        for (i, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            guard let obj = try? PythonJSON.parse(Data(line.utf8)) as? [String: Any] else {
                throw DashboardError("\(path): line \(i + 1) is not a JSON object (expected one log record per line)")
            }
            out.append(obj)
        }
        return out
    }

    /// "train/loss" → "loss" (the HF Trainer's TensorBoard callback prefixes train/ and eval/;
    /// eval tags keep their prefix so they do not mix with training curves).
    public static func shortTag(_ tag: String) -> String {
        tag.hasPrefix("train/") ? String(tag.dropFirst(6)) : tag
    }

    static func trainerStatePath(_ dir: String) -> String? {
        let fm = FileManager.default
        let own = dir + "/trainer_state.json"
        if fm.fileExists(atPath: own) { return own }
        let checkpoints = ((try? fm.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasPrefix("checkpoint-") }
            .compactMap { n -> (Int, String)? in Int(n.dropFirst(11)).map { ($0, n) } }
            .sorted { $0.0 > $1.0 }
        for (_, n) in checkpoints where fm.fileExists(atPath: "\(dir)/\(n)/trainer_state.json") { return "\(dir)/\(n)/trainer_state.json" }
        return nil
    }

    public static func eventFiles(_ dir: String) -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for d in [dir, dir + "/runs"] {
            guard let items = try? fm.contentsOfDirectory(atPath: d) else { continue }
            for i in items.sorted() {
                let p = d + "/" + i
                if i.hasPrefix("events.out.tfevents") { out.append(p); continue }
                // runs/<date_host>/events... as the HF Trainer lays them out.
                if d.hasSuffix("/runs"), let sub = try? fm.contentsOfDirectory(atPath: p) {
                    out += sub.filter { $0.hasPrefix("events.out.tfevents") }.sorted().map { p + "/" + $0 }
                }
            }
        }
        return out
    }

    /// Reads `trainer_state.json` as the HF Trainer writes it: `global_step`, `max_steps` and
    /// `log_history` (one dict per log, each with `step`).
    public static func readTrainerState(_ path: String, name: String, runPath: String) throws -> RunSummary {
        guard let data = FileManager.default.contents(atPath: path) else { throw DashboardError("\(path): cannot read the file") }
        guard let obj = try? PythonJSON.parse(data) as? [String: Any] else {
            throw DashboardError("\(path): not a JSON object (expected the HF Trainer's trainer_state.json)")
        }
        guard let history = obj["log_history"] as? [[String: Any]] else { throw DashboardError("\(path): no log_history list") }
        var scalars: [String: [RunSummary.Point]] = [:]
        for entry in history {
            guard let step = (entry["step"] as? NSNumber)?.doubleValue else { continue }
            for (k, v) in entry where k != "step" && k != "epoch" {
                if let n = v as? NSNumber {
                    scalars[k, default: []].append(RunSummary.Point(step: step, value: n.doubleValue))
                }
            }
            if let e = (entry["epoch"] as? NSNumber)?.doubleValue { scalars["epoch", default: []].append(RunSummary.Point(step: step, value: e)) }
        }
        for k in scalars.keys { scalars[k]!.sort { $0.step < $1.step } }
        let global = (obj["global_step"] as? NSNumber)?.intValue ?? 0
        let maxSteps = (obj["max_steps"] as? NSNumber)?.intValue ?? global
        return RunSummary(name: name, path: runPath, source: "trainer_state.json", globalStep: global, maxSteps: maxSteps, scalars: scalars)
    }
}
