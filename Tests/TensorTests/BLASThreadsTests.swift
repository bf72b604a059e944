import Foundation
import XCTest
@testable import Tensor

/// `sgemm` splits large products across cores itself (OpenBLAS single-threaded).
/// OpenBLAS's Zen/Haswell kernels do not give a column the same bits at every position of a panel (a
/// product of n columns and the first 512 of them differ in ~4% of elements, by an ulp or two), so a split
/// product is not bit-identical to one call — as OpenBLAS's own threading is not either. What must hold:
/// every element within fp32 GEMM rounding of the exact (Double) product, the same bits on every run, and
/// no element skipped or written twice (beta = 1 accumulates exactly once).
final class BLASThreadsTests: XCTestCase {
    /// sftdeck re-executes itself with OPENBLAS_THREAD_TIMEOUT (and the kernel) once, never twice, and
    /// never against the user's own choice.
    func testReexecutionEnvironment() {
        let zen = Set(["avx2", "fma"])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Zen", cpuFlags: zen, coreCount: 2, environment: [:]),
                       ["OPENBLAS_THREAD_TIMEOUT": "4"])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Prescott", cpuFlags: zen, coreCount: 2, environment: [:]),
                       ["OPENBLAS_THREAD_TIMEOUT": "4", "OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Zen", cpuFlags: zen, coreCount: 1, environment: [:]), [:])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Zen", cpuFlags: zen, coreCount: 2,
                                                    environment: ["OPENBLAS_THREAD_TIMEOUT": "28"]), [:])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Zen", cpuFlags: zen, coreCount: 2,
                                                    environment: [BLASThreads.environmentVariable: "split"]), [:])
        XCTAssertEqual(BLASRuntime.environmentToSet(coreName: "Prescott", cpuFlags: zen, coreCount: 2,
                                                    environment: [BLASRuntime.reexecMarker: "1"]), [:])
    }

    func testOpenBLASRunsOneThreadAndProductsAreSplit() throws {
        let env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_THREAD_TIMEOUT"] != nil || env[BLASThreads.environmentVariable] == "openblas" {
            XCTAssertFalse(BLASThreads.splitBySFTDeck)
            throw XCTSkip("OpenBLAS threads the products in this environment")
        }
        XCTAssertTrue(BLASThreads.splitBySFTDeck)
        XCTAssertEqual(BLASRuntime.threadCount, 1)
        if Parallel.coreCount > 1 { XCTAssertGreaterThan(BLASThreads.count(m: 512, n: 2048, k: 512), 1) }
        XCTAssertEqual(BLASThreads.count(m: 16, n: 16, k: 16), 1)
    }

    func testSplitProductsMatchTheExactProductAndRepeat() {
        var rng = SystemRandomNumberGenerator()
        // (m, n, k): wide and tall, sizes that are not multiples of 16, both transposes, beta 0 and 1
        for (m, n, k) in [(100, 701, 40), (700, 48, 41), (257, 257, 33)] {
            for (tA, tB, beta) in [(false, true, Float(0)), (false, false, 1), (true, false, 0), (true, true, 1)] {
                do {
                    let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let c0 = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let lda = tA ? m : k, ldb = tB ? k : n
                    func run() -> [Float] {
                        var c = c0
                        c.withUnsafeMutableBufferPointer { p in
                            sgemm(transposeA: tA, transposeB: tB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb,
                                  beta: beta, c: p.baseAddress!, ldc: n)
                        }
                        return c
                    }
                    let first = run(), second = run()
                    XCTAssertEqual(first, second, "m \(m) n \(n) k \(k): two runs differ")
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<n {
                            var exact = Double(beta) * Double(c0[i * n + j]), scale = abs(exact)
                            for l in 0..<k {
                                let x = Double(tA ? a[l * lda + i] : a[i * lda + l]), y = Double(tB ? b[j * ldb + l] : b[l * ldb + j])
                                exact += 0.75 * x * y; scale += abs(0.75 * x * y)
                            }
                            // fp32 GEMM error bound: (k + 2)·ε·Σ|terms|
                            worst = max(worst, abs(Double(first[i * n + j]) - exact) / (Double(k + 2) * 0x1p-24 * scale))
                        }
                    }
                    XCTAssertLessThanOrEqual(worst, 1, "m \(m) n \(n) k \(k) tA \(tA) tB \(tB) beta \(beta): error \(worst) of the fp32 bound")
                }
            }
        }
    }
}
