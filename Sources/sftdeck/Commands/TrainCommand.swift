import ArgumentParser
import Dashboard
import Foundation
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune with SFT from a YAML config in TRL's keys (the dashboard unless --headless).",
        discussion: """
        The config uses `trl sft --config` keys with TRL's defaults (see sample-configs/). Outputs land in
        output_dir like the HF Trainer's: checkpoint-N/, runs/<date>_<host>/ TensorBoard events,
        train_log.jsonl, README.md. Ctrl-C stops after saving a checkpoint; resume_from_checkpoint: true
        continues from the latest one.
        """)

    @Option(name: .long, help: "YAML config file (TRL keys).") var config: String
    @Flag(name: .long, help: "Print Trainer-style log lines instead of opening the dashboard.") var headless = false
    @Flag(name: .long, help: "With --headless: one JSON object per event.") var json = false
    @Option(name: .long, help: "Override output_dir.") var outputDir: String?
    @Option(name: .long, help: "Override max_steps.") var maxSteps: Int?

    func run() throws {
        let loaded: ConfigLoadResult
        do { loaded = try SFTConfig.load(path: config) } catch { throw CLIError("\(error)") }
        var cfg = loaded.config
        if let outputDir { cfg.outputDir = outputDir }
        if let maxSteps { cfg.maxSteps = maxSteps }
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let outURL = URL(fileURLWithPath: cfg.resolvedOutputDir)
        let resume: URL?
        do { resume = try RunWriter.resolveResume(cfg.resumeFromCheckpoint, outputDir: outURL) } catch { throw CLIError("\(error)") }
        let runConfig = cfg
        let engine = TrainingEngine(resumeFrom: resume) {
            let prepared = try RunSetup.prepare(runConfig)
            let t = try Trainer(config: runConfig, model: prepared.model, train: prepared.train, eval: prepared.eval)
            t.writer = RunWriter(outputDir: outURL)
            for n in prepared.notes { t.emit(.message(level: .info, text: n)) }
            return t
        }
        if !headless && !json {
            // The dashboard attaches to runs through `sftdeck` (DashboardCommand); here the run prints.
            FileHandle.standardError.write(Data("note: the training dashboard opens with `sftdeck` (its Train screen); printing log lines here\n".utf8))
        }
        let printer = HeadlessPrinter(format: json ? .jsonl : .trainer)
        let code = try HeadlessRunner.run(engine, printer: printer) { engine.start() }
        if code != 0 { throw ExitCode(code) }
    }
}

