// bfloat16 matrix products with fp32 accumulation: OpenBLAS's cblas_sbgemm where this process can run it,
// an exact emulation through cblas_sgemm otherwise, and the policy that picks between them.
//
// Why the emulation is exact up to summation order: a bf16 value has an 8-bit significand, so the product
// of two bf16 values has at most 16 significant bits and is exact in fp32 (24 bits). Rounding both operands
// to bf16 and calling sgemm therefore forms the same products as sbgemm and sums them in fp32, as sbgemm
// (and oneDNN under torch.autocast) does; only the order of the fp32 additions differs.
import COpenBLAS
import Foundation

/// How a bf16 matrix product is computed.
public enum BF16MatmulMode: String, Sendable, CaseIterable {
    /// Native: operands packed to bf16, `cblas_sbgemm` (fp32 accumulation and output).
    case sbgemm
    /// Operands rounded to bf16 (nearest-even, as torch) and kept in fp32 storage, then `cblas_sgemm`.
    case emulated
    /// No bf16 at all: plain fp32 sgemm.
    case fp32
}

/// SFTDeck's config switch `bf16_matmul` (effective only with `bf16: true`).
public enum BF16MatmulPolicy: String, Sendable, CaseIterable, Codable {
    /// sbgemm where the CPU and the BLAS library have it, else fp32 with a one-line reason.
    case auto
    /// sbgemm or an error.
    case sbgemm
    /// bf16 numerics at fp32 speed on any machine.
    case emulate
    /// fp32 products even with bf16: true.
    case fp32
}

