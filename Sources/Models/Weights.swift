// Weights: frozen tensors kept in their stored precision (memory-mapped safetensors, bf16 stays 2 bytes a
// value and is widened inside the matrix kernels), trainable parameters in fp32 with their gradients,
// and the checkpoint key layouts transformers has used for Gemma 3.
import Foundation
import Tensor

public enum StoredDType: String, Sendable {
    case f32 = "F32", bf16 = "BF16", f16 = "F16"
    var size: Int { self == .f32 ? 4 : 2 }
}

/// A read-only tensor in its stored dtype, pointing into a memory map (or an owned buffer).
public final class FrozenTensor: @unchecked Sendable {
    public let dtype: StoredDType
    public let shape: [Int]
    let base: UnsafeRawPointer
    let owner: AnyObject?
    public var count: Int { shape.reduce(1, *) }
    init(dtype: StoredDType, shape: [Int], base: UnsafeRawPointer, owner: AnyObject?) {
        self.dtype = dtype; self.shape = shape; self.base = base; self.owner = owner
    }
    /// Widens elements [start, start+n) to fp32.
    func read(into out: FPtr, start: Int, count n: Int) {
        switch dtype {
        case .f32:
            memcpy(out, base + start * 4, n * 4)
        case .bf16:
            let s = base + start * 2
            if Int(bitPattern: s) % 2 == 0 { convertBF16ToF32(s.assumingMemoryBound(to: UInt16.self), out, count: n); return }
            for i in 0..<n { out[i] = float(fromBF16Bits: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .f16:
            let s = base + start * 2
            for i in 0..<n { out[i] = float(fromF16Bits: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
    }
    /// Direct fp32 pointer when the storage is aligned fp32 (no copy needed).
    var directF32: CFPtr? {
        dtype == .f32 && Int(bitPattern: base) % 4 == 0 ? base.assumingMemoryBound(to: Float.self) : nil
    }
    func toFloats() -> FBuf { let b = FBuf(count, zero: false); read(into: b.p, start: 0, count: count); return b }
}

extension FrozenTensor {
    /// Drops this tensor's pages of a memory-mapped checkpoint from the process's resident set, once it has
    /// been replaced by another storage (QLoRA: after quantising to NF4 the bf16/fp32 pages are dead weight;
    /// without this they stay resident as file-backed RSS). The map is read-only, so a later read would just
    /// fault the pages back in from the file. A no-op for tensors in owned (anonymous) memory.
    public func releaseMappedPages() {
        guard owner is MappedSafeTensors else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = Int(bitPattern: base), hi = lo + count * dtype.size
        let start = (lo + page - 1) / page * page, end = hi / page * page   // whole pages inside the tensor only
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, Int32(MADV_DONTNEED))
    }
}

/// A frozen checkpoint tensor is a module-Tensor LinearWeight (rows = shape[0]), so NF4 quantisers and
/// Tensor kernels can read it without a copy.
extension FrozenTensor: LinearWeight {
    public var rows: Int { shape.first ?? 1 }
    public var cols: Int { rows == 0 ? 0 : count / rows }
    public func dequantizeRows(_ rowRange: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        read(into: dst, start: rowRange.lowerBound * cols, count: rowRange.count * cols)
    }
    public var fp32Rows: UnsafePointer<Float>? { directF32 }
}

/// A trainable fp32 tensor with its gradient (named as transformers / PEFT name it).
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    let valueBuf: FBuf
    let gradBuf: FBuf
    /// Lives in an nn.LayerNorm (SigLIP layer_norm1/2, post_layernorm): the Trainer excludes it by type.
    public let inNormLayer: Bool
    /// HF Trainer's `get_decay_parameter_names`: no decay inside LayerNorm modules, nor for names with
    /// bias / layernorm / rmsnorm / a "norm" component / a component ending "_norm".
    public let weightDecay: Bool
    public var count: Int { valueBuf.count }
    public var value: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: valueBuf.p, count: count) }
    public var grad: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: gradBuf.p, count: count) }
    /// Set for a [rows, width] table only an embedding lookup reads: the gradient rows the backward wrote
    /// since the last zeroing; every other row is exactly zero (see `GradientRows`). nil: dense.
    public let gradientRows: GradientRows?
    /// `embeddingTable`: a lookup table (rows = shape[0]); its gradient is row-tracked when
    /// `GradientRows.enabled`, and its pages are left to the first write.
    init(name: String, shape: [Int], value: FBuf, embeddingTable: Bool = false) {
        self.name = name; self.shape = shape; valueBuf = value
        let sparse = embeddingTable && GradientRows.enabled && shape.count == 2 && shape[1] > 0
        gradientRows = sparse ? GradientRows(rows: shape[0], width: shape[1]) : nil
        // large ones: a fresh LargeBlockCache mapping, zero without a fill (populated, unless row-tracked)
        gradBuf = TensorStorage(capacity: value.count, zeroed: true, populate: !sparse)
        let n = name.lowercased()
        let parts = n.split(separator: ".", omittingEmptySubsequences: false)
        inNormLayer = parts.contains { $0.hasPrefix("layer_norm") || $0 == "post_layernorm" }
        let excluded = n.contains("bias") || n.contains("layernorm") || n.contains("rmsnorm") || parts.contains("norm")
            || parts.contains { $0.hasSuffix("_norm") }
        weightDecay = !(inNormLayer || excluded)
    }

}

