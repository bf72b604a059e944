import Datasets
import Foundation
import Training

/// Line-oriented progress for logs and CI, like the HF Trainer's console output: a banner when
/// training starts, one log dict per logging step (floats as `f"{v:.4g}"`, exactly what
/// `ProgressCallback.on_log` prints), a tqdm-style progress line, checkpoint and warning lines.
/// With `jsonl` every event is one JSON object per line instead.
public final class HeadlessPrinter: EngineObserver, @unchecked Sendable {
    public enum Format: Sendable { case trainer, jsonl }
    public let format: Format
    /// A progress line every this many steps (and at the last step); 0 = only with log lines.
    public let progressEvery: Int
    private let out: FileHandle
    /// Warnings, notes and image-extraction progress go here (standard output is the event stream).
    let err: FileHandle
    private let lock = NSLock()
    private var info: RunInfo?
    private var lastStep: StepMetrics?
    private var lastProgressStep = -1
    private var finishedCallbacks: [(RunState) -> Void] = []
    public private(set) var finalState: RunState?
    public private(set) var failure: String?
    private var didStart = false
    /// The run got as far as `started` (its model and data loaded).
    public var started: Bool { lock.lock(); defer { lock.unlock() }; return didStart }

    public init(format: Format = .trainer, progressEvery: Int = 0, out: FileHandle = .standardOutput, err: FileHandle = .standardError) {
        self.format = format; self.progressEvery = progressEvery; self.out = out; self.err = err
    }

    /// Called once with the final state (finished, stopped or failed).
    public func onEnd(_ f: @escaping (RunState) -> Void) { lock.lock(); finishedCallbacks.append(f); lock.unlock() }

    public func engine(didEmit event: EngineEvent) {
        lock.lock()
        let lines = format == .jsonl ? [Self.jsonLine(event)] : trainerLines(event)
        var ended: RunState? = nil
        switch event {
        case .started: didStart = true
        case .finished: ended = .finished
        case .failed(let r): ended = .failed; failure = r
        case .stateChanged(let s) where s == .stopped: ended = .stopped
        default: break
        }
        let callbacks = ended != nil && finalState == nil ? finishedCallbacks : []
        if let ended, finalState == nil { finalState = ended }
        lock.unlock()
        for l in lines {
            let isError: Bool
            if case .failed = event { isError = format == .trainer } else { isError = false }
            (isError ? err : out).write(Data((l + "\n").utf8))
        }
        if let ended { for c in callbacks { c(ended) } }
    }

    /// Exit status for a run's end: 0 finished, 1 failed, 130 stopped early (Ctrl-C or a stop
    /// command, after its checkpoint was saved; 128 + SIGINT as shells report it). A failure before the
    /// run `started` (its model, data or checkpoint could not be loaded) gives `failedToStart`.
    public static func exitCode(for state: RunState?, started: Bool = true, failedToStart: Int32 = 1) -> Int32 {
        switch state {
        case .finished?: return 0
        case .stopped?: return 130
        case .failed?: return started ? 1 : failedToStart
        default: return 1
        }
    }

    // MARK: Trainer-style lines

    func trainerLines(_ e: EngineEvent) -> [String] {
        switch e {
        case .started(let i):
            info = i
            // Zero means "not known" (watch rebuilds this from event files): such lines are left out.
            var out = ["***** Running training *****"]
            if i.numTrainSamples > 0 { out.append("  Num examples = \(i.numTrainSamples)") }
            if i.numEpochs > 0 { out.append("  Num Epochs = \(Fmt.g4(i.numEpochs))") }
            if i.maxSteps > 0 { out.append("  Total optimization steps = \(i.maxSteps)") }
            if i.trainableParameters > 0 { out.append("  Number of trainable parameters = \(i.trainableParameters)") }
            out.append("  Output directory = \(i.outputDir)")
            return out
        case .step(let m):
            lastStep = m
            let max = info?.maxSteps ?? 0
            if progressEvery > 0 && (m.step % progressEvery == 0 || m.step == max) { return [progressLine(m)] }
            return []
        case .logged(let r):
            var out = [Self.trainerDict(r)]
            if progressEvery == 0, let m = lastStep { out.append(progressLine(m)) }
            return out
        case .evaluated(let r): return [Self.trainerDict(r)]
        case .checkpointSaved(_, let path): return ["Saving model checkpoint to \(path)"]
        case .message(let level, let text): return [level == .info ? text : "\(level.rawValue): \(text)"]
        case .stateChanged(let s):
            switch s {
            case .paused: return ["paused"]
            case .running: return lastStep == nil ? [] : ["resumed"]
            case .stopping: return ["stopping: saving a checkpoint first"]
            case .stopped: return ["stopped at step \(lastStep?.step ?? 0)"]
            default: return []
            }
        case .finished(let r):
            var out: [String] = []
            if let m = lastStep, m.step != lastProgressStep { out.append(progressLine(m)) }
            out.append(Self.trainerDict(r))
            out.append("Training completed.")
            return out
        case .failed(let reason): return ["error: \(reason)"]
        }
    }

