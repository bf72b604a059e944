import ArgumentParser
import Foundation

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck generate is not built yet") }
}
