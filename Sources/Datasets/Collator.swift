// From formatted rows to the batch a reference pipeline would build: render, expand image placeholders,
// tokenize, label (with a reason per position), process images; then pad and stack.
//
//   TrainingSample --SampleEncoder.encode--> EncodedSample --Collator.collate--> CollatedBatch
//     messages, image bytes                 ids, labels, reasons, pixels         [B, L] ids/mask/types/labels,
//                                                                                [N, 3, H, W] pixel_values
import Foundation
import Tokenizers

/// The chat template's output, with the spans `{% generation %}` marked (UTF-8 byte ranges of `text`).
public struct RenderedChat: Sendable, Equatable {
    public var text: String
    public var generationSpans: [Range<Int>]
    public init(text: String, generationSpans: [Range<Int>] = []) { self.text = text; self.generationSpans = generationSpans }
}

/// Renders a conversation with the model's chat template (the Tokenizers module's Jinja engine conforms
/// through an adapter).
public protocol ChatRendering {
    func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> RenderedChat
}

/// One dataset row after formatting: a conversation (language modelling) or a prompt/completion pair.
public struct TrainingSample: Sendable {
    public var row: Int
    public var messages: [ChatMessage]
    /// Non-nil for prompt/completion rows (`messages` is then the prompt).
    public var completion: [ChatMessage]?
    /// Encoded JPEG/PNG bytes, in the order of the image placeholders.
    public var images: [Data]

    public init(row: Int, messages: [ChatMessage], completion: [ChatMessage]? = nil, images: [Data] = []) {
        self.row = row; self.messages = messages; self.completion = completion; self.images = images
    }

    public var placeholderCount: Int { (messages + (completion ?? [])).reduce(0) { $0 + $1.imageCount } }

    /// A formatted dataset row (any layout) with its images read: stored bytes as they are, files loaded.
    /// Returns the row's warnings too (missing images, placeholder/image count mismatch) for the inspector.
    public static func from(_ row: DatasetRow) throws -> (TrainingSample, [DatasetWarning]) {
        var warnings = [DatasetWarning]()
        if !row.missingImages.isEmpty {
            warnings.append(DatasetWarning(row: row.index, kind: .badImage,
                                           message: "\(row.missingImages.count) image(s) not found: \(row.missingImages.prefix(3).joined(separator: ", "))"))
        }
        let images = try row.images.enumerated().map { k, ref -> Data in
            switch ref {
            case .bytes(let d): return d
            case .file(let u):
                do { return try Data(contentsOf: u) } catch {
                    throw ImageError(.corrupt, "cannot read \(u.path)").in("row \(row.index), image \(k)")
                }
            }
        }
        let sample = TrainingSample(row: row.index, messages: row.messages, completion: row.completion, images: images)
        if sample.placeholderCount != images.count {
            warnings.append(DatasetWarning(row: row.index, kind: .imageCountMismatch,
                                           message: "\(sample.placeholderCount) image placeholders in the messages but \(images.count) images"))
        }
        return (sample, warnings)
    }
}

/// One sample, tokenized and labelled; tokens past `keptLength` were cut by max_length.
public struct EncodedSample: Sendable {
    public var row: Int
    /// Rendered text as fed to the processor (stripped when the policy strips), before image expansion.
    public var text: String
    public var inputIDs: [Int32]
    public var tokenTypeIDs: [Int32]
    public var labels: [Int32]
    public var reasons: [LabelReason]
    /// Tokens that go into the batch (== inputIDs.count unless truncated; 0 when dropped).
    public var keptLength: Int
    public var dropped: Bool
    /// Float32 CHW per image, concatenated.
    public var pixelValues: [Float]
    public var imageCount: Int
    public var warnings: [DatasetWarning]
}

/// The collated tensors (row-major), plus the inspector's bookkeeping.
public struct CollatedBatch: Sendable {
    public var batchSize: Int
    public var sequenceLength: Int
    public var inputIDs: [Int32]
    public var attentionMask: [Int32]
    public var tokenTypeIDs: [Int32]
    public var labels: [Int32]
    public var reasons: [LabelReason]
    /// [imageCount, 3, imageHeight, imageWidth], images in sample-major order.
    public var pixelValues: [Float]
    public var imageCount: Int
    public var imageHeight: Int
    public var imageWidth: Int
    /// Dataset rows of the batch's samples, in order; rows left out by the overflow rule.
    public var rows: [Int]
    public var droppedRows: [Int]
    public var truncatedRows: [Int]
    public var warnings: [DatasetWarning]
    /// Positions per reason over the whole [B, L] grid.
    public var reasonCounts: [LabelReason: Int]
}

