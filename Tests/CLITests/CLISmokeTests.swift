import XCTest

/// Runs the built `sftdeck` binary as a user would.
final class CLISmokeTests: XCTestCase {
    func testHelpExplainsSubcommands() throws {
        let out = try runSFTDeck(["--help"])
        XCTAssertTrue(out.contains("train"), out)
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
