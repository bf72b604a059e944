import XCTest
@testable import Dashboard

final class SmoothingTests: XCTestCase {
    /// Expected values come from TensorBoard's own `resmoothDataset` (read out of its bundled
    /// frontend by Scripts/fixtures/gen_dashboard.py and evaluated there).
    func testMatchesTensorBoardResmooth() throws {
        let data = try Data(contentsOf: fixtureURL("smoothing.json"))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertTrue((obj["reference_js"] as! String).contains("1-Math.pow(n,o)"))
        let cases = obj["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let w = (c["weight"] as! NSNumber).doubleValue
            let values = (c["values"] as! [Any]).map { ($0 as? NSNumber)?.doubleValue ?? .nan }
            let expected = (c["smoothed"] as! [Any]).map { ($0 as? NSNumber)?.doubleValue ?? .nan }
            let got = TensorBoardSmoothing.smooth(values, weight: w)
            XCTAssertEqual(got.count, expected.count)
            for (g, e) in zip(got, expected) {
                if e.isNaN { XCTAssertTrue(g.isNaN); continue }
                XCTAssertEqual(g, e, accuracy: 1e-12 * max(1, abs(e)), "weight \(w)")
            }
        }
    }
}
