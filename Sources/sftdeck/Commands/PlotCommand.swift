import ArgumentParser
import Dashboard
import Foundation

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Render training curves (loss, learning rate, grad norm) to a PNG.",
        discussion: """
        Each LOGDIR is a run folder (trainer_state.json or TensorBoard event files, searched in it and \
        its runs/ and checkpoint-N/ subfolders, else its train_log.jsonl) or a folder of such runs; several \
        runs are overlaid.
        """)

    @Argument(help: "Run folders (or folders of runs).")
    var logdirs: [String]

    @Option(name: .shortAndLong, help: "Output PNG path.")
    var output: String = "curves.png"

    @Option(name: .long, help: "TensorBoard smoothing weight for the loss (0 = raw only, up to 0.99).")
    var smoothing: Double = 0.6

    @Option(name: .long, help: "Image size as WIDTHxHEIGHT.")
    var size: String = "1200x900"

    @Option(name: .long, help: "Theme for the colours (light by default).")
    var theme: String = "light"

    @Flag(name: .long, help: "Print what was plotted as JSON.")
    var json = false

    func run() throws {
        let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 200, parts[1] >= 150, parts[0] <= 8000, parts[1] <= 8000 else {
            throw failure("--size must be WIDTHxHEIGHT between 200x150 and 8000x8000 (got \(size))", code: 2)
        }
        guard (0...0.999).contains(smoothing) else { throw failure("--smoothing must be in [0, 0.999] (got \(smoothing))", code: 2) }
        let scanner = RunsScanner(readEvents: LiveDataSource.readEventFile)
        var runs: [RunSummary] = []
        for d in logdirs {
            guard FileManager.default.fileExists(atPath: d) else { throw failure("\(d): no such folder", code: 2) }
            if let r = scanner.load(d) { runs.append(r) } else { runs += scanner.scan(roots: [d]) }
        }
        guard !runs.isEmpty else { throw CLIError("\(logdirs.joined(separator: ", ")): no trainer_state.json, TensorBoard event files or train_log.jsonl found") }
        let (t, err) = Theme.load(theme)
        if let err { FileHandle.standardError.write(Data((err + "\n").utf8)) }
        let plot = CurvePlot(runs: runs, smoothing: smoothing, theme: t)
        do { try plot.render(width: parts[0], height: parts[1]).writePNG(to: output) } catch { throw CLIError("\(error)") }
        if json {
            let items = runs.map { r in "{\"name\": \"\(r.name)\", \"path\": \"\(r.path)\", \"source\": \"\(r.source)\", \"points\": \(r.scalars["loss"]?.count ?? 0)}" }
            print("{\"output\": \"\(output)\", \"runs\": [\(items.joined(separator: ", "))]}")
        } else {
            print("wrote \(output): \(runs.count) run\(runs.count == 1 ? "" : "s") (\(runs.map(\.name).joined(separator: ", ")))")
        }
    }
}
