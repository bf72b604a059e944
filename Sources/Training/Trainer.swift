import Foundation
import Tensor

/// The HF Trainer's (transformers 5.24 `_inner_training_loop` / `_run_epoch`) loop with TRL 1.16
/// `SFTTrainer`'s metrics, over a `TrainableModel` and `BatchSource`s. Synchronous: `TrainingEngine`
/// runs it on a background queue and feeds it controls through `hooks`.
public final class Trainer {
    public let config: SFTConfig
    public let model: TrainableModel
    public let train: BatchSource
    public let eval: BatchSource?
    public let outputDir: URL
    /// Called with every event (the engine fans them out to observers).
    public var emit: (EngineEvent) -> Void = { _ in }
    /// Polled between optimizer steps; returns what the front end asked for.
    public var poll: () -> StepControl = { .continue }
    /// Writes TensorBoard / JSONL / checkpoints; nil in tests that only want the numbers.
    public var writer: RunWriter?

    public enum StepControl: Equatable { case `continue`, stop, saveNow }

    // --- Derived sizes (set_initial_training_values)
    public let lenDataloader: Int           // micro-batches per epoch (drop_last False)
    public let numUpdateStepsPerEpoch: Int
    public let maxSteps: Int
    public let numTrainEpochs: Int
    public let numTrainSamples: Double
    public let loggingSteps: Int, evalSteps: Int, saveSteps: Int

    // --- TrainerState
    public private(set) var globalStep = 0
    public private(set) var epoch: Double = 0
    public private(set) var logHistory: [LogRecord] = []
    public private(set) var totalFlos: Double = 0
    public private(set) var numTokensSeen = 0       // TRL _total_train_tokens
    public private(set) var checkpoints: [String] = []

    let optimizer: AdamW
    let schedule: LRSchedule
    private var trLoss: Float = 0                  // on-"device" fp32 accumulator since the last log
    private var totalLossScalar: Double = 0
    private var globalStepLastLogged = 0
    private var initialGlobalStep = 0
    private var accuracies: [Double] = [], entropies: [Double] = []
    private var currentFlos: Double = 0
    private var startTime = Date()

    public init(config: SFTConfig, model: TrainableModel, train: BatchSource, eval: BatchSource? = nil) throws {
        self.config = config; self.model = model; self.train = train; self.eval = eval
        self.outputDir = URL(fileURLWithPath: config.resolvedOutputDir)
        guard train.sampleCount > 0 else { throw TrainingError("the training split has no rows") }
        if config.evalStrategy != .no && (eval?.sampleCount ?? 0) == 0 {
            throw TrainingError("eval_strategy is \(config.evalStrategy.rawValue) but the eval split '\(config.datasetTestSplit)' has no rows")
        }
        let bs = config.perDeviceTrainBatchSize, ga = config.gradientAccumulationSteps
        lenDataloader = (train.sampleCount + bs - 1) / bs
        numUpdateStepsPerEpoch = max(lenDataloader / ga + (lenDataloader % ga > 0 ? 1 : 0), 1)
        if config.maxSteps > 0 {
            maxSteps = config.maxSteps
            numTrainEpochs = maxSteps / numUpdateStepsPerEpoch + (maxSteps % numUpdateStepsPerEpoch > 0 ? 1 : 0)
            numTrainSamples = Double(maxSteps * bs * ga)
        } else {
            maxSteps = Int((config.numTrainEpochs * Double(numUpdateStepsPerEpoch)).rounded(.up))
            numTrainEpochs = Int(config.numTrainEpochs.rounded(.up))
            numTrainSamples = Double(train.sampleCount) * config.numTrainEpochs
        }
        // TrainerState.compute_steps: a value < 1 is a ratio of max_steps.
        let total = Double(maxSteps)
        func steps(_ v: Double) -> Int { v < 1 ? Int((total * v).rounded(.up)) : Int(v) }
        loggingSteps = steps(config.loggingSteps)
        evalSteps = steps(config.resolvedEvalSteps)
        saveSteps = steps(config.saveSteps)
        let params = model.trainableParameters
        guard !params.isEmpty else { throw TrainingError("the model has no trainable parameters") }
        optimizer = AdamW(parameters: params, beta1: config.adamBeta1, beta2: config.adamBeta2, eps: config.adamEpsilon,
                          weightDecay: config.weightDecay)
        schedule = LRSchedule(type: config.lrSchedulerType, baseLR: config.learningRate,
                              warmupSteps: LRSchedule.warmupSteps(config.warmupSteps, totalSteps: maxSteps), totalSteps: maxSteps)
    }

