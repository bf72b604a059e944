import Foundation
import XCTest
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
