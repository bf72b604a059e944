import ArgumentParser
import Foundation
import Tensor

/// `sftdeck blas-kernel`: the OpenBLAS kernel sftdeck runs on, and the OPENBLAS_CORETYPE it forced to
/// get there (empty when none was needed). Scripts/test.sh uses it so the tests run on the kernel a
/// user gets, since a test process cannot re-execute itself.
struct BLASKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas-kernel",
        abstract: "Print the OPENBLAS_CORETYPE sftdeck forces on this CPU (empty if none).",
        shouldDisplay: false)

    @Flag(help: "Print the kernel OpenBLAS is running instead.")
    var current = false

    @Flag(help: "Print who threads the matrix products, and OpenBLAS's thread timeout (log2 cycles).")
    var threads = false

    func run() throws {
        if current { print(BLASRuntime.coreName); return }
        if threads {
            print(BLASThreads.summary)
            print("openblas_thread_timeout \(BLASRuntime.threadTimeoutInEffect.map(String.init) ?? "unknown")")
            return
        }
        // main() already re-executed with the better kernel if one was needed; the marker says so.
        let env = ProcessInfo.processInfo.environment
        print(env[BLASRuntime.reexecMarker] != nil ? (env["OPENBLAS_CORETYPE"] ?? "") : "")
    }
}