    /// Sample order of `epoch`: accelerate's SeedableRandomSampler (randperm seeded data_seed ?? seed + epoch),
    /// or dataset order with `shuffle: false` (the Trainer's `train_sampling_strategy: sequential`).
    public func sampleOrder(epoch: Int) -> [Int] {
        let n = train.sampleCount
        guard config.shuffle else { return Array(0..<n) }
        return TorchRandom.randperm(n, seed: UInt64(config.dataSeed ?? config.seed) &+ UInt64(epoch))
    }

    public var runInfo: RunInfo {
        RunInfo(outputDir: outputDir.path, maxSteps: maxSteps, numEpochs: config.maxSteps > 0 ? Double(numTrainEpochs) : config.numTrainEpochs,
                stepsPerEpoch: numUpdateStepsPerEpoch, numTrainSamples: train.sampleCount,
                trainableParameters: model.trainableParameters.reduce(0) { $0 + $1.count },
                totalParameters: model.totalParameterCount)
    }

    /// Runs to the end (or until stopped). Returns the final log record (train_loss etc.).
    @discardableResult
    public func run(resumeFrom checkpoint: URL? = nil) throws -> LogRecord {
        // the step buffers kept for reuse go back to the system when the run ends (the dashboard stays open)
        defer { LargeBlockCache.shared.releaseKept() }
        var epochsTrained = 0, microStepsToSkip = 0
        if let checkpoint {
            try restore(from: checkpoint)
            epochsTrained = globalStep / numUpdateStepsPerEpoch
            microStepsToSkip = (globalStep % numUpdateStepsPerEpoch) * config.gradientAccumulationSteps
            emit(.message(level: .info, text: "resuming from \(checkpoint.path) at step \(globalStep) (epoch \(epochsTrained))"))
        }
        startTime = Date()
        initialGlobalStep = globalStep
        globalStepLastLogged = globalStep
        trLoss = 0; totalLossScalar = 0
        model.zeroGrad()
        try writer?.begin(trainer: self)
        emit(.started(runInfo))
        emit(.stateChanged(.running))

        var stopped = false
        var lastGradNorm: Float? = nil, lastLR: Double? = nil
        let ga = config.gradientAccumulationSteps, bs = config.perDeviceTrainBatchSize
        epochLoop: for ep in epochsTrained..<numTrainEpochs {
            let order = sampleOrder(epoch: ep)
            let batches: [[Int]] = stride(from: 0, to: order.count, by: bs).map { Array(order[$0..<min($0 + bs, order.count)]) }
            var step = -1
            var firstUpdate = 0
            if ep == epochsTrained && microStepsToSkip > 0 {
                step = microStepsToSkip - 1
                firstUpdate = microStepsToSkip / ga
            }
            var remainder = lenDataloader % ga
            if remainder == 0 { remainder = ga }
            for updateStep in firstUpdate..<numUpdateStepsPerEpoch {
                let numBatches = updateStep != numUpdateStepsPerEpoch - 1 ? ga : remainder
                let start = updateStep * ga
                let window = (start..<min(start + numBatches, batches.count)).map { batches[$0] }
                if window.isEmpty { break }
                let collated = try window.map { try train.batch(indices: $0) }
                let numItems = collated.reduce(0) { $0 + $1.targetCount }     // num_items_in_batch
                let currentGA = collated.count
                var stepLoss: Float = 0
                for (i, batch) in collated.enumerated() {
                    step += 1
                    let (lossScale, scaledLoss) = try microStep(batch, numItems: numItems, currentGA: currentGA)
                    if !scaledLoss.isFinite {
                        throw TrainingError("loss is \(scaledLoss) at step \(globalStep + 1) (epoch \(ep), micro-batch \(i + 1)/\(currentGA), samples \(window[i]))"
                            + (lossScale.isFinite ? "" : "; the window has no valid targets"))
                    }
                    trLoss += scaledLoss
                    stepLoss += scaledLoss
                    currentFlos += Double(6 * batch.inputElementCount * model.flopsParameterCount)
                    numTokensSeen += batch.attentionTokenCount
                }
                // do_sync_step: clip → optimizer.step → lr of this step → scheduler.step → zero_grad
                let params = model.trainableParameters
                var gradNorm: Float? = nil
                var clipCoefficient: Float = 1
                if config.maxGradNorm > 0 {
                    // clip_grad_norm_'s grads *= coef is folded into the update (g·coef in the same fp32
                    // multiply, one pass over the gradients fewer; OptimizerKernelTests checks the bits)
                    let norm = GradientClipping.totalNorm(params)
                    gradNorm = norm
                    clipCoefficient = GradientClipping.coefficient(norm: norm, maxNorm: config.maxGradNorm)
                }
                let lr = schedule.learningRate(atStep: globalStep)
                optimizer.step(params, lr: lr, hasGradient: model.parametersWithGradient, gradScale: clipCoefficient)
                model.zeroGrad()
                globalStep += 1
                epoch = Double(ep) + Double(step + 1) / Double(lenDataloader)
                lastGradNorm = gradNorm; lastLR = lr
                emitStep(loss: stepLoss, gradNorm: gradNorm, lr: lr)

                // DefaultFlowCallback.on_step_end
                var shouldLog = config.loggingStrategy == .steps && globalStep % loggingSteps == 0
                if globalStep == 1 && config.loggingFirstStep { shouldLog = true }
                var shouldEval = config.evalStrategy == .steps && globalStep % evalSteps == 0
                var shouldSave = config.saveStrategy == .steps && saveSteps > 0 && globalStep % saveSteps == 0
                let reachedEnd = globalStep >= maxSteps
                if reachedEnd {
                    if config.evalStrategy == .steps && globalStep % evalSteps != 0 { shouldEval = true }
                    if config.saveStrategy == .steps { shouldSave = true }
                }
                let control = poll()
                if control == .saveNow { shouldSave = true }
                if control == .stop { shouldSave = true; stopped = true }
                try maybeLogSaveEvaluate(log: shouldLog, evaluate: shouldEval, save: shouldSave, gradNorm: gradNorm, lr: lr)
                if reachedEnd || stopped { break }
            }
            // on_epoch_end
            let end = stopped
            try maybeLogSaveEvaluate(log: config.loggingStrategy == .epoch,
                                     evaluate: !end && config.evalStrategy == .epoch,
                                     save: !end && config.saveStrategy == .epoch, gradNorm: lastGradNorm, lr: lastLR)
            if globalStep >= maxSteps || stopped { break epochLoop }
        }
        return try finish(stopped: stopped)
    }

