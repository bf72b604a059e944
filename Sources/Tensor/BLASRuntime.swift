import COpenBLAS
import Foundation

/// Which OpenBLAS kernel runs, and how to get the right one.
public enum BLASRuntime {
    /// The kernel OpenBLAS chose (`openblas_get_corename()`), e.g. "Haswell", "SkylakeX", "Prescott".
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Placeholder until the Tensor work lands: does nothing yet.
    public static func reexecWithBestKernelIfNeeded() {}
}
