import ArgumentParser
import Foundation
import Tensor

// OpenBLAS reads OPENBLAS_CORETYPE when it loads, so choosing the right kernel means re-executing
// once with the variable set, before any BLAS call (see Tensor/BLASRuntime.swift).
BLASRuntime.reexecWithBestKernelIfNeeded()
SFTDeck.main()
