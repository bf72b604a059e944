import ArgumentParser
import Foundation

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck watch is not built yet") }
}