/// The signature of OpenBLAS's `cblas_sbgemm` (bfloat16 is uint16_t, blasint is int without INTERFACE64).
public typealias CblasSbgemmFunction = @convention(c) (
    CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, Int32, Int32, Int32, Float,
    UnsafePointer<UInt16>?, Int32, UnsafePointer<UInt16>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void

/// What this process could use for native bf16 products.
public struct BF16Capabilities: Equatable, Sendable {
    /// The loaded BLAS exports `cblas_sbgemm` (OpenBLAS built with BUILD_BFLOAT16).
    public var libraryHasSbgemm: Bool
    /// /proc/cpuinfo lists `avx512_bf16` (the kernel lists only what it enabled).
    public var cpuHasAVX512BF16: Bool
    /// /proc/cpuinfo lists `amx_bf16`.
    public var cpuHasAMXBF16: Bool
    /// For messages: the BLAS build (`openblas_get_config()`), or the library SFTDECK_SBGEMM_LIBRARY names.
    public var libraryDescription: String
    /// Why the named library could not be opened (replaces "does not export" in messages).
    public var libraryProblem: String? = nil

    public init(libraryHasSbgemm: Bool, cpuHasAVX512BF16: Bool, cpuHasAMXBF16: Bool, libraryDescription: String = "the BLAS library") {
        self.libraryHasSbgemm = libraryHasSbgemm; self.cpuHasAVX512BF16 = cpuHasAVX512BF16
        self.cpuHasAMXBF16 = cpuHasAMXBF16; self.libraryDescription = libraryDescription
    }

    public var cpuHasBF16: Bool { cpuHasAVX512BF16 || cpuHasAMXBF16 }
    public var nativeAvailable: Bool { libraryHasSbgemm && cpuHasBF16 }

    /// Why sbgemm cannot run here, nil when it can.
    public var unavailableReason: String? {
        var r: [String] = []
        if !libraryHasSbgemm { r.append(libraryProblem ?? "\(libraryDescription) does not export cblas_sbgemm (built without BUILD_BFLOAT16)") }
        if !cpuHasBF16 { r.append("the CPU lacks AVX512-BF16 and AMX-BF16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo)") }
        return r.isEmpty ? nil : r.joined(separator: " and ")
    }

    /// The probe from the parts: the symbol lookup result and the CPU's flags.
    public static func from(sbgemmFound: Bool, cpuFlags: Set<String>, libraryDescription: String) -> BF16Capabilities {
        BF16Capabilities(libraryHasSbgemm: sbgemmFound, cpuHasAVX512BF16: cpuFlags.contains("avx512_bf16"),
                         cpuHasAMXBF16: cpuFlags.contains("amx_bf16"), libraryDescription: libraryDescription)
    }

    /// This process: `dlsym(RTLD_DEFAULT, "cblas_sbgemm")` and /proc/cpuinfo, probed once.
    public static let current: BF16Capabilities = {
        var c = from(sbgemmFound: BF16Native.sbgemm != nil, cpuFlags: BLASRuntime.cpuFlags(),
                     libraryDescription: BF16Native.namedLibrary
                        ?? String(cString: openblas_get_config()).split(separator: " ").prefix(2).joined(separator: " "))
        c.libraryProblem = BF16Native.problem
        return c
    }()}

/// The native entry point, looked up at run time: Debian's OpenBLAS 0.3.21 declares cblas_sbgemm in
/// cblas.h but does not export it, so a direct call would not link. `SFTDECK_SBGEMM_LIBRARY=/path/to/
/// libopenblas.so` names a BLAS built with BUILD_BFLOAT16=1 to take it from (opened RTLD_LOCAL, so the
/// process's other BLAS calls stay on the system library); otherwise every loaded library is searched.
public enum BF16Native {
    public static let environmentVariable = "SFTDECK_SBGEMM_LIBRARY"

    /// The library SFTDECK_SBGEMM_LIBRARY names, if set.
    public static let namedLibrary: String? = {
        guard let p = ProcessInfo.processInfo.environment[environmentVariable], !p.isEmpty else { return nil }
        return p
    }()

    private static let lookup: (function: CblasSbgemmFunction?, problem: String?) = {
        if let path = namedLibrary {
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                let why = dlerror().map { String(cString: $0) } ?? "cannot be opened"
                return (nil, "\(environmentVariable)=\(path) cannot be loaded (\(why))")
            }
            guard let sym = dlsym(handle, "cblas_sbgemm") else { return (nil, nil) }
            // Its own thread pool: one thread per call, like the linked OpenBLAS (`BLASThreads` splits products).
            if BLASThreads.splitBySFTDeck, let set = dlsym(handle, "openblas_set_num_threads") {
                unsafeBitCast(set, to: (@convention(c) (Int32) -> Void).self)(1)
            }
            return (unsafeBitCast(sym, to: CblasSbgemmFunction.self), nil)
        }
        // RTLD_DEFAULT is ((void *)0) on glibc: search every library loaded into the process.
        guard let sym = dlsym(nil, "cblas_sbgemm") else { return (nil, nil) }
        return (unsafeBitCast(sym, to: CblasSbgemmFunction.self), nil)
    }()

    public static var sbgemm: CblasSbgemmFunction? { lookup.function }
    /// Why the library SFTDECK_SBGEMM_LIBRARY names could not be loaded, when it was set.
    public static var problem: String? { lookup.problem }
}

/// The mode a run uses and the one line that explains it (nil when there is nothing to say).
public struct BF16MatmulResolution: Equatable, Sendable {
    public var mode: BF16MatmulMode
    public var message: String?
    public init(mode: BF16MatmulMode, message: String?) { self.mode = mode; self.message = message }
}

public struct BF16MatmulError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
    public var errorDescription: String? { description }
}

