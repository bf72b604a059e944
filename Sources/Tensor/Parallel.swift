import Foundation

/// Splits element-wise and row-wise loops across cores.
public enum Parallel {
    /// Cores available to this process.
    public static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body` over consecutive sub-ranges of `0..<count`. Below `2 * grain` items (or on one core)
    /// it runs inline on the caller's thread; above, it uses `DispatchQueue.concurrentPerform` with at
    /// most `coreCount` chunks of at least `grain` items each. Chunks never overlap, so each writes its
    /// own part of an output. `grain` is in items (elements or rows): pick it so one chunk is ~>20 µs.
    @inlinable
    public static func forEachChunk(count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(coreCount, count / max(1, grain))
        if chunks <= 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            body(lo..<hi)
        }
    }

    /// Like `forEachChunk` but with a fixed number of chunks that does not depend on the core count,
    /// for reductions whose result must be bit-identical on every machine (each chunk's partial result
    /// is combined in chunk order by the caller).
    @inlinable
    public static func forEachFixedChunk(count: Int, chunks: Int, _ body: (Int, Range<Int>) -> Void) {
        if count <= 0 || chunks <= 0 { return }
        let n = min(chunks, count)
        if n == 1 || coreCount == 1 {
            for c in 0..<n { body(c, (count * c / n)..<(count * (c + 1) / n)) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: n) { c in
            body(c, (count * c / n)..<(count * (c + 1) / n))
        }
    }
}

/// Element counts below which a kernel runs on one thread (dispatch costs a few microseconds).
public enum ParallelGrain {
    /// Simple streaming element-wise ops (add, mul, scale): ~32K floats.
    public static let elementwise = 1 << 15
    /// Transcendental element-wise ops (gelu, exp).
    public static let transcendental = 1 << 12
}
