// The Tokenizers module's tokenizer as the collator's tokenizer. Its offsets count Unicode scalars (Python
// `str` indices); the collator works in UTF-8 bytes, so they are converted here.
import Foundation
import Tokenizers

extension Tokenizer: CollatorTokenizer {
    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        // The ids-only path skips token strings and offsets; it runs the post-processor (BOS) when asked.
        encodeIdsFast(text, addSpecialTokens: addSpecialTokens).map { Int($0) }
    }

    public func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        let e: Encoding = encode(text, addSpecialTokens: addSpecialTokens)
        // utf8Start[i] = UTF-8 offset of scalar i; one extra entry for the end.
        var utf8Start = [Int]()
        utf8Start.reserveCapacity(text.unicodeScalars.count + 1)
        var pos = 0
        for s in text.unicodeScalars { utf8Start.append(pos); pos += UTF8.width(s) }
        utf8Start.append(pos)
        let offsets = e.offsets.enumerated().map { k, o -> Range<Int> in
            if e.specialTokensMask.indices.contains(k) && e.specialTokensMask[k] { return 0..<0 }
            let a = utf8Start[min(max(o.0, 0), utf8Start.count - 1)], b = utf8Start[min(max(o.1, 0), utf8Start.count - 1)]
            return a..<max(a, b)
        }
        return (e.ids, offsets)
    }

    public func tokenID(_ token: String) -> Int? { tokenToId(token) }
    public func tokenString(_ id: Int) -> String? { idToToken(id) }
}
