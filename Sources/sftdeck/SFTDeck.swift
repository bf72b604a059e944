import ArgumentParser
import Foundation

struct SFTDeck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sftdeck",
        abstract: "Fine-tune vision-language models (Gemma 3 and friends) with SFT, natively, from a terminal dashboard.",
        discussion: """
        With no subcommand, sftdeck opens the dashboard. Every subcommand that reports data accepts --json. \
        Configs use TRL's YAML keys (see sample-configs/), so the same file runs with `trl sft --config`. \
        Models and datasets given as hub ids resolve from the local Hugging Face cache \
        ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub); nothing is downloaded.

        Exit status: 0 done; 2 when `train` cannot start from its config (an unknown or invalid key, a \
        missing or corrupt model, dataset or checkpoint); 1 any other failure; 130 interrupted.
        """,
        subcommands: [
            TrainCommand.self, InspectCommand.self, TokenizeCommand.self, EvalCommand.self,
            GenerateCommand.self, MergeCommand.self, WeightsCommand.self, WatchCommand.self,
            PlotCommand.self, ExportCommand.self, DemoCommand.self, DashboardCommand.self, BLASKernelCommand.self,
        ],
        defaultSubcommand: DashboardCommand.self
    )
}

/// A failure the user can act on: printed as one line, exit code 1 (or the given code).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32 = 1
    init(_ description: String, exitCode: Int32 = 1) { self.description = description; self.exitCode = exitCode }
}
