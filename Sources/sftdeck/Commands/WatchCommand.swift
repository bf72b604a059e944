import ArgumentParser
import Dashboard
import Foundation

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow a run's TensorBoard event files live (any run, including one TRL writes elsewhere).",
        discussion: """
        LOGDIR is a run's output folder, its runs/ folder or an event file; a run without event files \
        (report_to: none) is followed through its train_log.jsonl. The Train screen shows the \
        curves as they grow; without a terminal (or with --headless) one log dict per logged step is \
        printed. Exit status: 0 when the run finished, 1 on unreadable files, 130 on Ctrl-C.
        """)

    @Argument(help: "Run folder, event file or train_log.jsonl to follow.")
    var logdir: String

    @Option(name: .long, help: "Seconds between reads of the event files.")
    var interval: Double = 1.0

    @Flag(name: .long, help: "Read what is there now and exit instead of following.")
    var once = false

    @OptionGroup var frontEnd: FrontEndOptions

    func run() throws {
        guard FileManager.default.fileExists(atPath: logdir) else { throw failure("\(logdir): no such file or folder", code: 2) }
        let follower = EventFileFollower(logDir: logdir, interval: interval)
        if once {
            let printer = HeadlessPrinter(format: frontEnd.jsonl ? .jsonl : .trainer)
            follower.addObserver(printer)
            do { try follower.poll() } catch { throw CLIError("\(error)") }
            return
        }
        if frontEnd.isHeadless {
            let printer = HeadlessPrinter(format: frontEnd.jsonl ? .jsonl : .trainer)
            let code = try HeadlessRunner.run(follower, printer: printer) { follower.start() }
            if code != 0 { throw ExitCode(code) }
            return
        }
        let source = LiveDataSource(configPath: nil, runRoots: [logdir])
        let app = DashboardApp(source: source, options: DashboardOptions(themeSpec: frontEnd.theme, initialScreen: .train,
                                                                          mouse: !frontEnd.noMouse, banner: "watch \(logdir)"))
        app.attach(follower)
        follower.start()
        do { try TerminalLoop.run(app) } catch { throw CLIError("\(error)") }
    }
}