extension BF16MatmulPolicy {
    /// The fallback policy: `auto` never emulates on its own (emulation costs fp32 time and buys only bf16
    /// rounding, which a user asking for speed does not want silently); it says why and how to get bf16
    /// numerics. An explicit `sbgemm` without the library function is an error, never a silent fallback.
    public func resolve(bf16: Bool, capabilities: BF16Capabilities) throws -> BF16MatmulResolution {
        guard bf16 else {
            return BF16MatmulResolution(mode: .fp32, message: self == .auto ? nil
                : "bf16_matmul: \(rawValue) has no effect without bf16: true (matrix products stay fp32)")
        }
        switch self {
        case .auto:
            if capabilities.nativeAvailable {
                return BF16MatmulResolution(mode: .sbgemm, message: "bf16: matrix products in bfloat16 through cblas_sbgemm, fp32 accumulation")
            }
            return BF16MatmulResolution(mode: .fp32, message: "bf16: true runs the matrix products in fp32: "
                + (capabilities.unavailableReason ?? "cblas_sbgemm is unavailable")
                + "; bf16_matmul: emulate gives bf16 numerics at fp32 speed")
        case .sbgemm:
            // Asked for by name, the library's function is enough: without the CPU instructions OpenBLAS runs
            // its generic bf16 kernel (right numbers, slower than sgemm), which is said, not refused.
            if !capabilities.libraryHasSbgemm, let why = capabilities.unavailableReason {
                throw BF16MatmulError("bf16_matmul: sbgemm is unavailable here: \(why) (use auto, emulate or fp32)")
            }
            if !capabilities.cpuHasBF16 {
                return BF16MatmulResolution(mode: .sbgemm, message: "bf16: matrix products in bfloat16 through cblas_sbgemm, fp32 accumulation; "
                    + "the CPU lacks AVX512-BF16 and AMX-BF16, so OpenBLAS runs its generic kernel (slower than fp32 sgemm)")
            }
            return BF16MatmulResolution(mode: .sbgemm, message: "bf16: matrix products in bfloat16 through cblas_sbgemm, fp32 accumulation")
        case .emulate:
            return BF16MatmulResolution(mode: .emulated, message: "bf16: matrix products emulated (operands rounded to bfloat16, fp32 sgemm): bf16 numerics at fp32 speed")
        case .fp32:
            return BF16MatmulResolution(mode: .fp32, message: "bf16: true with bf16_matmul: fp32: matrix products stay fp32")
        }
    }
}

// MARK: - the product

/// Reusable scratch for bf16 products (not thread-safe: one per run context).
public final class BF16Workspace {
    private var f32: [UnsafeMutablePointer<Float>] = []
    private var f32Cap: [Int] = []
    private var u16: [UnsafeMutablePointer<UInt16>] = []
    private var u16Cap: [Int] = []
    public init() {}
    deinit { for p in f32 { p.deallocate() }; for p in u16 { p.deallocate() } }

    /// Scratch of at least n floats in `slot`, kept between calls (bf16Gemm uses slots 0-2; callers 3 and up).
    public func floats(_ slot: Int, _ n: Int) -> UnsafeMutablePointer<Float> {
        while f32.count <= slot { f32.append(.allocate(capacity: 1)); f32Cap.append(1) }
        if f32Cap[slot] < n { f32[slot].deallocate(); f32[slot] = .allocate(capacity: n); f32Cap[slot] = n }
        return f32[slot]
    }
    /// Scratch of at least n bf16 values in `slot` (bf16Gemm uses slots 0-1).
    public func halves(_ slot: Int, _ n: Int) -> UnsafeMutablePointer<UInt16> {
        while u16.count <= slot { u16.append(.allocate(capacity: 1)); u16Cap.append(1) }
        if u16Cap[slot] < n { u16[slot].deallocate(); u16[slot] = .allocate(capacity: n); u16Cap[slot] = n }
        return u16[slot]
    }
}

/// x rounded to the nearest bf16 value, kept as fp32 (torch's fp32 -> bf16 -> fp32 for every non-NaN).
@inlinable @inline(__always)
public func roundedToBF16(_ x: Float) -> Float { Float(bitPattern: UInt32(bf16Bits(fromFloat: x)) << 16) }

/// Rounds a [rows, cols] block with row stride `ld` to bf16 in place.
public func roundToBF16InPlace(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int) {
    Parallel.forEachChunk(count: rows, grain: max(1, ParallelGrain.elementwise / max(1, cols))) { r in
        for i in r {
            let row = p + i * ld
            for j in 0..<cols { row[j] = roundedToBF16(row[j]) }
        }
    }
}

/// Copies a [rows, cols] block (row stride ld) densely, rounded to bf16, as fp32 or as bf16 bits.
private func packRounded(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<Float>) {
    Parallel.forEachChunk(count: rows, grain: max(1, ParallelGrain.elementwise / max(1, cols))) { r in
        for i in r {
            let s = src + i * ld, d = dst + i * cols
            for j in 0..<cols { d[j] = roundedToBF16(s[j]) }
        }
    }
}
private func packBits(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<UInt16>) {
    Parallel.forEachChunk(count: rows, grain: max(1, ParallelGrain.elementwise / max(1, cols))) { r in
        for i in r {
            let s = src + i * ld, d = dst + i * cols
            for j in 0..<cols { d[j] = bf16Bits(fromFloat: s[j]) }
        }
    }
}

