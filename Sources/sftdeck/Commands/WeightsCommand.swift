import ArgumentParser
import Foundation

struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "weights", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck weights is not built yet") }
}
