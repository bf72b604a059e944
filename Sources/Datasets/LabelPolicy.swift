// Label masking policies and the reasons each label position keeps (for the inspector).
//
// Facts behind the three policies (reference-spec sections 3.6, 4.2, 4.3; checked against torch 2.15,
// transformers 5.24, trl 1.16 by Scripts/fixtures/gen_collator.py):
//   guide-exact: the guide's collate_fn. Text = apply_chat_template(...).strip() which already starts with
//     <bos>, tokenized with add_special_tokens=True -> two BOS. Labels -100 on pad and image soft tokens only:
//     its `labels[labels == [boi_id]] = -100` compares a tensor with a Python list, which torch answers with
//     the bool False, so boi stays a target. Offered only to reproduce published runs.
//   vision (default): what the guide means: same text, one BOS, -100 on pad, boi and every soft token
//     (eoi too with mask_end_of_image).
//   trl: trl 1.16 DataCollatorForVisionLanguageModeling: text not stripped, add_special_tokens=False, labels
//     -100 on padding only (image tokens are targets).
import Foundation

public enum LabelMasking: String, Codable, Sendable, CaseIterable {
    case vision
    case guideExact = "guide-exact"
    case trl
}

/// What to do with a sample that `max_length` would cut through (or past) an image's token run.
public enum OverflowAction: String, Codable, Sendable {
    /// Leave the sample out of the batch and count it.
    case drop
    /// Stop with an error naming the row.
    case error
}

/// The label settings of a run (TRL-style config keys in `CodingKeys`).
public struct LabelPolicy: Codable, Sendable, Equatable {
    public var masking: LabelMasking
    /// `vision` only: also mask `<end_of_image>`.
    public var maskEndOfImage: Bool
    /// Train only on assistant turns (the chat template's generation spans).
    public var assistantOnlyLoss: Bool
    /// Prompt/completion rows: train only on the completion (TRL's default for such rows: true).
    public var completionOnlyLoss: Bool
    /// Truncate longer samples to this many tokens (keeping the start); nil: no truncation.
    public var maxLength: Int?
    public var overflow: OverflowAction

    enum CodingKeys: String, CodingKey {
        case masking = "label_masking", maskEndOfImage = "mask_end_of_image", assistantOnlyLoss = "assistant_only_loss"
        case completionOnlyLoss = "completion_only_loss", maxLength = "max_length", overflow = "truncation_overflow"
    }

    public init(masking: LabelMasking = .vision, maskEndOfImage: Bool = false, assistantOnlyLoss: Bool = false,
                completionOnlyLoss: Bool = true, maxLength: Int? = nil, overflow: OverflowAction = .drop) {
        self.masking = masking; self.maskEndOfImage = maskEndOfImage; self.assistantOnlyLoss = assistantOnlyLoss
        self.completionOnlyLoss = completionOnlyLoss; self.maxLength = maxLength; self.overflow = overflow
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        masking = try c.decodeIfPresent(LabelMasking.self, forKey: .masking) ?? .vision
        maskEndOfImage = try c.decodeIfPresent(Bool.self, forKey: .maskEndOfImage) ?? false
        assistantOnlyLoss = try c.decodeIfPresent(Bool.self, forKey: .assistantOnlyLoss) ?? false
        completionOnlyLoss = try c.decodeIfPresent(Bool.self, forKey: .completionOnlyLoss) ?? true
        maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength)
        overflow = try c.decodeIfPresent(OverflowAction.self, forKey: .overflow) ?? .drop
    }

    /// The guide strips the rendered text (no trailing "\n" after the last <end_of_turn>); TRL does not.
    public var stripsRenderedText: Bool { masking != .trl }
    /// Only the guide lets the tokenizer's post-processor add a second BOS.
    public var addsSpecialTokens: Bool { masking == .guideExact }
    /// The guide converts with PIL `.convert("RGB")`; TRL hands raw images to transformers' `convert_to_rgb`.
    public var alphaHandling: AlphaHandling { masking == .trl ? .compositeOnWhite : .drop }
}

/// Why a label position holds what it holds.
public enum LabelReason: String, Codable, Sendable, CaseIterable {
    case pad
    case image
    case imageBoundary = "image-boundary"
    case prompt
    case system
    case truncated
    case trained
}

/// A visible, row-numbered note for the inspector and the run log.
public struct DatasetWarning: Sendable, Equatable, CustomStringConvertible, Codable {
    public enum Kind: String, Sendable, Codable {
        case doubleBOS = "double-bos", imageCountMismatch = "image-count-mismatch", noTrainedTokens = "no-trained-tokens"
        case truncated, dropped, badImage = "bad-image"
    }
    public var row: Int
    public var kind: Kind
    public var message: String
    public init(row: Int, kind: Kind, message: String) { self.row = row; self.kind = kind; self.message = message }
    public var description: String { "row \(row): \(message)" }
}
