import COpenBLAS
import Foundation

/// Which OpenBLAS kernel runs, and how to get the right one.
///
/// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise some newer CPUs and silently falls back
/// to its SSE3 "Prescott" kernels (5x below peak). It reads `OPENBLAS_CORETYPE` only when the library
/// loads, so the fix is to re-execute the program once with the variable set.
public enum BLASRuntime {
    /// The kernel OpenBLAS chose (`openblas_get_corename()`), e.g. "Haswell", "SkylakeX", "Prescott".
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Threads OpenBLAS uses for one call.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Set in the environment of the re-executed process so that it can never loop.
    public static let reexecMarker = "SFTDECK_BLAS_REEXEC"

    /// Kernels below the CPU's level: OpenBLAS's fallbacks for CPUs it does not recognise.
    static let weakCores: Set<String> = [
        "prescott", "nehalem", "core2", "atom", "penryn", "dunnington", "katmai", "coppermine", "northwood",
        "banias", "nano", "opteron", "opteron_sse3", "barcelona", "bobcat", "bulldozer", "piledriver",
        "steamroller", "sandybridge", "generic", "unknown", "",
    ]
    /// AVX2 kernels that an AVX-512 CPU should still replace with SkylakeX.
    static let avx2Cores: Set<String> = ["haswell", "zen", "excavator"]

    /// The kernel to force, or nil to keep the current one. A pure function of OpenBLAS's choice, the
    /// CPU's feature flags (as in /proc/cpuinfo) and the environment:
    /// - the user's own `OPENBLAS_CORETYPE`, or the re-exec marker, always wins (nil);
    /// - AVX-512 at Skylake-X level (avx512f + bw + dq + vl; Knights Landing has F without BW/VL and
    ///   must not get SkylakeX kernels) upgrades a weak or AVX2 kernel to "SkylakeX";
    /// - AVX2 + FMA upgrades a weak kernel to "Haswell";
    /// - anything else keeps the current kernel (never force a kernel the CPU lacks).
    public static func kernelToForce(coreName: String, cpuFlags: Set<String>, environment: [String: String]) -> String? {
        if let user = environment["OPENBLAS_CORETYPE"], !user.isEmpty { return nil }
        if environment[reexecMarker] != nil { return nil }
        let core = coreName.lowercased()
        let skylakeXLevel = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(cpuFlags.contains)
        let haswellLevel = cpuFlags.contains("avx2") && cpuFlags.contains("fma")
        if skylakeXLevel && (weakCores.contains(core) || avx2Cores.contains(core)) { return "SkylakeX" }
        if haswellLevel && weakCores.contains(core) { return "Haswell" }
        return nil
    }

    /// The feature flags of the first CPU in /proc/cpuinfo (empty when unreadable, which keeps the kernel).
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    /// The kernel this process would be re-executed with, or nil when the current one is right.
    public static func recommendedKernel() -> String? {
        kernelToForce(coreName: coreName, cpuFlags: cpuFlags(), environment: ProcessInfo.processInfo.environment)
    }

    /// What OpenBLAS's thread servers spin for between calls, as `OPENBLAS_THREAD_TIMEOUT` (2ⁿ cycles):
    /// the default 28 (~0.1 s) keeps them on `sched_yield` through a whole training step; 4, the
    /// smallest it accepts, puts them to sleep at once (woken per call, like Dispatch's workers).
    public static let threadTimeout = "4"

    /// The variables to set before OpenBLAS loads, or an empty dictionary when the process is right as it
    /// is (then no re-execution). A pure function of OpenBLAS's kernel choice, the CPU's flags, the core
    /// count and the environment: the kernel from `kernelToForce`, and `OPENBLAS_THREAD_TIMEOUT` when
    /// OpenBLAS's own threads will run the products (see `BLASThreads`) on more than one core and the
    /// user has not chosen a timeout. Never anything once re-executed (the marker).
    public static func environmentToSet(coreName: String, cpuFlags: Set<String>, coreCount: Int,
                                        environment: [String: String]) -> [String: String] {
        if environment[reexecMarker] != nil { return [:] }
        var out: [String: String] = [:]
        if let k = kernelToForce(coreName: coreName, cpuFlags: cpuFlags, environment: environment) { out["OPENBLAS_CORETYPE"] = k }
        let threading = environment[BLASThreads.environmentVariable] ?? ""
        if coreCount > 1, environment["OPENBLAS_THREAD_TIMEOUT"] == nil, threading.isEmpty || threading == "openblas" {
            out["OPENBLAS_THREAD_TIMEOUT"] = threadTimeout
        }
        return out
    }

