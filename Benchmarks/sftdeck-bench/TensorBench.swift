// `sftdeck-bench tensor`: sgemm GFLOP/s on Gemma 3 layer shapes and the 2048³ peak; element-wise
// kernels as a fraction of the memory bandwidth measured in the same run (STREAM-style triad).
import Dispatch
import Foundation
import Tensor


/// Cores actually used by the last `bestTime` run (CPU seconds / wall seconds): about 2 on a quiet
/// machine, much less when other jobs share it.
nonisolated(unsafe) fileprivate var lastCoresUsed = 0.0

/// Seconds of the fastest of `reps` runs (after one warm-up).
fileprivate func bestTime(reps: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<reps {
        let c0 = processCPUSeconds()
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if wall < best { best = wall; lastCoresUsed = (processCPUSeconds() - c0) / wall }
    }
    return best
}

/// Figures are wall-clock; "cores busy" (process CPU seconds / wall seconds) shows how much of the
/// 2-core machine the run had — on a shared machine divide by it for a per-core figure.
func runTensorBench() {
    BLASRuntime.reexecWithBestKernelIfNeeded()
    setvbuf(stdout, nil, _IOLBF, 0)
    print("tensor: OpenBLAS core \(BLASRuntime.coreName), \(BLASRuntime.threadCount) BLAS threads, \(Parallel.coreCount) cores")

    // Memory bandwidth: triad a = b + s·c over 3 × 128 MB, both cores (bytes counted: 3 streams).
    let n = 32 << 20
    let a = Tensor(zeros: [n]), b = Tensor(shape: [n], repeating: 1), c = Tensor(shape: [n], repeating: 2)
    let pa = a.data, pb = b.data, pc = c.data
    let triad = bestTime(reps: 5) {
        Parallel.forEachChunk(count: n, grain: 1 << 16) { r in for i in r { pa[i] = pb[i] + 3 * pc[i] } }
    }
    let bandwidth = Double(3 * 4 * n) / triad
    let triadCores = lastCoresUsed
    let copy = bestTime(reps: 5) { memcpy(pa, pb, 4 * n) }
    print(String(format: "memory: triad %.1f GB/s (%.2f cores busy), memcpy %.1f GB/s (1 thread, read+write)",
                 bandwidth / 1e9, triadCores, Double(2 * 4 * n) / copy / 1e9))
    // The scalar tanh loop, one thread: libm tanhf vs tanhFloat.
    let probe = Tensor.randomUniform([1 << 22], seed: 11, low: -10, high: 10), sink = Tensor(zeros: [1 << 22])
    let pp = probe.data, ps = sink.data
    let tLibm = bestTime(reps: 3) { for i in 0..<(1 << 22) { ps[i] = tanhf(pp[i]) } }
    let tFast = bestTime(reps: 3) { for i in 0..<(1 << 22) { ps[i] = tanhFloat(pp[i]) } }
    var i4 = 0
    let tFast4 = bestTime(reps: 3) {
        i4 = 0
        while i4 < (1 << 22) {
            let y = tanhFloat4(UnsafeRawPointer(pp + i4).loadUnaligned(as: SIMD4<Float>.self))
            UnsafeMutableRawPointer(ps + i4).storeBytes(of: y, as: SIMD4<Float>.self)
            i4 += 4
        }
    }
    print(String(format: "tanh, 1 thread: libm tanhf %.2f ns, tanhFloat %.2f ns, tanhFloat4 %.2f ns per element (%.2f cores busy)",
                 tLibm * 1e9 / Double(1 << 22), tFast * 1e9 / Double(1 << 22), tFast4 * 1e9 / Double(1 << 22), lastCoresUsed))

    // sgemm on Gemma 3 4B layer shapes (hidden 2560, 8×256 query, 4×256 kv, MLP 10240), 256 tokens.
    func gemm(_ label: String, _ m: Int, _ nn: Int, _ k: Int, ta: Bool = false, tb: Bool = false, reps: Int = 3) {
        let x = Tensor.randomUniform([m * k], seed: 1), w = Tensor.randomUniform([k * nn], seed: 2), y = Tensor(zeros: [m * nn])
        let t = bestTime(reps: reps) {
            sgemm(transposeA: ta, transposeB: tb, m: m, n: nn, k: k, alpha: 1, a: x.data, lda: ta ? m : k,
                  b: w.data, ldb: tb ? k : nn, beta: 0, c: y.data, ldc: nn)
        }
        let gflops = 2.0 * Double(m * nn * k) / t / 1e9
        print(String(format: "sgemm %-34@ %5d x %5d x %5d  %7.1f GFLOP/s  (%.2f cores busy: %.1f per busy core)", label as NSString,
                     m, nn, k, gflops, lastCoresUsed, gflops / max(lastCoresUsed, 1e-9)))
    }
    let tokens = 256
    gemm("q_proj  x·Wᵀ", tokens, 2048, 2560, tb: true)
    gemm("k/v_proj x·Wᵀ", tokens, 1024, 2560, tb: true)
    gemm("o_proj  x·Wᵀ", tokens, 2560, 2048, tb: true)
    gemm("gate/up x·Wᵀ", tokens, 10240, 2560, tb: true)
    gemm("down    x·Wᵀ", tokens, 2560, 10240, tb: true)
    gemm("down backward dx = dy·W", tokens, 10240, 2560)
    gemm("gate backward dW = dyᵀ·x", 10240, 2560, tokens, ta: true)
    gemm("attention scores q·kᵀ (1 head)", tokens, tokens, 256, tb: true, reps: 10)
    gemm("LoRA A (r=16) x·Aᵀ", tokens, 16, 2560, tb: true, reps: 10)
    gemm("peak", 2048, 2048, 2048)

    // Element-wise kernels on 16.4M floats (66 MB per stream): effective GB/s and fraction of the triad.
    let d = 2560, m = 6400 * d
    let x = Tensor.randomNormal([m / d, d], seed: 3), y = Tensor(zeros: [m / d, d]), z = Tensor.randomNormal([m / d, d], seed: 4)
    let w = Tensor.randomNormal([d], seed: 5, std: 0.1), rstd = Tensor(zeros: [m / d])
    func report(_ label: String, streams: Int, _ t: Double) {
        let gbs = Double(streams * 4 * m) / t
        print(String(format: "%-28@ %7.2f ms  %6.1f GB/s  %5.1f%% of triad  (%.2f ns/element, %.2f cores busy)", label as NSString,
                     t * 1e3, gbs / 1e9, 100 * gbs / bandwidth, t * 1e9 / Double(m), lastCoresUsed))
    }
    report("add (2 in, 1 out)", streams: 3, bestTime(reps: 5) { addForward(out: y, x, z) })
    report("rmsnorm fwd (1 in, 1 out)", streams: 2, bestTime(reps: 5) { rmsNormForward(out: y, rstd: rstd, x, weight: w, eps: 1e-6) })
    report("rmsnorm bwd (3 in, 1 out)", streams: 4, bestTime(reps: 5) { rmsNormBackward(dx: y, dweight: nil, dout: z, x, weight: w, rstd: rstd) })
    report("gelu tanh fwd (1 in, 1 out)", streams: 2, bestTime(reps: 5) { geluTanhForward(out: y, x) })
    report("gelu tanh bwd (2 in, 1 out)", streams: 3, bestTime(reps: 5) { geluTanhBackward(dx: y, dout: z, x) })
    let sm = x.reshaped([m / 1024, 1024])
    report("softmax rows of 1024", streams: 2, bestTime(reps: 5) { softmaxForward(out: y.reshaped([m / 1024, 1024]), sm) })
    let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: m)
    defer { bits.deallocate() }
    convertF32ToBF16(x.data, bits, count: m)
    report("bf16 -> f32 (0.5 in, 1 out)", streams: 1, bestTime(reps: 5) { convertBF16ToF32(bits, y.data, count: m) } * 2 / 3)

    // Linear over a frozen bf16 weight (dequantised in tiles) vs the same weight in fp32.
    let wf = Tensor.randomNormal([10240, 2560], seed: 6, std: 0.02)
    let wb = HalfPrecisionWeight(format: .bf16, rounding: wf)
    let xin = Tensor.randomNormal([tokens, 2560], seed: 7), yout = Tensor(zeros: [tokens, 10240])
    let tf = bestTime(reps: 3) { linearForward(out: yout, x: xin, weight: wf) }
    let tb = bestTime(reps: 3) { linearForward(out: yout, x: xin, weight: wb) }
    print(String(format: "linear 256x2560 -> 10240: fp32 weight %.1f ms, bf16 weight %.1f ms (%.2fx)", tf * 1e3, tb * 1e3, tb / tf))

    // Attention forward + backward at Gemma 3 4B head shapes (8 heads on 4 kv heads × 256), causal.
    let l = 512
    let q = Tensor.randomNormal([1, l, 8, 256], seed: 8), k = Tensor.randomNormal([1, l, 4, 256], seed: 9)
    let v = Tensor.randomNormal([1, l, 4, 256], seed: 10), o = Tensor(zeros: q.shape), probs = Tensor(zeros: [1, 8, l, l])
    let dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
    let mask = AttentionMask(slidingWindow: 1024)
    let ta = bestTime(reps: 3) { attentionForward(out: o, probs: probs, q: q, k: k, v: v, scale: 1.0 / 16, mask: mask) }
    let tab = bestTime(reps: 3) {
        attentionBackward(dq: dq, dk: dk, dv: dv, dout: o, probs: probs, q: q, k: k, v: v, scale: 1.0 / 16, mask: mask)
    }
    print(String(format: "attention L=%d 8x256 (GQA 4 kv): forward %.1f ms, backward %.1f ms", l, ta * 1e3, tab * 1e3))
}
