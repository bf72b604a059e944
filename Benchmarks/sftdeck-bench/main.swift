import Foundation
import Tensor
// Benchmarks: each suite prints its figures as ratios against a reference measured in the same run
// (OpenBLAS sgemm peak, memory bandwidth, HF tokenizers, pyarrow, PyTorch/TRL via /work-style venvs).
// Usage: sftdeck-bench SUITE [args]
print("sftdeck-bench: OpenBLAS core \(BLASRuntime.coreName); \(BLASThreads.summary)")
let suite = CommandLine.arguments.dropFirst().first ?? ""
let suiteArgs = Array(CommandLine.arguments.dropFirst(2))
let suites = ["tensor", "quant", "tokenizer", "parquet", "pipeline", "model", "model-4b-memory", "qlora-4b-memory", "train", "train-gemma", "train-gemma-memory", "bf16", "fastmath"]

do {
    switch suite {
    case "tensor": runTensorBench()
    case "quant": runQuantBench()
    case "tokenizer": runTokenizerBench()
    case "parquet": try runParquetBench(suiteArgs)
    case "pipeline": try runPipelineBench(suiteArgs)
    case "model": try ModelBench.run(arguments: suiteArgs)
    case "model-4b-memory": try Model4BMemoryBench.run()
    case "qlora-4b-memory": try runQLoRA4BMemoryBench(suiteArgs)
    case "train": runTrainBench()
    case "train-gemma": runTrainGemmaBench(suiteArgs)
    case "train-gemma-memory": runTrainGemmaMemoryBench(suiteArgs)
    case "bf16": try runBF16Bench(suiteArgs)
    case "fastmath": runFastMathBench()
    default:
        FileHandle.standardError.write(Data("usage: sftdeck-bench SUITE [args]; suites: \(suites.joined(separator: ", "))\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("sftdeck-bench \(suite): \(error)\n".utf8))
    exit(1)
}