    /// Sets `OPENBLAS_THREAD_TIMEOUT` for the loaded library: re-reads its environment
    /// (`openblas_read_env`), stops its thread servers (`blas_thread_shutdown_`, the fork handler's
    /// path) and starts them again (`blas_thread_init`, which takes the timeout). Symbols of the pthread
    /// build, looked up at run time: false (nothing changed) where one is missing or the library did not
    /// take the value, and the caller re-executes instead.
    public static func restartThreads(timeout: String) -> Bool {
        typealias VoidFn = @convention(c) () -> Void
        typealias IntFn = @convention(c) () -> Int32
        let handle = UnsafeMutableRawPointer(bitPattern: 0)   // RTLD_DEFAULT
        guard let readEnv = dlsym(handle, "openblas_read_env"), let shutdown = dlsym(handle, "blas_thread_shutdown_"),
              let start = dlsym(handle, "blas_thread_init"), let current = dlsym(handle, "openblas_thread_timeout"),
              let want = Int32(timeout) else { return false }
        let previous = getenv("OPENBLAS_THREAD_TIMEOUT").map { String(cString: $0) }
        setenv("OPENBLAS_THREAD_TIMEOUT", timeout, 1)
        unsafeBitCast(readEnv, to: VoidFn.self)()
        guard unsafeBitCast(current, to: IntFn.self)() == want else {
            if let previous { setenv("OPENBLAS_THREAD_TIMEOUT", previous, 1) } else { unsetenv("OPENBLAS_THREAD_TIMEOUT") }
            unsafeBitCast(readEnv, to: VoidFn.self)()
            return false
        }
        _ = unsafeBitCast(shutdown, to: IntFn.self)()
        _ = unsafeBitCast(start, to: IntFn.self)()
        return true
    }

    /// The `OPENBLAS_THREAD_TIMEOUT` the library has read (0: its default), nil where it has no such symbol.
    public static var threadTimeoutInEffect: Int? {
        guard let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_thread_timeout") else { return nil }
        return Int(unsafeBitCast(f, to: (@convention(c) () -> Int32).self)())
    }

    /// Call first thing in `main`: when OpenBLAS fell back to a weak kernel that the CPU can beat, or its
    /// threads would spin between calls, set `OPENBLAS_CORETYPE` / `OPENBLAS_THREAD_TIMEOUT` and
    /// re-execute `/proc/self/exe` with the same arguments (once; the marker stops a second time; ~20 ms).
    /// When only the timeout is to change, the threads are restarted in this process (`restartThreads`).
    /// If `execv` fails, the program simply continues as it is (then `sgemm` splits products itself).
    public static func reexecWithBestKernelIfNeeded() {
        let vars = environmentToSet(coreName: coreName, cpuFlags: cpuFlags(), coreCount: Parallel.coreCount,
                                    environment: ProcessInfo.processInfo.environment)
        if vars.isEmpty { return }
        // Only the thread timeout to change: restart OpenBLAS's threads in this process instead (~20 ms
        // less than a second exec, and the threads the library started at load stop spinning now).
        if vars.count == 1, let timeout = vars["OPENBLAS_THREAD_TIMEOUT"], restartThreads(timeout: timeout) { return }
        for (k, v) in vars { setenv(k, v, 1) }
        setenv(reexecMarker, "1", 1)
        fflush(stdout)
        _ = execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: execv failed. The loaded OpenBLAS never saw the variables; take them back so that
        // `BLASThreads` does not think its threads sleep.
        for k in vars.keys { unsetenv(k) }
        unsetenv(reexecMarker)
    }
}
