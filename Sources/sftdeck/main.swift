import ArgumentParser
import Foundation
import Tensor
import Training

// OpenBLAS reads OPENBLAS_CORETYPE when it loads, so choosing the right kernel means re-executing
// once with the variable set, before any BLAS call (see Tensor/BLASRuntime.swift).
StartupProfile.mark("main entered")
BLASRuntime.reexecWithBestKernelIfNeeded()
StartupProfile.mark("BLAS kernel checked")
// ArgumentParser's `main()` maps every error it does not know to status 1; a CLIError carries its own
// status (2: the input is bad — config, dataset, model files), so it is printed and exited here.
do {
    var command = try SFTDeck.parseAsRoot()
    try command.run()
} catch let error as CLIError {
    FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
    exit(error.exitCode)
} catch {
    SFTDeck.exit(withError: error)
}
