import ArgumentParser
import Foundation
import Training

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export a run to another tool.", subcommands: [ExportTRL.self])
}

struct ExportTRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trl",
        abstract: "Write a runnable TRL script, its TRL config and an accelerate config from an SFTDeck YAML.")

    @Option(name: .long, help: "SFTDeck / TRL YAML config.") var config: String
    @Option(name: .long, help: "Folder to write into (default: current folder).") var out: String = "."
    @Flag(name: .long, help: "Print the written paths as JSON.") var json = false

    func run() throws {
        let loaded: ConfigLoadResult
        do { loaded = try SFTConfig.load(path: config) } catch { throw CLIError("\(error)") }
        for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let urls: [URL]
        do { urls = try TRLExport.write(loaded.config, to: URL(fileURLWithPath: out)) } catch { throw CLIError("\(error)") }
        if json {
            print("{\"files\": [" + urls.map { "\"\($0.path)\"" }.joined(separator: ", ") + "]}")
        } else {
            for u in urls { print("wrote \(u.path)") }
            print("run: accelerate launch --config_file \(out)/accelerate_config.yaml \(out)/train_trl.py --config \(out)/trl_config.yaml")
        }
    }
}