public struct SampleEncoder {
    public let tokenizer: CollatorTokenizer
    public let renderer: ChatRendering
    public let imageProcessor: Gemma3ImageProcessor
    public let tokens: Gemma3ImageTokens
    public let policy: LabelPolicy
    public let bosID: Int?
    public var imageLimits: ImageLimits = .default

    public init(tokenizer: CollatorTokenizer, renderer: ChatRendering, imageProcessor: Gemma3ImageProcessor,
                tokens: Gemma3ImageTokens, policy: LabelPolicy, bosID: Int?) {
        self.tokenizer = tokenizer; self.renderer = renderer; self.imageProcessor = imageProcessor
        self.tokens = tokens; self.policy = policy; self.bosID = bosID
    }

    /// Python `str.strip()` (Unicode whitespace both ends); returns the stripped text and the bytes removed in front.
    static func pythonStrip(_ s: String) -> (String, Int) {
        let scalars = s.unicodeScalars
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace { end = scalars.index(before: end) }
        let lead = String(scalars[scalars.startIndex..<start]).utf8.count
        return (String(scalars[start..<end]), lead)
    }

    /// Pieces of text with their own label treatment (one piece for a conversation; prompt + completion).
    struct Piece { var text: String; var spans: [Range<Int>]; var isPrompt: Bool; var systemSpan: Range<Int>? }

    func pieces(_ sample: TrainingSample) throws -> [Piece] {
        func systemSpan(in text: String, messages: [ChatMessage]) -> Range<Int>? {
            guard let first = messages.first, first.role == "system" else { return nil }
            let sys: String
            switch first.content {
            case .text(let t): sys = t
            case .parts(let p): sys = p.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.first ?? ""
            }
            guard !sys.isEmpty, let r = text.range(of: sys) else { return nil }
            let lo = text.utf8.distance(from: text.startIndex, to: r.lowerBound)
            return lo..<(lo + sys.utf8.count)
        }
        if let completion = sample.completion {
            // TRL data_utils.apply_chat_template for prompt/completion: the prompt with the generation prompt
            // (or continuing a final assistant turn), the prompt = its common prefix with render(prompt +
            // completion) (in characters), the completion = the rest.
            let endsWithAssistant = sample.messages.last?.role == "assistant"
            let rendered = try renderer.render(sample.messages, addGenerationPrompt: !endsWithAssistant)
            let full = try renderer.render(sample.messages + completion, addGenerationPrompt: false)
            let a = Array(rendered.text.unicodeScalars), f = Array(full.text.unicodeScalars)
            var common = 0
            while common < a.count && common < f.count && a[common] == f[common] { common += 1 }
            var promptText = String.UnicodeScalarView(), completionText = String.UnicodeScalarView()
            promptText.append(contentsOf: f[0..<common]); completionText.append(contentsOf: f[common...])
            let prompt = RenderedChat(text: String(promptText))
            let completionString = String(completionText)
            return [Piece(text: prompt.text, spans: [], isPrompt: true, systemSpan: systemSpan(in: prompt.text, messages: sample.messages)),
                    Piece(text: completionString, spans: [0..<completionString.utf8.count], isPrompt: false, systemSpan: nil)]
        }
        var r = try renderer.render(sample.messages, addGenerationPrompt: false)
        if policy.stripsRenderedText {
            let (s, lead) = Self.pythonStrip(r.text)
            let n = s.utf8.count
            r = RenderedChat(text: s, generationSpans: r.generationSpans.compactMap {
                let lo = max(0, $0.lowerBound - lead), hi = min(n, $0.upperBound - lead)
                return lo < hi ? lo..<hi : nil
            })
        }
        return [Piece(text: r.text, spans: r.generationSpans, isPrompt: false, systemSpan: systemSpan(in: r.text, messages: sample.messages))]
    }

