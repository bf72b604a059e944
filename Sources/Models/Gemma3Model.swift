// Gemma3ForConditionalGeneration (SigLIP → projector → decoder) and Gemma3ForCausalLM in one class:
// loading, the training forward+backward with the transformers 5.x ForCausalLMLoss, eval forward.
import Foundation
import Tensor

/// One collated batch, row-major (B, L); pixel values (N, 3, S, S) for the N images of the batch,
/// sample-major then image order inside a sample (as transformers' processor emits them).
public struct ModelBatch: Sendable {
    public var batchSize: Int
    public var seqLen: Int
    public var inputIDs: [Int32]
    public var attentionMask: [Int32]?
    public var tokenTypeIDs: [Int32]?
    /// −100 = ignored. Shifted inside (labels[t+1] is the target of position t).
    public var labels: [Int32]?
    public var pixelValues: [Float]?
    public var numImages: Int
    public init(batchSize: Int, seqLen: Int, inputIDs: [Int32], attentionMask: [Int32]? = nil,
                tokenTypeIDs: [Int32]? = nil, labels: [Int32]? = nil, pixelValues: [Float]? = nil, numImages: Int = 0) {
        self.batchSize = batchSize; self.seqLen = seqLen; self.inputIDs = inputIDs; self.attentionMask = attentionMask
        self.tokenTypeIDs = tokenTypeIDs; self.labels = labels; self.pixelValues = pixelValues; self.numImages = numImages
    }
}

/// What a forward (and backward) returns: the summed token CE, the number of valid (shifted) targets and
/// how many of them the argmax predicted. Mean loss = lossSum / tokenCount (ForCausalLMLoss without
/// num_items_in_batch); with num_items_in_batch the trainer divides by the window's count instead.
public struct ForwardResult: Sendable {
    public var lossSum: Double
    public var tokenCount: Int
    public var correctCount: Int
    /// Σ over the valid targets of the predictive entropy of softmax(logits) (TRL's `entropy` numerator).
    public var entropySum: Double = 0
    /// (B, L, V) fp32 logits when requested.
    public var logits: [Float]?
    public var meanLoss: Double { lossSum / Double(tokenCount) }
}

public final class Gemma3Model: @unchecked Sendable {
    public let architecture: ModelArchitecture
    public let text: Gemma3TextConfig
    public let multimodal: Gemma3Config?
    public let directory: URL
    /// "model.language_model." (multimodal) or "model." (Gemma3ForCausalLM).
    let prefix: String
    let checkpoint: CheckpointTensors
    let embedding: Weight          // (V, C) the checkpoint's table (frozen unless full fine-tuning)
    let headWeight: Weight         // tied: the same object as embedding
    var embedForward: Weight       // what the forward reads: embedding or its modules_to_save copy
    var headForward: Weight
    let layers: [Gemma3DecoderLayer]
    let finalNorm: Weight
    let vision: SiglipVisionTower?
    let projector: Gemma3Projector?
    private var ropeLocal: RopeTable?
    private var ropeGlobal: RopeTable?
    /// Trainable parameters in the model's named_parameters order.
    public private(set) var trainableParameters: [Parameter] = []
    /// Set by applyLoRA / loadAdapter.
    public internal(set) var lora: LoRASettings?
    var rng = SeededRNG(seed: 42)
    /// Rows of logits per head+CE chunk (like TRL's chunked_nll) so (T, V) is never whole: nil = at least
    /// 256 rows, more while the chunk stays within 64 MiB (512 rows at a 32K vocabulary). Each chunk's head
    /// dW product reads and writes the whole (V, C) gradient once, so fewer, taller chunks are faster.
    public var logitsChunkRows: Int?
    var resolvedLogitsChunkRows: Int { logitsChunkRows ?? max(256, (64 << 20) / (4 * max(1, text.vocabSize))) }
    /// The (chunk, V) logits buffer, kept from step to step: at 256 × 32768 floats it is 32 MiB, above glibc's
    /// mmap threshold, so a fresh one per step cost 8192 page faults (and a zero-fill by the kernel) each time.
    private var logitsScratch: FBuf?
    /// How the Linear products (and lm_head) of training and eval runs are computed: `.fp32`, or bf16
    /// autocast-like (`.emulated`, `.sbgemm`); resolved from `bf16` / `bf16_matmul` by module Training.
    public var bf16Matmul: BF16MatmulMode = .fp32

