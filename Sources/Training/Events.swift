import Foundation

/// What the training engine tells its observers. Plain values only, never engine internals, so a
/// dashboard, a headless printer, a JSONL writer or `watch` (rebuilding these from event files) can
/// all consume the same stream.
public enum EngineEvent: Sendable, Equatable {
    /// The run is configured and about to take its first step.
    case started(RunInfo)
    /// One optimizer step finished (sent every step, not only on logging steps).
    case step(StepMetrics)
    /// A Trainer-style log record (every `logging_steps`): the dict the HF Trainer would log.
    case logged(LogRecord)
    case evaluated(LogRecord)
    case checkpointSaved(step: Int, path: String)
    case message(level: LogLevel, text: String)
    case stateChanged(RunState)
    case finished(LogRecord)
    case failed(reason: String)
}

public enum LogLevel: String, Sendable, Equatable, Codable { case info, warning, error }

public enum RunState: String, Sendable, Equatable, Codable { case idle, running, paused, stopping, stopped, finished, failed }

public struct RunInfo: Sendable, Equatable, Codable {
    public var outputDir: String
    public var maxSteps: Int
    public var numEpochs: Double
    public var stepsPerEpoch: Int
    public var numTrainSamples: Int
    public var trainableParameters: Int
    public var totalParameters: Int
    public init(outputDir: String, maxSteps: Int, numEpochs: Double, stepsPerEpoch: Int,
                numTrainSamples: Int, trainableParameters: Int, totalParameters: Int) {
        self.outputDir = outputDir; self.maxSteps = maxSteps; self.numEpochs = numEpochs
        self.stepsPerEpoch = stepsPerEpoch; self.numTrainSamples = numTrainSamples
        self.trainableParameters = trainableParameters; self.totalParameters = totalParameters
    }
}

public struct StepMetrics: Sendable, Equatable, Codable {
    public var step: Int
    public var epoch: Double
    public var loss: Double
    public var gradNorm: Double
    public var learningRate: Double
    public var tokens: Int          // non-pad tokens seen so far (TRL's num_tokens)
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double
    public var residentBytes: Int
    public init(step: Int, epoch: Double, loss: Double, gradNorm: Double, learningRate: Double,
                tokens: Int, tokensPerSecond: Double, elapsedSeconds: Double, residentBytes: Int) {
        self.step = step; self.epoch = epoch; self.loss = loss; self.gradNorm = gradNorm
        self.learningRate = learningRate; self.tokens = tokens; self.tokensPerSecond = tokensPerSecond
        self.elapsedSeconds = elapsedSeconds; self.residentBytes = residentBytes
    }
}

/// A log dict as the HF Trainer writes into `log_history` (key order preserved).
public struct LogRecord: Sendable, Equatable, Codable {
    public var step: Int
    public var values: [(String, Double)]
    public init(step: Int, values: [(String, Double)]) { self.step = step; self.values = values }
    public subscript(key: String) -> Double? { values.first { $0.0 == key }?.1 }
    public static func == (a: LogRecord, b: LogRecord) -> Bool {
        a.step == b.step && a.values.count == b.values.count
            && zip(a.values, b.values).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
    private struct Pair: Codable { var key: String; var value: Double }
    private enum CodingKeys: String, CodingKey { case step, values }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        values = try c.decode([Pair].self, forKey: .values).map { ($0.key, $0.value) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(values.map { Pair(key: $0.0, value: $0.1) }, forKey: .values)
    }
}

/// Controls a front end may send; the engine obeys them between optimizer steps.
public enum EngineCommand: Sendable, Equatable { case pause, resume, stop, saveNow }

/// Anything that receives engine events. Called on the engine's queue: observers hand events off
/// (e.g. to the UI thread) rather than doing work inline.
public protocol EngineObserver: AnyObject, Sendable {
    func engine(didEmit event: EngineEvent)
}

/// What a front end holds of a run: send controls, attach observers. The trainer implements it;
/// `watch` implements it over event files on disk (where controls are refused).
public protocol EngineControl: AnyObject {
    func send(_ command: EngineCommand)
    func addObserver(_ observer: EngineObserver)
    var state: RunState { get }
}
