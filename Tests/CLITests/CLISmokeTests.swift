import XCTest

/// Runs the built `sftdeck` binary as a user would.
final class CLISmokeTests: XCTestCase {
    func testHelpExplainsSubcommands() throws {
        let out = try runSFTDeck(["--help"])
        XCTAssertTrue(out.contains("train"), out)
    }

    /// With the right kernel already chosen (OPENBLAS_CORETYPE given) only the thread timeout is left to
    /// set: the binary restarts OpenBLAS's threads in-process, with no second exec, and the library runs
    /// with the timeout; a user's own timeout is left alone.
    func testThreadTimeoutIsSetWithoutReexecuting() throws {
        guard ProcessInfo.processInfo.activeProcessorCount > 1 else { throw XCTSkip("one core: OpenBLAS runs no threads") }
        var env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_CORETYPE"] == nil {
            env["OPENBLAS_CORETYPE"] = try runSFTDeck(["blas-kernel", "--current"]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for k in ["OPENBLAS_THREAD_TIMEOUT", "SFTDECK_BLAS_THREADS", "SFTDECK_BLAS_REEXEC"] { env[k] = nil }
        var probe = env
        probe["OPENBLAS_THREAD_TIMEOUT"] = "7"
        guard try runSFTDeck(["blas-kernel", "--threads"], environment: probe).contains("openblas_thread_timeout 7") else {
            throw XCTSkip("this OpenBLAS build (not the pthread one?) reports no thread timeout")
        }
        env["SFTDECK_PROFILE_STARTUP"] = "1"
        let out = try runSFTDeck(["blas-kernel", "--threads"], environment: env)
        XCTAssertEqual(out.components(separatedBy: "startup: main entered").count - 1, 1, "one process start:\n\(out)")
        XCTAssertTrue(out.contains("openblas_thread_timeout 4"), out)
        XCTAssertTrue(out.contains("OpenBLAS's own"), out)
        env["OPENBLAS_THREAD_TIMEOUT"] = "7"
        let own = try runSFTDeck(["blas-kernel", "--threads"], environment: env)
        XCTAssertTrue(own.contains("openblas_thread_timeout 7"), own)
    }
}

/// A fresh, empty temporary folder for one test (`sftdeck-cli-NAME-PID`).
func tmp(_ name: String) -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-cli-\(name)-\(getpid())")
    try? FileManager.default.removeItem(at: u)
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

func sftdeckBinary() -> URL {
    // Tests run from .build/<triple>/debug; the executable sits beside the test bundle.
    var dir = Bundle.main.bundleURL
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("sftdeck")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: ".build/debug/sftdeck")
}

@discardableResult
func runSFTDeck(_ args: [String], environment: [String: String]? = nil, expectStatus: Int32 = 0) throws -> String {
    let p = Process()
    p.executableURL = sftdeckBinary()
    p.arguments = args
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let out = String(decoding: data, as: UTF8.self)
    XCTAssertEqual(p.terminationStatus, expectStatus, out)
    return out
}
