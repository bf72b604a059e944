import Foundation
import Tensor
// Benchmarks: each suite prints its figures as ratios against a reference measured in the same run.
print("sftdeck-bench: OpenBLAS core \(BLASRuntime.coreName)")

if CommandLine.arguments.dropFirst().first == "quant" { runQuantBench() }
if CommandLine.arguments.dropFirst().first == "train" { runTrainBench() }
