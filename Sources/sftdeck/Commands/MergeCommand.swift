import ArgumentParser
import Foundation
import Training

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA adapter into its base model and write merged safetensors (PEFT merge_and_unload).")

    @Option(name: .long, help: "Base model folder (config.json + safetensors).") var model: String
    @Option(name: .long, help: "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).") var adapter: String
    @Option(name: .long, help: "Output folder.") var out: String
    @Flag(name: .long, help: "Print a JSON summary.") var json = false

    func run() throws {
        let r: LoRAMerge.Report
        do {
            let modelDir = try RunSetup.resolveModelDir(model)
            r = try LoRAMerge.merge(model: modelDir, adapter: URL(fileURLWithPath: adapter), out: URL(fileURLWithPath: out))
        } catch { throw CLIError("\(error)") }
        if json {
            print("{\"merged_modules\": \(r.merged), \"replaced_tensors\": \(r.replaced), \"file\": \"\(r.written.path)\"}")
        } else {
            print("merged \(r.merged) LoRA modules, replaced \(r.replaced) modules_to_save tensors → \(r.written.path)")
        }
    }
}
