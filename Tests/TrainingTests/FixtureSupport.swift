import Foundation
import XCTest
import Tensor
@testable import Training

/// Loads `Fixtures/training/<name>` (written by Scripts/fixtures/gen_training.py).
func fixtureURL(_ name: String) throws -> URL {
    let base = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return base.appendingPathComponent("training").appendingPathComponent(name)
}

func loadJSON(_ name: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(name)))
}

func floats(_ any: Any?) -> [Float] { ((any as? [Any]) ?? []).map { Float(($0 as? NSNumber)?.doubleValue ?? .nan) } }

/// Owns fp32 buffers for tests that need `TrainableTensor`s.
final class TestParams {
    var values: [UnsafeMutableBufferPointer<Float>] = []
    var grads: [UnsafeMutableBufferPointer<Float>] = []
    var tensors: [TrainableTensor] = []
    init(_ specs: [(String, [Int], [Float])]) {
        for (name, shape, initial) in specs {
            let v = UnsafeMutableBufferPointer<Float>.allocate(capacity: initial.count)
            _ = v.initialize(from: initial)
            let g = UnsafeMutableBufferPointer<Float>.allocate(capacity: initial.count)
            g.initialize(repeating: 0)
            values.append(v); grads.append(g)
            tensors.append(TrainableTensor(name: name, shape: shape, value: v, grad: g))
        }
    }
    deinit { values.forEach { $0.deallocate() }; grads.forEach { $0.deallocate() } }
}

/// Fails on the first element whose bits differ (not the whole arrays).
func assertSameBits(_ a: [Float], _ b: [Float], _ what: String = "values", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
    if let i = a.indices.first(where: { $0 < b.count && a[$0].bitPattern != b[$0].bitPattern }) {
        XCTFail("\(what): element \(i) is \(a[i]), expected \(b[i])", file: file, line: line)
    }
}

func assertClose(_ a: [Float], _ b: [Float], abs absTol: Float, rel: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
    var worst: Float = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let d = abs(a[i] - b[i])
        if d > absTol + rel * abs(b[i]), d > worst { worst = d; at = i }
    }
    XCTAssertEqual(at, -1, "\(what): worst |diff| \(worst) at \(at) (\(at >= 0 ? a[at] : 0) vs \(at >= 0 ? b[at] : 0))",
                   file: file, line: line)
}

/// A trainer for `c` with a RunWriter in its output_dir (run name "r"), as the parity tests run it.
func makeTrainer(_ c: SFTConfig) throws -> Trainer {
    let p = try RunSetup.prepare(c)
    let t = try Trainer(config: c, model: p.model, train: p.train, eval: p.eval)
    t.writer = RunWriter(outputDir: URL(fileURLWithPath: c.resolvedOutputDir), runName: "r")
    return t
}

/// Checks tensor `name` of `file` against a reference summary {"sum", "abs_sum", "head"}: sums within
/// `relative` of the absolute sum (plus 1e-6 on the sum), the first values within `headAccuracy`.
/// Returns the worst |value − reference| over the head.
@discardableResult
func assertTensorSummary(_ file: SafeTensorsFile, _ name: String, _ want: [String: Any], relative: Double, headAccuracy: Double,
                         file testFile: StaticString = #filePath, line: UInt = #line) throws -> Double {
    let v = try file.floats(name)
    let sum = v.reduce(0.0) { $0 + Double($1) }, abs = v.reduce(0.0) { $0 + Double(Swift.abs($1)) }
    let ws = jsonNumber(want["sum"])!, wa = jsonNumber(want["abs_sum"])!
    XCTAssertEqual(sum, ws, accuracy: relative * wa + 1e-6, "\(name) sum", file: testFile, line: line)
    XCTAssertEqual(abs, wa, accuracy: relative * wa, "\(name) abs sum", file: testFile, line: line)
    var worst = 0.0
    for (i, x) in (want["head"] as! [Any]).compactMap(jsonNumber).enumerated() {
        XCTAssertEqual(Double(v[i]), x, accuracy: headAccuracy, "\(name)[\(i)]", file: testFile, line: line)
        worst = max(worst, Swift.abs(Double(v[i]) - x))
    }
    return worst
}