    public static func load(from dir: URL) throws -> Gemma3Model {
        let arch = try ArchitectureRegistry.load(configAt: dir.appendingPathComponent("config.json"))
        return try Gemma3Model(dir: dir, architecture: arch)
    }

    init(dir: URL, architecture: ModelArchitecture) throws {
        self.architecture = architecture
        directory = dir
        switch architecture {
        case .gemma3ConditionalGeneration(let c): multimodal = c; text = c.textConfig; prefix = "model.language_model."
        case .gemma3CausalLM(let t): multimodal = nil; text = t; prefix = "model."
        }
        if text.finalLogitSoftcapping != nil || text.attnLogitSoftcapping != nil {
            throw ModelError("\(dir.path)/config.json: logit soft-capping is not supported (Gemma 3 has none)")
        }
        let isMM = multimodal != nil
        checkpoint = try CheckpointTensors(dir: dir, canonicalize: isMM ? canonicalGemma3MMName : { $0 })
        let w = WeightBinder(checkpoint)
        let C = text.hiddenSize, V = text.vocabSize
        embedding = w.bind(prefix + "embed_tokens.weight", [V, C])
        if text.tieWordEmbeddings { headWeight = embedding } else { headWeight = w.bind("lm_head.weight", [V, C]) }
        embedForward = embedding; headForward = headWeight
        if let mm = multimodal {
            vision = SiglipVisionTower(prefix: "model.vision_tower.", mm.visionConfig, w)
            projector = Gemma3Projector(prefix: "model.multi_modal_projector.", mm, w)
        } else { vision = nil; projector = nil }
        let p = prefix, tc = text
        layers = (0..<tc.numHiddenLayers).map { Gemma3DecoderLayer(p + "layers.\($0).", index: $0, tc, w) }
        finalNorm = w.bind(p + "norm.weight", [C])
        try w.finish()
    }

    // MARK: structure

    /// Every Linear (nn.Linear in transformers) in named_modules order — what PEFT's all-linear walks.
    var allLinears: [Linear] {
        var out: [Linear] = []
        if let v = vision { for l in v.layers { out += l.linears } }
        for l in layers { out += l.linears }
        return out
    }

    /// Every (name, weight) in named_parameters order (tied lm_head omitted, as torch deduplicates it).
    var namedWeights: [(String, Weight)] {
        var out: [(String, Weight)] = []
        if let v = vision {
            let p = v.prefix
            out += [(p + "embeddings.patch_embedding.weight", v.patchW), (p + "embeddings.patch_embedding.bias", v.patchB),
                    (p + "embeddings.position_embedding.weight", v.pos)]
            for (i, l) in v.layers.enumerated() {
                let lp = p + "encoder.layers.\(i)."
                out += [(lp + "layer_norm1.weight", l.ln1w), (lp + "layer_norm1.bias", l.ln1b)]
                for lin in [l.q, l.k, l.v, l.o] { out += [(lin.name + ".weight", lin.weight), (lin.name + ".bias", lin.bias!)] }
                out += [(lp + "layer_norm2.weight", l.ln2w), (lp + "layer_norm2.bias", l.ln2b)]
                for lin in [l.fc1, l.fc2] { out += [(lin.name + ".weight", lin.weight), (lin.name + ".bias", lin.bias!)] }
            }
            out += [(p + "post_layernorm.weight", v.postW), (p + "post_layernorm.bias", v.postB)]
        }
        if let pr = projector {
            out += [("model.multi_modal_projector.mm_input_projection_weight", pr.inputProjection),
                    ("model.multi_modal_projector.mm_soft_emb_norm.weight", pr.norm)]
        }
        out.append((prefix + "embed_tokens.weight", embedding))
        for (i, l) in layers.enumerated() {
            let lp = prefix + "layers.\(i)."
            for lin in [l.q, l.k, l.v, l.o] {
                out.append((lin.name + ".weight", lin.weight))
                if let b = lin.bias { out.append((lin.name + ".bias", b)) }
            }
            out += [(lp + "self_attn.q_norm.weight", l.qNorm), (lp + "self_attn.k_norm.weight", l.kNorm)]
            for lin in [l.gate, l.up, l.down] { out.append((lin.name + ".weight", lin.weight)) }
            out += [(lp + "input_layernorm.weight", l.inNorm), (lp + "post_attention_layernorm.weight", l.postAttnNorm),
                    (lp + "pre_feedforward_layernorm.weight", l.preFFNorm), (lp + "post_feedforward_layernorm.weight", l.postFFNorm)]
        }
        out.append((prefix + "norm.weight", finalNorm))
        if !text.tieWordEmbeddings { out.append(("lm_head.weight", headWeight)) }
        return out
    }

