// Full-model checkpoints as transformers 5.24 `PreTrainedModel.save_pretrained` writes them (what the HF
// Trainer's `_save` calls for full fine-tuning): every weight under the key it has in the base checkpoint
// (save_pretrained reverts the load-time renaming: Gemma3ForConditionalGeneration goes back to
// language_model.model.* / vision_tower.* / multi_modal_projector.*, or whatever layout the base used),
// the tied lm_head left out, fp32 with {"format": "pt"} metadata, split greedily in state_dict order at
// `max_shard_size` (huggingface_hub `split_state_dict_into_shards_factory`) into
// model-0000i-of-0000n.safetensors + model.safetensors.index.json. Tensors stream from the parameters into
// each file (one tensor-sized scratch), and every file goes to a temporary name and is renamed.
import Foundation
import Tensor

/// What `saveFullWeights` wrote.
public struct FullWeightsSave: Sendable {
    /// Weight files in order (one `model.safetensors`, or the shards).
    public var files: [String]
    /// saved tensor name → file (the index's weight_map).
    public var weightMap: [String: String]
    /// Σ tensor bytes (the index's `total_size`).
    public var totalSize: Int
    public var sharded: Bool { files.count > 1 }
}

extension Gemma3Model {
    /// save_pretrained's default `max_shard_size` ("50GB", decimal units as huggingface_hub parses it).
    public static let defaultMaxShardSize = 50_000_000_000

