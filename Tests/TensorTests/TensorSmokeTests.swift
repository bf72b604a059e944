import XCTest
@testable import Tensor

/// Quick checks of the Tensor value type itself (views, shapes, conversions).
final class TensorSmokeTests: XCTestCase {
    func testViewsShareStorage() {
        let t = Tensor(shape: [3, 2], [1, 2, 3, 4, 5, 6])
        let row = t[1]
        XCTAssertEqual(row.shape, [2])
        XCTAssertEqual(row.toArray(), [3, 4])
        row.data[0] = 30
        XCTAssertEqual(t.value(at: [1, 0]), 30)
        XCTAssertEqual(t.rows(1..<3).toArray(), [30, 4, 5, 6])
        XCTAssertEqual(t.reshaped([2, -1]).shape, [2, 3])
        let c = t.copy(); c.data[0] = 100
        XCTAssertEqual(t.data[0], 1)
    }

    func testSmallMatmul() {
        // [2,3]·[3,2] by hand: [[1,2,3],[4,5,6]]·[[1,0],[0,1],[1,1]] = [[4,5],[10,11]]
        let a = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6]), b = Tensor(shape: [3, 2], [1, 0, 0, 1, 1, 1])
        let c = Tensor(zeros: [2, 2])
        matmul(c, a, b)
        XCTAssertEqual(c.toArray(), [4, 5, 10, 11])
    }
}

final class ParallelTests: XCTestCase {
    /// Every index is visited exactly once, whatever the count and grain.
    func testChunksCoverTheRangeOnce() {
        for (count, grain) in [(0, 1), (1, 1), (7, 2), (1000, 1), (1000, 499), (1000, 501), (65_537, 4096)] {
            let hits = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, count))
            hits.initialize(repeating: 0, count: max(1, count))
            defer { hits.deallocate() }
            Parallel.forEachChunk(count: count, grain: grain) { r in for i in r { hits[i] += 1 } }
            XCTAssertTrue((0..<count).allSatisfy { hits[$0] == 1 }, "count \(count) grain \(grain)")
            var seen = [Int](repeating: 0, count: 9)
            let lock = NSLock()
            Parallel.forEachFixedChunk(count: count, chunks: 8) { c, r in lock.lock(); seen[c] += r.count; lock.unlock() }
            XCTAssertEqual(seen.reduce(0, +), count)
        }
    }

    /// Reductions over rows (weight gradients) use a fixed chunking: the result of a large multi-chunk
    /// run equals a serial Double sum to fp32 accuracy and is bit-identical between runs.
    func testRowReductionDeterministic() {
        let n = 4000, d = 16
        let x = Tensor.randomNormal([n, d], seed: 50), g = Tensor.randomNormal([n, d], seed: 51)
        let rstd = Tensor(zeros: [n]), y = Tensor(zeros: [n, d]), w = Tensor(zeros: [d])
        rmsNormForward(out: y, rstd: rstd, x, weight: w, eps: 1e-6)
        let dw1 = Tensor(zeros: [d]), dw2 = Tensor(zeros: [d])
        rmsNormBackward(dx: nil, dweight: dw1, dout: g, x, weight: w, rstd: rstd)
        rmsNormBackward(dx: nil, dweight: dw2, dout: g, x, weight: w, rstd: rstd)
        XCTAssertEqual(dw1.toArray(), dw2.toArray())
        var ref = [Double](repeating: 0, count: d)
        for r in 0..<n { for j in 0..<d { ref[j] += Double(g.data[r * d + j]) * Double(x.data[r * d + j]) * Double(rstd.data[r]) } }
        assertClose(dw1, ref, tol: 1e-5, "rmsnorm dweight over 4000 rows")
    }
}
