import ArgumentParser
import Foundation

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck merge is not built yet") }
}
