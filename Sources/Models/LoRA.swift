// PEFT LoRA on Gemma 3 (peft 0.21.2 tuners/lora, tuners_utils.py, utils/save_and_load.py):
// target selection (all-linear = every nn.Linear except the output embedding, vision tower included),
// Kaiming-uniform A / zero B, scaling α/r or α/√r (rsLoRA), dropout on the adapter input,
// modules_to_save trainable copies (lm_head, embed_tokens), frozen base; adapter folder save / load.
import Foundation

public struct LoRASettings: Sendable, Equatable {
    public var r: Int = 8
    public var alpha: Double = 8
    public var dropout: Double = 0
    /// "all-linear", a single regex (PEFT: a string is full-matched), or a list of module-name suffixes.
    public var targetModules: TargetModules = .allLinear
    public var modulesToSave: [String] = []
    public var useRSLoRA = false
    public var baseModelNameOrPath: String?
    public init(r: Int = 8, alpha: Double = 8, dropout: Double = 0, targetModules: TargetModules = .allLinear,
                modulesToSave: [String] = [], useRSLoRA: Bool = false, baseModelNameOrPath: String? = nil) {
        self.r = r; self.alpha = alpha; self.dropout = dropout; self.targetModules = targetModules
        self.modulesToSave = modulesToSave; self.useRSLoRA = useRSLoRA; self.baseModelNameOrPath = baseModelNameOrPath
    }
    public var scaling: Double { useRSLoRA ? alpha / Double(r).squareRoot() : alpha / Double(r) }

    public enum TargetModules: Sendable, Equatable {
        case allLinear
        case regex(String)
        case names([String])
    }
}

