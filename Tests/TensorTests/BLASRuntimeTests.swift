import XCTest
@testable import Tensor

final class BLASRuntimeTests: XCTestCase {
    let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]

    func testWeakKernelIsUpgradedToWhatTheCPUSupports() {
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: avx512, environment: [:]), "SkylakeX")
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: avx2, environment: [:]), "Haswell")
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Nehalem", cpuFlags: avx2, environment: [:]), "Haswell")
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Core2", cpuFlags: avx512, environment: [:]), "SkylakeX")
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Haswell", cpuFlags: avx512, environment: [:]), "SkylakeX")
    }

    func testGoodKernelsAndOldCPUsAreLeftAlone() {
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Zen", cpuFlags: avx2, environment: [:]), "this machine: Zen on AVX2")
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Haswell", cpuFlags: avx2, environment: [:]))
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "SkylakeX", cpuFlags: avx512, environment: [:]))
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: ["sse3", "avx"], environment: [:]),
                     "no AVX2+FMA: never force a kernel the CPU lacks")
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: ["avx2"], environment: [:]), "AVX2 without FMA")
        XCTAssertEqual(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: ["avx2", "fma", "avx512f"], environment: [:]),
                       "Haswell", "AVX-512F alone (Knights Landing) is not Skylake-X level")
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: [], environment: [:]), "unreadable cpuinfo")
    }

    func testUserSettingAndMarkerWin() {
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: avx512, environment: ["OPENBLAS_CORETYPE": "Haswell"]))
        XCTAssertNil(BLASRuntime.kernelToForce(coreName: "Prescott", cpuFlags: avx512, environment: [BLASRuntime.reexecMarker: "1"]))
    }

    func testCPUFlagsParsing() throws {
        let path = NSTemporaryDirectory() + "cpuinfo-\(getpid())"
        try "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse3 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(BLASRuntime.cpuFlags(cpuinfo: path), ["fpu", "sse3", "avx2", "fma"])
        XCTAssertEqual(BLASRuntime.cpuFlags(cpuinfo: "/nonexistent/cpuinfo"), [])
        XCTAssertFalse(BLASRuntime.coreName.isEmpty)
    }

    /// The tests must measure and compute on the kernel a user of `sftdeck` gets (issue 2). XCTest cannot
    /// re-execute itself, so the test command must put OPENBLAS_CORETYPE in the environment where the
    /// binary would re-execute; this fails when it did not.
    func testTestsRunOnTheKernelAUserGets() {
        if let better = BLASRuntime.recommendedKernel() {
            XCTFail("tests run on OpenBLAS kernel \(BLASRuntime.coreName) but sftdeck would use \(better): set OPENBLAS_CORETYPE=\(better) in the test command")
        }
    }
}