    /// Full fine-tuning: every weight becomes an fp32 trainable parameter (tied head shares the embedding's).
    public func enableFullFineTuning() {
        trainableParameters = namedWeights.map { $0.1.makeTrainable(name: $0.0) }
    }

    /// Parameter by name (trainable ones).
    public func parameter(named n: String) -> Parameter? { trainableParameters.first { $0.name == n } }

    /// No backward has run since the trainable parameters were made or last zeroed: their gradient buffers
    /// are still the zeros they were made with, and `zeroGrad` has nothing to write (a training run starts
    /// with one, as the Trainer's does: ~70 MB of memset for lm_head's modules_to_save copy).
    public private(set) var gradientsZero = true

    /// Zeroes every trainable gradient: a row-tracked one its written rows only, the others in 8 MB pieces
    /// over every core (~70 MB for lm_head's modules_to_save copy alone).
    public func zeroGrad() {
        if gradientsZero { return }
        defer { gradientsZero = true }
        var pieces: [UnsafeMutableBufferPointer<Float>] = []
        for p in trainableParameters {
            if let rows = p.gradientRows { rows.clear(zeroing: p.gradBuf.p); continue }
            let g = p.grad
            var lo = 0
            while lo < g.count { let hi = min(g.count, lo + (1 << 21)); pieces.append(UnsafeMutableBufferPointer(rebasing: g[lo..<hi])); lo = hi }
        }
        if pieces.count > 2 {
            pieces.withUnsafeBufferPointer { ps in DispatchQueue.concurrentPerform(iterations: ps.count) { ps[$0].update(repeating: 0) } }
        } else {
            for b in pieces { b.update(repeating: 0) }
        }
    }

    func registerTrainable(_ ps: [Parameter]) { trainableParameters = ps }

    var visionNeedsGrad: Bool {
        guard let v = vision, let pr = projector else { return false }
        if pr.inputProjection.trainable || pr.norm.trainable || v.patchW.trainable { return true }
        return v.layers.contains { l in l.linears.contains { $0.lora != nil || $0.weight.trainable } || l.ln1w.trainable }
    }

    /// RoPE tables of both layer types, grown to a power of two ≥ 256 positions and kept.
    func ropeTables(maxPosition: Int) -> (local: RopeTable, global: RopeTable) {
        if let l = ropeLocal, let g = ropeGlobal, l.maxPos >= maxPosition { return (l, g) }
        var n = 256
        while n < maxPosition { n *= 2 }
        let loc = text.ropeParameters["sliding_attention"]!, glob = text.ropeParameters["full_attention"]!
        let l = RopeTable(headDim: text.headDim, base: loc.ropeTheta, linearFactor: try? loc.linearFactor(), maxPositions: n)
        let g = RopeTable(headDim: text.headDim, base: glob.ropeTheta, linearFactor: try? glob.linearFactor(), maxPositions: n)
        ropeLocal = l; ropeGlobal = g
        return (l, g)
    }

