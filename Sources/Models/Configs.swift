// config.json structs, decoded from a checkpoint's own file, with transformers 5.24's defaults
// (configuration_gemma3.py, configuration_siglip.py). Unknown keys are ignored; a required key that is
// missing is named in the error.
import Foundation

/// One readable line: the file and the problem.
public struct ModelError: Error, CustomStringConvertible, LocalizedError {
    public let description: String
    public init(_ d: String) { description = d }
    public var errorDescription: String? { description }
}

/// Decoding helpers: `decodeIfPresent ?? default`, and null treated as absent.
extension KeyedDecodingContainer {
    func opt<T: Decodable>(_ key: K, _ def: T) throws -> T {
        if (try? decodeNil(forKey: key)) == true { return def }
        return try decodeIfPresent(T.self, forKey: key) ?? def
    }
    func optional<T: Decodable>(_ key: K) throws -> T? {
        if (try? decodeNil(forKey: key)) == true { return nil }
        return try decodeIfPresent(T.self, forKey: key)
    }
    func required<T: Decodable>(_ key: K, _ what: String) throws -> T {
        guard contains(key), (try? decodeNil(forKey: key)) != true else {
            throw ModelError("config.json: required field \"\(key.stringValue)\" of \(what) is missing")
        }
        return try decode(T.self, forKey: key)
    }
}

/// `eos_token_id` is an int or a list of ints.
public struct TokenIDList: Codable, Sendable, Equatable {
    public var ids: [Int]
    public init(_ ids: [Int]) { self.ids = ids }
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let one = try? c.decode(Int.self) { ids = [one] } else { ids = try c.decode([Int].self) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if ids.count == 1 { try c.encode(ids[0]) } else { try c.encode(ids) }
    }
}

/// RoPE parameters of one layer type (5.x `rope_parameters[layer_type]`, or built from the older
/// `rope_theta` / `rope_local_base_freq` / `rope_scaling` keys).
public struct RopeParameters: Codable, Sendable, Equatable {
    public var ropeType: String
    public var ropeTheta: Double
    public var factor: Double?
    enum CodingKeys: String, CodingKey { case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor }
    public init(ropeType: String, ropeTheta: Double, factor: Double? = nil) {
        self.ropeType = ropeType; self.ropeTheta = ropeTheta; self.factor = factor
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ropeType = try c.optional(.ropeType) ?? c.opt(.type, "default")
        ropeTheta = try c.opt(.ropeTheta, .nan)
        factor = try c.optional(.factor)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ropeType, forKey: .ropeType)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(factor, forKey: .factor)
    }
    /// The linear factor applied to inv_freq, or an error for RoPE types Gemma 3 never uses.
    func linearFactor() throws -> Double? {
        switch ropeType {
        case "default": return nil
        case "linear": return factor ?? 1
        default: throw ModelError("config.json: rope_type \"\(ropeType)\" is not supported (default, linear)")
        }
    }
}