    /// TRL `prepare_multimodal_messages`: when no turn has an image part but the row has images, the first
    /// user turn with plain-string content gets one image part per image in front of its text.
    static func trlPlaceImages(_ sample: TrainingSample) -> TrainingSample {
        guard !sample.images.isEmpty, sample.placeholderCount == 0 else { return sample }
        var s = sample
        if let k = s.messages.firstIndex(where: { $0.role == "user" }), case .text(let t) = s.messages[k].content {
            s.messages[k].content = .parts(Array(repeating: .image, count: s.images.count) + [.text(t)])
        }
        return s
    }

    public func encode(_ sample: TrainingSample) throws -> EncodedSample {
        let sample = policy.masking == .trl ? Self.trlPlaceImages(sample) : sample
        let row = sample.row
        var warnings = [DatasetWarning]()
        let pieces = try pieces(sample)
        let placeholders = pieces.reduce(0) { $0 + Gemma3TextProcessor.placeholderCount($1.text, tokens: tokens) }
        guard placeholders == sample.images.count else {
            throw ProcessorError("row \(row): the text has \(placeholders) \(tokens.boiToken) placeholders but the row has \(sample.images.count) images")
        }
        let needOffsets = policy.assistantOnlyLoss && sample.completion == nil
        var ids = [Int32](), reasons = [LabelReason]()
        var text = ""
        for (pi, piece) in pieces.enumerated() {
            let expanded = Gemma3TextProcessor.expand(piece.text, tokens: tokens)
            // Only the first piece may receive the post-processor's BOS (TRL passes add_special_tokens=False to both).
            let special = policy.addsSpecialTokens && pi == 0
            var pieceIDs: [Int], offsets: [Range<Int>] = []
            if needOffsets {
                (pieceIDs, offsets) = try tokenizer.encodeWithOffsets(expanded.text, addSpecialTokens: special)
            } else {
                pieceIDs = try tokenizer.encode(expanded.text, addSpecialTokens: special)
            }
            let spans = piece.spans.map { expanded.map($0.lowerBound)..<expanded.map($0.upperBound) }
            let sys = piece.systemSpan.map { expanded.map($0.lowerBound)..<expanded.map($0.upperBound) }
            for (k, id) in pieceIDs.enumerated() {
                ids.append(Int32(id))
                var reason = LabelReason.trained
                if piece.isPrompt && policy.completionOnlyLoss {
                    reason = .prompt
                } else if needOffsets {
                    // transformers: a token is an assistant token when it overlaps a generation span.
                    let o = offsets[k]
                    let inside = spans.contains { o.lowerBound < $0.upperBound && o.upperBound > $0.lowerBound }
                    if !inside {
                        let inSystem = sys.map { o.lowerBound < $0.upperBound && o.upperBound > $0.lowerBound } ?? false
                        reason = inSystem ? .system : .prompt
                    }
                }
                reasons.append(reason)
            }
            text += piece.text
        }
        // Image rules take precedence over prompt/system in the reason (the label is -100 either way).
        var typeIDs = [Int32](repeating: 0, count: ids.count)
        var soft = 0
        let imageID = Int32(tokens.imageID), boiID = Int32(tokens.boiID), eoiID = Int32(tokens.eoiID)
        for i in 0..<ids.count {
            switch ids[i] {
            case imageID:
                typeIDs[i] = 1; soft += 1
                if policy.masking != .trl { reasons[i] = .image }
            case boiID where policy.masking == .vision:
                reasons[i] = .imageBoundary
            case eoiID where policy.masking == .vision && policy.maskEndOfImage:
                reasons[i] = .imageBoundary
            default: break
            }
        }
        // transformers `_check_special_mm_tokens`.
        guard soft == sample.images.count * tokens.imageSeqLength else {
            throw ProcessorError("row \(row): \(soft) image tokens after tokenization, expected \(sample.images.count) x \(tokens.imageSeqLength)")
        }
        if let bos = bosID, ids.count >= 2, ids[0] == Int32(bos), ids[1] == Int32(bos) {
            let note = policy.masking == .guideExact ? " (guide-exact reproduces the guide's double BOS on purpose)" : ""
            warnings.append(DatasetWarning(row: row, kind: .doubleBOS, message: "the sequence starts with two BOS tokens\(note)"))
        }

        // max_length: keep the start, never cut through (or drop past) an image run.
        var kept = ids.count, dropped = false
        if let maxLength = policy.maxLength, ids.count > maxLength {
            let imageTokenPastCut = ids[maxLength...].contains { $0 == imageID || $0 == boiID || $0 == eoiID }
            if imageTokenPastCut {
                let msg = "\(ids.count) tokens exceed max_length \(maxLength) and the cut would go through an image's tokens"
                if policy.overflow == .error { throw ProcessorError("row \(row): \(msg)") }
                warnings.append(DatasetWarning(row: row, kind: .dropped, message: msg + "; sample dropped"))
                kept = 0; dropped = true
            } else {
                warnings.append(DatasetWarning(row: row, kind: .truncated, message: "truncated from \(ids.count) to \(maxLength) tokens"))
                kept = maxLength
            }
            for i in kept..<ids.count { reasons[i] = .truncated }
        }
        let labels = (0..<ids.count).map { reasons[$0] == .trained ? ids[$0] : -100 }
        if !dropped && !labels[0..<kept].contains(where: { $0 != -100 }) {
            warnings.append(DatasetWarning(row: row, kind: .noTrainedTokens, message: "no position is trained (every label is -100)"))
        }

        var pixels = [Float]()
        if !dropped {
            pixels.reserveCapacity(sample.images.count * 3 * imageProcessor.outputHeight * imageProcessor.outputWidth)
            for (k, data) in sample.images.enumerated() {
                let rgb: RGBImage
                do { rgb = try ImageDecoder.decodeRGB(data, alpha: policy.alphaHandling, limits: imageLimits) } catch let e as ImageError {
                    throw e.in("row \(row), image \(k)")
                }
                imageProcessor.process(rgb, into: &pixels)
            }
        }
        return EncodedSample(row: row, text: text, inputIDs: ids, tokenTypeIDs: typeIDs, labels: labels, reasons: reasons,
                             keptLength: kept, dropped: dropped, pixelValues: pixels, imageCount: dropped ? 0 : sample.images.count,
                             warnings: warnings)
    }
}

