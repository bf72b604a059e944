import Foundation
import Tensor

/// `sftdeck merge`: folds a PEFT LoRA adapter into its base checkpoint, as `PeftModel.merge_and_unload()`
/// followed by `save_pretrained` does (peft 0.21 `LoraLayer.merge` / `get_delta_weight`):
///   W' = W + scaling · (B @ A),  scaling = alpha / r  (alpha / √r with rsLoRA)
/// computed in fp32 and added in the weight's dtype (bf16 weights: the delta is rounded to bf16, then the
/// sum is rounded to bf16, like torch's in-place bf16 add). `modules_to_save` tensors replace the base
/// ones; a trained `lm_head` of a tied checkpoint is written as its own tensor and `tie_word_embeddings`
/// set false (peft#2777: otherwise reloading drops the trained head). Output keeps the base key layout.
public enum LoRAMerge {
    public struct Report: Sendable { public var merged: Int; public var replaced: Int; public var written: URL }

    public static func merge(model modelDir: URL, adapter adapterDir: URL, out outDir: URL) throws -> Report {
        let fm = FileManager.default
        let cfgURL = adapterDir.appendingPathComponent("adapter_config.json")
        guard let cfgData = try? Data(contentsOf: cfgURL), let cfg = try PythonJSON.parse(cfgData, file: cfgURL) as? [String: Any] else {
            throw TrainingError("\(cfgURL.path): no readable adapter_config.json")
        }
        guard (cfg["peft_type"] as? String) == "LORA", let r = cfg["r"] as? Int, r > 0, let alpha = jsonNumber(cfg["lora_alpha"]) else {
            throw TrainingError("\(cfgURL.path): not a LoRA adapter config (peft_type LORA, r, lora_alpha)")
        }
        let rs = (cfg["use_rslora"] as? Bool) ?? false
        let scaling = Float(rs ? alpha / Double(r).squareRoot() : alpha / Double(r))
        let adapter = try SafeTensorsFile(url: adapterDir.appendingPathComponent("adapter_model.safetensors"))
        let base = try SafeTensorsCheckpoint(folder: modelDir)
        let baseNames = Set(base.names)

        // Adapter tensors by module: "<module>.lora_A.weight" / "<module>.lora_B.weight"; others replace weights.
        var loraA: [String: String] = [:], loraB: [String: String] = [:], replacements: [String: String] = [:]
        for name in adapter.names {
            let stripped = name.hasPrefix("base_model.model.") ? String(name.dropFirst("base_model.model.".count)) : name
            if let m = stripped.range(of: ".lora_A.") { loraA[String(stripped[..<m.lowerBound])] = name }
            else if let m = stripped.range(of: ".lora_B.") { loraB[String(stripped[..<m.lowerBound])] = name }
            else if stripped.contains("lora_magnitude") || stripped.contains("lora_embedding") {
                throw TrainingError("\(adapterDir.path): \(name) (DoRA / embedding LoRA) cannot be merged by SFTDeck")
            } else { replacements[stripped.replacingOccurrences(of: ".modules_to_save.default", with: "")] = name }
        }
        guard Set(loraA.keys) == Set(loraB.keys) else { throw TrainingError("\(adapterDir.path): lora_A / lora_B tensors do not pair up") }

        /// The base checkpoint's key for an in-memory (PEFT) parameter name, across the layouts transformers uses.
        func baseKey(_ p: String) -> String? {
            var c = [p]
            let rewrites: [(String, String)] = [
                ("model.language_model.", "language_model.model."), ("model.vision_tower.vision_model.", "vision_tower.vision_model."),
                ("model.vision_tower.", "vision_tower."), ("model.vision_tower.vision_model.", "vision_tower."),
                ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head."),
            ]
            for (a, b) in rewrites where p.hasPrefix(a) { c.append(b + p.dropFirst(a.count)) }
            if p.hasPrefix("model.") { c.append(String(p.dropFirst(6))) }
            return c.first { baseNames.contains($0) }
        }

        var outTensors: [String: (SafeTensorsDType, [Int], [Float]?)] = [:]   // nil floats: copy raw
        for n in base.names { let i = try base.info(n); outTensors[n] = (i.dtype, i.shape, nil) }
        var merged = 0
        for (module, aName) in loraA.sorted(by: { $0.key < $1.key }) {
            guard let key = baseKey(module + ".weight") else {
                throw TrainingError("\(adapterDir.path): adapter module \(module) has no weight in \(modelDir.path)")
            }
            let info = try base.info(key)
            let A = try adapter.floats(aName), B = try adapter.floats(loraB[module]!)
            let ai = try adapter.info(aName), bi = try adapter.info(loraB[module]!)
            guard ai.shape.count == 2, bi.shape.count == 2, ai.shape[0] == r, bi.shape[1] == r,
                  info.shape.count == 2, info.shape[0] == bi.shape[0], info.shape[1] == ai.shape[1] else {
                throw TrainingError("\(adapterDir.path): \(module): A \(ai.shape) / B \(bi.shape) do not fit weight \(info.shape)")
            }
            let rows = info.shape[0], cols = info.shape[1]
            var w = try base.floats(key)
            var delta = [Float](repeating: 0, count: rows * cols)
            // delta = (B @ A) · scaling, fp32 (PEFT casts bf16/f16 LoRA weights to fp32 on CPU)
            for i in 0..<rows {
                for k in 0..<r {
                    let b = B[i * r + k]
                    if b == 0 { continue }
                    for j in 0..<cols { delta[i * cols + j] += b * A[k * cols + j] }
                }
            }
            let half = info.dtype == .BF16 || info.dtype == .F16
            for i in 0..<w.count {
                var d = delta[i] * scaling
                if half { d = round(d, info.dtype) }
                w[i] = half ? round(w[i] + d, info.dtype) : w[i] + d
            }
            outTensors[key] = (info.dtype, info.shape, w)
            merged += 1
        }
        var replaced = 0
        var untie = false
        for (param, aName) in replacements.sorted(by: { $0.key < $1.key }) {
            let ai = try adapter.info(aName)
            if let key = baseKey(param) {
                let dt = outTensors[key]!.0
                outTensors[key] = (dt, ai.shape, try adapter.floats(aName))
            } else if param.hasSuffix("lm_head.weight") {
                // Tied checkpoint: the head was trained as its own copy, so write it and untie.
                // (transformers 5.24 saves an untied head as top-level `lm_head.weight` in every layout)
                let embedKey = baseNames.first { $0.hasSuffix("embed_tokens.weight") }
                let dt = embedKey.flatMap { outTensors[$0]?.0 } ?? .F32
                outTensors["lm_head.weight"] = (dt, ai.shape, try adapter.floats(aName))
                untie = true
            } else {
                throw TrainingError("\(adapterDir.path): modules_to_save tensor \(param) has no counterpart in \(modelDir.path)")
            }
            replaced += 1
        }

        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for name in outTensors.keys.sorted() {
            let (dt, shape, values) = outTensors[name]!
            if let values {
                try writer.add(name, floats: values, shape: shape, as: dt == .BF16 || dt == .F16 ? dt : .F32)
            } else {
                try writer.add(name, dtype: dt, shape: shape, bytes: Array(try base.rawBytes(name)))
            }
        }
        let outFile = outDir.appendingPathComponent("model.safetensors")
        try writer.write(to: outFile)
        // config.json (untied if needed) and the other small files of the model folder.
        for f in (try? fm.contentsOfDirectory(atPath: modelDir.path)) ?? [] where !f.hasSuffix(".safetensors") && f != "model.safetensors.index.json" {
            let src = modelDir.appendingPathComponent(f)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: src.path, isDirectory: &isDir), !isDir.boolValue else { continue }
            var data = try Data(contentsOf: src)
            if f == "config.json", untie, var c = try PythonJSON.parse(data, file: src) as? [String: Any] {
                c["tie_word_embeddings"] = false
                if var t = c["text_config"] as? [String: Any] { t["tie_word_embeddings"] = false; c["text_config"] = t }
                data = Data((PythonJSON.dumps(c) + "\n").utf8)
            }
            try AtomicFile.write(data, to: outDir.appendingPathComponent(f))
        }
        return Report(merged: merged, replaced: replaced, written: outFile)
    }

    private static func round(_ x: Float, _ dt: SafeTensorsDType) -> Float {
        dt == .BF16 ? SafeTensorsConvert.bf16ToFloat(SafeTensorsConvert.floatToBF16(x))
                    : SafeTensorsConvert.f16ToFloat(SafeTensorsConvert.floatToF16(x))
    }
}
