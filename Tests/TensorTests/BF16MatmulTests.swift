import COpenBLAS
import Foundation
import XCTest
@testable import Tensor

/// bf16 products (Sources/Tensor/BF16Matmul.swift). Fixture: Scripts/fixtures/gen_bf16.py (torch 2.15).
final class BF16MatmulTests: XCTestCase {
    // MARK: rounding

    /// fp32 -> bf16 against torch's tensor conversion on edge values: ties to even and odd, one ulp either
    /// side of a tie, ±0, ±inf, subnormals (some round up to the smallest normal), the largest finite
    /// values (some round to inf), random magnitudes: bit-exact. NaN: torch 2.15's conversion gives 0xFFFF
    /// (vectorised and one-element alike), c10::BFloat16 and SFTDeck give the canonical 0x7FC0; both NaN.
    func testRoundingMatchesTorchBitForBit() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
            .appendingPathComponent("bf16/rounding.json")
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: [Int]])
        let input = try XCTUnwrap(o["input_bits"]), vec = try XCTUnwrap(o["torch_vectorized_bits"])
        let scalar = try XCTUnwrap(o["torch_scalar_bits"])
        XCTAssertEqual(input.count, vec.count); XCTAssertEqual(input.count, scalar.count)
        var nans = 0, ties = 0, subnormals = 0
        for i in input.indices {
            let x = Float(bitPattern: UInt32(input[i]))
            let ours = bf16Bits(fromFloat: x)
            if x.isNaN {
                nans += 1
                XCTAssertTrue(float(fromBF16Bits: ours).isNaN && float(fromBF16Bits: UInt16(vec[i])).isNaN
                              && float(fromBF16Bits: UInt16(scalar[i])).isNaN, "NaN \(String(input[i], radix: 16))")
                XCTAssertTrue(roundedToBF16(x).isNaN)
                continue
            }
            if input[i] & 0xFFFF == 0x8000 { ties += 1 }
            if x != 0 && !x.isNormal { subnormals += 1 }
            XCTAssertEqual(Int(ours), vec[i], "\(String(input[i], radix: 16)) (\(x)): ours \(String(ours, radix: 16)) torch \(String(vec[i], radix: 16))")
            XCTAssertEqual(Int(ours), scalar[i], "\(String(input[i], radix: 16)) scalar path")
            XCTAssertEqual(roundedToBF16(x).bitPattern, UInt32(vec[i]) << 16)
        }
        XCTAssertGreaterThanOrEqual(nans, 8); XCTAssertGreaterThanOrEqual(ties, 12); XCTAssertGreaterThanOrEqual(subnormals, 10)
    }

    // MARK: emulated product

    /// A [rows, cols] block with row stride ld (extra junk columns catch stride mistakes).
    func block(_ rows: Int, _ cols: Int, ld: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<(rows * ld)).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 700_000
        }
    }

    /// Emulated bf16 products equal a double-precision product of the bf16-rounded operands, for every
    /// transpose combination, strided operands, alpha/beta, with and without output rounding.
    /// Tolerance: fp32 summation of k exact products, |err| ≤ k·2⁻²⁴·Σ|aᵢbᵢ|·|alpha| (+ one bf16 half-ulp
    /// of the result when the output is rounded, where a near-tie may round either way).
    func testEmulatedEqualsDoubleProductOfRoundedOperands() throws {
        let ws = BF16Workspace()
        let m = 5, n = 7, k = 33
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for (alpha, beta, roundOut) in [(Float(1), Float(0), false), (0.75, 1, false), (1, 0, true), (-2, 1, true), (1, 0.5, true)] {
                let aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n
                let lda = aCols + 3, ldb = bCols + 1, ldc = n + 2
                let a = block(aRows, aCols, ld: lda, seed: 1), b = block(bRows, bCols, ld: ldb, seed: 2)
                let c0 = block(m, n, ld: ldc, seed: 3)
                var c = c0
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    bf16Gemm(.emulated, transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress!, lda: lda,
                             b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc, roundOutput: roundOut, workspace: ws)
                } } }
                var maxErr = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0, absSum = 0.0
                        for p in 0..<k {
                            let av = Double(roundedToBF16(ta ? a[p * lda + i] : a[i * lda + p]))
                            let bv = Double(roundedToBF16(tb ? b[j * ldb + p] : b[p * ldb + j]))
                            sum += av * bv; absSum += abs(av * bv)
                        }
                        var prod = Double(alpha) * sum
                        var tol = Double(k) * pow(2, -24) * absSum * Double(abs(alpha))
                        if roundOut {
                            let r = Double(roundedToBF16(Float(prod)))
                            tol += abs(r) * pow(2, -8) + 1e-30   // half a bf16 ulp, either side of a near-tie
                            prod = r
                        }
                        let want = Double(beta) * Double(c0[i * ldc + j]) + prod
                        let got = Double(c[i * ldc + j])
                        tol += abs(want) * 1e-7
                        XCTAssertEqual(got, want, accuracy: tol, "ta \(ta) tb \(tb) α \(alpha) β \(beta) round \(roundOut) [\(i), \(j)]")
                        maxErr = max(maxErr, abs(got - want) / max(1e-30, tol))
                        if roundOut && beta == 0 {   // the stored value is itself a bf16 number
                            XCTAssertEqual(c[i * ldc + j].bitPattern & 0xFFFF, 0)
                        }
                    }
                    for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding untouched") }
                }
                XCTAssertLessThanOrEqual(maxErr, 1)
            }
        }
    }

    /// The emulated path really rounds: on operands that are not bf16 numbers it differs from fp32 sgemm
    /// by about bf16's precision (2⁻⁸ relative), and on bf16 operands it equals fp32 sgemm exactly.
    func testEmulatedRoundsTheOperands() {
        let ws = BF16Workspace()
        let m = 4, n = 6, k = 16
        let a = block(m, k, ld: k, seed: 7), b = block(k, n, ld: n, seed: 8)
        func run(_ mode: BF16MatmulMode, _ a: [Float], _ b: [Float]) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            bf16Gemm(mode, transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n,
                     c: &c, ldc: n, workspace: ws)
            return c
        }
        let e = run(.emulated, a, b), f = run(.fp32, a, b)
        let scale = f.map(abs).max()!
        let diff = zip(e, f).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(diff / scale, 1e-4)
        XCTAssertLessThan(diff / scale, 3e-2)
        let ar = a.map(roundedToBF16), br = b.map(roundedToBF16)
        XCTAssertEqual(run(.emulated, ar, br), run(.fp32, ar, br))
    }

    /// Native cblas_sbgemm (where the loaded BLAS exports it) equals the emulation up to fp32 summation
    /// order: |native − emulated| ≤ k·2⁻²³·Σ|aᵢbᵢ|.
    func testNativeSbgemmMatchesEmulated() throws {
        guard BF16Native.sbgemm != nil else {
            throw XCTSkip("cblas_sbgemm unavailable: \(BF16Capabilities.current.unavailableReason ?? "not exported")")
        }
        let ws = BF16Workspace()
        let m = 9, n = 11, k = 40
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n
            let a = block(aRows, aCols, ld: aCols, seed: 4), b = block(bRows, bCols, ld: bCols, seed: 5)
            var cN = [Float](repeating: 1, count: m * n), cE = cN
            bf16Gemm(.sbgemm, transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: aCols, b: b, ldb: bCols,
                     beta: 1, c: &cN, ldc: n, workspace: ws)
            bf16Gemm(.emulated, transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: aCols, b: b, ldb: bCols,
                     beta: 1, c: &cE, ldc: n, workspace: ws)
            let absBound = Float(k) * 2.5 * 2.5 * 0.5 * Float(k) * pow(2, -23)
            for i in 0..<(m * n) { XCTAssertEqual(cN[i], cE[i], accuracy: absBound, "ta \(ta) tb \(tb) \(i)") }
        }
    }

    /// The `.sbgemm` plumbing (bf16 bit packing of strided operands, transposes, leading dimensions,
    /// alpha/beta, output rounding) through a reference implementation of the cblas_sbgemm contract, so it
    /// is checked on machines whose BLAS lacks the symbol: equal to `.emulated` within k·2⁻²³·Σ|aᵢbᵢ|.
    func testSbgemmPathWithReferenceImplementation() {
        let reference: CblasSbgemmFunction = { order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
            precondition(order == CblasRowMajor)
            let M = Int(m), N = Int(n), K = Int(k)
            for i in 0..<M {
                for j in 0..<N {
                    var s: Float = 0
                    for p in 0..<K {
                        let av = float(fromBF16Bits: ta == CblasTrans ? a![p * Int(lda) + i] : a![i * Int(lda) + p])
                        let bv = float(fromBF16Bits: tb == CblasTrans ? b![j * Int(ldb) + p] : b![p * Int(ldb) + j])
                        s += av * bv
                    }
                    let idx = i * Int(ldc) + j
                    c![idx] = alpha * s + (beta == 0 ? 0 : beta * c![idx])
                }
            }
        }
        let ws = BF16Workspace()
        let m = 6, n = 5, k = 19
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for (alpha, beta, roundOut) in [(Float(1), Float(0), false), (0.5, 1, true), (1, 0, true)] {
                let aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n
                let lda = aCols + 2, ldb = bCols + 1, ldc = n + 3
                let a = block(aRows, aCols, ld: lda, seed: 11), b = block(bRows, bCols, ld: ldb, seed: 12)
                let c0 = block(m, n, ld: ldc, seed: 13)
                var cS = c0, cE = c0
                bf16Gemm(.sbgemm, transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                         beta: beta, c: &cS, ldc: ldc, roundOutput: roundOut, workspace: ws, native: reference)
                bf16Gemm(.emulated, transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                         beta: beta, c: &cE, ldc: ldc, roundOutput: roundOut, workspace: ws)
                // 19 products of |a|,|b| < 1.43, plus one bf16 half-ulp when rounding the output
                let tol = Float(k) * 2.1 * Float(k) * pow(2, -23) + (roundOut ? 2.1 * Float(k) * pow(2, -8) : 0)
                for i in 0..<(m * ldc) { XCTAssertEqual(cS[i], cE[i], accuracy: tol, "ta \(ta) tb \(tb) α \(alpha) β \(beta) \(i)") }
            }
        }
    }

    // MARK: capabilities and policy

    func testCapabilitiesFromCPUFlags() {
        let none = BF16Capabilities.from(sbgemmFound: true, cpuFlags: ["avx2", "fma", "avx512f"], libraryDescription: "X")
        XCTAssertFalse(none.cpuHasBF16); XCTAssertFalse(none.nativeAvailable)
        XCTAssertEqual(none.unavailableReason, "the CPU lacks AVX512-BF16 and AMX-BF16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo)")
        XCTAssertTrue(BF16Capabilities.from(sbgemmFound: true, cpuFlags: ["avx512_bf16"], libraryDescription: "X").nativeAvailable)
        XCTAssertTrue(BF16Capabilities.from(sbgemmFound: true, cpuFlags: ["amx_bf16"], libraryDescription: "X").nativeAvailable)
        let noLib = BF16Capabilities.from(sbgemmFound: false, cpuFlags: ["avx512_bf16"], libraryDescription: "OpenBLAS 0.3.21")
        XCTAssertEqual(noLib.unavailableReason, "OpenBLAS 0.3.21 does not export cblas_sbgemm (built without BUILD_BFLOAT16)")
        // This process: the probe agrees with dlsym and /proc/cpuinfo.
        let cur = BF16Capabilities.current
        if let path = ProcessInfo.processInfo.environment[BF16Native.environmentVariable], !path.isEmpty {
            // The named library, opened on its own: found exactly when it exports the function.
            let h = dlopen(path, RTLD_NOW | RTLD_LOCAL)
            XCTAssertEqual(cur.libraryHasSbgemm, h.flatMap { dlsym($0, "cblas_sbgemm") } != nil)
            XCTAssertEqual(BF16Native.problem != nil, h == nil)
            if h == nil { XCTAssertTrue(cur.unavailableReason!.contains("cannot be loaded"), cur.unavailableReason!) }
        } else {
            XCTAssertEqual(cur.libraryHasSbgemm, dlsym(nil, "cblas_sbgemm") != nil)
        }
        XCTAssertEqual(cur.cpuHasAVX512BF16, BLASRuntime.cpuFlags().contains("avx512_bf16"))
        print("bf16 capabilities here: \(cur.unavailableReason.map { "no native sbgemm: " + $0 } ?? "native sbgemm available")")
    }

    func testResolverPicksAndExplains() throws {
        let native = BF16Capabilities(libraryHasSbgemm: true, cpuHasAVX512BF16: true, cpuHasAMXBF16: false, libraryDescription: "L")
        let noLib = BF16Capabilities(libraryHasSbgemm: false, cpuHasAVX512BF16: true, cpuHasAMXBF16: false, libraryDescription: "OpenBLAS 0.3.21")
        let noCPU = BF16Capabilities(libraryHasSbgemm: true, cpuHasAVX512BF16: false, cpuHasAMXBF16: false, libraryDescription: "L")
        let neither = BF16Capabilities(libraryHasSbgemm: false, cpuHasAVX512BF16: false, cpuHasAMXBF16: false, libraryDescription: "OpenBLAS 0.3.21")

        // bf16 off: always fp32; only a non-default policy is worth a line.
        for caps in [native, neither] {
            XCTAssertEqual(try BF16MatmulPolicy.auto.resolve(bf16: false, capabilities: caps), BF16MatmulResolution(mode: .fp32, message: nil))
            let r = try BF16MatmulPolicy.emulate.resolve(bf16: false, capabilities: caps)
            XCTAssertEqual(r.mode, .fp32); XCTAssertTrue(r.message!.contains("no effect without bf16: true"))
        }
        // auto: native when both halves are there, else fp32 naming exactly what is missing.
        XCTAssertEqual(try BF16MatmulPolicy.auto.resolve(bf16: true, capabilities: native).mode, .sbgemm)
        let a1 = try BF16MatmulPolicy.auto.resolve(bf16: true, capabilities: noLib)
        XCTAssertEqual(a1.mode, .fp32)
        XCTAssertEqual(a1.message, "bf16: true runs the matrix products in fp32: OpenBLAS 0.3.21 does not export cblas_sbgemm (built without BUILD_BFLOAT16); bf16_matmul: emulate gives bf16 numerics at fp32 speed")
        let a2 = try BF16MatmulPolicy.auto.resolve(bf16: true, capabilities: noCPU)
        XCTAssertEqual(a2.mode, .fp32)
        XCTAssertTrue(a2.message!.contains("the CPU lacks AVX512-BF16") && !a2.message!.contains("does not export"), a2.message!)
        let a3 = try BF16MatmulPolicy.auto.resolve(bf16: true, capabilities: neither)
        XCTAssertTrue(a3.message!.contains("does not export cblas_sbgemm") && a3.message!.contains("the CPU lacks AVX512-BF16"))
        // sbgemm: native; the library's generic kernel (said) on a CPU without bf16 instructions; else a clear error.
        XCTAssertEqual(try BF16MatmulPolicy.sbgemm.resolve(bf16: true, capabilities: native).mode, .sbgemm)
        let generic = try BF16MatmulPolicy.sbgemm.resolve(bf16: true, capabilities: noCPU)
        XCTAssertEqual(generic.mode, .sbgemm)
        XCTAssertTrue(generic.message!.contains("OpenBLAS runs its generic kernel"), generic.message!)
        for caps in [noLib, neither] {
            XCTAssertThrowsError(try BF16MatmulPolicy.sbgemm.resolve(bf16: true, capabilities: caps)) { e in
                XCTAssertTrue("\(e)".hasPrefix("bf16_matmul: sbgemm is unavailable here: "), "\(e)")
                XCTAssertTrue("\(e)".contains(caps.unavailableReason!), "\(e)")
            }
        }
        // emulate and fp32 do what they say anywhere.
        for caps in [native, neither] {
            XCTAssertEqual(try BF16MatmulPolicy.emulate.resolve(bf16: true, capabilities: caps).mode, .emulated)
            XCTAssertEqual(try BF16MatmulPolicy.fp32.resolve(bf16: true, capabilities: caps).mode, .fp32)
        }
    }
}
