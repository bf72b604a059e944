// 4-bit NormalFloat weights with double quantisation, exactly as bitsandbytes 0.50.2 makes them
// on CPU (`quantize_4bit(quant_type="nf4", blocksize=64, compress_statistics=True)`), and their
// dequantisation into fp32 rows for the matrix kernels (`LinearWeight`).
//
// Quantisation (bitsandbytes/backends/default/ops.py, pure torch):
//   W flattened row-major, blocks of 64 consecutive values (a block may straddle rows);
//   absmax_b = max |w|;  x = w · (1 / max(absmax_b, 1e-38))  (fp32), clamped to [-1, 1]
//   (a partial last block divides by absmax instead of multiplying by its reciprocal);
//   code = number of NF4 midpoints strictly below x (ties take the lower code);
//   byte k = code[2k] << 4 | code[2k+1]  (an odd count pads with the code of 0.0, 7).
// Double quantisation (functional.quantize_4bit, native quantize_blockwise):
//   offset = mean(absmax) in torch's fp32 order;  absmax - offset quantised with the signed
//   dynamic 8-bit map in blocks of 256 (see Blockwise8bitQuantizer: table lookup, not nearest).
// Dequantisation (native CPU kernels):
//   scale_b = code8[q_b] · absmax2[b / 256] + offset  (fp32, two roundings, no FMA);
//   w = nf4[code] · scale_b  (fp32), rounded to the original dtype (bf16 checkpoints give bf16).
import Foundation

/// The weight's dtype before quantisation (bitsandbytes' `quant_state.dtype`): dequantised values
/// are rounded to it.
public enum NF4SourceDType: String, Sendable {
    case f32 = "float32"
    case bf16 = "bfloat16"
    case f16 = "float16"
}

/// An [rows, cols] linear weight in NF4 (bitsandbytes layout), read by kernels one row range at a time.
public final class NF4Weight: LinearWeight, @unchecked Sendable {
    public static let blockSize = 64
    public static let nestedBlockSize = 256

    /// Per-block scales: plain fp32 absmax, or (double quantisation) 8-bit codes into `code`, one
    /// fp32 absmax per 256 blocks and the subtracted mean.
    public enum Scales: Sendable {
        case plain(absmax: [Float])
        case nested(codes: [UInt8], absmax2: [Float], offset: Float, code: [Float])
    }

    public let rows: Int
    public let cols: Int
    public let dtype: NF4SourceDType
    /// Two codes per byte, element 2k in the high nibble (the bytes bitsandbytes stores as `weight`).
    public let packed: [UInt8]
    public let scales: Scales

    public var count: Int { rows * cols }
    public var blockCount: Int { (count + Self.blockSize - 1) / Self.blockSize }

    /// Bytes this weight keeps in memory (codes, scales and nested scales).
    public var storageBytes: Int {
        switch scales {
        case .plain(let a): return packed.count + 4 * a.count
        case .nested(let c, let a2, _, _): return packed.count + c.count + 4 * a2.count + 4
        }
    }

    /// A weight from stored state (e.g. bitsandbytes' tensors), checked for consistent sizes.
    public init(rows: Int, cols: Int, dtype: NF4SourceDType, packed: [UInt8], scales: Scales) {
        let n = rows * cols
        let blocks = (n + Self.blockSize - 1) / Self.blockSize
        precondition(packed.count == (n + 1) / 2, "NF4Weight: \(packed.count) packed bytes for [\(rows), \(cols)]")
        switch scales {
        case .plain(let a): precondition(a.count == blocks, "NF4Weight: \(a.count) absmax for \(blocks) blocks")
        case .nested(let c, let a2, _, let code):
            precondition(c.count == blocks && a2.count == (blocks + Self.nestedBlockSize - 1) / Self.nestedBlockSize && code.count == 256,
                         "NF4Weight: nested scales do not match \(blocks) blocks")
        }
        self.rows = rows; self.cols = cols; self.dtype = dtype; self.packed = packed; self.scales = scales
    }