extension Gemma3Model {
    /// PEFT's `check_target_module_exists` for one module name.
    func isTarget(_ name: String, _ t: LoRASettings.TargetModules) throws -> Bool {
        switch t {
        case .allLinear: return true
        case .names(let ns): return ns.contains { name == $0 || name.hasSuffix("." + $0) }
        case .regex(let r):
            guard let re = try? NSRegularExpression(pattern: "^(?:" + r + ")$") else {
                throw ModelError("lora_target_modules: invalid regular expression \(r)")
            }
            return re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
    }

    /// The module names LoRA wraps, in named_modules order (all-linear: every Linear; lm_head is excluded).
    public func loraTargetNames(_ t: LoRASettings.TargetModules) throws -> [String] {
        try allLinears.filter { try isTarget($0.name, t) }.map { $0.name }
    }

    /// Wraps the model as `get_peft_model` does: freezes the base, adds adapters, makes modules_to_save
    /// copies. A is Kaiming-uniform(a=√5) = U(−1/√in, 1/√in) from `seed`, B = 0.
    public func applyLoRA(_ s: LoRASettings, seed: UInt64 = 42) throws { try applyLoRA(s, seed: seed, allowEmpty: false) }

    /// `initialize: false` (adapter loading, which then overwrites every value from the file or throws)
    /// skips the Kaiming draw for A, zeroing B and copying the base embedding into the modules_to_save
    /// tensors: their buffers are only allocated.
    func applyLoRA(_ s: LoRASettings, seed: UInt64, allowEmpty: Bool, initialize: Bool = true) throws {
        guard lora == nil else { throw ModelError("a LoRA adapter is already applied") }
        guard s.r > 0 else { throw ModelError("lora_r must be positive (got \(s.r))") }
        guard s.dropout >= 0 && s.dropout < 1 else { throw ModelError("lora_dropout must be in [0, 1) (got \(s.dropout))") }
        var g = SeededRNG(seed: seed)
        let targets = Set(try loraTargetNames(s.targetModules))
        if targets.isEmpty && !allowEmpty { throw ModelError("lora_target_modules matched no module of this model") }
        for m in s.modulesToSave where !["lm_head", "embed_tokens"].contains(m) {
            throw ModelError("modules_to_save: \(m) is not supported (lm_head, embed_tokens)")
        }
        for lin in allLinears where targets.contains(lin.name) {
            let A = FBuf(s.r * lin.inF, zero: false)
            if initialize {
                let bound = 1 / Float(Double(lin.inF).squareRoot())
                for i in 0..<A.count { A.p[i] = (g.uniform() * 2 - 1) * bound }
            }
            let base = "base_model.model." + lin.name
            lin.lora = LoRAAdapter(rank: s.r, scaling: Float(s.scaling), dropout: Float(s.dropout),
                                   A: Parameter(name: base + ".lora_A.default.weight", shape: [s.r, lin.inF], value: A),
                                   B: Parameter(name: base + ".lora_B.default.weight", shape: [lin.outF, s.r], value: FBuf(lin.outF * s.r, zero: initialize)))
        }
        func saved(_ w: Weight, _ name: String, embeddingTable: Bool) -> Parameter {
            initialize ? w.trainableCopy(name: name, embeddingTable: embeddingTable)
                : Parameter(name: name, shape: w.shape, value: FBuf(w.count, zero: false), embeddingTable: embeddingTable)
        }
        // The embed_tokens copy is read only by the lookup (lm_head reads the base weight or its own copy),
        // so its gradient has rows only for the batch's ids: row-tracked.
        if s.modulesToSave.contains("embed_tokens") {
            embedForward = Weight(param: saved(embedding, "base_model.model." + prefix + "embed_tokens.modules_to_save.default.weight", embeddingTable: true))
        }
        if s.modulesToSave.contains("lm_head") {
            headForward = Weight(param: saved(headWeight, "base_model.model.lm_head.modules_to_save.default.weight", embeddingTable: false))
        }
        lora = s
        collectLoRATrainables()
    }

    func collectLoRATrainables() {
        var ps: [Parameter] = []
        if let v = vision { for l in v.layers { for lin in l.linears { if let a = lin.lora { ps += [a.A, a.B] } } } }
        if embedForward !== embedding, let p = embedForward.param { ps.append(p) }
        for l in layers { for lin in l.linears { if let a = lin.lora { ps += [a.A, a.B] } } }
        if headForward !== headWeight, let p = headForward.param { ps.append(p) }
        registerTrainable(ps)
    }

    var loraLinears: [Linear] { allLinears.filter { $0.lora != nil } }

    // MARK: adapter folder

    /// The adapter's tensors as PEFT saves them (".default" removed; modules_to_save copies under the
    /// module's own name).
    func adapterStateDict() -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        for lin in loraLinears {
            let a = lin.lora!
            out.append(("base_model.model." + lin.name + ".lora_A.weight", a.A))
            out.append(("base_model.model." + lin.name + ".lora_B.weight", a.B))
        }
        if embedForward !== embedding, let p = embedForward.param { out.append(("base_model.model." + prefix + "embed_tokens.weight", p)) }
        if headForward !== headWeight, let p = headForward.param { out.append(("base_model.model.lm_head.weight", p)) }
        return out
    }