/// `Gemma3TextConfig` (model_type gemma3_text).
public struct Gemma3TextConfig: Decodable, Sendable {
    public var vocabSize = 262_208
    public var hiddenSize = 2304
    public var intermediateSize = 9216
    public var numHiddenLayers = 26
    public var numAttentionHeads = 8
    public var numKeyValueHeads = 4
    public var headDim = 256
    public var hiddenActivation = "gelu_pytorch_tanh"
    public var maxPositionEmbeddings = 131_072
    public var rmsNormEps = 1e-6
    public var padTokenID: Int? = 0
    public var eosTokenID = TokenIDList([1])
    public var bosTokenID: Int? = 2
    public var tieWordEmbeddings = true
    public var attentionBias = false
    public var queryPreAttnScalar = 256.0
    public var slidingWindow: Int? = 4096
    public var layerTypes: [String] = []
    public var finalLogitSoftcapping: Double?
    public var attnLogitSoftcapping: Double?
    public var useBidirectionalAttention = false
    /// Per layer type: "sliding_attention" and "full_attention".
    public var ropeParameters: [String: RopeParameters] = [:]

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenActivation = "hidden_activation"
        case hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case padTokenID = "pad_token_id", eosTokenID = "eos_token_id", bosTokenID = "bos_token_id"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias"
        case queryPreAttnScalar = "query_pre_attn_scalar", slidingWindow = "sliding_window"
        case layerTypes = "layer_types", finalLogitSoftcapping = "final_logit_softcapping"
        case attnLogitSoftcapping = "attn_logit_softcapping", useBidirectionalAttention = "use_bidirectional_attention"
        case ropeParameters = "rope_parameters", ropeTheta = "rope_theta", ropeLocalBaseFreq = "rope_local_base_freq"
        case ropeScaling = "rope_scaling", slidingWindowPattern = "sliding_window_pattern"
        case slidingWindowPatternPrivate = "_sliding_window_pattern"
    }

    public init() { finishDefaults(pattern: 6, ropeTheta: nil, localBase: nil, scaling: nil) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.opt(.vocabSize, vocabSize)
        hiddenSize = try c.opt(.hiddenSize, hiddenSize)
        intermediateSize = try c.opt(.intermediateSize, intermediateSize)
        numHiddenLayers = try c.opt(.numHiddenLayers, numHiddenLayers)
        numAttentionHeads = try c.opt(.numAttentionHeads, numAttentionHeads)
        numKeyValueHeads = try c.opt(.numKeyValueHeads, numKeyValueHeads)
        headDim = try c.opt(.headDim, headDim)
        hiddenActivation = try c.optional(.hiddenActivation) ?? c.opt(.hiddenAct, hiddenActivation)
        maxPositionEmbeddings = try c.opt(.maxPositionEmbeddings, maxPositionEmbeddings)
        rmsNormEps = try c.opt(.rmsNormEps, rmsNormEps)
        padTokenID = c.contains(.padTokenID) ? try c.optional(.padTokenID) : 0
        eosTokenID = try c.opt(.eosTokenID, eosTokenID)
        bosTokenID = c.contains(.bosTokenID) ? try c.optional(.bosTokenID) : 2
        tieWordEmbeddings = try c.opt(.tieWordEmbeddings, tieWordEmbeddings)
        attentionBias = try c.opt(.attentionBias, attentionBias)
        queryPreAttnScalar = try c.opt(.queryPreAttnScalar, queryPreAttnScalar)
        slidingWindow = c.contains(.slidingWindow) ? try c.optional(.slidingWindow) : 4096
        layerTypes = try c.opt(.layerTypes, [])
        finalLogitSoftcapping = try c.optional(.finalLogitSoftcapping)
        attnLogitSoftcapping = try c.optional(.attnLogitSoftcapping)
        useBidirectionalAttention = try c.opt(.useBidirectionalAttention, false)
        ropeParameters = try c.opt(.ropeParameters, [:])
        let pattern: Int = try c.optional(.slidingWindowPattern) ?? c.opt(.slidingWindowPatternPrivate, 6)
        let scaling: RopeParameters? = try c.optional(.ropeScaling)
        finishDefaults(pattern: pattern, ropeTheta: try c.optional(.ropeTheta),
                       localBase: try c.optional(.ropeLocalBaseFreq), scaling: scaling)
        if hiddenActivation != "gelu_pytorch_tanh" && hiddenActivation != "gelu_tanh" {
            throw ModelError("config.json: hidden_activation \"\(hiddenActivation)\" is not supported (gelu_pytorch_tanh)")
        }
        if layerTypes.count != numHiddenLayers {
            throw ModelError("config.json: layer_types has \(layerTypes.count) entries for \(numHiddenLayers) layers")
        }
        if useBidirectionalAttention {
            throw ModelError("config.json: use_bidirectional_attention (EmbeddingGemma) is not supported")
        }
    }

    /// The `__post_init__` / `convert_rope_params_to_dict` rules of transformers 5.24.
    mutating func finishDefaults(pattern: Int, ropeTheta: Double?, localBase: Double?, scaling: RopeParameters?) {
        if layerTypes.isEmpty {
            layerTypes = (0..<numHiddenLayers).map { ($0 + 1) % pattern != 0 ? "sliding_attention" : "full_attention" }
        }
        var full = ropeParameters["full_attention"] ?? RopeParameters(ropeType: "default", ropeTheta: .nan)
        if let s = scaling { full.ropeType = s.ropeType; full.factor = s.factor }
        if full.ropeTheta.isNaN { full.ropeTheta = ropeTheta ?? 1_000_000 }
        var local = ropeParameters["sliding_attention"] ?? RopeParameters(ropeType: "default", ropeTheta: .nan)
        if local.ropeTheta.isNaN { local.ropeTheta = localBase ?? 10_000 }
        ropeParameters = ["full_attention": full, "sliding_attention": local]
    }

    public func isSliding(_ layer: Int) -> Bool { layerTypes[layer] == "sliding_attention" }
}

/// `SiglipVisionConfig` (model_type siglip_vision_model).
public struct SiglipVisionConfig: Decodable, Sendable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 16
    public var hiddenAct = "gelu_pytorch_tanh"
    public var layerNormEps = 1e-6
    public var visionUseHead = true
    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
        case patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case visionUseHead = "vision_use_head"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.opt(.hiddenSize, hiddenSize)
        intermediateSize = try c.opt(.intermediateSize, intermediateSize)
        numHiddenLayers = try c.opt(.numHiddenLayers, numHiddenLayers)
        numAttentionHeads = try c.opt(.numAttentionHeads, numAttentionHeads)
        numChannels = try c.opt(.numChannels, numChannels)
        imageSize = try c.opt(.imageSize, imageSize)
        patchSize = try c.opt(.patchSize, patchSize)
        hiddenAct = try c.opt(.hiddenAct, hiddenAct)
        layerNormEps = try c.opt(.layerNormEps, layerNormEps)
        visionUseHead = try c.opt(.visionUseHead, visionUseHead)
        if hiddenAct != "gelu_pytorch_tanh" {
            throw ModelError("config.json: vision hidden_act \"\(hiddenAct)\" is not supported (gelu_pytorch_tanh)")
        }
    }
    public var patchesPerSide: Int { imageSize / patchSize }
}