/// A weight used by a layer: frozen (stored dtype) or trainable (fp32 parameter).
final class Weight {
    let shape: [Int]
    /// A frozen weight in another storage format from module Tensor (NF4, ...), replacing `frozen`.
    private(set) var external: (any LinearWeight)?
    private(set) var frozen: FrozenTensor?
    private(set) var param: Parameter?
    /// fp32 copy of a small frozen tensor (norm weights, biases...), made once.
    private var cachedF32: FBuf?
    init(frozen: FrozenTensor) { shape = frozen.shape; self.frozen = frozen }
    init(param: Parameter) { shape = param.shape; self.param = param }
    var count: Int { shape.reduce(1, *) }
    var trainable: Bool { param != nil }
    /// The frozen weight as a module-Tensor LinearWeight (rows = shape[0]).
    var asLinearWeight: any LinearWeight {
        if let e = external { return e }
        if let f = frozen { return f }
        return Tensor(shape: [shape[0], count / shape[0]], Array(UnsafeBufferPointer(start: param!.valueBuf.p, count: count)))
    }
    /// Swaps in another frozen storage (e.g. NF4); only for frozen weights.
    func replaceFrozen(with w: any LinearWeight) throws {
        guard param == nil else { throw ModelError("cannot replace a trainable weight") }
        guard w.rows == shape[0], w.rows * w.cols == count else { throw ModelError("replacement weight is \(w.rows)×\(w.cols), expected \(shape)") }
        external = w; frozen = nil; cachedF32 = nil
    }
    var grad: FPtr? { param?.gradBuf.p }

