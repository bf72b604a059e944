// Which rows of a [rows, width] gradient may be nonzero.
//
// Why: an embedding table's gradient gets rows only for the token ids of the batch. Under LoRA with
// `modules_to_save: [embed_tokens]` (the guide's Gemma 3 recipe) the trainable copy is the whole
// vocabulary: 32768 × 512 floats in the benchmark, 262144 × 2560 (2.7 GB) on Gemma-3-4b. A dense
// gradient, its zeroing, the clip norm and AdamW's moments then touch every row every step, while a
// batch names a few hundred. Rows never marked hold exact zeros (gradient and, until first marked, both
// AdamW moments), so skipping them changes no bit: a zero adds nothing to a sum of squares, and AdamW on
// g = m = v = 0 without weight decay leaves the parameter as it is (p − lr·0/(0 + ε) = p).
// `SFTDECK_SPARSE_EMBED_GRAD=0` turns the tracking off (the dense path, for A/B runs and tests).
import Foundation

public final class GradientRows: @unchecked Sendable {
    public let rows: Int
    public let width: Int
    private var flags: [Bool]
    /// Marked rows, in first-marked order.
    public private(set) var marked: [Int32] = []
    /// `elementRuns()` until the next new mark (AdamW asks for its rows every step; few steps add rows).
    private var runs: [Range<Int>]?

    /// Whether models create row-tracked gradients for embedding tables (read once at start).
    nonisolated(unsafe) public static var enabled: Bool = ProcessInfo.processInfo.environment["SFTDECK_SPARSE_EMBED_GRAD"] != "0"

    public init(rows: Int, width: Int) {
        precondition(rows >= 0 && width > 0, "GradientRows: bad shape \(rows)×\(width)")
        self.rows = rows; self.width = width
        flags = [Bool](repeating: false, count: rows)
    }

    public var count: Int { marked.count }
    public func contains(_ row: Int) -> Bool { flags[row] }

    public func mark(_ row: Int) {
        precondition(row >= 0 && row < rows, "GradientRows: row \(row) outside 0..<\(rows)")
        if !flags[row] { flags[row] = true; marked.append(Int32(row)); runs = nil }
    }

    /// Marks every row (a gradient written densely, e.g. restored state).
    public func markAll() { for r in 0..<rows { mark(r) } }

    /// The marked rows as ascending, coalesced element ranges of the flat [rows·width] buffer.
    public func elementRuns() -> [Range<Int>] {
        if let runs { return runs }
        var sorted = marked
        sorted.sort()
        var out: [Range<Int>] = []
        var i = 0
        while i < sorted.count {
            let lo = Int(sorted[i])
            var hi = lo + 1
            while i + 1 < sorted.count && Int(sorted[i + 1]) == hi { hi += 1; i += 1 }
            out.append((lo * width)..<(hi * width))
            i += 1
        }
        runs = out
        return out
    }

    /// Zeroes the marked rows of `buffer` ([rows·width] floats) and forgets them: the buffer is all zero after.
    public func clear(zeroing buffer: UnsafeMutablePointer<Float>) {
        for r in marked { (buffer + Int(r) * width).update(repeating: 0, count: width); flags[Int(r)] = false }
        marked.removeAll(keepingCapacity: true)
        runs = nil
    }

    /// Adds the rows marked here to `other` (same shape).
    public func merge(into other: GradientRows) {
        precondition(other.rows == rows && other.width == width, "GradientRows: merging different shapes")
        for r in marked { other.mark(Int(r)) }
    }
}

/// Element ranges of `runs` (ascending, disjoint) clipped to `lo..<hi`, relative to `lo`.
public func clippedRuns(_ runs: [Range<Int>], _ lo: Int, _ hi: Int) -> [Range<Int>] {
    var out: [Range<Int>] = []
    // binary search for the first run ending after lo
    var a = 0, b = runs.count
    while a < b { let m = (a + b) / 2; if runs[m].upperBound <= lo { a = m + 1 } else { b = m } }
    var i = a
    while i < runs.count && runs[i].lowerBound < hi {
        let s = max(runs[i].lowerBound, lo), e = min(runs[i].upperBound, hi)
        if s < e { out.append((s - lo)..<(e - lo)) }
        i += 1
    }
    return out
}