/// `Gemma3Config` (model_type gemma3): the multimodal checkpoint.
public struct Gemma3Config: Decodable, Sendable {
    public var textConfig = Gemma3TextConfig()
    public var visionConfig = SiglipVisionConfig()
    public var mmTokensPerImage = 256
    public var boiTokenIndex = 255_999
    public var eoiTokenIndex = 256_000
    public var imageTokenIndex = 262_144
    public var eosTokenID: TokenIDList?
    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config", mmTokensPerImage = "mm_tokens_per_image"
        case boiTokenIndex = "boi_token_index", eoiTokenIndex = "eoi_token_index", imageTokenIndex = "image_token_index"
        case eosTokenID = "eos_token_id"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        textConfig = try c.opt(.textConfig, Gemma3TextConfig())
        visionConfig = try c.opt(.visionConfig, SiglipVisionConfig())
        mmTokensPerImage = try c.opt(.mmTokensPerImage, mmTokensPerImage)
        boiTokenIndex = try c.opt(.boiTokenIndex, boiTokenIndex)
        eoiTokenIndex = try c.opt(.eoiTokenIndex, eoiTokenIndex)
        imageTokenIndex = try c.opt(.imageTokenIndex, imageTokenIndex)
        eosTokenID = try c.optional(.eosTokenID)
        let side = Int(Double(mmTokensPerImage).squareRoot())
        if side * side != mmTokensPerImage || visionConfig.patchesPerSide % side != 0 {
            throw ModelError("config.json: mm_tokens_per_image \(mmTokensPerImage) does not pool \(visionConfig.patchesPerSide)² patches")
        }
    }
}

/// What a checkpoint folder holds, decided from its config.json (`architectures`, then `model_type`).
public enum ModelArchitecture: Sendable {
    case gemma3ConditionalGeneration(Gemma3Config)
    case gemma3CausalLM(Gemma3TextConfig)
}

/// Architecture registry: a new family is one more entry (and one more file), not a fork.
public enum ArchitectureRegistry {
    public typealias Decode = @Sendable (Data) throws -> ModelArchitecture
    nonisolated(unsafe) public static var byArchitecture: [String: Decode] = [
        "Gemma3ForConditionalGeneration": { .gemma3ConditionalGeneration(try JSONDecoder().decode(Gemma3Config.self, from: $0)) },
        "Gemma3ForCausalLM": { .gemma3CausalLM(try JSONDecoder().decode(Gemma3TextConfig.self, from: $0)) },
    ]
    nonisolated(unsafe) public static var byModelType: [String: Decode] = [
        "gemma3": byArchitecture["Gemma3ForConditionalGeneration"]!,
        "gemma3_text": byArchitecture["Gemma3ForCausalLM"]!,
    ]

    struct Head: Decodable { var architectures: [String]?; var model_type: String? }

    /// Decodes `dir/config.json`; errors name the file and the problem.
    public static func load(configAt url: URL) throws -> ModelArchitecture {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        do {
            let head = try JSONDecoder().decode(Head.self, from: data)
            for a in head.architectures ?? [] { if let d = byArchitecture[a] { return try d(data) } }
            if let t = head.model_type, let d = byModelType[t] { return try d(data) }
            let what = (head.architectures ?? []).joined(separator: ",")
            throw ModelError("\(url.path): unsupported architecture \(what.isEmpty ? (head.model_type ?? "(none)") : what) (supported: \(byArchitecture.keys.sorted().joined(separator: ", ")))")
        } catch let e as ModelError {
            throw e.description.hasPrefix(url.path) ? e : ModelError("\(url.path): " + e.description.replacingOccurrences(of: "config.json: ", with: ""))
        } catch let e as DecodingError {
            throw ModelError("\(url.path): \(describe(e))")
        } catch {
            throw ModelError("\(url.path): not valid JSON (\(error.localizedDescription))")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            let path = c.codingPath.map { $0.stringValue }.joined(separator: ".")
            return "field \(path.isEmpty ? "(root)" : path): \(c.debugDescription)"
        case .keyNotFound(let k, _): return "required field \"\(k.stringValue)\" is missing"
        @unknown default: return "\(e)"
        }
    }
}
