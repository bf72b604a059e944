import XCTest
@testable import Tensor

// Gradient checking: each kernel's fp32 backward is compared with central finite differences of a
// Double-precision reference forward written here from the defining formula (fp32 finite differences
// are too noisy for tight tolerances). The fp32 forward is compared with the same reference.

/// Central differences of f at x (step h, Double).
func finiteDifferenceGradient(_ x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    var xp = x
    for i in 0..<x.count {
        let orig = xp[i]
        xp[i] = orig + h; let fp = f(xp)
        xp[i] = orig - h; let fm = f(xp)
        xp[i] = orig
        g[i] = (fp - fm) / (2 * h)
    }
    return g
}

/// max |a − b| / max(max |b|, floor): the error relative to the size of the reference.
func normalizedMaxError(_ a: [Float], _ b: [Double], floor: Double = 1e-6) -> Double {
    precondition(a.count == b.count, "normalizedMaxError: \(a.count) vs \(b.count)")
    var err = 0.0, scale = floor
    for (x, y) in zip(a, b) { err = max(err, abs(Double(x) - y)); scale = max(scale, abs(y)) }
    return err / scale
}

func assertClose(_ a: [Float], _ b: [Double], tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): counts differ", file: file, line: line)
    guard a.count == b.count else { return }
    let e = normalizedMaxError(a, b)
    XCTAssertLessThanOrEqual(e, tol, "\(what): normalized max error \(e) > \(tol)", file: file, line: line)
}

func assertClose(_ a: Tensor, _ b: [Double], tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    assertClose(a.toArray(), b, tol: tol, what, file: file, line: line)
}

func doubles(_ t: Tensor) -> [Double] { t.toArray().map(Double.init) }

/// Σ w ⊙ y: the scalar whose gradient w.r.t. y is w (the "upstream gradient" of each check).
func weightedSum(_ y: [Double], _ w: [Double]) -> Double {
    precondition(y.count == w.count)
    var s = 0.0
    for i in 0..<y.count { s += y[i] * w[i] }
    return s
}

/// Tolerances used by the gradient checks (normalized max error, see `normalizedMaxError`).
enum Tol {
    /// fp32 forward vs Double reference (seen: <= 2e-7).
    static let forward = 1e-6
    /// fp32 analytic backward vs Double finite differences (seen: <= 3e-7 on every kernel).
    static let backward = 2e-6
}

// MARK: Double reference forwards (row-major, written from the formulas, no shared code with the kernels)

enum Ref {
    static func matmul(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, ta: Bool, tb: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]) }
            c[i * n + j] = s
        } }
        return c
    }

    static func gelu(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
    }

    static func rmsNorm(_ x: [Double], _ w: [Double]?, d: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<(x.count / d) {
            var ss = 0.0
            for j in 0..<d { ss += x[r * d + j] * x[r * d + j] }
            let s = 1 / (ss / Double(d) + eps).squareRoot()
            for j in 0..<d { y[r * d + j] = x[r * d + j] * s * (1 + (w?[j] ?? 0)) }
        }
        return y
    }

    static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], d: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<(x.count / d) {
            let row = Array(x[(r * d)..<(r * d + d)])
            let mu = row.reduce(0, +) / Double(d)
            let v = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(d)
            for j in 0..<d { y[r * d + j] = (row[j] - mu) / (v + eps).squareRoot() * w[j] + b[j] }
        }
        return y
    }

    static func softmax(_ x: [Double], d: Int) -> [Double] {
        var y = x
        for r in 0..<(x.count / d) {
            let row = x[(r * d)..<(r * d + d)]
            let m = row.max()!
            let e = row.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            for j in 0..<d { y[r * d + j] = e[j] / s }
        }
        return y
    }

    /// Per-row losses and the sum over counted rows.
    static func crossEntropy(_ logits: [Double], _ t: [Int32], v: Int) -> (sum: Double, count: Int, correct: Int) {
        var sum = 0.0, count = 0, correct = 0
        for r in 0..<t.count where t[r] != -100 {
            let row = Array(logits[(r * v)..<(r * v + v)])
            let m = row.max()!
            let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            sum += lse - row[Int(t[r])]
            count += 1
            if row.firstIndex(of: m)! == Int(t[r]) { correct += 1 }
        }
        return (sum, count, correct)
    }

    /// x [B, L, H, D], cos/sin [L, D].
    static func rope(_ x: [Double], _ cos: [Double], _ sin: [Double], b: Int, l: Int, h: Int, d: Int) -> [Double] {
        var y = x
        let half = d / 2
        for bi in 0..<b { for t in 0..<l { for hi in 0..<h {
            let o = ((bi * l + t) * h + hi) * d
            for i in 0..<d {
                let rot = i < half ? -x[o + i + half] : x[o + i - half]
                y[o + i] = x[o + i] * cos[t * d + i] + rot * sin[t * d + i]
            }
        } } }
        return y
    }

    /// q [B, L, H, D], k/v [B, S, KV, D], allowed(b, i, j).
    static func attention(_ q: [Double], _ k: [Double], _ v: [Double], b: Int, l: Int, s: Int, h: Int, kv: Int, d: Int,
                          scale: Double, allowed: (Int, Int, Int) -> Bool) -> [Double] {
        var out = [Double](repeating: 0, count: b * l * h * d)
        for bi in 0..<b { for hi in 0..<h {
            let kh = hi / (h / kv)
            for i in 0..<l {
                var scores = [Double](repeating: 0, count: s)
                for j in 0..<s {
                    var dot = 0.0
                    for c in 0..<d { dot += q[((bi * l + i) * h + hi) * d + c] * k[((bi * s + j) * kv + kh) * d + c] }
                    scores[j] = allowed(bi, i, j) ? dot * scale : -Double.greatestFiniteMagnitude
                }
                let anyAllowed = (0..<s).contains { allowed(bi, i, $0) }
                let p: [Double]
                if anyAllowed {
                    let m = scores.max()!
                    let e = scores.map { $0 == -Double.greatestFiniteMagnitude ? 0 : Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    p = e.map { $0 / z }
                } else {
                    p = [Double](repeating: 1 / Double(s), count: s)
                }
                for c in 0..<d {
                    var acc = 0.0
                    for j in 0..<s { acc += p[j] * v[((bi * s + j) * kv + kh) * d + c] }
                    out[((bi * l + i) * h + hi) * d + c] = acc
                }
            }
        } }
        return out
    }
}

extension Tensor {
    init(shape: [Int], doubles: [Double]) { self.init(shape: shape, doubles.map(Float.init)) }
}