    /// Writes `adapter_model.safetensors` + `adapter_config.json` (PEFT 0.21.2's field set) into dir.
    public func saveAdapter(to dir: URL) throws {
        guard let s = lora else { throw ModelError("no LoRA adapter to save") }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tensors = adapterStateDict().map { (name: $0.0, shape: $0.1.shape, data: UnsafeBufferPointer(start: CFPtr($0.1.valueBuf.p), count: $0.1.count)) }
        try writeSafeTensorsF32(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("adapter_model.safetensors"))
        let targetList: [String]
        switch s.targetModules {
        case .allLinear:
            // PEFT 0.21 stores the matched module names reduced to their last component (a set → list)
            targetList = Array(Set(loraLinears.map { String($0.name.split(separator: ".").last!) })).sorted()
        case .names(let n): targetList = n.sorted()
        case .regex: targetList = []
        }
        var cfg: [(String, PyJSON)] = [
            ("alora_invocation_tokens", .null), ("alpha_pattern", .object([])), ("arrow_config", .null),
            ("auto_mapping", .null), ("base_model_name_or_path", s.baseModelNameOrPath.map { .string($0) } ?? .string(directory.path)),
            ("bias", .string("none")), ("corda_config", .null), ("ensure_weight_tying", .bool(false)),
            ("eva_config", .null), ("exclude_modules", .null), ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)), ("init_lora_weights", .bool(true)), ("kasa_config", .null),
            ("layer_replication", .null), ("layers_pattern", .null), ("layers_to_transform", .null),
            ("loftq_config", .object([])), ("lora_alpha", s.alpha == s.alpha.rounded() ? .int(Int(s.alpha)) : .double(s.alpha)),
            ("lora_bias", .bool(false)), ("lora_dropout", .double(s.dropout)), ("lora_ga_config", .null),
            ("megatron_config", .null), ("megatron_core", .string("megatron.core")),
            ("modules_to_save", s.modulesToSave.isEmpty ? .null : .array(s.modulesToSave.map { .string($0) })),
            ("monteclora_config", .null), ("peft_type", .string("LORA")), ("peft_version", .string("0.21.2")),
            ("qalora_group_size", .int(16)), ("r", .int(s.r)), ("rank_pattern", .object([])), ("revision", .null),
        ]
        if case .regex(let r) = s.targetModules { cfg.append(("target_modules", .string(r))) }
        else { cfg.append(("target_modules", .array(targetList.map { .string($0) }))) }
        cfg += [("target_parameters", .null), ("task_type", .string("CAUSAL_LM")), ("trainable_token_indices", .null),
                ("use_bdlora", .null), ("use_dora", .bool(false)), ("use_qalora", .bool(false)),
                ("use_rslora", .bool(s.useRSLoRA)), ("velora_config", .null)]
        let text = PyJSON.object(cfg).dumps(indent: 2)
        try Data(text.utf8).write(to: dir.appendingPathComponent("adapter_config.json"), options: .atomic)
    }

    /// Loads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors, or .bin refused) onto
    /// this model: its LoRA A/B and modules_to_save tensors, trainable, ready to keep training or to generate.
    /// On a model already wrapped with the same modules it replaces the values (checkpoint resume).
    public func loadAdapter(from dir: URL) throws {
        let cfgURL = dir.appendingPathComponent("adapter_config.json")
        guard let data = try? Data(contentsOf: cfgURL),
              let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError("\(cfgURL.path): cannot read adapter_config.json")
        }
        guard (obj["peft_type"] as? String) == "LORA" else {
            throw ModelError("\(cfgURL.path): peft_type \(obj["peft_type"] ?? "(none)") is not LORA")
        }
        for k in ["use_dora", "fan_in_fan_out", "lora_bias"] where (obj[k] as? Bool) == true {
            throw ModelError("\(cfgURL.path): \(k)=true is not supported")
        }
        for k in ["rank_pattern", "alpha_pattern"] where !((obj[k] as? [String: Any]) ?? [:]).isEmpty {
            throw ModelError("\(cfgURL.path): \(k) is not supported")
        }
        var s = LoRASettings()
        guard let r = obj["r"] as? Int else { throw ModelError("\(cfgURL.path): required field \"r\" is missing") }
        s.r = r
        s.alpha = (obj["lora_alpha"] as? Double) ?? Double(r)
        s.dropout = (obj["lora_dropout"] as? Double) ?? 0
        s.useRSLoRA = (obj["use_rslora"] as? Bool) ?? false
        s.modulesToSave = (obj["modules_to_save"] as? [String]) ?? []
        s.baseModelNameOrPath = obj["base_model_name_or_path"] as? String
        if let t = obj["target_modules"] as? String { s.targetModules = t == "all-linear" ? .allLinear : .regex(t) }
        else if let t = obj["target_modules"] as? [String] { s.targetModules = .names(t) }
        let stURL = dir.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: stURL.path) else {
            throw ModelError("\(dir.path): no adapter_model.safetensors (adapter_model.bin is not read)")
        }
        let st = try MappedSafeTensors(url: stURL)
        // module path of every tensor, old layouts remapped as PEFT does through _checkpoint_conversion_mapping
        var byName: [String: FrozenTensor] = [:]
        for k in st.entries.keys {
            guard k.hasPrefix("base_model.model.") else { throw ModelError("\(stURL.path): unexpected tensor \(k)") }
            let inner = String(k.dropFirst("base_model.model.".count))
            let canon = multimodal != nil ? canonicalGemma3MMName(inner) : inner
            byName[canon] = try st.tensor(k)
        }
        // targets = the modules that carry lora_A in the file
        let loraModules = Set(byName.keys.filter { $0.hasSuffix(".lora_A.weight") }.map { String($0.dropLast(".lora_A.weight".count)) })
        if let current = lora {
            // already wrapped (resuming a checkpoint): the same modules and rank, values replaced
            let have = Set(loraLinears.map { $0.name })
            guard have == loraModules, current.r == s.r else {
                throw ModelError("\(stURL.path): adapter (r=\(s.r), \(loraModules.count) modules) does not match the applied one (r=\(current.r), \(have.count) modules)")
            }
        } else {
            try applyLoRA(LoRASettings(r: s.r, alpha: s.alpha, dropout: s.dropout, targetModules: .names([]),
                                       modulesToSave: s.modulesToSave, useRSLoRA: s.useRSLoRA, baseModelNameOrPath: s.baseModelNameOrPath),
                          exactTargets: loraModules)
            lora = s
        }
        // What goes where, checked first; then every copy runs (largest first, big tensors in pieces) on
        // every core — disjoint destinations, so the result does not depend on the order.
        var problems: [String] = []
        var copies: [(src: FrozenTensor, dst: FPtr, start: Int, count: Int)] = []
        func plan(_ t: FrozenTensor, _ dst: FPtr) {
            let piece = 1 << 21   // 8 MB of fp32
            var lo = 0
            repeat { copies.append((t, dst + lo, lo, min(piece, t.count - lo))); lo += piece } while lo < t.count
        }
        for lin in loraLinears {
            let a = lin.lora!
            for (suffix, p) in [(".lora_A.weight", a.A), (".lora_B.weight", a.B)] {
                guard let t = byName[lin.name + suffix] else { problems.append("missing " + lin.name + suffix); continue }
                guard t.shape == p.shape else { problems.append("\(lin.name + suffix) \(t.shape) (expected \(p.shape))"); continue }
                plan(t, p.valueBuf.p)
            }
        }
        for (w, orig, key) in [(embedForward, embedding, prefix + "embed_tokens.weight"), (headForward, headWeight, "lm_head.weight")] where w !== orig {
            guard let t = byName[key] else { problems.append("missing modules_to_save tensor " + key); continue }
            if let dst = w.trainableValues {
                guard t.shape == w.shape else { problems.append("\(key): shape \(t.shape) does not match \(w.shape)"); continue }
                plan(t, dst)
            } else {
                do { try w.assign(from: t) } catch { problems.append("\(key): \(error)") }
            }
        }
        if problems.isEmpty {
            copies.sort { $0.count > $1.count }
            let failure = NSLock()
            var readError: Error?
            copies.withUnsafeBufferPointer { jobs in
                DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
                    let c = jobs[j]
                    do { try st.readF32(c.src, into: c.dst, start: c.start, count: c.count) } catch {
                        failure.lock(); if readError == nil { readError = error }; failure.unlock()
                    }
                }
            }
            if let readError { throw readError }
        }
        let unknown = Set(loraModules).subtracting(loraLinears.map { $0.name })
        if !unknown.isEmpty { problems.append("no such linear module: " + unknown.sorted().prefix(5).joined(separator: ", ")) }
        if !problems.isEmpty { throw ModelError("\(stURL.path): adapter does not fit this model; " + problems.prefix(8).joined(separator: "; ")) }
    }

    /// applyLoRA with an explicit module set (adapter loading).
    func applyLoRA(_ s: LoRASettings, exactTargets: Set<String>) throws {
        let names = allLinears.map { $0.name }.filter { exactTargets.contains($0) }
        try applyLoRA(LoRASettings(r: s.r, alpha: s.alpha, dropout: s.dropout, targetModules: .names(names.isEmpty ? ["\u{0}"] : names),
                                   modulesToSave: s.modulesToSave, useRSLoRA: s.useRSLoRA, baseModelNameOrPath: s.baseModelNameOrPath),
                      seed: 0, allowEmpty: true, initialize: false)
    }
}
