import Foundation
import Training

/// `watch`: follows a run's TensorBoard event files (any run: SFTDeck's, or one TRL writes
/// elsewhere) — or SFTDeck's train_log.jsonl when the run reports to none — and replays them as engine events, so the dashboard and the headless printer show
/// it like a live run. Controls are refused: the run belongs to another process.
public final class EventFileFollower: EngineControl, @unchecked Sendable {
    public let logDir: String
    public let interval: Double
    private let queue = DispatchQueue(label: "sftdeck.watch")
    private let lock = NSLock()
    private var observers: [EngineObserver] = []
    private var emittedUpTo = -1
    private var started = false
    private var firstWall: Double?
    private var lastTokens: (Int, Double)?
    private var _state: RunState = .idle
    private var timer: DispatchSourceTimer?

    public init(logDir: String, interval: Double = 1.0) {
        self.logDir = logDir; self.interval = interval
    }

    public var state: RunState { lock.lock(); defer { lock.unlock() }; return _state }

    public func addObserver(_ observer: EngineObserver) { lock.lock(); observers.append(observer); lock.unlock() }

    public func send(_ command: EngineCommand) {
        emit(.message(level: .warning, text: "watch: \(command) refused: this run belongs to another process"))
    }

    func emit(_ e: EngineEvent) {
        lock.lock(); let obs = observers; lock.unlock()
        for o in obs { o.engine(didEmit: e) }
    }

    /// Reads what is there now; emits events for steps not seen yet. Returns true when the run has
    /// finished (the Trainer's final `train_runtime` record is in the files).
    @discardableResult
    public func poll() throws -> Bool {
        guard let byStep = try readPoints() else {
            if !FileManager.default.fileExists(atPath: logDir) { throw DashboardError("\(logDir): no such folder") }
            return false
        }
        let steps = byStep.keys.sorted()
        if !started {
            started = true
            let state = Self.trainerState(logDir)
            let info = RunInfo(outputDir: logDir, maxSteps: state?.maxSteps ?? steps.last ?? 0,
                               numEpochs: state?.epochs ?? 0, stepsPerEpoch: 0, numTrainSamples: 0,
                               trainableParameters: 0, totalParameters: 0)
            lock.lock(); _state = .running; lock.unlock()
            emit(.started(info))
        }
        var finished = false
        for step in steps where step > emittedUpTo {
            let entries = byStep[step]!
            let values = Dictionary(entries.map { ($0.tag, $0.value) }, uniquingKeysWith: { _, b in b })
            let wall = entries.map(\.wall).max() ?? 0
            if firstWall == nil { firstWall = wall }
            if let loss = values["loss"] {
                let tokens = Int(values["num_tokens"] ?? 0)
                var rate = 0.0
                if let (t0, w0) = lastTokens, wall > w0 { rate = Double(tokens - t0) / (wall - w0) }
                lastTokens = (tokens, wall)
                emit(.step(StepMetrics(step: step, epoch: values["epoch"] ?? 0, loss: loss, gradNorm: values["grad_norm"] ?? .nan,
                                       learningRate: values["learning_rate"] ?? .nan, tokens: tokens, tokensPerSecond: rate,
                                       elapsedSeconds: wall - (firstWall ?? wall), residentBytes: 0)))
                emit(.logged(LogRecord(step: step, values: Self.trainerOrder(values.filter { !$0.key.hasPrefix("eval/") && !$0.key.hasPrefix("train_") && $0.key != "total_flos" }))))
            }
            let evals = values.filter { $0.key.hasPrefix("eval/") }
            if !evals.isEmpty {
                emit(.evaluated(LogRecord(step: step, values: evals.sorted { $0.key < $1.key }.map { ("eval_" + $0.key.dropFirst(5), $0.value) })))
            }
            if values["train_runtime"] != nil {
                let keys = ["train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss", "epoch"]
                emit(.finished(LogRecord(step: step, values: keys.compactMap { k in values[k].map { (k, $0) } })))
                finished = true
            }
            emittedUpTo = step
        }
        if finished { lock.lock(); _state = .finished; lock.unlock() }
        return finished
    }

