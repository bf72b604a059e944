// bitsandbytes' quantisation maps and reductions, reproduced bit for bit (version 0.50.2, CPU).
//
// Everything here follows the code path bitsandbytes takes on a CPU, read from its sources and
// checked against its outputs in Tests/TensorTests/Fixtures/nf4 (Scripts/fixtures/gen_nf4.py).

/// The fixed code books.
public enum BitsAndBytesMaps {
    /// NF4 code values (`get_4bit_type("nf4")`), index -> value; sorted ascending, 0 at index 7.
    public static let nf4: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// Decision thresholds of the pure-torch `quantize_4bit`: `(code[i] + code[i+1]) / 2` in fp32.
    /// A value maps to the number of thresholds strictly below it (`torch.bucketize`, right=False),
    /// so a value exactly on a threshold takes the lower code.
    public static let nf4Thresholds: [Float] = (0..<15).map { (nf4[$0] + nf4[$0 + 1]) / 2 }

    /// The signed 8-bit dynamic map, `create_dynamic_map(signed=True)` (256 sorted values, 0 at
    /// index 127, 1.0 at 255), as fp32 bit patterns: torch's float32 linspace and products decide
    /// the last bits, so the values are copied from bitsandbytes rather than recomputed.
    /// SHA-256 of the 1024 little-endian bytes: e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c.
    public static let dynamicSigned: [Float] = dynamicSignedBits.map { Float(bitPattern: $0) }

    static let dynamicSignedBits: [UInt32] = [
        0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
        0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
        0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
        0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
        0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
        0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
        0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
        0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
        0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
        0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
        0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
        0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
        0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
        0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
        0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
        0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
        0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
        0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
        0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
        0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
        0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
        0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
        0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
        0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
        0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
        0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
        0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
        0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
        0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
        0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
        0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
        0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
    ]
}

/// torch's CPU float32 `sum`/`mean` order (aten/src/ATen/native/cpu/SumKernel.cpp: cascade sum
/// with 8-lane vectors, 4-way ILP and 4 accumulation levels, fp32 accumulators), so that
/// `absmax.mean()` in double quantisation gives bitsandbytes' offset to the last bit.
///
/// Above 32,768 elements torch splits the reduction over its intra-op threads (chunks of
/// ceil(n / threads), each summed the same way, then the partial sums added); `threads` is that
/// count in the reference run (`torch.get_num_threads()`), which changes the last bits only.
public enum TorchReduction {
    public static func meanF32(_ x: UnsafeBufferPointer<Float>, threads: Int = 1) -> Float {
        guard !x.isEmpty else { return .nan }
        return sumF32(x, threads: threads) / Float(x.count)
    }

    public static func sumF32(_ x: UnsafeBufferPointer<Float>, threads: Int = 1) -> Float {
        let n = x.count
        let grain = 32768
        guard n >= grain, threads > 1 else { return serialSum(x) }
        let chunks = min(threads, (n + grain - 1) / grain)
        guard chunks > 1 else { return serialSum(x) }
        let chunk = (n + chunks - 1) / chunks
        var partials: [Float] = []
        var start = 0
        while start < n {
            let end = min(n, start + chunk)
            partials.append(serialSum(UnsafeBufferPointer(rebasing: x[start..<end])))
            start = end
        }
        return 0 + partials.withUnsafeBufferPointer { serialSum($0) }
    }

    /// One contiguous run: 8-wide vector rows summed by `rowSum`, the scalar tail added, then the 8
    /// vector lanes added in order; runs shorter than 8 take the scalar `rowSum`.
    static func serialSum(_ x: UnsafeBufferPointer<Float>) -> Float {
        let n = x.count
        guard n > 0 else { return 0 }
        let lanes = 8
        guard n >= lanes else { return rowSum(x.baseAddress!, count: n, width: 1)[0] }
        let vectors = n / lanes
        let acc = rowSum(x.baseAddress!, count: vectors, width: lanes)
        var total: Float = 0
        for k in (vectors * lanes)..<n { total += x[k] }
        for k in 0..<lanes { total += acc[k] }
        return total
    }

    /// `row_sum`: the `count` items (each `width` floats) viewed as rows of 4 (ILP), summed by
    /// `multiRowSum`, leftovers added to lane group 0, then groups 1...3 added to it.
    static func rowSum(_ p: UnsafePointer<Float>, count: Int, width: Int) -> [Float] {
        let ilp = 4
        let rows = count / ilp
        var part = multiRowSum(p, rows: rows, ilp: ilp, width: width)
        for i in (rows * ilp)..<count {
            for w in 0..<width { part[w] += p[i * width + w] }
        }
        for k in 1..<ilp {
            for w in 0..<width { part[w] += part[k * width + w] }
        }
        return Array(part[0..<width])
    }

