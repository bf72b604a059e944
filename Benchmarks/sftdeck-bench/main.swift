import Foundation
import Tensor
// Benchmarks: each suite prints its figures as ratios against a reference measured in the same run.
// Usage: sftdeck-bench SUITE [args]  (suites: see the dispatch below)
print("sftdeck-bench: OpenBLAS core \(BLASRuntime.coreName)")
let suite = CommandLine.arguments.dropFirst().first ?? ""
let suiteArgs = Array(CommandLine.arguments.dropFirst(2))

if suite == "quant" { runQuantBench() }

if suite == "parquet" { try runParquetBench(suiteArgs) }

if CommandLine.arguments.dropFirst().first == "pipeline" { do { try runPipelineBench(Array(CommandLine.arguments.dropFirst(2))) } catch { print("pipeline: \(error)"); exit(1) } }

if CommandLine.arguments.dropFirst().first == "model" { try ModelBench.run(arguments: Array(CommandLine.arguments.dropFirst(2))) }

if suite == "tensor" { runTensorBench() }
if CommandLine.arguments.dropFirst().first == "tokenizer" { runTokenizerBench() }
if CommandLine.arguments.dropFirst().first == "train" { runTrainBench() }
if suite == "train" { runTrainBench() }
if suite == "train-gemma" { runTrainGemmaBench(suiteArgs) }
if CommandLine.arguments.dropFirst().first == "model-4b-memory" { try Model4BMemoryBench.run() }
if suite == "train-gemma-memory" { runTrainGemmaMemoryBench(suiteArgs) }