    /// Quantises values supplied in pieces: `fill(range, dst)` writes the fp32 values of the flat
    /// element range `range` (row-major) into `dst`. Ranges are whole 64-blocks (except at the end)
    /// and may be requested concurrently, so the full fp32 matrix never has to exist.
    /// - referenceThreads: torch's intra-op thread count of the run to match; it only changes the
    ///   summation order of the mean (and only for tensors with more than 32,768 blocks).
    public convenience init(rows: Int, cols: Int, dtype: NF4SourceDType = .f32, doubleQuant: Bool = true,
                            referenceThreads: Int = 1, fill: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let n = rows * cols
        let bs = Self.blockSize
        let blocks = (n + bs - 1) / bs
        var absmax = [Float](repeating: 0, count: blocks)
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        let chunkBlocks = 1024  // 64K values of scratch per worker
        let chunks = (blocks + chunkBlocks - 1) / chunkBlocks
        absmax.withUnsafeMutableBufferPointer { am in
            packed.withUnsafeMutableBufferPointer { pk in
                let amp = am.baseAddress!, pkp = pk.baseAddress!
                BitsAndBytesMaps.nf4Thresholds.withUnsafeBufferPointer { th in
                    let thp = th.baseAddress!
                    Parallel.forEachChunk(count: chunks, grain: 4) { chunkRange in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunkBlocks * bs)
                        defer { scratch.deallocate() }
                        for c in chunkRange {
                            let b0 = c * chunkBlocks, b1 = min(blocks, b0 + chunkBlocks)
                            let e0 = b0 * bs, e1 = min(n, b1 * bs)
                            fill(e0..<e1, scratch)
                            NF4Weight.quantizeBlocks(scratch, firstElement: e0, elementEnd: e1, total: n,
                                                     absmax: amp + b0, packed: pkp, thresholds: thp)
                        }
                    }
                }
            }
        }
        let scales: Scales
        if doubleQuant {
            let offset = absmax.withUnsafeBufferPointer { TorchReduction.meanF32($0, threads: referenceThreads) }
            let residual = absmax.map { $0 - offset }
            let q = residual.withUnsafeBufferPointer { Blockwise8bitQuantizer.dynamic.quantize($0, blockSize: Self.nestedBlockSize) }
            scales = .nested(codes: q.codes, absmax2: q.absmax, offset: offset, code: Blockwise8bitQuantizer.dynamic.code)
        } else {
            scales = .plain(absmax: absmax)
        }
        self.init(rows: rows, cols: cols, dtype: dtype, packed: packed, scales: scales)
    }

    /// Quantises an fp32 [rows, cols] matrix.
    public convenience init(quantizing w: UnsafeBufferPointer<Float>, rows: Int, cols: Int, dtype: NF4SourceDType = .f32,
                            doubleQuant: Bool = true, referenceThreads: Int = 1) {
        precondition(w.count == rows * cols, "NF4Weight: \(w.count) values for [\(rows), \(cols)]")
        let base = w.baseAddress
        self.init(rows: rows, cols: cols, dtype: dtype, doubleQuant: doubleQuant, referenceThreads: referenceThreads) { range, dst in
            dst.update(from: base! + range.lowerBound, count: range.count)
        }
    }

    /// Quantises bf16 or f16 bit patterns (e.g. straight from a mapped checkpoint) without an fp32
    /// copy of the matrix; `dtype` records the source format so dequantised values round back to it.
    public convenience init(quantizingHalf bits: UnsafePointer<UInt16>, format: HalfPrecisionWeight.Format, rows: Int, cols: Int,
                            doubleQuant: Bool = true, referenceThreads: Int = 1) {
        self.init(rows: rows, cols: cols, dtype: format == .bf16 ? .bf16 : .f16, doubleQuant: doubleQuant,
                  referenceThreads: referenceThreads) { range, dst in
            let src = bits + range.lowerBound
            switch format {
            case .bf16: for i in 0..<range.count { dst[i] = float(fromBF16Bits: src[i]) }
            case .f16: for i in 0..<range.count { dst[i] = float(fromF16Bits: src[i]) }
            }
        }
    }

    /// Quantises an fp32 tensor whose first dimension is the output features.
    public convenience init(quantizing tensor: Tensor, doubleQuant: Bool = true, referenceThreads: Int = 1) {
        self.init(quantizing: UnsafeBufferPointer(start: tensor.data, count: tensor.count), rows: tensor.rows, cols: tensor.cols,
                  dtype: .f32, doubleQuant: doubleQuant, referenceThreads: referenceThreads)
    }

    /// Index of the NF4 code for a normalised value: how many thresholds lie strictly below it
    /// (binary lifting over the 15 sorted thresholds).
    @inline(__always) static func nf4Code(_ v: Float, _ t: UnsafePointer<Float>) -> UInt8 {
        var i = v > t[7] ? 8 : 0
        if v > t[i + 3] { i += 4 }
        if v > t[i + 1] { i += 2 }
        if v > t[i] { i += 1 }
        return UInt8(truncatingIfNeeded: i)
    }

    /// A first guess of the code from 512 uniform bins over [-1, 1]: guess[i] = number of thresholds
    /// below the bin start -1 + i/256. Thresholds are at least 0.08 apart and bins 0.004 wide, so the
    /// true code differs from the guess by at most one, which two comparisons settle exactly.
    static let codeGuess: [UInt8] = (0...512).map { i in
        let start = -1 + Double(i) / 256
        return UInt8(BitsAndBytesMaps.nf4Thresholds.filter { Double($0) < start }.count)
    }

    /// `nf4Code` through the bin table (same result for every value in [-1, 1]).
    @inline(__always) static func nf4CodeFast(_ c: Float, _ t: UnsafePointer<Float>, _ guess: UnsafePointer<UInt8>) -> UInt8 {
        let bin = min(512, max(0, Int((c + 1) * 256)))
        var code = Int(guess[bin])
        if code < 15 && c > t[code] { code += 1 }
        if code > 0 && !(c > t[code - 1]) { code -= 1 }
        return UInt8(truncatingIfNeeded: code)
    }

    /// Quantises the blocks covering elements [e0, e1) whose values are at `src`; `absmax` points at
    /// the first of these blocks' slots, `packed` at the whole packed array.
    static func quantizeBlocks(_ src: UnsafePointer<Float>, firstElement e0: Int, elementEnd e1: Int, total n: Int,
                               absmax: UnsafeMutablePointer<Float>, packed: UnsafeMutablePointer<UInt8>,
                               thresholds t: UnsafePointer<Float>) {
        let bs = blockSize
        var lo = e0
        var slot = 0
        codeGuess.withUnsafeBufferPointer { guess in
            while lo < e1 {
                let hi = min(e1, lo + bs)
                let x = src + (lo - e0)
                if hi - lo == bs {
                    absmax[slot] = quantizeFullBlock(x, into: packed + (lo >> 1), thresholds: t, guess: guess.baseAddress!)
                } else {
                    absmax[slot] = quantizePartialBlock(x, count: hi - lo, into: packed + (lo >> 1), thresholds: t)
                }
                lo = hi
                slot += 1
            }
        }
        _ = n
    }

    /// A full 64-value block: absmax (8 lanes at a time), then x · (1/absmax) clamped to [-1, 1] and
    /// its code, two per byte. Returns absmax.
    @inline(__always)
    static func quantizeFullBlock(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt8>,
                                  thresholds t: UnsafePointer<Float>, guess: UnsafePointer<UInt8>) -> Float {
        // Eight running maxima (independent chains), then their maximum: exact in any order.
        var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0, m4: Float = 0, m5: Float = 0, m6: Float = 0, m7: Float = 0
        for j in 0..<8 {
            let p = x + 8 * j
            let a0 = p[0].magnitude, a1 = p[1].magnitude, a2 = p[2].magnitude, a3 = p[3].magnitude
            let a4 = p[4].magnitude, a5 = p[5].magnitude, a6 = p[6].magnitude, a7 = p[7].magnitude
            m0 = a0 > m0 ? a0 : m0; m1 = a1 > m1 ? a1 : m1; m2 = a2 > m2 ? a2 : m2; m3 = a3 > m3 ? a3 : m3
            m4 = a4 > m4 ? a4 : m4; m5 = a5 > m5 ? a5 : m5; m6 = a6 > m6 ? a6 : m6; m7 = a7 > m7 ? a7 : m7
        }
        m0 = m1 > m0 ? m1 : m0; m2 = m3 > m2 ? m3 : m2; m4 = m5 > m4 ? m5 : m4; m6 = m7 > m6 ? m7 : m6
        m0 = m2 > m0 ? m2 : m0; m4 = m6 > m4 ? m6 : m4
        let absmax = m4 > m0 ? m4 : m0  // starts from +0, so an all-zero block gives +0 as torch does
        let inv = 1 / max(absmax, Float(1e-38))
        for j in 0..<(blockSize / 2) {
            var a = x[2 * j] * inv, b = x[2 * j + 1] * inv
            a = a < -1 ? -1 : (a > 1 ? 1 : a)
            b = b < -1 ? -1 : (b > 1 ? 1 : b)
            out[j] = nf4CodeFast(a, t, guess) << 4 | nf4CodeFast(b, t, guess)
        }
        return absmax
    }

    /// The partial last block: torch divides by absmax here instead of multiplying by its reciprocal,
    /// and an odd total pads the last byte's low nibble with the code of 0.
    static func quantizePartialBlock(_ x: UnsafePointer<Float>, count len: Int, into out: UnsafeMutablePointer<UInt8>,
                                     thresholds t: UnsafePointer<Float>) -> Float {
        var m: Float = 0
        for i in 0..<len { m = max(m, abs(x[i])) }
        let safe = max(m, Float(1e-38))
        @inline(__always) func code(_ v: Float) -> UInt8 { nf4Code(min(max(v / safe, -1), 1), t) }
        var i = 0
        while i + 1 < len {
            out[i >> 1] = code(x[i]) << 4 | code(x[i + 1])
            i += 2
        }
        if i < len { out[i >> 1] = code(x[i]) << 4 | nf4Code(0, t) }
        return m
    }

    /// The fp32 scale of block `b` (after undoing double quantisation).
    @inline(__always) public func blockScale(_ b: Int) -> Float {
        switch scales {
        case .plain(let a): return a[b]
        case .nested(let c, let a2, let offset, let code): return code[Int(c[b])] * a2[b / Self.nestedBlockSize] + offset
        }
    }

    /// All block scales as bitsandbytes computes them before dequantising (`absmax` after
    /// `dequantize_blockwise(...) + offset`).
    public func blockScales() -> [Float] { (0..<blockCount).map(blockScale) }

    public func dequantizeRows(_ rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= rows, "dequantizeRows \(rowRange) of [\(rows), \(cols)]")
        dequantize(elements: (rowRange.lowerBound * cols)..<(rowRange.upperBound * cols), into: dst)
    }

    /// For each packed byte, its two NF4 values (high nibble first).
    static let pairTable: [SIMD2<Float>] = (0..<256).map { SIMD2(BitsAndBytesMaps.nf4[$0 >> 4], BitsAndBytesMaps.nf4[$0 & 15]) }

    /// Writes the dequantised values of the flat element range into `dst`. Safe to call
    /// concurrently (read-only state).
    public func dequantize(elements: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let lo = elements.lowerBound, hi = elements.upperBound
        guard hi > lo else { return }
        precondition(lo >= 0 && hi <= count, "dequantize \(elements) of \(count) values")
        let bs = Self.blockSize
        let roundTo = dtype
        Self.pairTable.withUnsafeBufferPointer { pairs in
            BitsAndBytesMaps.nf4.withUnsafeBufferPointer { nf4p in
                packed.withUnsafeBufferPointer { pkb in
                    let nf4 = nf4p.baseAddress!, pk = pkb.baseAddress!, pt = pairs.baseAddress!
                    let out = dst - lo
                    func run(_ scale: (Int) -> Float) {
                        var e = lo
                        while e < hi {
                            let b = e / bs
                            let start = b * bs
                            let end = min(hi, start + bs)
                            let s = scale(b)
                            if e == start && end == start + bs && s.isFinite {
                                // Whole block: one table load, multiply and store per byte.
                                let raw = UnsafeMutableRawPointer(out + start)
                                let bytes = pk + (start >> 1)
                                let sv = SIMD2<Float>(repeating: s)
                                switch roundTo {
                                case .f32:
                                    for j in 0..<(bs / 2) { raw.storeBytes(of: pt[Int(bytes[j])] * sv, toByteOffset: 8 * j, as: SIMD2<Float>.self) }
                                case .bf16:
                                    // Round to nearest even on the bit pattern (values are finite here).
                                    for j in 0..<(bs / 2) {
                                        let u = unsafeBitCast(pt[Int(bytes[j])] * sv, to: SIMD2<UInt32>.self)
                                        let r = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) & 0xFFFF_0000
                                        raw.storeBytes(of: r, toByteOffset: 8 * j, as: SIMD2<UInt32>.self)
                                    }
                                case .f16:
                                    for j in 0..<(bs / 2) {
                                        let v = pt[Int(bytes[j])] * sv
                                        raw.storeBytes(of: SIMD2(float(fromF16Bits: f16Bits(fromFloat: v[0])), float(fromF16Bits: f16Bits(fromFloat: v[1]))),
                                                       toByteOffset: 8 * j, as: SIMD2<Float>.self)
                                    }
                                }
                            } else {
                                for k in e..<end {
                                    let byte = pk[k >> 1]
                                    let v = nf4[Int((k & 1) == 0 ? byte >> 4 : byte & 15)] * s
                                    switch roundTo {
                                    case .f32: out[k] = v
                                    case .bf16: out[k] = float(fromBF16Bits: bf16Bits(fromFloat: v))
                                    case .f16: out[k] = float(fromF16Bits: f16Bits(fromFloat: v))
                                    }
                                }
                            }
                            e = end
                        }
                    }
                    switch scales {
                    case .plain(let a):
                        a.withUnsafeBufferPointer { ap in run { ap[$0] } }
                    case .nested(let c, let a2, let offset, let code):
                        c.withUnsafeBufferPointer { cp in
                            a2.withUnsafeBufferPointer { a2p in
                                code.withUnsafeBufferPointer { codep in
                                    run { b in codep[Int(cp[b])] * a2p[b >> 8] + offset }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The whole matrix dequantised, row-major.
    public func dequantizedValues() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { dequantize(elements: 0..<count, into: $0.baseAddress!) }
        return out
    }
}