    /// `multi_row_sum`: accumulators in 4 levels, level 0 flushed upward every 2^levelPower rows.
    static func multiRowSum(_ p: UnsafePointer<Float>, rows size: Int, ilp: Int, width: Int) -> [Float] {
        let levels = 4
        let ceilLog2 = size <= 1 ? 0 : Int.bitWidth - (size - 1).leadingZeroBitCount
        let levelPower = max(4, ceilLog2 / levels)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        let lane = ilp * width
        var acc = [Float](repeating: 0, count: levels * lane)
        var i = 0
        acc.withUnsafeMutableBufferPointer { a in
            while i + levelStep <= size {
                for _ in 0..<levelStep {
                    let row = p + i * lane
                    for k in 0..<lane { a[k] += row[k] }
                    i += 1
                }
                for j in 1..<levels {
                    for k in 0..<lane { a[j * lane + k] += a[(j - 1) * lane + k]; a[(j - 1) * lane + k] = 0 }
                    if (i & (levelMask << (j * levelPower))) != 0 { break }
                }
            }
            while i < size {
                let row = p + i * lane
                for k in 0..<lane { a[k] += row[k] }
                i += 1
            }
            for j in 1..<levels {
                for k in 0..<lane { a[k] += a[j * lane + k] }
            }
        }
        return Array(acc[0..<lane])
    }
}

/// bitsandbytes' blockwise 8-bit quantisation on CPU (`quantize_blockwise`, native library): per
/// block absmax, `y = x * (1/absmax)`, and the code index read from a 65,536-entry table built from
/// the code book's midpoints, which is not always the nearest code (near zero the dynamic map's
/// codes are closer together than the table's bins).
public struct Blockwise8bitQuantizer: Sendable {
    public static let tableSize = 65536
    public let code: [Float]
    /// table[i] = index of the first code whose midpoint with its upper neighbour is not below the
    /// bin value -1 + 2i/65535.
    public let table: [UInt8]

    public static let dynamic = Blockwise8bitQuantizer(code: BitsAndBytesMaps.dynamicSigned)

    public init(code: [Float]) {
        precondition(code.count == 256, "an 8-bit code book has 256 entries")
        self.code = code
        let mids: [Float] = (0..<255).map { (code[$0] + code[$0 + 1]) * 0.5 }
        var table = [UInt8](repeating: 0, count: Self.tableSize)
        var c = 0
        for i in 0..<Self.tableSize {
            let value = (2 * Float(i)) / Float(Self.tableSize - 1) - 1
            while c < 255 && value > mids[c] { c += 1 }
            table[i] = UInt8(c)
        }
        self.table = table
    }

    /// The table bin of a normalised value: (uint16)fma((clamp(y) + 1) * 0.5, 65535, 0.5).
    @inline(__always) static func bin(_ y: Float) -> Int {
        let c = min(max(y, -1), 1)
        let t = (c + 1) * 0.5
        return Int(Float(0.5).addingProduct(t, 65535)) & 0xFFFF
    }

    /// Quantises `x` in blocks of `blockSize`; returns one code per value and one absmax per block.
    public func quantize(_ x: UnsafeBufferPointer<Float>, blockSize: Int) -> (codes: [UInt8], absmax: [Float]) {
        let n = x.count
        let blocks = (n + blockSize - 1) / blockSize
        var codes = [UInt8](repeating: 0, count: n)
        var absmax = [Float](repeating: 0, count: blocks)
        table.withUnsafeBufferPointer { lut in
            for b in 0..<blocks {
                let lo = b * blockSize, hi = min(n, lo + blockSize)
                var m: Float = 0
                for i in lo..<hi { m = max(m, abs(x[i])) }
                absmax[b] = m
                guard m != 0 else { continue }  // codes stay 0, as in the C++ (memset)
                let inv = 1 / m
                for i in lo..<hi { codes[i] = lut[Self.bin(x[i] * inv)] }
            }
        }
        return (codes, absmax)
    }

    /// `code[q] * absmax[block]` in fp32.
    public func dequantize(_ codes: UnsafeBufferPointer<UInt8>, absmax: UnsafeBufferPointer<Float>, blockSize: Int,
                           into out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<codes.count { out[i] = code[Int(codes[i])] * absmax[i / blockSize] }
    }
}