    var embedScale: Float { Float(Double(text.hiddenSize).squareRoot()) }

    /// Embedding rows (scaled) for ids into x (n, C).
    func embed(_ ids: [Int32], into x: FPtr) {
        let C = text.hiddenSize, s = embedScale
        let V = text.vocabSize
        for (t, raw) in ids.enumerated() {
            var id = Int(raw)
            if let mm = multimodal, id == mm.imageTokenIndex, id >= V { id = 0 }
            let row = x + t * C
            if let p = embedForward.param { row.update(from: p.valueBuf.p + id * C, count: C) }
            else { embedForward.frozen!.read(into: row, start: id * C, count: C) }
            for c in 0..<C { row[c] *= s }
        }
    }

    // MARK: forward / backward

    /// Training step body: forward, loss, and (when `backward`) gradients of (Σ token CE) · gradScale
    /// accumulated into the trainable parameters' grad buffers.
    public func forwardBackward(_ batch: ModelBatch, gradScale: Float, gradientCheckpointing: Bool = false) throws -> ForwardResult {
        gradientsZero = false
        return try run(batch, backward: true, gradScale: gradScale, keepLogits: false, training: true, checkpoint: gradientCheckpointing)
    }

    /// Eval mode (no dropout, no gradients): loss sum / count / correct and optionally the logits.
    public func evaluate(_ batch: ModelBatch, returnLogits: Bool = false) throws -> ForwardResult {
        try run(batch, backward: false, gradScale: 0, keepLogits: returnLogits, training: false, checkpoint: false)
    }

