import ArgumentParser
import Foundation

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck tokenize is not built yet") }
}
