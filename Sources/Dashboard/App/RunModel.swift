import Foundation
import Training

/// The Train screen's state, folded from engine events (pure: no UI, no engine references).
public struct RunModel: Sendable {
    public var info: RunInfo?
    public var state: RunState = .idle
    public var steps: [StepMetrics] = []
    public var logs: [LogRecord] = []
    public var evals: [LogRecord] = []
    public var lines: [LogLine] = []
    public var finalRecord: LogRecord?
    public var failure: String?
    public var lastCheckpoint: String?
    /// TensorBoard's smoothing slider (0 = raw, 0.99 = very smooth); TB's default is 0.6.
    public var smoothing: Double = 0.6
    public var maxLines = 500

    public init() {}

    public mutating func apply(_ e: EngineEvent) {
        switch e {
        case .started(let i):
            info = i; state = .running
            line(.info, "started: \(i.maxSteps) steps, \(i.numTrainSamples) samples, \(Fmt.count(i.trainableParameters)) trainable of \(Fmt.count(i.totalParameters)) parameters -> \(i.outputDir)")
        case .step(let m): steps.append(m)
        case .logged(let r):
            logs.append(r)
            line(.info, HeadlessPrinter.trainerDict(r))
        case .evaluated(let r):
            evals.append(r); line(.info, "eval " + HeadlessPrinter.trainerDict(r))
        case .checkpointSaved(let step, let path):
            lastCheckpoint = path; line(.info, "checkpoint at step \(step): \(path)")
        case .message(let level, let text): line(level, text)
        case .stateChanged(let s): state = s; line(.info, "state: \(s.rawValue)")
        case .finished(let r):
            finalRecord = r; state = .finished; line(.info, "finished " + HeadlessPrinter.trainerDict(r))
        case .failed(let reason):
            failure = reason; state = .failed; line(.error, "failed: \(reason)")
        }
    }

    mutating func line(_ level: LogLevel, _ text: String) {
        lines.append(LogLine(level, text))
        if lines.count > maxLines { lines.removeFirst(lines.count - maxLines) }
    }

    public var progress: ProgressInfo {
        let last = steps.last
        return ProgressInfo(step: last?.step ?? 0, maxSteps: info?.maxSteps ?? 0, epoch: last?.epoch ?? 0,
                            numEpochs: info?.numEpochs ?? 0, elapsed: last?.elapsedSeconds ?? 0,
                            tokensPerSecond: last?.tokensPerSecond ?? 0, residentBytes: last?.residentBytes ?? 0, state: state)
    }

    public func series(_ value: (StepMetrics) -> Double) -> [(x: Double, y: Double)] {
        steps.map { (Double($0.step), value($0)) }
    }
    public var lossRaw: [(x: Double, y: Double)] { series(\.loss) }
    public var lossSmoothed: [(x: Double, y: Double)] {
        let raw = steps.map(\.loss)
        return zip(steps, TensorBoardSmoothing.smooth(raw, weight: smoothing)).map { (Double($0.step), $1) }
    }
    /// The newest logged value of a train metric (TRL's `entropy`, `mean_token_accuracy`), nil before one is logged.
    public func latestLogged(_ key: String) -> Double? {
        logs.last { $0[key] != nil }?[key]
    }
    /// "entropy 2.314  accuracy 0.412" from the newest log record, for the Loss pane's header.
    public var tokenMetricsSummary: String? {
        let parts = [("entropy", "entropy"), ("mean_token_accuracy", "accuracy")].compactMap { key, label in
            latestLogged(key).map { String(format: "\(label) %.3f", $0) }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "  ")
    }
    public var isActive: Bool { state == .running || state == .paused || state == .stopping }
}
