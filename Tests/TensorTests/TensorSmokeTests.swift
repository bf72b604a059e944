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
