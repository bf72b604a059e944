import Foundation

/// CPU seconds used by the whole process (all threads). On a shared machine wall time also counts
/// waiting for a core, so suites report both.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
