import XCTest
import Tensor

/// Tensor.tokenEntropySum against the definition H = −Σ p log p evaluated in fp64.
final class TokenEntropyTests: XCTestCase {
    func reference(_ row: ArraySlice<Float>) -> Double {
        let z = row.map(Double.init), m = z.max()!
        let e = z.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
        return -e.reduce(0) { acc, ei in let p = ei / s; return p > 0 ? acc + p * Foundation.log(p) : acc }
    }

    func testMatchesDefinitionSkipsIgnoredRowsAndStaysFiniteForLargeLogits() {
        let V = 37, N = 6
        var logits = (0..<(N * V)).map { Float(sin(Double($0) * 0.77) * 4) }
        for v in 0..<V { logits[3 * V + v] += 1000 }                   // exp would overflow without the max shift
        for v in 0..<V { logits[4 * V + v] = v == 5 ? 60 : -60 }      // nearly one-hot: entropy ≈ 0
        let targets: [Int32] = [1, -100, 7, 0, 5, -100]
        let r = logits.withUnsafeBufferPointer { l in
            targets.withUnsafeBufferPointer { tokenEntropySum(logits: l.baseAddress!, targets: $0, rows: N, vocab: V) }
        }
        XCTAssertEqual(r.count, 4)
        let want = [0, 2, 3, 4].map { reference(logits[($0 * V)..<(($0 + 1) * V)]) }.reduce(0, +)
        XCTAssertEqual(r.sum, want, accuracy: 1e-6 * want)
        // A uniform row has entropy log V.
        let flat = [Float](repeating: 0.25, count: V)
        let u = flat.withUnsafeBufferPointer { l in [Int32(3)].withUnsafeBufferPointer { tokenEntropySum(logits: l.baseAddress!, targets: $0, rows: 1, vocab: V) } }
        XCTAssertEqual(u.sum, log(Double(V)), accuracy: 1e-6)
    }
}
