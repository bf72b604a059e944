import ArgumentParser
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck demo is not built yet") }
}
