// `sftdeck-bench quant`: a Gemma-3-4b-shaped model loaded in 4 bits (QLoRA's base), measured.
//
// Every linear layer of the text decoder (34 layers) and the SigLIP vision tower (27 layers) is
// generated layer by layer from a seeded generator and quantised to NF4 with double quantisation
// straight from the generator (no fp32 copy of any matrix exists); the parts QLoRA keeps in bf16
// (token embeddings, vision embeddings, projector, norms) are allocated and filled as bf16. The
// suite reports resident memory (VmRSS / VmHWM from /proc/self/status) after each stage, the
// quantisation rate, and dequantisation throughput against memcpy and bf16 widening measured in the
// same run.
import Foundation
import Tensor

/// Gemma 3 4B shapes (google/gemma-3-4b-it config): [out, in] of each linear.
private struct QuantBenchShapes {
    static let textLayers = 34, visionLayers = 27
    static let hidden = 2560, intermediate = 10240, heads = 8, kvHeads = 4, headDim = 256, vocab = 262_208
    static let vHidden = 1152, vIntermediate = 4304, patch = 14, positions = 4096
    static var textLinears: [(String, Int, Int)] {
        [("q_proj", heads * headDim, hidden), ("k_proj", kvHeads * headDim, hidden), ("v_proj", kvHeads * headDim, hidden),
         ("o_proj", hidden, heads * headDim), ("gate_proj", intermediate, hidden), ("up_proj", intermediate, hidden),
         ("down_proj", hidden, intermediate)]
    }
    static var visionLinears: [(String, Int, Int)] {
        [("q_proj", vHidden, vHidden), ("k_proj", vHidden, vHidden), ("v_proj", vHidden, vHidden),
         ("out_proj", vHidden, vHidden), ("fc1", vIntermediate, vHidden), ("fc2", vHidden, vIntermediate)]
    }
    /// Values kept in bf16 by QLoRA: embed_tokens (tied lm_head), patch + position embeddings,
    /// projector, and every norm weight.
    static var bf16Values: Int {
        let textNorms = textLayers * (4 * hidden + 2 * headDim) + hidden
        let visionNorms = visionLayers * (2 * 2 * vHidden) + 2 * vHidden
        let visionBiases = visionLayers * (4 * vHidden + vIntermediate + vHidden) + vHidden
        return vocab * hidden + vHidden * 3 * patch * patch + positions * vHidden + vHidden * hidden + vHidden
            + textNorms + visionNorms + visionBiases
    }
}

/// Resident set size and its peak, in bytes.
private func residentMemory() -> (rss: Int, peak: Int) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }
            return (digits.first ?? 0) * 1024
        }
        return 0
    }
    return (field("VmRSS:"), field("VmHWM:"))
}


private func gib(_ b: Int) -> String { String(format: "%.2f GiB", Double(b) / Double(1 << 30)) }

/// A position-keyed generator (safe to call from any thread for any range): approximately
/// N(0, 0.02²) from the sum of four 16-bit uniforms of a SplitMix64 hash.
@inline(__always) private func weightValue(seed: UInt64, index: Int) -> Float {
    var z = seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    let s = Float(z & 0xFFFF) + Float((z >> 16) & 0xFFFF) + Float((z >> 32) & 0xFFFF) + Float(z >> 48)
    // Sum of 4 uniforms on [0, 65535]: mean 131070, sd 65535·sqrt(4/12).
    return (s - 131_070) * (0.02 / 37_836.6)
}