    /// One micro-batch forward/backward with the configured GA normalisation; returns the gradient
    /// scale used and the loss the Trainer's `training_step` returns.
    private func microStep(_ batch: TrainingBatch, numItems: Int, currentGA: Int) throws -> (Float, Float) {
        let n = batch.targetCount
        switch config.gaLossNormalization {
        case .tokens:
            // TRL: per_token_loss.sum() / num_items_in_batch.clamp(min=1)
            let denom = Float(max(numItems, 1))
            let r = try model.forwardBackward(batch, lossScale: 1 / denom)
            record(r)
            return (1 / denom, r.lossSum / denom)
        case .mean:
            let denom = Float(max(n, 1))
            let r = try model.forwardBackward(batch, lossScale: 1 / (denom * Float(currentGA)))
            record(r)
            return (1 / (denom * Float(currentGA)), r.lossSum / denom / Float(currentGA))
        case .legacySum:
            let r = try model.forwardBackward(batch, lossScale: n > 0 ? 1 / Float(n) : .nan)
            record(r)
            return (n > 0 ? 1 / Float(n) : .nan, r.lossSum / Float(n))
        }
    }

    private func record(_ r: MicroBatchResult) {
        accuracies.append(r.targets > 0 ? Double(Float(r.correct) / Float(r.targets)) : 0)
        if let e = r.entropySum { entropies.append(r.targets > 0 ? Double(e / Float(r.targets)) : 0) }
    }

