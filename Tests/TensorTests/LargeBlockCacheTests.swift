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
