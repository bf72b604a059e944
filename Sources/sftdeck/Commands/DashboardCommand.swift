import ArgumentParser
import Foundation

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dashboard", abstract: "(not built yet)")
    func run() throws { throw CLIError("sftdeck dashboard is not built yet") }
}
