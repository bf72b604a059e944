#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Phase-by-phase timing of start-up (process launch → first optimizer step), printed to stderr when
/// `SFTDECK_PROFILE_STARTUP=1` is set (or `sftdeck train --profile-startup`). One line per phase:
///
///     startup: <phase>  +<seconds since the process was created> wall  <process CPU seconds> cpu  (Δ wall, Δ cpu, Δ page faults)  @<unix time>
///
/// "Since the process was created" comes from /proc/self/stat (10 ms ticks), so it includes the exec,
/// dynamic linking and Swift runtime start before `main`; the unix time lets a parent that launched the
/// process (the `train-gemma` benchmark) line the phases up with its own clock. Page faults (minor, from
/// getrusage) are there because first-touch faults of fresh memory are a large part of a first step's
/// CPU on VMs (several µs per 4 KiB page).
public enum StartupProfile {
    nonisolated(unsafe) public static var enabled: Bool = {
        let v = ProcessInfo.processInfo.environment["SFTDECK_PROFILE_STARTUP"] ?? ""
        return !v.isEmpty && v != "0"
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var last: (wall: Double, cpu: Double, faults: Int)?
    nonisolated(unsafe) private static var marked = Set<String>()

    /// Records the end of `phase` (only the first time a phase name is marked).
    public static func mark(_ phase: String) {
        guard enabled else { return }
        let now = Date().timeIntervalSince1970
        let cpu = processCPUSeconds()
        let age = processAgeSeconds()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let faults = Int(usage.ru_minflt + usage.ru_majflt)
        lock.lock()
        guard marked.insert(phase).inserted else { lock.unlock(); return }
        let prev = last ?? (now - (age ?? 0), 0, 0)
        last = (now, cpu, faults)
        lock.unlock()
        let line = String(format: "startup: %-28@ +%7.3fs wall %7.3fs cpu  (Δ %6.3fs wall, %6.3fs cpu, %7d page faults)  @%.6f\n",
                          phase as NSString, age ?? .nan, cpu, now - prev.wall, cpu - prev.cpu, faults - prev.faults, now)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Measures `body` as one phase ending when it returns.
    @discardableResult
    public static func measure<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        let r = try body()
        mark(phase)
        return r
    }

    /// User + system CPU seconds of this process so far (every thread).
    public static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Seconds since the kernel created this process (before exec and any re-exec), or nil off Linux.
    public static func processAgeSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state is field 3, starttime field 22 → index 19 after the paren.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        let boot = Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        return boot - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