    /// Whole tensor as fp32 (pointer valid while self lives). For frozen matrices prefer `rowsF32`.
    var f32: CFPtr {
        if let p = param { return CFPtr(p.valueBuf.p) }
        if let e = external {
            if let d = e.fp32Rows { return d }
            if cachedF32 == nil { let b = FBuf(count, zero: false); e.dequantizeRows(0..<e.rows, into: b.p); cachedF32 = b }
            return CFPtr(cachedF32!.p)
        }
        if let d = frozen!.directF32 { return d }
        if cachedF32 == nil { cachedF32 = frozen!.toFloats() }
        return CFPtr(cachedF32!.p)
    }
    /// Rows [r0, r1) of a (rows, cols) matrix as fp32: direct when possible, else widened into `scratch`.
    func rowsF32(_ r0: Int, _ r1: Int, cols: Int, scratch: FPtr) -> CFPtr {
        if let p = param { return CFPtr(p.valueBuf.p + r0 * cols) }
        if let e = external {
            if let d = e.fp32Rows { return d + r0 * cols }
            e.dequantizeRows(r0..<r1, into: scratch)
            return CFPtr(scratch)
        }
        if let d = frozen!.directF32 { return d + r0 * cols }
        if let c = cachedF32 { return CFPtr(c.p + r0 * cols) }
        frozen!.read(into: scratch, start: r0 * cols, count: (r1 - r0) * cols)
        return CFPtr(scratch)
    }
    /// Makes this weight trainable: an fp32 copy named `name`.
    func makeTrainable(name: String) -> Parameter {
        if let p = param { return p }
        let buf = FBuf(count, zero: false)
        if let e = external { e.dequantizeRows(0..<e.rows, into: buf.p) } else { frozen!.read(into: buf.p, start: 0, count: count) }
        let p = Parameter(name: name, shape: shape, value: buf)
        param = p; frozen = nil; external = nil; cachedF32 = nil
        return p
    }
    /// A trainable fp32 copy (modules_to_save), leaving this one frozen.
    func trainableCopy(name: String, embeddingTable: Bool = false) -> Parameter {
        let buf: FBuf
        if let p = param { buf = FBuf(copying: p.valueBuf.p, count: count) }
        else if let e = external { buf = FBuf(count, zero: false); e.dequantizeRows(0..<e.rows, into: buf.p) }
        else { buf = frozen!.toFloats() }
        return Parameter(name: name, shape: shape, value: buf, embeddingTable: embeddingTable)
    }
    /// The fp32 values to overwrite when loading into a trainable weight (nil: frozen, see `assign`).
    var trainableValues: FPtr? { param?.valueBuf.p }
    /// Replaces the values (adapter loading of a modules_to_save copy, merge).
    func assign(from src: FrozenTensor) throws {
        guard src.shape == shape else { throw ModelError("shape \(src.shape) does not match \(shape)") }
        if let p = param { src.read(into: p.valueBuf.p, start: 0, count: count) } else { frozen = src; cachedF32 = nil }
    }
}

/// Rows-at-a-time dequantising matmuls for (out, in) weights: y = x·Wᵀ, dx += dy·W, dW += dyᵀ·x.
/// Frozen bf16/f16 weights are widened in row tiles into a scratch buffer (never whole).
enum MatrixKernels {
    static let tileRows = 256
    /// y (T, out) = x (T, in) · Wᵀ (+ beta·y). With a bf16 `precision` the product runs in its mode and
    /// is rounded to bf16 when `roundOutput` (tiles split the output columns, so each is rounded whole).
    static func forward(_ y: FPtr, _ x: CFPtr, _ w: Weight, T: Int, inF: Int, outF: Int, scratch: FBuf, beta: Float = 0,
                        precision: MatmulPrecision? = nil, roundOutput: Bool = false) {
        if w.param != nil || w.frozen?.directF32 != nil || w.external?.fp32Rows != nil {
            if let mp = precision, mp.autocast {
                mp.nt(T, outF, inF, x, inF, w.f32, inF, y, outF, beta: beta, roundOutput: roundOutput)
            } else {
                sgemmNT(T, outF, inF, x, inF, w.f32, inF, y, outF, beta: beta)
            }
            return
        }
        var r0 = 0
        while r0 < outF {
            let r1 = min(outF, r0 + tileRows)
            let wp = w.rowsF32(r0, r1, cols: inF, scratch: scratch.p)
            if let mp = precision, mp.autocast {
                mp.nt(T, r1 - r0, inF, x, inF, wp, inF, y + r0, outF, beta: beta, roundOutput: roundOutput)
            } else {
                sgemmNT(T, r1 - r0, inF, x, inF, wp, inF, y + r0, outF, beta: beta)
            }
            r0 = r1
        }
    }
    /// dx (T, in) += dy (T, out) · W   (with a bf16 `precision`: dx += bf16(dy·W), autocast's bf16 dX)
    static func backwardInput(_ dx: FPtr, _ dy: CFPtr, _ w: Weight, T: Int, inF: Int, outF: Int, scratch: FBuf,
                              precision: MatmulPrecision? = nil) {
        let direct = w.param != nil || w.frozen?.directF32 != nil || w.external?.fp32Rows != nil
        if let mp = precision, mp.autocast {
            if direct { mp.nn(T, inF, outF, dy, outF, w.f32, inF, dx, inF, beta: 1, roundOutput: true) }
            else { mp.backwardInputTiled(dx, dy, w, T: T, inF: inF, outF: outF, tileRows: tileRows, scratch: scratch) }
            return
        }
        if direct {
            sgemmNN(T, inF, outF, dy, outF, w.f32, inF, dx, inF, beta: 1)
            return
        }
        var r0 = 0
        while r0 < outF {
            let r1 = min(outF, r0 + tileRows)
            let wp = w.rowsF32(r0, r1, cols: inF, scratch: scratch.p)
            sgemmNN(T, inF, r1 - r0, dy + r0, outF, wp, inF, dx, inF, beta: 1)
            r0 = r1
        }
    }
}

