import XCTest
@testable import Tensor

/// Large TensorStorage buffers are kept for reuse; the mapped total never passes the live high-water mark.
final class LargeBlockCacheTests: XCTestCase {
    func testFreedBlocksAreReusedZeroedAndBoundedByThePeak() {
        let cache = LargeBlockCache.shared
        cache.releaseKept()
        let n = (3 << 20) / 4   // 3 MiB of floats
        var first: UnsafeMutablePointer<Float>?
        do {
            let a = TensorStorage(capacity: n, zeroed: true)
            XCTAssertEqual(a.base[n - 1], 0)
            a.base.update(repeating: 7, count: n)
            first = a.base
        }
        // same size again: the kept block, zeroed on request
        let b = TensorStorage(capacity: n, zeroed: true)
        XCTAssertEqual(b.base, first, "a freed block of the same size should be reused")
        XCTAssertTrue((0..<n).allSatisfy { b.base[$0] == 0 })
        // b is live: a new request gets another block
        let c = TensorStorage(capacity: n / 2, zeroed: false)
        XCTAssertNotEqual(c.base, b.base)
        // the mapped total (live + kept) never exceeds the live peak
        for _ in 0..<3 {
            let s = cache.statistics
            XCTAssertLessThanOrEqual(s.kept + s.live, s.peak)
            let big = TensorStorage(capacity: 2 * n, zeroed: false)
            let s2 = cache.statistics
            XCTAssertLessThanOrEqual(s2.kept + s2.live, s2.peak)
            _ = big
        }
        cache.releaseKept()
        XCTAssertEqual(cache.statistics.kept, 0)
        // small buffers stay on malloc
        XCTAssertEqual(TensorStorage(capacity: 1000).blockBytes, 0)
        XCTAssertGreaterThan(b.blockBytes, 0)
    }
}

/// `AnonymousMemory`: populated mappings are resident and zero before anything is written to them;
/// unpopulated ones cost no resident page until touched (what the row-tracked embedding gradient relies on).
final class AnonymousMemoryTests: XCTestCase {
    func residentPages(_ p: UnsafeMutableRawPointer, bytes: Int) -> Int {
        let pages = (bytes + AnonymousMemory.pageBytes - 1) / AnonymousMemory.pageBytes
        var vec = [UInt8](repeating: 0, count: pages)
        XCTAssertEqual(mincore(p, bytes, &vec), 0)
        return vec.reduce(0) { $0 + Int($1 & 1) }
    }

    func testPopulatedMappingIsResidentAndZero() throws {
        let bytes = 3 << 20 + 5 * AnonymousMemory.pageBytes + 100
        let p = try XCTUnwrap(AnonymousMemory.map(bytes: bytes))
        defer { AnonymousMemory.unmap(p, bytes: bytes) }
        XCTAssertEqual(Int(bitPattern: p) % AnonymousMemory.pageBytes, 0)
        let rounded = AnonymousMemory.roundedSize(bytes)
        XCTAssertEqual(residentPages(p, bytes: rounded), rounded / AnonymousMemory.pageBytes, "every page present")
        let f = p.bindMemory(to: Float.self, capacity: bytes / 4)
        XCTAssertTrue((0..<(bytes / 4)).allSatisfy { f[$0] == 0 })
        f[bytes / 4 - 1] = 3
        XCTAssertEqual(f[bytes / 4 - 1], 3)
    }

    func testUnpopulatedMappingCostsNothingUntilTouched() throws {
        let bytes = 8 << 20
        let p = try XCTUnwrap(AnonymousMemory.map(bytes: bytes, populate: false))
        defer { AnonymousMemory.unmap(p, bytes: bytes) }
        XCTAssertEqual(residentPages(p, bytes: bytes), 0)
        p.storeBytes(of: Float(1), toByteOffset: 4 << 20, as: Float.self)
        if !AnonymousMemory.hugePagesEnabled { XCTAssertEqual(residentPages(p, bytes: bytes), 1, "one page touched, one resident") }
        AnonymousMemory.populate(p, bytes: bytes, cores: 2)
        XCTAssertEqual(residentPages(p, bytes: bytes), bytes / AnonymousMemory.pageBytes)
        XCTAssertEqual(p.load(fromByteOffset: 4 << 20, as: Float.self), 1, "populating keeps what was written")
        XCTAssertEqual(p.load(fromByteOffset: 0, as: Float.self), 0)
    }

    /// Kernels without MADV_POPULATE_WRITE: each page's first word is rewritten with its own value.
    func testPopulateWithoutMadviseKeepsContents() throws {
        let bytes = 3 << 20
        let p = try XCTUnwrap(AnonymousMemory.map(bytes: bytes, populate: false))
        defer { AnonymousMemory.unmap(p, bytes: bytes) }
        p.storeBytes(of: Float(2.5), toByteOffset: 1 << 20, as: Float.self)   // a page's first word
        AnonymousMemory.populate(p, bytes: bytes, cores: 2, withoutMadvise: true)
        XCTAssertEqual(residentPages(p, bytes: bytes), bytes / AnonymousMemory.pageBytes)
        XCTAssertEqual(p.load(fromByteOffset: 1 << 20, as: Float.self), 2.5)
        XCTAssertEqual(p.load(fromByteOffset: 2 << 20, as: Float.self), 0)
    }
}