    /// `{'loss': '2.301', 'grad_norm': '1.25', 'learning_rate': '0.0002', 'epoch': '0.5'}`:
    /// Python's `str()` of the dict `ProgressCallback.on_log` builds (floats formatted `.4g`,
    /// `total_flos` dropped).
    public static func trainerDict(_ r: LogRecord) -> String {
        let items = r.values.filter { $0.0 != "total_flos" }.map { "'\($0.0)': '\(Fmt.g4($0.1))'" }
        return "{" + items.joined(separator: ", ") + "}"
    }

    /// tqdm's default bar: ` 40%|████      | 4/10 [00:02<00:03,  1.95it/s]`.
    public func progressLine(_ m: StepMetrics) -> String {
        lastProgressStep = m.step
        let total = info?.maxSteps ?? 0
        let p = ProgressInfo(step: m.step, maxSteps: total, epoch: m.epoch, numEpochs: info?.numEpochs ?? 0, elapsed: m.elapsedSeconds,
                             tokensPerSecond: m.tokensPerSecond, residentBytes: m.residentBytes, state: .running)
        let frac = p.fraction
        let width = 10
        let filled = Int((frac * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: " ", count: width - filled)
        let rate = m.elapsedSeconds > 0 ? Double(m.step) / m.elapsedSeconds : 0
        var extras = ""
        if m.tokensPerSecond > 0 { extras += ", \(Int(m.tokensPerSecond)) tok/s" }
        if m.residentBytes > 0 { extras += ", RSS \(Fmt.bytes(m.residentBytes))" }
        let rateText = rate >= 1 || rate == 0 ? String(format: "%5.2fit/s", rate) : String(format: "%5.2fs/it", 1 / rate)
        return String(format: "%3.0f%%", frac * 100) + "|\(bar)| \(m.step)/\(total) [\(Fmt.duration(m.elapsedSeconds))<\(p.eta.map { Fmt.duration($0) } ?? "?"), \(rateText)\(extras)]"
    }

    // MARK: JSONL

    /// One event as a JSON object; keys are stable (`event` first) for scripts to read.
    public static func jsonLine(_ e: EngineEvent) -> String {
        var fields: [(String, String)] = []
        func num(_ v: Double) -> String { v.isFinite ? Self.jsonNumber(v) : "null" }
        func str(_ s: String) -> String { jsonString(s) }
        switch e {
        case .started(let i):
            fields = [("event", str("started")), ("output_dir", str(i.outputDir)), ("max_steps", "\(i.maxSteps)"),
                      ("num_epochs", num(i.numEpochs)), ("steps_per_epoch", "\(i.stepsPerEpoch)"), ("num_train_samples", "\(i.numTrainSamples)"),
                      ("trainable_parameters", "\(i.trainableParameters)"), ("total_parameters", "\(i.totalParameters)")]
        case .step(let m):
            fields = [("event", str("step")), ("step", "\(m.step)"), ("epoch", num(m.epoch)), ("loss", num(m.loss)),
                      ("grad_norm", num(m.gradNorm)), ("learning_rate", num(m.learningRate)), ("num_tokens", "\(m.tokens)"),
                      ("tokens_per_second", num(m.tokensPerSecond)), ("elapsed_seconds", num(m.elapsedSeconds)), ("resident_bytes", "\(m.residentBytes)")]
        case .logged(let r), .evaluated(let r), .finished(let r):
            let name: String
            if case .logged = e { name = "log" } else if case .evaluated = e { name = "eval" } else { name = "finished" }
            fields = [("event", str(name)), ("step", "\(r.step)")] + r.values.map { ($0.0, num($0.1)) }
        case .checkpointSaved(let step, let path):
            fields = [("event", str("checkpoint")), ("step", "\(step)"), ("path", str(path))]
        case .message(let level, let text):
            fields = [("event", str("message")), ("level", str(level.rawValue)), ("text", str(text))]
        case .stateChanged(let s):
            fields = [("event", str("state")), ("state", str(s.rawValue))]
        case .failed(let reason):
            fields = [("event", str("failed")), ("reason", str(reason))]
        }
        var seen = Set<String>()
        return "{" + fields.filter { seen.insert($0.0).inserted }.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// JSONL values are written as Python's json.dumps writes them (one writer for the whole project).
    static func jsonNumber(_ v: Double) -> String { PythonJSON.double(v) }
    public static func jsonString(_ s: String) -> String { PythonJSON.string(s) }
}

/// A progress line with an ETA for image archives unpacked while a dataset opens (MMIU, first open
/// only), on a stream that is not the screen: headless runs, and the dashboard's loading before ncurses
/// takes the terminal.
public enum ExtractionProgressLine {
    /// Installs the line writer as the process-wide default; returns the function that puts the previous one back.
    public static func install(on stream: FileHandle) -> () -> Void {
        let previous = DatasetOpenOptions.defaultExtractionProgress
        DatasetOpenOptions.defaultExtractionProgress = ZipExtractionProgress.lineWriter { line in
            stream.write(Data((line + "\n").utf8))
        }
        return { DatasetOpenOptions.defaultExtractionProgress = previous }
    }

    /// Runs `body` with the progress line on standard error.
    public static func around<T>(_ body: () throws -> T) rethrows -> T {
        let restore = install(on: FileHandle.standardError)
        defer { restore() }
        return try body()
    }
}

/// Runs an engine without a screen: prints through a `HeadlessPrinter`, turns the first Ctrl-C into
/// "stop after saving a checkpoint" (a second one quits at once), and returns the exit status. The first
/// Ctrl-C also stops an image extraction of the run's data loading (MMIU's first open) at its next chunk:
/// the unpacked files are kept for the next run, and the run ends as stopped (130), not failed.
public enum HeadlessRunner {
    /// `failedToStart`: the status of a run that failed before it started (its model, data or checkpoint could
    /// not be loaded): `sftdeck train` gives 2, as for a bad config.
    public static func run(_ engine: EngineControl, printer: HeadlessPrinter, failedToStart: Int32 = 1,
                           start: (() throws -> Void)? = nil) throws -> Int32 {
        // Image archives unpacked while the run loads its data (MMIU, first open only): a progress line
        // with an ETA on standard error about once a second (standard output stays the event stream).
        let restore = ExtractionProgressLine.install(on: printer.err)
        defer { restore() }
        let extraction = CancellationFlag(), previousCancellation = DatasetOpenOptions.defaultExtractionCancellation
        DatasetOpenOptions.defaultExtractionCancellation = extraction
        defer { DatasetOpenOptions.defaultExtractionCancellation = previousCancellation }
        let done = DispatchSemaphore(value: 0)
        printer.onEnd { _ in done.signal() }
        engine.addObserver(printer)
        let interrupts = Interrupts(engine: engine, extraction: extraction)
        setActive(interrupts)
        defer { setActive(nil) }
        signal(SIGINT, SIG_IGN)
        let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        sigint.setEventHandler { interrupts.interrupt() }
        sigint.resume()
        defer { sigint.cancel(); signal(SIGINT, SIG_DFL) }
        try start?()
        // A run whose loading failed because Ctrl-C stopped its extraction was stopped by the user.
        func code(_ state: RunState?) -> Int32 {
            if state == .failed && extraction.stoppedWork { return 130 }
            return HeadlessPrinter.exitCode(for: state, started: printer.started, failedToStart: failedToStart)
        }
        if [.finished, .stopped, .failed].contains(engine.state) && printer.finalState == nil {
            return code(engine.state)
        }
        done.wait()
        return code(printer.finalState)
    }

    /// What Ctrl-C does during a run: the first stops the engine (after its checkpoint) and any image
    /// extraction of its loading, the second quits at once.
    final class Interrupts: @unchecked Sendable {
        private let lock = NSLock(); private var n = 0
        let engine: EngineControl, extraction: CancellationFlag
        init(engine: EngineControl, extraction: CancellationFlag) { self.engine = engine; self.extraction = extraction }
        func interrupt() {
            lock.lock(); n += 1; let count = n; lock.unlock()
            if count == 1 {
                FileHandle.standardError.write(Data("\nstopping after saving a checkpoint (Ctrl-C again to quit now)\n".utf8))
                extraction.cancel()
                engine.send(.stop)
            } else {
                exit(130)
            }
        }
    }

    private static let activeLock = NSLock()
    nonisolated(unsafe) private static var _active: Interrupts?
    /// The running `run`'s Ctrl-C handling. Tests call `interrupt()` on it instead of raising SIGINT: in a test
    /// process that had already run a runner, a new SIGINT source never fired (the real signal path is the
    /// CLI's Ctrl-C test, one runner per process as in `sftdeck`).
    static var active: Interrupts? { activeLock.lock(); defer { activeLock.unlock() }; return _active }
    private static func setActive(_ i: Interrupts?) { activeLock.lock(); _active = i; activeLock.unlock() }
}