/// Row-major C = beta·C + R(alpha · op(A)·op(B)) where the product runs as `mode` says:
/// - `.fp32`: plain sgemm, R = identity (the bf16 arguments are ignored);
/// - `.emulated` / `.sbgemm`: A and B rounded to bf16, products summed in fp32, and R rounds to bf16 when
///   `roundOutput` (the bf16 output tensor of torch.autocast's matmul, added to an fp32 C afterwards).
/// op(A) is [m, k] (A stored [k, m] when transposeA), op(B) is [k, n]; lda/ldb/ldc are row strides.
/// `native` is the sbgemm entry point (tests pass a reference implementation of its contract).
public func bf16Gemm(_ mode: BF16MatmulMode, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                     roundOutput: Bool = false, workspace: BF16Workspace,
                     native: CblasSbgemmFunction? = BF16Native.sbgemm) {
    if m == 0 || n == 0 { return }
    if mode == .fp32 || k == 0 {
        sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
              b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let aRows = transposeA ? k : m, aCols = transposeA ? m : k
    let bRows = transposeB ? n : k, bCols = transposeB ? k : n
    // With output rounding and an existing C, the product goes to scratch first: C += R(product).
    let direct = !roundOutput || beta == 0
    let out = direct ? c : workspace.floats(2, m * n)
    let ldo = direct ? ldc : n
    let betaOut: Float = direct ? beta : 0
    switch mode {
    case .emulated:
        let pa = workspace.floats(0, aRows * aCols), pb = workspace.floats(1, bRows * bCols)
        packRounded(a, rows: aRows, cols: aCols, ld: lda, into: pa)
        packRounded(b, rows: bRows, cols: bCols, ld: ldb, into: pb)
        sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: pa, lda: aCols,
              b: pb, ldb: bCols, beta: betaOut, c: out, ldc: ldo)
    case .sbgemm:
        guard let f = native else { preconditionFailure("bf16Gemm(.sbgemm): cblas_sbgemm is not in this process (resolve the mode first)") }
        let pa = workspace.halves(0, aRows * aCols), pb = workspace.halves(1, bRows * bCols)
        packBits(a, rows: aRows, cols: aCols, ld: lda, into: pa)
        packBits(b, rows: bRows, cols: bCols, ld: ldb, into: pb)
        let tA = transposeA ? CblasTrans : CblasNoTrans, tB = transposeB ? CblasTrans : CblasNoTrans
        let pa0 = UnsafePointer(pa), pb0 = UnsafePointer(pb)
        BLASThreads.forEachPart(m: m, n: n, k: k) { part in   // split like sgemm (one BLAS thread per part)
            switch part {
            case .whole:
                f(CblasRowMajor, tA, tB, Int32(m), Int32(n), Int32(k), alpha, pa0, Int32(aCols), pb0, Int32(bCols), betaOut, out, Int32(ldo))
            case .columns(let lo, let hi):
                f(CblasRowMajor, tA, tB, Int32(m), Int32(hi - lo), Int32(k), alpha, pa0, Int32(aCols),
                  transposeB ? pb0 + lo * bCols : pb0 + lo, Int32(bCols), betaOut, out + lo, Int32(ldo))
            case .rows(let lo, let hi):
                f(CblasRowMajor, tA, tB, Int32(hi - lo), Int32(n), Int32(k), alpha, transposeA ? pa0 + lo : pa0 + lo * aCols, Int32(aCols),
                  pb0, Int32(bCols), betaOut, out + lo * ldo, Int32(ldo))
            }
        }
    case .fp32:
        break
    }
    guard roundOutput else { return }
    if direct { roundToBF16InPlace(c, rows: m, cols: n, ld: ldc); return }
    Parallel.forEachChunk(count: m, grain: max(1, ParallelGrain.elementwise / max(1, n))) { r in
        for i in r {
            let s = out + i * n, d = c + i * ldc
            if beta == 1 { for j in 0..<n { d[j] += roundedToBF16(s[j]) } }
            else { for j in 0..<n { d[j] = beta * d[j] + roundedToBF16(s[j]) } }
        }
    }
}