    func run(_ batch: ModelBatch, backward: Bool, gradScale: Float, keepLogits: Bool, training: Bool,
             checkpoint: Bool) throws -> ForwardResult {
        let B = batch.batchSize, L = batch.seqLen, T = B * L, C = text.hiddenSize, V = text.vocabSize
        guard batch.inputIDs.count == T else { throw ModelError("batch: input_ids has \(batch.inputIDs.count) values for \(B)×\(L)") }
        for id in batch.inputIDs where id < 0 || Int(id) >= max(V, (multimodal?.imageTokenIndex ?? 0) + 1) {
            throw ModelError("batch: token id \(id) is outside the vocabulary (\(V))")
        }
        let maxIn = max(C, text.intermediateSize, text.numAttentionHeads * text.headDim, vision.map { max($0.K, $0.cfg.intermediateSize) } ?? 0)
        let ctx = RunContext(scratchCount: MatrixKernels.tileRows * maxIn, rng: rng, training: training, bf16: bf16Matmul)
        defer { rng = ctx.rng; _ = rng.next() }

        // 1. scaled token embeddings
        let x = FBuf(T * C, zero: false)
        embed(batch.inputIDs, into: x.p)

        // 2. image features into the image-token positions (masked_scatter order)
        var imagePositions: [Int] = []
        var visionCache: SiglipVisionTower.Cache?
        var projCache: Gemma3Projector.Cache?
        var N = 0
        if let mm = multimodal {
            for t in 0..<T where Int(batch.inputIDs[t]) == mm.imageTokenIndex { imagePositions.append(t) }
            if let px = batch.pixelValues, batch.numImages > 0, let vt = vision, let pr = projector {
                N = batch.numImages
                let S = mm.visionConfig.imageSize, ch = mm.visionConfig.numChannels
                guard px.count == N * ch * S * S else {
                    throw ModelError("batch: pixel_values has \(px.count) values for \(N) images of \(ch)×\(S)×\(S)")
                }
                let M = mm.mmTokensPerImage
                guard imagePositions.count == N * M else {
                    throw ModelError("Image features and image tokens do not match, tokens: \(imagePositions.count), features: \(N * M)")
                }
                let vout = FBuf(N * vt.P * mm.visionConfig.hiddenSize, zero: false)
                let keepV = backward && visionNeedsGrad
                visionCache = px.withUnsafeBufferPointer {
                    vt.forward(vout.p, pixels: $0.baseAddress!, N: N, ctx: ctx, keep: keepV, checkpoint: checkpoint)
                }
                let feats = FBuf(N * M * C, zero: false)
                projCache = pr.forward(feats.p, vout, N: N, precision: ctx.matmul)
                for (k, t) in imagePositions.enumerated() { (x.p + t * C).update(from: feats.p + k * C, count: C) }
            } else if !imagePositions.isEmpty && batch.pixelValues != nil {
                throw ModelError("Image features and image tokens do not match, tokens: \(imagePositions.count), features: 0")
            }
        }

        // 3. masks and positions (right padding: position ids 0..L−1 for every row)
        let tt = multimodal != nil ? batch.tokenTypeIDs : nil
        let fullMask = AttentionMask.gemma3(slidingWindow: nil, attentionMask: batch.attentionMask, tokenTypes: tt, batch: B, length: L)
        let slidingMask = AttentionMask.gemma3(slidingWindow: text.slidingWindow, attentionMask: batch.attentionMask, tokenTypes: tt,
                                               batch: B, length: L)
        let rope = ropeTables(maxPosition: L)
        let localRope = rope.local.rows(0..<L), globalRope = rope.global.rows(0..<L)

        // 4. decoder layers
        var caches: [Gemma3DecoderLayer.Cache?] = []
        var inputs: [FBuf] = []
        var rngStates: [SeededRNG] = []
        for l in layers {
            let r = l.sliding ? localRope : globalRope, m = l.sliding ? slidingMask : fullMask
            if backward && checkpoint {
                inputs.append(FBuf(copying: x.p, count: T * C)); rngStates.append(ctx.rng)
                _ = l.forward(x.p, B: B, L: L, rope: r, mask: m, ctx: ctx, keep: false)
            } else {
                caches.append(l.forward(x.p, B: B, L: L, rope: r, mask: m, ctx: ctx, keep: backward))
            }
        }

        // 5. final norm
        let hN = FBuf(T * C, zero: false), rstdN = FBuf(T)
        rmsNormForward(out: hN.p, rstd: rstdN.p, x.p, weight: finalNorm.f32, rows: T, dim: C, eps: Float(text.rmsNormEps))

        // 6. lm_head + shifted CE in row chunks; dlogits go straight back through the head
        var targets = [Int32](repeating: -100, count: T)
        if let lab = batch.labels {
            guard lab.count == T else { throw ModelError("batch: labels has \(lab.count) values for \(B)×\(L)") }
            for b in 0..<B { for l in 0..<(L - 1) { targets[b * L + l] = lab[b * L + l + 1] } }
            for t in targets where t != -100 && (t < 0 || Int(t) >= V) {
                throw ModelError("batch: label \(t) is outside the vocabulary (\(V))")
            }
        }
        var lossSum = 0.0, count = 0, correct = 0, entropySum = 0.0
        var logitsOut: [Float]? = keepLogits ? [Float](repeating: 0, count: T * V) : nil
        let dhN = backward ? FBuf(T * C) : nil
        // Rows the head has to score. Without returned logits only the positions with a label matter: an ignored
        // position adds nothing to the loss, the entropy / accuracy metrics (TRL's fused LM head zeroes them) or
        // any gradient, so its (V) logits are never computed — the head's forward, dX and dW shrink by the
        // masked share (image tokens, prompts under completion_only_loss, padding). This is the compaction TRL
        // itself applies on GPUs (`hidden_states[mask]`); the sums only change order, not terms.
        let scored: [Int]
        if keepLogits { scored = Array(0..<T) } else if batch.labels != nil { scored = (0..<T).filter { targets[$0] != -100 } } else { scored = [] }
        let S = scored.count
        let compact = S < T
        let hS: FBuf = compact ? FBuf(max(1, S) * C, zero: false) : hN
        let dhS: FBuf? = compact ? (dhN != nil ? FBuf(max(1, S) * C) : nil) : dhN
        var targetsS = compact ? [Int32](repeating: -100, count: S) : targets
        if compact {
            for (k, t) in scored.enumerated() { (hS.p + k * C).update(from: hN.p + t * C, count: C); targetsS[k] = targets[t] }
        }
        let chunk = max(1, resolvedLogitsChunkRows)
        let logitsCount = max(1, min(chunk, S)) * V
        if (logitsScratch?.count ?? 0) < logitsCount { logitsScratch = nil; logitsScratch = FBuf(logitsCount, zero: false) }
        let logits = logitsScratch!
        var r0 = 0
        while r0 < S {
            let n = min(chunk, S - r0)
            MatrixKernels.forward(logits.p, hS.p + r0 * C, headForward, T: n, inF: C, outF: V, scratch: ctx.scratch,
                                  precision: ctx.matmul, roundOutput: true)
            if keepLogits { logitsOut!.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: r0 * V).update(from: logits.p, count: n * V) } }
            if batch.labels != nil {
                // Loss, entropy metric and (in place) dlogits from one exp pass per row: bit-identical to
                // tokenEntropySum followed by crossEntropyForwardBackward, a third of the exps.
                let st = targetsS.withUnsafeBufferPointer {
                    crossEntropyWithEntropy(logits: logits.p, rows: n, vocab: V, targets: UnsafeBufferPointer(rebasing: $0[r0..<(r0 + n)]),
                                            scale: gradScale, computeGrad: backward)
                }
                let c = st.crossEntropy.count
                lossSum += st.crossEntropy.lossSum; count += c; correct += st.crossEntropy.correct; entropySum += st.entropySum
                if let dh = dhS, c > 0 {
                    MatrixKernels.backwardInput(dh.p + r0 * C, logits.p, headForward, T: n, inF: C, outF: V, scratch: ctx.scratch,
                                                precision: ctx.matmul)
                    if let g = headForward.grad { ctx.matmul.tn(V, C, n, logits.p, V, hS.p + r0 * C, C, g, C, beta: 1, roundOutput: true) }
                }
            }
            r0 += n
        }
        if compact, let dh = dhN, let dS = dhS {
            for (k, t) in scored.enumerated() { (dh.p + t * C).update(from: dS.p + k * C, count: C) }
        }
        var result = ForwardResult(lossSum: lossSum, tokenCount: count, correctCount: correct, logits: logitsOut)
        result.entropySum = entropySum
        guard backward, let dh = dhN, batch.labels != nil else { return result }

        // 7. backward: final norm, layers in reverse, then the embedding and image features
        let dx = FBuf(T * C)
        rmsNormBackward(dx: dx.p, dweight: finalNorm.grad, dout: dh.p, x.p, weight: finalNorm.f32, rstd: rstdN.p, rows: T, dim: C)
        // Below the first layer: the embedding rows and the image features; without a gradient for either,
        // the first layer's input gradient is never read.
        let imagesTrain = N > 0 && (visionCache != nil || projector.map { $0.inputProjection.trainable || $0.norm.trainable } == true)
        let belowTrains = embedForward.grad != nil || imagesTrain
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[li]
            let needInputGrad = li > 0 || belowTrains
            let r = l.sliding ? localRope : globalRope, m = l.sliding ? slidingMask : fullMask
            if checkpoint {
                let saved = ctx.rng
                ctx.rng = rngStates[li]
                let xin = FBuf(copying: inputs[li].p, count: T * C)
                let c = l.forward(xin.p, B: B, L: L, rope: r, mask: m, ctx: ctx, keep: true)!
                ctx.rng = saved
                l.backward(dx.p, B: B, L: L, rope: r, mask: m, cache: c, ctx: ctx, needInputGrad: needInputGrad)
            } else {
                l.backward(dx.p, B: B, L: L, rope: r, mask: m, cache: caches[li]!, ctx: ctx, needInputGrad: needInputGrad)
            }
        }
        if let g = embedForward.grad {
            // rows at image positions were overwritten (masked_scatter): no gradient; padding_idx row: none
            var isImage = [Bool](repeating: false, count: T)
            if N > 0 { for t in imagePositions { isImage[t] = true } }
            let s = embedScale, pad = text.padTokenID ?? -1
            let rows = embedForward.param?.gradientRows
            for t in 0..<T where !isImage[t] {
                let id = Int(batch.inputIDs[t])
                if id == pad { continue }
                rows?.mark(id)
                let gr = g + id * C, d = dx.p + t * C
                for c in 0..<C { gr[c] += d[c] * s }
            }
        }
        if N > 0, let vc = visionCache, let pr = projector, let vt = vision, let pc = projCache {
            let M = multimodal!.mmTokensPerImage
            let dFeat = FBuf(N * M * C, zero: false)
            for (k, t) in imagePositions.enumerated() { (dFeat.p + k * C).update(from: dx.p + t * C, count: C) }
            let dV = FBuf(N * vt.P * vt.cfg.hiddenSize)
            pr.backward(dV, dFeat.p, N: N, cache: pc, precision: ctx.matmul)
            vt.backward(dV.p, N: N, cache: vc, ctx: ctx)
        } else if N > 0, let pr = projector, let pc = projCache, pr.inputProjection.trainable || pr.norm.trainable {
            let M = multimodal!.mmTokensPerImage
            let dFeat = FBuf(N * M * C, zero: false)
            for (k, t) in imagePositions.enumerated() { (dFeat.p + k * C).update(from: dx.p + t * C, count: C) }
            let dV = FBuf(N * vision!.P * vision!.cfg.hiddenSize)
            pr.backward(dV, dFeat.p, N: N, cache: pc, precision: ctx.matmul)
        }
        return result
    }
}