    private func maybeLogSaveEvaluate(log: Bool, evaluate: Bool, save: Bool, gradNorm: Float?, lr: Double?) throws {
        if log && globalStep > globalStepLastLogged {
            let scalar = Double(trLoss)
            trLoss = 0
            var values: [(String, Double)] = [("loss", scalar / Double(globalStep - globalStepLastLogged))]
            if let g = gradNorm { values.append(("grad_norm", Double(g))) }
            values.append(("learning_rate", lr ?? schedule.learningRate(atStep: globalStep)))
            totalLossScalar += scalar
            globalStepLastLogged = globalStep
            totalFlos += currentFlos; currentFlos = 0
            values += drainTrainMetrics()
            values.append(("epoch", epoch))
            let rec = LogRecord(step: globalStep, values: values)
            try append(rec)
            emit(.logged(rec))
        }
        if evaluate, let eval { try runEvaluation(eval) }
        if save { try saveCheckpoint() }
    }

    /// TRL `SFTTrainer.log`: unweighted means of the per-micro-batch metrics since the last log.
    private func drainTrainMetrics() -> [(String, Double)] {
        var out: [(String, Double)] = []
        if !entropies.isEmpty { out.append(("entropy", entropies.reduce(0, +) / Double(entropies.count))) }
        if !accuracies.isEmpty { out.append(("mean_token_accuracy", accuracies.reduce(0, +) / Double(accuracies.count))) }
        if !accuracies.isEmpty { out.append(("num_tokens", Double(numTokensSeen))) }
        entropies.removeAll(); accuracies.removeAll()
        return out
    }

    private func append(_ rec: LogRecord) throws {
        logHistory.append(rec)
        try writer?.log(rec, trainer: self)
    }

    /// Trainer.evaluate: per-batch mean loss (TRL without num_items_in_batch), eval_loss = mean over samples.
    public func runEvaluation(_ source: BatchSource) throws {
        let t0 = Date()
        let bs = config.perDeviceEvalBatchSize
        var weighted: Double = 0
        var accs: [Double] = [], ents: [Double] = []
        var batches = 0
        for start in stride(from: 0, to: source.sampleCount, by: bs) {
            let idx = Array(start..<min(start + bs, source.sampleCount))
            let r = try model.evaluate(try source.batch(indices: idx))
            let loss = r.lossSum / Float(max(r.targets, 1))
            weighted += Double(loss) * Double(idx.count)
            accs.append(r.targets > 0 ? Double(Float(r.correct) / Float(r.targets)) : 0)
            if let e = r.entropySum { ents.append(r.targets > 0 ? Double(e / Float(r.targets)) : 0) }
            batches += 1
        }
        let runtime = Date().timeIntervalSince(t0)
        var values: [(String, Double)] = [("eval_loss", Double(Float(weighted / Double(source.sampleCount))))]
        values.append(("eval_runtime", (runtime * 1e4).rounded() / 1e4))
        values.append(("eval_samples_per_second", (Double(source.sampleCount) / max(runtime, 1e-9) * 1e3).rounded() / 1e3))
        values.append(("eval_steps_per_second", (Double(batches) / max(runtime, 1e-9) * 1e3).rounded() / 1e3))
        if !ents.isEmpty { values.append(("eval_entropy", ents.reduce(0, +) / Double(ents.count))) }
        values.append(("eval_mean_token_accuracy", accs.reduce(0, +) / Double(max(accs.count, 1))))
        values.append(("eval_num_tokens", Double(numTokensSeen)))
        values.append(("epoch", epoch))
        let rec = LogRecord(step: globalStep, values: values)
        try append(rec)
        emit(.evaluated(rec))
    }