// MARK: - checkpoint reading

/// Memory-mapped safetensors file (read side), enough for checkpoints and adapters.
final class MappedSafeTensors {
    struct Entry { let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
    let url: URL
    let data: Data
    let entries: [String: Entry]
    let dataStart: Int
    init(url: URL) throws {
        self.url = url
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        guard data.count >= 8 else { throw ModelError("\(url.path): not a safetensors file (too short)") }
        let n = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, 8 + n <= data.count else { throw ModelError("\(url.path): header length \(n) exceeds file size") }
        dataStart = 8 + n
        guard let obj = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else {
            throw ModelError("\(url.path): safetensors header is not a JSON object")
        }
        var e: [String: Entry] = [:]
        for (k, v) in obj where k != "__metadata__" {
            guard let d = v as? [String: Any], let dt = d["dtype"] as? String, let sh = d["shape"] as? [Int],
                  let off = d["data_offsets"] as? [Int], off.count == 2 else {
                throw ModelError("\(url.path): malformed header entry for \(k)")
            }
            guard off[0] <= off[1], dataStart + off[1] <= data.count else {
                throw ModelError("\(url.path): tensor \(k) lies outside the file")
            }
            e[k] = Entry(dtype: dt, shape: sh, begin: off[0], end: off[1])
        }
        entries = e
    }
    func tensor(_ name: String) throws -> FrozenTensor? {
        guard let e = entries[name] else { return nil }
        guard let dt = StoredDType(rawValue: e.dtype) else {
            throw ModelError("\(url.path): tensor \(name) has dtype \(e.dtype) (supported: F32, BF16, F16)")
        }
        let n = e.shape.reduce(1, *)
        guard n * dt.size == e.end - e.begin else { throw ModelError("\(url.path): tensor \(name) byte size does not match its shape") }
        let base = data.withUnsafeBytes { $0.baseAddress! } + dataStart + e.begin
        return FrozenTensor(dtype: dt, shape: e.shape, base: base, owner: self)
    }
    /// Copies tensor `t` (one of this file's) as fp32 into `dst`, reading an F32 tensor with pread(2)
    /// straight from the file into its destination — no pass over a mapping of the source pages, whose faults
    /// and page-table set-up cost as much as the copy — and widening other dtypes from the map.
    func readF32(_ t: FrozenTensor, into dst: FPtr, start: Int = 0, count n: Int) throws {
        let mapBase = data.withUnsafeBytes { $0.baseAddress! }
        guard t.dtype == .f32, t.owner === self, n * 4 >= 1 << 18 else { t.read(into: dst, start: start, count: n); return }
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { t.read(into: dst, start: start, count: n); return }
        defer { close(fd) }
        var offset = off_t(t.base - mapBase + start * 4), done = 0
        let total = n * 4, raw = UnsafeMutableRawPointer(dst)
        while done < total {
            let got = pread(fd, raw + done, min(total - done, 1 << 30), offset)
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { throw ModelError("\(url.path): read failed at byte \(offset) (\(got < 0 ? String(cString: strerror(errno)) : "end of file"))") }
            done += got; offset += off_t(got)
        }
    }

