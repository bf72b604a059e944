import ArgumentParser
import Foundation
import Tensor
import Training

// OpenBLAS reads OPENBLAS_CORETYPE when it loads, so choosing the right kernel means re-executing
// once with the variable set, before any BLAS call (see Tensor/BLASRuntime.swift).
StartupProfile.mark("main entered")
BLASRuntime.reexecWithBestKernelIfNeeded()
StartupProfile.mark("BLAS kernel checked")
SFTDeck.main()
