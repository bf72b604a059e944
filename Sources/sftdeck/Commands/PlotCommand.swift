import ArgumentParser
import Foundation

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plot", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck plot is not built yet") }
}
