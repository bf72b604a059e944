import Foundation

/// Runs a `Trainer` on a background serial DispatchQueue and fans its events out to observers.
/// Controls are obeyed between optimizer steps: pause blocks the loop until resume (or stop), stop
/// ends the run after the current step with a checkpoint, saveNow writes a checkpoint.
public final class TrainingEngine: EngineControl, @unchecked Sendable {
    private let queue = DispatchQueue(label: "sftdeck.training-engine", qos: .userInitiated)
    private let lock = NSCondition()
    private var observers: [EngineObserver] = []
    private var pending: [EngineCommand] = []
    private var paused = false
    private var _state: RunState = .idle
    private let makeTrainer: () throws -> Trainer
    private let resumeFrom: URL?
    private let done = DispatchGroup()
    /// The run's final record (nil until finished) or the failure.
    public private(set) var result: Result<LogRecord, Error>?

    /// `makeTrainer` runs on the engine queue (model loading happens off the caller's thread).
    public init(resumeFrom: URL? = nil, makeTrainer: @escaping () throws -> Trainer) {
        self.makeTrainer = makeTrainer
        self.resumeFrom = resumeFrom
    }

    public var state: RunState { lock.lock(); defer { lock.unlock() }; return _state }

    public func addObserver(_ observer: EngineObserver) {
        lock.lock(); observers.append(observer); lock.unlock()
    }

    public func send(_ command: EngineCommand) {
        lock.lock()
        switch command {
        case .pause: paused = true
        case .resume: paused = false
        case .stop: pending.append(.stop); paused = false
        case .saveNow: pending.append(.saveNow)
        }
        lock.broadcast()
        let s = _state
        lock.unlock()
        if command == .pause && s == .running { setState(.paused) }
        if command == .resume && s == .paused { setState(.running) }
        if command == .stop && (s == .running || s == .paused) { setState(.stopping) }
    }

    private func setState(_ s: RunState) {
        lock.lock(); _state = s; lock.unlock()
        publish(.stateChanged(s))
    }

    private func publish(_ e: EngineEvent) {
        lock.lock(); let obs = observers; lock.unlock()
        for o in obs { o.engine(didEmit: e) }
    }

    /// Starts the run; returns at once.
    public func start() {
        done.enter()
        lock.lock(); _state = .running; lock.unlock()
        queue.async { [self] in
            defer { done.leave() }
            do {
                let trainer = try makeTrainer()
                trainer.emit = { [weak self] e in
                    guard let self else { return }
                    if case .stateChanged(let s) = e { self.lock.lock(); self._state = s; self.lock.unlock() }
                    self.publish(e)
                }
                trainer.poll = { [weak self] in self?.waitBetweenSteps() ?? .continue }
                let rec = try trainer.run(resumeFrom: resumeFrom)
                result = .success(rec)
            } catch {
                result = .failure(error)
                setState(.failed)
                publish(.failed(reason: (error as? TrainingError)?.description ?? "\(error)"))
            }
        }
    }

    /// Blocks until the run has finished, stopped or failed.
    public func wait() { done.wait() }

    private func waitBetweenSteps() -> Trainer.StepControl {
        lock.lock()
        defer { lock.unlock() }
        while paused && !pending.contains(.stop) { lock.wait() }
        if pending.contains(.stop) { pending.removeAll(); return .stop }
        if let i = pending.firstIndex(of: .saveNow) { pending.remove(at: i); return .saveNow }
        return .continue
    }
}

/// Collects every event (tests, `--json` output).
public final class RecordingObserver: EngineObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var _events: [EngineEvent] = []
    public var onEvent: ((EngineEvent) -> Void)?
    public init() {}
    public var events: [EngineEvent] { lock.lock(); defer { lock.unlock() }; return _events }
    public func engine(didEmit event: EngineEvent) {
        lock.lock(); _events.append(event); lock.unlock()
        onEvent?(event)
    }
}

/// Starting a run from a config, as `sftdeck train` and the dashboard do.
public enum TrainingRun {
    /// An engine (not started) that loads the model and data of `config` on its queue, resumes from
    /// `resume_from_checkpoint` if set, and writes outputs under output_dir. Config problems that can be
    /// found without loading anything (resume target missing) throw here.
    public static func makeEngine(config: SFTConfig) throws -> TrainingEngine {
        let outURL = URL(fileURLWithPath: config.resolvedOutputDir)
        let resume = try RunWriter.resolveResume(config.resumeFromCheckpoint, outputDir: outURL)
        return TrainingEngine(resumeFrom: resume) {
            let prepared = try RunSetup.prepare(config)
            let t = try Trainer(config: config, model: prepared.model, train: prepared.train, eval: prepared.eval)
            t.writer = RunWriter(outputDir: outURL)
            StartupProfile.mark("trainer built")
            for n in prepared.notes { t.emit(.message(level: .info, text: n)) }
            return t
        }
    }
}