// MARK: - facts and hooks the trainer uses

extension Gemma3Model {
    /// All parameters, counted as torch's `num_parameters()` (tied lm_head once; LoRA and
    /// modules_to_save copies included when present).
    public var totalParameterCount: Int {
        var n = namedWeights.reduce(0) { $0 + $1.1.count }
        for lin in allLinears { if let a = lin.lora { n += a.A.count + a.B.count } }
        if embedForward !== embedding { n += embedding.count }
        if headForward !== headWeight { n += headWeight.count }
        return n
    }
    /// transformers `num_parameters(exclude_embeddings=True)` of the base model (for total_flos).
    public var nonEmbeddingParameterCount: Int {
        namedWeights.filter { !$0.0.hasSuffix("embed_tokens.weight") && !$0.0.hasSuffix("position_embedding.weight") }
            .reduce(0) { $0 + $1.1.count }
    }

    /// Replaces frozen linear weights (every nn.Linear except lm_head, vision tower included — the modules
    /// bitsandbytes' Linear4bit replaces) by another storage, e.g. NF4. `make` returns nil to keep one.
    public func replaceFrozenLinearWeights(_ make: (_ moduleName: String, _ weight: any LinearWeight) throws -> (any LinearWeight)?) throws {
        for lin in allLinears where !lin.weight.trainable {
            if let w = try make(lin.name, lin.weight.asLinearWeight) { try lin.weight.replaceFrozen(with: w) }
        }
    }

    /// State of the dropout generator (saved with checkpoints).
    public func randomState() -> [UInt8] {
        var s = rng.s
        return withUnsafeBytes(of: &s) { Array($0) }
    }
    public func restoreRandomState(_ bytes: [UInt8]) throws {
        guard bytes.count == MemoryLayout<(UInt64, UInt64, UInt64, UInt64)>.size else {
            throw ModelError("model random state has \(bytes.count) bytes, expected 32")
        }
        var s = rng.s
        withUnsafeMutableBytes(of: &s) { $0.copyBytes(from: bytes) }
        rng.s = s
    }
    /// Reseeds the dropout generator (the trainer's seed).
    public func seedDropout(_ seed: UInt64) { rng = SeededRNG(seed: seed) }
}