    private func emitStep(loss: Float, gradNorm: Float?, lr: Double) {
        let elapsed = Date().timeIntervalSince(startTime)
        emit(.step(StepMetrics(step: globalStep, epoch: epoch, loss: Double(loss), gradNorm: Double(gradNorm ?? .nan),
                               learningRate: lr, tokens: numTokensSeen,
                               tokensPerSecond: elapsed > 0 ? Double(numTokensSeen - tokensAtStart) / elapsed : 0,
                               elapsedSeconds: elapsed, residentBytes: ResourceUsage.residentBytes())))
    }
    private var tokensAtStart = 0

    private func finish(stopped: Bool) throws -> LogRecord {
        totalLossScalar += Double(trLoss)
        trLoss = 0
        let stepsTrained = globalStep - initialGlobalStep
        let trainLoss = totalLossScalar / max(Double(stepsTrained), 0.001)
        let runtime = Date().timeIntervalSince(startTime)
        let samples = numTrainSamples * Double(stepsTrained) / Double(max(maxSteps, 1))
        totalFlos += currentFlos; currentFlos = 0
        var values: [(String, Double)] = [
            ("train_runtime", (runtime * 1e4).rounded() / 1e4),
            ("train_samples_per_second", (samples / max(runtime, 1e-9) * 1e3).rounded() / 1e3),
            ("train_steps_per_second", (Double(stepsTrained) / max(runtime, 1e-9) * 1e3).rounded() / 1e3),
            ("total_flos", totalFlos), ("train_loss", trainLoss),
        ]
        values += drainTrainMetrics()
        values.append(("epoch", epoch))
        let rec = LogRecord(step: globalStep, values: values)
        try append(rec)
        LargeBlockCache.shared.releaseKept()   // before the final save builds its file in memory
        try writer?.end(trainer: self, stopped: stopped)
        emit(.stateChanged(stopped ? .stopped : .finished))
        emit(.finished(rec))
        return rec
    }

    // MARK: checkpoints

    private func saveCheckpoint() throws {
        guard let writer else { return }
        LargeBlockCache.shared.releaseKept()   // a checkpoint's files are built in memory: no kept step buffers beside them
        let path = try writer.saveCheckpoint(trainer: self)
        checkpoints.append(path.lastPathComponent)
        emit(.checkpointSaved(step: globalStep, path: path.path))
    }

    /// What a checkpoint stores of the trainer beyond the model: optimizer moments, scheduler step,
    /// loop counters. Written by `RunWriter.saveCheckpoint`.
    func optimizerTensors() -> [(name: String, shape: [Int], values: [Float])] {
        var out: [(String, [Int], [Float])] = []
        for (k, p) in model.trainableParameters.enumerated() {
            out.append(("\(p.name).exp_avg", p.shape, optimizer.expAvg[k]))
            out.append(("\(p.name).exp_avg_sq", p.shape, optimizer.expAvgSq[k]))
        }
        return out.map { (name: $0.0, shape: $0.1, values: $0.2) }
    }

    var schedulerState: [String: Any] {
        ["last_epoch": globalStep, "_step_count": globalStep + 1, "base_lrs": [config.learningRate, config.learningRate],
         "_last_lr": [schedule.learningRate(atStep: globalStep), schedule.learningRate(atStep: globalStep)],
         "lr_scheduler_type": config.lrSchedulerType.rawValue, "num_warmup_steps": schedule.warmupSteps,
         "num_training_steps": schedule.totalSteps]
    }