    /// The key a parameter (in-memory name) gets in a saved checkpoint: the base checkpoint's own key when it
    /// has the tensor, else the transformers 5.24 saved layout for this architecture.
    public func savedTensorName(_ name: String) -> String {
        if let k = checkpoint.originalName(name) { return k }
        guard multimodal != nil else { return name }
        for (a, b) in [("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                       ("model.multi_modal_projector.", "multi_modal_projector.")] where name.hasPrefix(a) {
            return b + name.dropFirst(a.count)
        }
        return name
    }

    /// (in-memory name, weight) in the order save_pretrained shards them: `revert_weight_conversion` sorts
    /// the state dict by `dot_natural_key` of the in-memory names before renaming. Tied lm_head omitted.
    /// For full fine-tuning (and frozen models); LoRA deltas and a tied model's separate modules_to_save
    /// head are not folded in here (that is `sftdeck merge`).
    var stateDictWeights: [(String, Weight)] {
        let named = namedWeights.map { n, w in (n, n == prefix + "embed_tokens.weight" ? embedForward : n == "lm_head.weight" ? headForward : w) }
        return named.sorted { dotNaturalKeyLess($0.0, $1.0) }
    }

    /// Writes the model's current weights (fp32) into `dir` as save_pretrained does; config files are the
    /// caller's. Removes stale `model-*-of-*.safetensors` shards a previous save left that this one does not
    /// replace (as save_pretrained does), and the other layout's leftover.
    @discardableResult
    public func saveFullWeights(to dir: URL, maxShardSize: Int = Gemma3Model.defaultMaxShardSize) throws -> FullWeightsSave {
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let tensors = stateDictWeights.map { (name: savedTensorName($0.0), weight: $0.1) }
        // split_state_dict_into_shards_factory: greedy in order; a tensor above the limit gets its own shard.
        var shards: [[Int]] = [], current: [Int] = [], currentSize = 0, total = 0
        for (i, t) in tensors.enumerated() {
            let size = t.weight.count * 4
            total += size
            if size > maxShardSize { shards.append([i]); continue }
            if currentSize + size > maxShardSize { shards.append(current); current = []; currentSize = 0 }
            current.append(i); currentSize += size
        }
        if !current.isEmpty { shards.append(current) }
        let n = shards.count
        let names = n == 1 ? ["model.safetensors"] : (1...n).map { String(format: "model-%05d-of-%05d.safetensors", $0, n) }
        var weightMap: [String: String] = [:]
        for (s, members) in shards.enumerated() {
            var writer = SafeTensorsWriter(metadata: ["format": "pt"])
            for i in members {
                let t = tensors[i]
                weightMap[t.name] = names[s]
                try writer.add(t.name, dtype: .F32, shape: t.weight.shape, source: .producer({ raw in
                    t.weight.copyF32(into: raw.baseAddress!.assumingMemoryBound(to: Float.self))
                }))
            }
            try writer.write(to: dir.appendingPathComponent(names[s]))
        }
        let shardPattern = try NSRegularExpression(pattern: #"^model-\d{5}-of-\d{5}\.safetensors$"#)
        for f in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where !names.contains(f) {
            if shardPattern.firstMatch(in: f, range: NSRange(f.startIndex..., in: f)) != nil {
                try? fm.removeItem(at: dir.appendingPathComponent(f))
            }
        }
        let indexURL = dir.appendingPathComponent("model.safetensors.index.json")
        // Unlike save_pretrained, also drop the other layout's leftover (a stale index next to a new single
        // file, or a stale single file next to new shards), which loaders would otherwise prefer or mix up.
        try? fm.removeItem(at: n > 1 ? dir.appendingPathComponent("model.safetensors") : indexURL)
        if n > 1 {
            // json.dumps(index, indent=2, sort_keys=True) + "\n"; total_parameters = num_parameters()
            let index = PyJSON.object([
                ("metadata", .object([("total_parameters", .int(tensors.reduce(0) { $0 + $1.weight.count })), ("total_size", .int(total))])),
                ("weight_map", .object(weightMap.map { ($0.key, PyJSON.string($0.value)) })),
            ])
            try writeAtomically(Data((index.dumps(indent: 2) + "\n").utf8), to: indexURL)
        }
        return FullWeightsSave(files: names, weightMap: weightMap, totalSize: total)
    }
}

extension Weight {
    /// The whole tensor widened to fp32 into `dst` (count values), whatever its storage.
    func copyF32(into dst: UnsafeMutablePointer<Float>) {
        if let p = param { dst.update(from: p.valueBuf.p, count: count); return }
        if let f = frozen { f.read(into: dst, start: 0, count: count); return }
        asLinearWeight.dequantizeRows(0..<shape[0], into: dst)
    }
}

/// Temporary name in the same folder, then rename over `url`.
func writeAtomically(_ data: Data, to url: URL) throws {
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    do { try data.write(to: tmp) } catch { throw ModelError("\(url.path): cannot write (\(error.localizedDescription))") }
    guard rename(tmp.path, url.path) == 0 else {
        let e = errno
        try? FileManager.default.removeItem(at: tmp)
        throw ModelError("\(url.path): cannot rename the temporary file into place (errno \(e))")
    }
}

/// transformers `dot_natural_key` order: split on ".", numeric parts (as integers) before text parts, text
/// parts by text then by their trailing number ("shard_2" < "shard_11"), a shorter key first on a tie.
func dotNaturalKeyLess(_ a: String, _ b: String) -> Bool {
    enum Part: Comparable {
        case number(Int), text(String, Int?)
        static func < (l: Part, r: Part) -> Bool {
            switch (l, r) {
            case (.number(let x), .number(let y)): return x < y
            case (.number, .text): return true
            case (.text, .number): return false
            case (.text(let s, let m), .text(let t, let n)):
                if s != t { return s.utf8.lexicographicallyPrecedes(t.utf8) }
                switch (m, n) {
                case (nil, nil), (.some, nil): return false
                case (nil, .some): return true
                case (.some(let x), .some(let y)): return x < y
                }
            }
        }
    }
    func parts(_ s: String) -> [Part] {
        s.split(separator: ".", omittingEmptySubsequences: false).map { p in
            if !p.isEmpty, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) { return .number(n) }
            let text = String(p.reversed().drop { $0.isASCII && $0.isNumber }.reversed())
            let digits = p.dropFirst(text.count)
            return .text(text, digits.isEmpty ? nil : Int(digits))
        }
    }
    return parts(a).lexicographicallyPrecedes(parts(b))
}