    /// Raw integer tensors (fixtures: input ids, labels).
    func int64(_ name: String) -> [Int]? {
        guard let e = entries[name], e.dtype == "I64" else { return nil }
        let base = data.withUnsafeBytes { $0.baseAddress! } + dataStart + e.begin
        return (0..<((e.end - e.begin) / 8)).map { Int(base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
    }
}

/// All tensors of a checkpoint folder (model.safetensors, or sharded with model.safetensors.index.json),
/// addressed by canonical name after undoing the layouts transformers has written.
final class CheckpointTensors {
    private var files: [MappedSafeTensors] = []
    private var where_: [String: Int] = [:]   // canonical name → file index
    private var original: [String: String] = [:]  // canonical → name in file
    let dir: URL

    init(dir: URL, canonicalize: (String) -> String) throws {
        self.dir = dir
        let fm = FileManager.default
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        var names: [String]
        if fm.fileExists(atPath: index.path) {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(contentsOf: index)) as? [String: Any],
                  let map = obj["weight_map"] as? [String: String] else {
                throw ModelError("\(index.path): no weight_map object")
            }
            names = Array(Set(map.values)).sorted()
        } else if fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
            names = ["model.safetensors"]
        } else {
            let all = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            names = all.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix("adapter") }.sorted()
            if names.isEmpty { throw ModelError("\(dir.path): no model.safetensors or model.safetensors.index.json") }
        }
        for (i, n) in names.enumerated() {
            let f = try MappedSafeTensors(url: dir.appendingPathComponent(n))
            files.append(f)
            for k in f.entries.keys {
                let c = canonicalize(k)
                where_[c] = i; original[c] = k
            }
        }
    }
    var canonicalNames: [String] { Array(where_.keys) }
    /// The key a canonical tensor has in the checkpoint's files (save_pretrained writes it back under it).
    func originalName(_ canonical: String) -> String? { original[canonical] }
    func get(_ canonical: String) throws -> FrozenTensor? {
        guard let i = where_[canonical] else { return nil }
        return try files[i].tensor(original[canonical]!)
    }
}

/// Collects every missing or mis-shaped tensor, then fails once listing all of them.
final class WeightBinder {
    let ckpt: CheckpointTensors
    var missing: [String] = []
    var misShaped: [String] = []
    init(_ c: CheckpointTensors) { ckpt = c }
    func bind(_ name: String, _ shape: [Int]) -> Weight {
        do {
            if let t = try ckpt.get(name) {
                if t.shape == shape { return Weight(frozen: t) }
                misShaped.append("\(name) \(t.shape) (expected \(shape))")
            } else { missing.append(name) }
        } catch { misShaped.append("\(name): \(error)") }
        let b = FBuf(shape.reduce(1, *))
        return Weight(frozen: FrozenTensor(dtype: .f32, shape: shape, base: UnsafeRawPointer(b.p), owner: b))
    }
    func finish() throws {
        if missing.isEmpty && misShaped.isEmpty { return }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing \(missing.count): " + missing.prefix(12).joined(separator: ", ") + (missing.count > 12 ? ", ..." : "")) }
        if !misShaped.isEmpty { parts.append("mis-shaped \(misShaped.count): " + misShaped.prefix(12).joined(separator: ", ")) }
        throw ModelError("\(ckpt.dir.path): checkpoint does not match config.json; " + parts.joined(separator: "; "))
    }
}

/// Canonical (in-memory, transformers 5.x module) names for Gemma3ForConditionalGeneration:
/// model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head.weight.
/// Accepts the saved legacy layout (language_model.model.*, vision_tower.*), the Hub's
/// vision_tower.vision_model.* infix and the in-memory names.
func canonicalGemma3MMName(_ k: String) -> String {
    var s = k
    if s.hasPrefix("language_model.lm_head.") { return "lm_head." + s.dropFirst("language_model.lm_head.".count) }
    if s.hasPrefix("language_model.model.") { s = "model.language_model." + s.dropFirst("language_model.model.".count) }
    else if s.hasPrefix("language_model.") { s = "model." + s }
    else if s.hasPrefix("vision_tower.") || s.hasPrefix("multi_modal_projector.") { s = "model." + s }
    if s.hasPrefix("model.vision_tower.vision_model.") {
        s = "model.vision_tower." + s.dropFirst("model.vision_tower.vision_model.".count)
    }
    return s
}