    var optimizerStepCount: Int { optimizer.stepCount }
    var optimizerDecayFlags: [Bool] { optimizer.decayFlags }
    var optimizerParameterSteps: [Int] { optimizer.parameterSteps }

    private func restore(from dir: URL) throws {
        try CheckpointFolder.requireResumable(dir)
        try model.loadTrainable(from: dir)
        let optURL = dir.appendingPathComponent(CheckpointFolder.optimizerFile)
        let (tensors, meta) = try SafetensorsFile.readF32WithMetadata(optURL)
        var m: [[Float]] = [], v: [[Float]] = []
        for p in model.trainableParameters {
            guard let a = tensors["\(p.name).exp_avg"], let b = tensors["\(p.name).exp_avg_sq"] else {
                throw TrainingError("\(optURL.path): no optimizer state for \(p.name)")
            }
            m.append(a.values); v.append(b.values)
        }
        let steps = meta["param_steps"].map { $0.split(separator: ",").compactMap { Int($0) } }
        try optimizer.restore(stepCount: Int(meta["step"] ?? "") ?? 0, expAvg: m, expAvgSq: v, parameterSteps: steps)
        let stateData = try Data(contentsOf: dir.appendingPathComponent("trainer_state.json"))
        guard let state = try PythonJSON.parse(stateData, file: dir.appendingPathComponent("trainer_state.json")) as? [String: Any],
              let gs = state["global_step"] as? Int else {
            throw TrainingError("\(dir.path)/trainer_state.json: missing global_step")
        }
        globalStep = gs
        epoch = jsonNumber(state["epoch"]) ?? 0
        totalFlos = jsonNumber(state["total_flos"]) ?? 0
        numTokensSeen = (state["num_input_tokens_seen"] as? Int) ?? 0
        logHistory = ((state["log_history"] as? [[String: Any]]) ?? []).map(LogRecord.init(trainerDict:))
        if let rngData = try? Data(contentsOf: dir.appendingPathComponent("rng_state.json")),
           let rng = try PythonJSON.parse(rngData, file: dir.appendingPathComponent("rng_state.json")) as? [String: Any],
           let model = rng["model"] as? [Int] {
            try self.model.restoreRandomState(model.map { UInt8(truncatingIfNeeded: $0) })
        }
        tokensAtStart = numTokensSeen
    }
}

extension LogRecord {
    /// A `log_history` entry as the Trainer writes it: the values in order, then "step".
    public var trainerDict: [String: Any] {
        var d: [String: Any] = [:]
        for (k, v) in values { d[k] = v }
        d["step"] = step
        return d
    }

    init(trainerDict d: [String: Any]) {
        step = d["step"] as? Int ?? 0
        // JSON objects lose key order: put keys back in the order the Trainer logs them.
        let order = ["loss", "grad_norm", "learning_rate", "eval_loss", "eval_runtime", "eval_samples_per_second",
                     "eval_steps_per_second", "train_runtime", "train_samples_per_second", "train_steps_per_second",
                     "total_flos", "train_loss", "entropy", "mean_token_accuracy", "num_tokens", "eval_entropy",
                     "eval_mean_token_accuracy", "eval_num_tokens", "epoch"]
        func rank(_ k: String) -> Int { order.firstIndex(of: k) ?? order.count - 1 }
        values = d.filter { $0.key != "step" }.compactMap { k, v in jsonNumber(v).map { (k, $0) } }
            .sorted { rank($0.0) != rank($1.0) ? rank($0.0) < rank($1.0) : $0.0 < $1.0 }
    }
}

/// Process resource figures for step events.
public enum ResourceUsage {
    /// Resident set size from /proc/self/statm (0 where unavailable).
    public static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = s.split(separator: " ")
        guard parts.count > 1, let pages = Int(parts[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
