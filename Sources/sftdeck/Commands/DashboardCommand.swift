import ArgumentParser
import Dashboard
import Foundation
import Training

/// Options every front-end command shares: theme, headless output.
struct FrontEndOptions: ParsableArguments {
    @Option(name: .long, help: "Theme: dark, light, high-contrast, or a path to a .toml theme file (default: the config's `theme`, else dark).")
    var theme: String?

    @Flag(name: .long, help: "Line-oriented output instead of the dashboard (automatic when standard output is not a terminal).")
    var headless = false

    @Flag(name: .long, help: "With --headless: one JSON object per engine event on standard output.")
    var jsonl = false

    @Flag(name: .long, help: "Do not capture the mouse (keeps the terminal's own text selection).")
    var noMouse = false

    /// Headless when asked, when asked for JSONL, or when stdout or stdin is not a terminal.
    var isHeadless: Bool { headless || jsonl || isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0 }
}

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Open the terminal dashboard (the default command).",
        discussion: """
        Screens: 1 Datasets, 2 Inspector, 3 Config, 4 Train, 5 Runs; ? shows every key. \
        Without a terminal (or with --headless) it trains the --config run and prints progress lines \
        like the HF Trainer's. Exit status: 0 finished, 1 failed, 2 bad arguments or config, \
        130 stopped early (Ctrl-C stops after saving a checkpoint).
        """)

    @Option(name: .long, help: "A TRL-style YAML config (as `trl sft --config`).")
    var config: String?

    @Option(name: .long, help: "A folder to look for past runs in (repeatable; the config's output_dir is always searched).")
    var runs: [String] = []

    @Option(name: .long, help: "Another dataset to list on the Datasets screen: a folder, a file or a hub id (repeatable).")
    var dataset: [String] = []

    @OptionGroup var frontEnd: FrontEndOptions

    func run() throws {
        let source = LiveDataSource(configPath: config, runRoots: runs)
        source.extraDatasets = dataset
        if frontEnd.isHeadless {
            guard config != nil else {
                throw failure("no terminal: the dashboard needs one; to train without it pass --config FILE (with --headless)", code: 2)
            }
            for m in source.configMessages { FileHandle.standardError.write(Data("warning: \(m)\n".utf8)) }
            let engine: TrainingEngine
            do { engine = try ExtractionProgressLine.around { try TrainingRun.makeEngine(config: try source.runConfig(nil)) } } catch { throw failure("\(error)", code: 2) }
            let printer = HeadlessPrinter(format: frontEnd.jsonl ? .jsonl : .trainer)
            let code = try HeadlessRunner.run(engine, printer: printer, failedToStart: 2) { engine.start() }
            if code != 0 { throw ExitCode(code) }
            return
        }
        // The app opens datasets on background queues (MMIU zips unpack there, with progress on the Datasets
        // screen), so building it does not wait for them.
        let app = DashboardApp(source: source, options: DashboardOptions(themeSpec: frontEnd.theme ?? source.config?.theme,
                                                                         initialScreen: config == nil ? .datasets : .config,
                                                                         mouse: !frontEnd.noMouse))
        if let m = source.configMessages.first { app.setStatus(source.config == nil ? .error : .warning, m) }
        do { try TerminalLoop.run(app) } catch { throw CLIError("\(error)") }
    }
}

/// Prints the failure as ArgumentParser does (`Error: ...` on stderr) and returns the exit code to
/// throw, so a failure keeps its meaningful status (2 for bad input, 130 interrupted).
func failure(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(code)
}
