import ArgumentParser
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck eval is not built yet") }
}
