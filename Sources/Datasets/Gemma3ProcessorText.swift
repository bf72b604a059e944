// The text side of Gemma3Processor (transformers 5.24 `processing_gemma3.py` + `ProcessorMixin`): each
// `<start_of_image>` placeholder of the rendered text becomes the full image run
//   "\n\n" + boi + image_soft_token x N + eoi + "\n\n"        (N = image_seq_length)
// then the tokenizer runs on the expanded text; token_type_ids = 1 exactly on the image soft tokens.
import Foundation

/// What the processor and collator need from a tokenizer. The Tokenizers module's tokenizer conforms through
/// a small adapter; tests use fixture-backed ones.
public protocol CollatorTokenizer {
    /// Token ids of `text`; `addSpecialTokens` runs the tokenizer's post-processor (Gemma: prepend `<bos>`).
    func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int]
    /// Ids plus each token's UTF-8 byte range in `text` (tokens added by the post-processor: an empty range).
    /// Needed only for `assistant_only_loss`.
    func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>])
    /// The id of a vocabulary or added token given as its exact string (`"<start_of_image>"`).
    func tokenID(_ token: String) -> Int?
    /// The token's string as stored in the vocabulary (for the inspector).
    func tokenString(_ id: Int) -> String?
}

extension CollatorTokenizer {
    public func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        throw ProcessorError("this tokenizer does not report token offsets, which assistant_only_loss needs")
    }
}

/// Token strings and ids of Gemma 3's image run.
public struct Gemma3ImageTokens: Sendable, Equatable {
    public var boiToken = "<start_of_image>"
    public var eoiToken = "<end_of_image>"
    public var imageToken = "<image_soft_token>"
    public var boiID: Int
    public var eoiID: Int
    public var imageID: Int
    /// Image soft tokens per image (`image_seq_length`, 256 for gemma-3-4b-it).
    public var imageSeqLength: Int

    public init(boiID: Int, eoiID: Int, imageID: Int, imageSeqLength: Int) {
        self.boiID = boiID; self.eoiID = eoiID; self.imageID = imageID; self.imageSeqLength = imageSeqLength
    }

    /// Looks the three tokens up in the tokenizer.
    public init(tokenizer: CollatorTokenizer, imageSeqLength: Int) throws {
        func id(_ t: String) throws -> Int {
            guard let i = tokenizer.tokenID(t) else { throw ProcessorError("the tokenizer has no \(t) token (not a Gemma 3 tokenizer?)") }
            return i
        }
        self.init(boiID: try id("<start_of_image>"), eoiID: try id("<end_of_image>"), imageID: try id("<image_soft_token>"),
                  imageSeqLength: imageSeqLength)
    }

    /// `Gemma3Processor.full_image_sequence`.
    public var fullImageSequence: String {
        "\n\n" + boiToken + String(repeating: imageToken, count: imageSeqLength) + eoiToken + "\n\n"
    }
}

/// The expanded text and where its placeholders went (to carry character spans across the expansion).
public struct ExpandedText: Sendable, Equatable {
    public var text: String
    /// UTF-8 byte offset just past each placeholder in the ORIGINAL text, ascending.
    public var placeholderEnds: [Int]
    /// Bytes each expansion added.
    public var bytesGainedPerImage: Int

    /// Maps a UTF-8 offset of the original text into the expanded text (transformers
    /// `_adjust_assistant_masks_indices`: shift by the expansions that end at or before the offset).
    public func map(_ offset: Int) -> Int {
        var lo = 0, hi = placeholderEnds.count
        while lo < hi { let mid = (lo + hi) / 2; if placeholderEnds[mid] <= offset { lo = mid + 1 } else { hi = mid } }
        return offset + lo * bytesGainedPerImage
    }
}

public enum Gemma3TextProcessor {
    /// Number of `<start_of_image>` substrings (Python `str.count`, non-overlapping).
    public static func placeholderCount(_ text: String, tokens: Gemma3ImageTokens) -> Int {
        occurrences(of: Array(tokens.boiToken.utf8), in: Array(text.utf8)).count
    }

    static func occurrences(of needle: [UInt8], in hay: [UInt8]) -> [Int] {
        guard !needle.isEmpty, hay.count >= needle.count else { return [] }
        var out = [Int]()
        var i = 0
        let first = needle[0], n = needle.count
        hay.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { nd in
                while i <= h.count - n {
                    if h[i] == first {
                        var j = 1
                        while j < n && h[i + j] == nd[j] { j += 1 }
                        if j == n { out.append(i); i += n; continue }
                    }
                    i += 1
                }
            }
        }
        return out
    }

    /// Replaces every placeholder, in order, with the full image run.
    public static func expand(_ text: String, tokens: Gemma3ImageTokens) -> ExpandedText {
        let bytes = Array(text.utf8)
        let boi = Array(tokens.boiToken.utf8)
        let hits = occurrences(of: boi, in: bytes)
        let full = Array(tokens.fullImageSequence.utf8)
        guard !hits.isEmpty else { return ExpandedText(text: text, placeholderEnds: [], bytesGainedPerImage: full.count - boi.count) }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count + hits.count * (full.count - boi.count))
        var last = 0
        for h in hits {
            out.append(contentsOf: bytes[last..<h])
            out.append(contentsOf: full)
            last = h + boi.count
        }
        out.append(contentsOf: bytes[last...])
        return ExpandedText(text: String(decoding: out, as: UTF8.self), placeholderEnds: hits.map { $0 + boi.count },
                            bytesGainedPerImage: full.count - boi.count)
    }
}