/// Right padding to the longest kept sample, attention mask, and the stacked pixel values.
public struct Collator: Sendable {
    public var padID: Int
    public var imageHeight: Int
    public var imageWidth: Int
    public init(padID: Int, imageHeight: Int, imageWidth: Int) {
        self.padID = padID; self.imageHeight = imageHeight; self.imageWidth = imageWidth
    }

    public func collate(_ samples: [EncodedSample]) -> CollatedBatch {
        let kept = samples.filter { !$0.dropped }
        let b = kept.count
        let l = kept.map(\.keptLength).max() ?? 0
        var ids = [Int32](repeating: Int32(padID), count: b * l)
        var mask = [Int32](repeating: 0, count: b * l)
        var types = [Int32](repeating: 0, count: b * l)
        var labels = [Int32](repeating: -100, count: b * l)
        var reasons = [LabelReason](repeating: .pad, count: b * l)
        var pixels = [Float]()
        pixels.reserveCapacity(kept.reduce(0) { $0 + $1.pixelValues.count })
        for (i, s) in kept.enumerated() {
            for t in 0..<s.keptLength {
                ids[i * l + t] = s.inputIDs[t]
                mask[i * l + t] = 1
                types[i * l + t] = s.tokenTypeIDs[t]
                labels[i * l + t] = s.labels[t]
                reasons[i * l + t] = s.reasons[t]
            }
            pixels.append(contentsOf: s.pixelValues)
        }
        var counts = [LabelReason: Int]()
        for r in reasons { counts[r, default: 0] += 1 }
        return CollatedBatch(batchSize: b, sequenceLength: l, inputIDs: ids, attentionMask: mask, tokenTypeIDs: types,
                             labels: labels, reasons: reasons, pixelValues: pixels, imageCount: kept.reduce(0) { $0 + $1.imageCount },
                             imageHeight: imageHeight, imageWidth: imageWidth, rows: kept.map(\.row),
                             droppedRows: samples.filter(\.dropped).map(\.row),
                             truncatedRows: kept.filter { $0.keptLength < $0.inputIDs.count }.map(\.row),
                             warnings: samples.flatMap(\.warnings), reasonCounts: counts)
    }
}
