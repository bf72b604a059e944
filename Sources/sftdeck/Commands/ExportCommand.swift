import ArgumentParser
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck export is not built yet") }
}
