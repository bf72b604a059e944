import ArgumentParser
import Dashboard
import Foundation
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune with SFT from a YAML config in TRL's keys (the dashboard unless --headless).",
        discussion: """
        The config uses `trl sft --config` keys with TRL's defaults (see sample-configs/). Outputs land in \
        output_dir like the HF Trainer's: checkpoint-N/, train_log.jsonl, trainer_state.json, README.md, \
        and runs/<date>_<host>/ TensorBoard events when report_to is tensorboard or all (TRL's default none writes none). Ctrl-C stops after saving a checkpoint; resume_from_checkpoint: true \
        continues from the latest one. Exit status: 0 finished; 2 when the run cannot start (a bad config, a missing or corrupt model, dataset or checkpoint); 1 when it fails once training has started; 130 stopped early.
        """)

    @Option(name: .long, help: "YAML config file (TRL keys).") var config: String
    @Flag(name: .long, help: "Print Trainer-style log lines instead of opening the dashboard (automatic without a terminal).")
    var headless = false
    @Flag(name: .long, help: "With --headless: one JSON object per engine event.") var jsonl = false
    @Option(name: .long, help: "Override output_dir.") var outputDir: String?
    @Option(name: .long, help: "Override max_steps.") var maxSteps: Int?
    @Flag(name: .long, help: "Print start-up phase timings (wall and CPU seconds) to stderr, up to the first optimizer step (also SFTDECK_PROFILE_STARTUP=1).")
    var profileStartup = false

    func run() throws {
        if profileStartup { StartupProfile.enabled = true }
        StartupProfile.mark("arguments parsed")
        let loaded: ConfigLoadResult
        do { loaded = try SFTConfig.load(path: config) } catch { throw CLIError("\(error)", exitCode: 2) }
        var cfg = loaded.config
        if let outputDir { cfg.outputDir = outputDir }
        if let maxSteps { cfg.maxSteps = maxSteps }
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        StartupProfile.mark("YAML config parsed")
        let engine: TrainingEngine
        do { engine = try ExtractionProgressLine.around { try TrainingRun.makeEngine(config: cfg) } } catch { throw CLIError("\(error)", exitCode: 2) }

        if StartupProfile.enabled { engine.addObserver(StepMarker()) }

        let interactive = isatty(STDOUT_FILENO) != 0 && isatty(STDIN_FILENO) != 0
        if headless || jsonl || !interactive {
            let printer = HeadlessPrinter(format: jsonl ? .jsonl : .trainer)
            let code = try HeadlessRunner.run(engine, printer: printer, failedToStart: 2) { engine.start() }
            if code != 0 { throw ExitCode(code) }
            return
        }
        let app = ExtractionProgressLine.around {
            DashboardApp(source: LiveDataSource(configPath: config, runRoots: [cfg.resolvedOutputDir]),
                         options: DashboardOptions(themeSpec: cfg.theme, initialScreen: .train))
        }
        let started = StartedFlag()
        engine.addObserver(started)
        app.attach(engine)
        engine.start()
        do { try TerminalLoop.run(app) } catch { throw CLIError("\(error)") }
        engine.wait()
        // As headless: 2 when the run never started (its model, data or checkpoint could not be loaded).
        let code = HeadlessPrinter.exitCode(for: engine.state, started: started.value, failedToStart: 2)
        if code != 0 { throw ExitCode(code) }
    }
}

/// Marks the end of every optimizer step for `--profile-startup` (the benchmark reads tokens/s from them).
/// Whether the engine emitted `started` (its model and data loaded).
private final class StartedFlag: EngineObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var started = false
    var value: Bool { lock.lock(); defer { lock.unlock() }; return started }
    func engine(didEmit event: EngineEvent) {
        if case .started = event { lock.lock(); started = true; lock.unlock() }
    }
}

private final class StepMarker: EngineObserver, @unchecked Sendable {
    func engine(didEmit event: EngineEvent) {
        if case .step(let m) = event { StartupProfile.mark("optimizer step \(m.step)") }
    }
}