    /// One logged value under its short tag ("loss", "eval/loss", "train_runtime"), with its wall time.
    typealias Point = (tag: String, value: Double, wall: Double)

    /// What the run has logged so far, by step: from its TensorBoard event files, or — a run with
    /// report_to none — from its `train_log.jsonl`. nil when neither exists yet.
    func readPoints() throws -> [Int: [Point]]? {
        var byStep: [Int: [Point]] = [:]
        let files = logDir.hasSuffix(".jsonl") ? [] : Self.eventFiles(logDir)
        if !files.isEmpty {
            for f in files {
                let r = try TensorBoardReader(path: URL(fileURLWithPath: f))
                for t in r.tags {
                    let tag = RunsScanner.shortTag(t)
                    for p in r.series(t) { byStep[p.step, default: []].append((tag, p.value, p.wallTime)) }
                }
            }
            return byStep
        }
        guard let log = Self.trainLog(logDir) else { return nil }
        for r in try RunsScanner.readTrainLog(log) {
            guard let step = (r["step"] as? NSNumber)?.intValue else { continue }
            let wall = (r["time"] as? NSNumber)?.doubleValue ?? 0
            for (k, v) in r where k != "step" && k != "time" {
                guard let n = v as? NSNumber else { continue }
                // The TensorBoard callback's names: eval_loss → eval/loss; train metrics keep their key.
                byStep[step, default: []].append((k.hasPrefix("eval_") ? "eval/" + k.dropFirst(5) : k, n.doubleValue, wall))
            }
        }
        return byStep
    }

    /// The JSONL log to follow: LOGDIR itself (a .jsonl file) or LOGDIR/train_log.jsonl.
    static func trainLog(_ dir: String) -> String? {
        let fm = FileManager.default
        if dir.hasSuffix(".jsonl") { return fm.fileExists(atPath: dir) ? dir : nil }
        let p = dir + "/train_log.jsonl"
        return fm.fileExists(atPath: p) ? p : nil
    }

    /// Keys in the order the HF Trainer logs them: loss, grad_norm, learning_rate, the rest, epoch.
    static func trainerOrder(_ v: [String: Double]) -> [(String, Double)] {
        let first = ["loss", "grad_norm", "learning_rate"]
        var out = first.compactMap { k in v[k].map { (k, $0) } }
        out += v.filter { !first.contains($0.key) && $0.key != "epoch" }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let e = v["epoch"] { out.append(("epoch", e)) }
        return out
    }

    /// Polls every `interval` seconds on a background queue until the run finishes.
    public func start() {
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now(), repeating: interval)
        t.setEventHandler { [weak self] in
            guard let self else { return }
            do {
                if try self.poll() { self.timer?.cancel() }
            } catch {
                self.emit(.failed(reason: "\(error)"))
                self.lock.lock(); self._state = .failed; self.lock.unlock()
                self.timer?.cancel()
            }
        }
        timer = t
        t.resume()
    }

    public func stopFollowing() { timer?.cancel() }

    /// Event files of a run folder, its runs/ subfolders, or the folder itself.
    public static func eventFiles(_ dir: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else { return [] }
        if !isDir.boolValue { return [dir] }
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let rel = e?.nextObject() as? String {
            if (rel as NSString).lastPathComponent.hasPrefix("events.out.tfevents") && !rel.contains("checkpoint-") { out.append(dir + "/" + rel) }
        }
        return out.sorted()
    }

    static func trainerState(_ dir: String) -> (maxSteps: Int, epochs: Double)? {
        var d = dir
        for _ in 0..<3 {
            if let data = FileManager.default.contents(atPath: d + "/trainer_state.json"),
               let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let m = (obj["max_steps"] as? NSNumber)?.intValue {
                return (m, (obj["num_train_epochs"] as? NSNumber)?.doubleValue ?? 0)
            }
            d = (d as NSString).deletingLastPathComponent
        }
        return nil
    }
}
