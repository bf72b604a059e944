// Writing full weights: for full fine-tuning checkpoints and `merge` (LoRA folded in: W + scaling·B·A,
// modules_to_save copies replacing the originals, the head untied when it differs from the embedding).
import Foundation
import Tensor

extension Gemma3Model {
    /// (name, fp32 values, shape) of every weight as the model now computes with it, in-memory names
    /// (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head.weight).
    func mergedTensors() -> [(String, FBuf, [Int])] {
        var out: [(String, FBuf, [Int])] = []
        let linearByWeight = Dictionary(allLinears.map { ($0.name + ".weight", $0) }, uniquingKeysWith: { a, _ in a })
        for (name, w) in namedWeights {
            var src = w
            if name == prefix + "embed_tokens.weight" { src = embedForward }
            let buf = FBuf(w.count, zero: false)
            if let p = src.param { buf.p.update(from: p.valueBuf.p, count: w.count) }
            else { src.asLinearWeight.dequantizeRows(0..<w.shape[0], into: buf.p) }
            if let lin = linearByWeight[name], let a = lin.lora {
                // W += s · B (out, r) · A (r, in)
                sgemmNN(lin.outF, lin.inF, a.rank, a.B.valueBuf.p, a.rank, a.A.valueBuf.p, lin.inF, buf.p, lin.inF, alpha: a.scaling, beta: 1)
            }
            out.append((name, buf, w.shape))
        }
        if headForward !== embedForward || !text.tieWordEmbeddings {
            let buf = FBuf(headWeight.count, zero: false)
            if let p = headForward.param { buf.p.update(from: p.valueBuf.p, count: buf.count) }
            else { headForward.asLinearWeight.dequantizeRows(0..<headWeight.shape[0], into: buf.p) }
            out.append(("lm_head.weight", buf, headWeight.shape))
        }
        return out
    }

    /// Writes model.safetensors (fp32) and config.json (tie_word_embeddings false when the head was
    /// untied by modules_to_save) into dir: a checkpoint transformers and SFTDeck load.
    public func saveWeights(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ts = mergedTensors()
        try writeSafeTensorsF32(ts.map { (name: $0.0, shape: $0.2, data: UnsafeBufferPointer(start: CFPtr($0.1.p), count: $0.1.count)) },
                                metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
        let cfgURL = directory.appendingPathComponent("config.json")
        guard var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any] else {
            throw ModelError("\(cfgURL.path): not a JSON object")
        }
        let untied = ts.contains { $0.0 == "lm_head.weight" }
        if untied {
            cfg["tie_word_embeddings"] = false
            if var t = cfg["text_config"] as? [String: Any] { t["tie_word_embeddings"] = false; cfg["text_config"] = t }
        }
        cfg["dtype"] = "float32"
        cfg.removeValue(forKey: "torch_dtype")
        let data = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: dir.appendingPathComponent("config.json"), options: .atomic)
        for extra in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json",
                      "processor_config.json", "chat_template.jinja", "chat_template.json", "generation_config.json"] {
            let s = directory.appendingPathComponent(extra), d = dir.appendingPathComponent(extra)
            if FileManager.default.fileExists(atPath: s.path) && !FileManager.default.fileExists(atPath: d.path) {
                try FileManager.default.copyItem(at: s, to: d)
            }
        }
    }
}
