// Zero-filled anonymous memory for large buffers: the step buffers of `LargeBlockCache` and AdamW's moments.
//
// The first touch of a fresh 4 KiB page costs ~3 µs on this VM (a guest fault plus the hypervisor's);
// `MAP_POPULATE` brings that to ~2.5 µs, and `MADV_POPULATE_WRITE` on every core to ~1.5 µs per page
// (`populate`; train-gemma's first step 1.51 → 1.38 s wall, medians of 10 alternated runs).
// Transparent huge pages (one fault per 2 MiB) are an opt-in, `SFTDECK_HUGE_PAGES=1`: in a loop that
// maps and unmaps the same 256 MB they cost 0.3–0.6 µs per 4 KiB, but a fresh process gets huge pages
// from guest memory the hypervisor has not backed yet, and a run's launch → first step was *slower* with
// them (median 2.21 s against 2.01 s over 7 alternated runs). On bare metal they are likely a win; that
// was not measured.
import Foundation

public enum AnonymousMemory {
    public static let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
    public static let hugePageBytes = 2 << 20

    /// Whether large mappings ask for huge pages (`SFTDECK_HUGE_PAGES=1`; off by default, see above).
    public static let hugePagesEnabled: Bool = ProcessInfo.processInfo.environment["SFTDECK_HUGE_PAGES"] == "1"

    /// Maps `bytes` (rounded up to whole pages) of zeroed read-write memory, every page already present
    /// (`populate`, on every core).
    /// With huge pages on, ranges of at least 2 MiB start on a 2 MiB boundary and are advised `MADV_HUGEPAGE`.
    /// `populate: false` leaves every page to its first touch (never-touched pages cost nothing). Returns nil when
    /// the address space is exhausted. Free with `unmap(_:bytes:)` and the same `bytes`.
    public static func map(bytes: Int, populate: Bool = true) -> UnsafeMutableRawPointer? {
        let size = roundedSize(bytes)
        guard hugePagesEnabled && size >= hugePageBytes else {
            guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
                  p != MAP_FAILED else { return nil }
            if populate { self.populate(p, bytes: size, cores: Parallel.coreCount) }
            return p
        }
        // Over-map by 2 MiB and trim both ends, so that the kept range starts on a huge-page boundary.
        let span = size + hugePageBytes
        guard let raw = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              raw != MAP_FAILED else { return nil }
        let start = (Int(bitPattern: raw) + hugePageBytes - 1) / hugePageBytes * hugePageBytes
        let head = start - Int(bitPattern: raw)
        if head > 0 { munmap(raw, head) }
        let tail = span - head - size
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + size), tail) }
        let p = UnsafeMutableRawPointer(bitPattern: start)!
        _ = madvise(p, size, Int32(MADV_HUGEPAGE))   // advice only: EINVAL (no THP) leaves 4 KiB pages
        if populate { self.populate(p, bytes: size, cores: Parallel.coreCount) }
        return p
    }

    /// Linux's MADV_POPULATE_WRITE (5.14): fault a range in, writable, in one call.
    static let madvPopulateWrite: Int32 = 23
    nonisolated(unsafe) private static var populateWriteFails = false

    /// Makes every page of `[p, p + bytes)` present, contents kept, split over up to `cores` threads in pieces of at
    /// least 512 KiB: `MADV_POPULATE_WRITE` per piece (one call instead of a fault per page), or a write per
    /// page where the kernel lacks it. Measured here on 64 MB: 1.5 µs per page on two threads, against
    /// 2.2–2.8 µs for `MAP_POPULATE` (one thread) and 1.9 µs touching on two threads.
    /// `withoutMadvise` (tests): the path of kernels before 5.14.
    public static func populate(_ p: UnsafeMutableRawPointer, bytes: Int, cores: Int = 1, withoutMadvise: Bool = false) {
        let pages = (bytes + pageBytes - 1) / pageBytes
        guard pages > 0 else { return }
        let parts = max(1, min(cores, pages / 128))
        let per = (pages + parts - 1) / parts
        func run(_ k: Int) {
            let lo = k * per, hi = min(pages, lo + per)
            guard lo < hi else { return }
            let start = p + lo * pageBytes, length = (hi - lo) * pageBytes
            if !withoutMadvise {
                if !populateWriteFails && madvise(start, length, madvPopulateWrite) == 0 { return }
                populateWriteFails = errno == EINVAL   // an old kernel: write the pages instead, from now on
            }
            // rewrite each page's first word with its own value: faults the page in, keeps what it holds
            var o = 0
            while o < length { start.storeBytes(of: start.load(fromByteOffset: o, as: UInt32.self), toByteOffset: o, as: UInt32.self); o += pageBytes }
        }
        if parts > 1 { DispatchQueue.concurrentPerform(iterations: parts, execute: run) } else { run(0) }
    }

    public static func unmap(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        munmap(pointer, roundedSize(bytes))
    }

    public static func roundedSize(_ bytes: Int) -> Int { (max(bytes, 1) + pageBytes - 1) / pageBytes * pageBytes }
}