public func runQuantBench() {
    typealias S = QuantBenchShapes
    let start = residentMemory()
    print("quant: Gemma-3-4b-shaped model in NF4 (double quantisation), \(Parallel.coreCount) cores")
    print(String(format: "  baseline RSS %@", gib(start.rss)))

    // 1. Quantise every linear, layer by layer, from the generator.
    var weights: [(String, NF4Weight)] = []
    var quantisedValues = 0
    let t0 = Date(), c0 = processCPUSeconds()
    var seed: UInt64 = 1
    func add(_ name: String, _ rows: Int, _ cols: Int) {
        let s = seed; seed &+= 1
        let w = NF4Weight(rows: rows, cols: cols, dtype: .bf16) { range, dst in
            for (k, i) in range.enumerated() { dst[k] = weightValue(seed: s, index: i) }
        }
        quantisedValues += rows * cols
        weights.append((name, w))
    }
    for l in 0..<S.textLayers {
        for (n, r, c) in S.textLinears { add("language_model.layers.\(l).\(n)", r, c) }
    }
    for l in 0..<S.visionLayers {
        for (n, r, c) in S.visionLinears { add("vision_tower.layers.\(l).\(n)", r, c) }
    }
    let quantSeconds = Date().timeIntervalSince(t0), quantCPU = processCPUSeconds() - c0
    let nf4Bytes = weights.reduce(0) { $0 + $1.1.storageBytes }
    let afterQuant = residentMemory()
    print(String(format: "  %d linears, %.3f G values generated + quantised in %.1f s wall, %.1f s CPU (%.0f M values per CPU-second)",
                 weights.count, Double(quantisedValues) / 1e9, quantSeconds, quantCPU, Double(quantisedValues) / quantCPU / 1e6))
    print(String(format: "  NF4 storage %@ (%.3f bytes/value: 0.5 codes + %.4f scales); RSS %@ (+%@ over baseline), peak %@",
                 gib(nf4Bytes), Double(nf4Bytes) / Double(quantisedValues), Double(nf4Bytes) / Double(quantisedValues) - 0.5,
                 gib(afterQuant.rss), gib(afterQuant.rss - start.rss), gib(afterQuant.peak)))

    // 2. The bf16 remainder (embeddings, projector, norms), touched so it is resident.
    let bf16Count = S.bf16Values
    let bf16 = UnsafeMutablePointer<UInt16>.allocate(capacity: bf16Count)
    defer { bf16.deallocate() }
    Parallel.forEachChunk(count: bf16Count, grain: 1 << 20) { r in
        for i in r { bf16[i] = bf16Bits(fromFloat: weightValue(seed: 999, index: i)) }
    }
    let loaded = residentMemory()
    let totalValues = quantisedValues + bf16Count
    print(String(format: "  + %.3f G bf16 values (embeddings, projector, norms) = %@", Double(bf16Count) / 1e9, gib(2 * bf16Count)))
    print(String(format: "  Gemma-3-4b in 4 bits: %.3f G parameters, RSS %@ (model %@ = %.2f bytes/param; bf16 model would be %@), peak %@",
                 Double(totalValues) / 1e9, gib(loaded.rss), gib(nf4Bytes + 2 * bf16Count),
                 Double(nf4Bytes + 2 * bf16Count) / Double(totalValues), gib(2 * totalValues), gib(loaded.peak)))

    // 3. Dequantisation throughput on one text + one vision layer, in the kernel's tile size
    //    (~2 MB of fp32 per call), against memcpy and bf16 → fp32 widening of the same byte counts.
    let sample = weights.filter { $0.0.hasPrefix("language_model.layers.0.") || $0.0.hasPrefix("vision_tower.layers.0.") }.map(\.1)
    let sampleValues = sample.reduce(0) { $0 + $1.count }
    let maxCols = sample.map(\.cols).max()!
    let tileValues = 1 << 19
    /// Wall seconds per run (after a warm-up run); CPU seconds per run in `cpu`.
    var cpu = 0.0
    func timeIt(_ repeats: Int, _ body: () -> Void) -> Double {
        body()  // warm-up
        let t = Date(), c = processCPUSeconds()
        for _ in 0..<repeats { body() }
        cpu = (processCPUSeconds() - c) / Double(repeats)
        return Date().timeIntervalSince(t) / Double(repeats)
    }
    func dequantAll(threads: Int) {
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(tileValues, maxCols))
            defer { scratch.deallocate() }
            for w in sample {
                let tile = max(1, min(w.rows, tileValues / w.cols))
                var r0 = worker * tile
                while r0 < w.rows {
                    w.dequantizeRows(r0..<min(w.rows, r0 + tile), into: scratch)
                    r0 += threads * tile
                }
            }
        }
    }
    let one = timeIt(3) { dequantAll(threads: 1) }
    let oneCPU = cpu
    let two = timeIt(3) { dequantAll(threads: Parallel.coreCount) }
    // References on the same number of output values.
    let src16 = UnsafeMutablePointer<UInt16>.allocate(capacity: sampleValues)
    let dst32 = UnsafeMutablePointer<Float>.allocate(capacity: sampleValues)
    let src32 = UnsafeMutablePointer<Float>.allocate(capacity: sampleValues)
    defer { src16.deallocate(); dst32.deallocate(); src32.deallocate() }
    for i in 0..<sampleValues { src16[i] = bf16[i % bf16Count]; src32[i] = Float(i & 1023) }
    let widen = timeIt(3) { convertBF16ToF32(src16, dst32, count: sampleValues) }
    let copy = timeIt(3) { memcpy(dst32, src32, sampleValues * 4) }
    let gv = Double(sampleValues) / 1e9
    print(String(format: "  dequant NF4 -> fp32, bf16-rounded (%.1f M values, %d-value tiles): 1 thread %.2f G values/s wall (%.2f per CPU-second, %.1f GB/s fp32 out), %d threads %.2f G values/s wall",
                 Double(sampleValues) / 1e6, tileValues, gv / one, gv / oneCPU, gv * 4 / one, Parallel.coreCount, gv / two))
    print(String(format: "  references, same values: bf16 -> fp32 widening %.2f G values/s, memcpy fp32 %.2f G values/s (%.1f GB/s); NF4 dequant = %.2fx widening, %.2fx memcpy",
                 gv / widen, gv / copy, gv * 8 / copy, widen / two, copy / two))
    print(String(format: "  a full pass over all %d quantised weights (one forward's worth of dequantisation) ≈ %.2f s on %d threads",
                 weights.count, Double(quantisedValues) / (Double(sampleValues) / two), Parallel.coreCount))
}
