import Foundation

/// Builds small Gemma-3-style tokenizers from text (for offline demos and tests): SentencePiece-style BPE with
/// byte fallback, `Replace(" " → "▁")` normalizer, no dummy prefix, `<bos>` prepended by the post-processor,
/// decoder Replace/ByteFallback/Fuse — the same pipeline as google/gemma-3's tokenizer.json, with a vocabulary
/// trained here by plain BPE (most frequent pair first, ties broken by the pair's text).
///
/// Id layout: `<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3, `<mask>`=4, `<0x00>`…`<0xFF>`=5…260,
/// `<start_of_turn>`=261, `<end_of_turn>`=262, then single characters and merges, then `<start_of_image>`,
/// `<end_of_image>` (last model ids) and `<image_soft_token>` (an added token just past the model vocab, as 262144
/// is in Gemma 3).
public enum GemmaTokenizerBuilder {
    public struct Built: Sendable {
        /// tokenizer.json contents.
        public var tokenizerJSON: Data
        /// tokenizer_config.json contents (named special tokens, boi/eoi/image tokens, added_tokens_decoder).
        public var tokenizerConfigJSON: Data
        public var specialTokenIds: [String: Int]
        public var vocabularySize: Int
    }

    /// trl's `gemma3.jinja` (the template google/gemma-3 ships), byte for byte.
    public static let gemma3ChatTemplate = #"""
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '

' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '

' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '
' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>
' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model
'}}
{%- endif -%}
"""# + "\n"

    public static let specialTokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]

    /// Trains `mergeCount` merges (fewer if the corpus runs out of pairs) on `corpus` and returns the files.
    public static func build(corpus: [String], mergeCount: Int = 200, maxAlphabet: Int = 400) -> Built {
        // Words as SentencePiece sees them after Replace(" " → "▁"): "▁" starts a word.
        var wordFreq: [[UInt32]: Int] = [:]
        var charFreq: [UInt32: Int] = [:]
        for line in corpus {
            var word: [UInt32] = []
            for u in line.unicodeScalars {
                let v: UInt32 = u == " " ? 0x2581 : u.value
                if v == 0x2581 && !word.isEmpty { wordFreq[word, default: 0] += 1; word = [] }
                word.append(v)
                charFreq[v, default: 0] += 1
            }
            if !word.isEmpty { wordFreq[word, default: 0] += 1 }
        }
        let alphabet = charFreq.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(maxAlphabet).map { $0.key }
        let alphaSet = Set(alphabet)
        func str(_ s: [UInt32]) -> String { var v = String.UnicodeScalarView(); for c in s { v.append(Unicode.Scalar(c)!) }; return String(v) }

        var vocab: [String: Int] = [:]
        var order: [String] = []
        func add(_ t: String) { if vocab[t] == nil { vocab[t] = order.count; order.append(t) } }
        for s in specialTokens { add(s) }
        for b in 0..<256 { add(String(format: "<0x%02X>", b)) }
        add("<start_of_turn>"); add("<end_of_turn>")
        for c in alphabet { add(str([c])) }

        // Words as symbol lists (strings), characters outside the alphabet left out of training.
        var words: [([String], Int)] = wordFreq.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { w, f in
            (w.filter { alphaSet.contains($0) }.map { str([$0]) }, f)
        }
        var merges: [[String]] = []
        for _ in 0..<mergeCount {
            var pairs: [String: (Int, String, String)] = [:]
            for (syms, f) in words where syms.count > 1 {
                for k in 0..<(syms.count - 1) {
                    let key = syms[k] + "\u{0}" + syms[k + 1]
                    pairs[key, default: (0, syms[k], syms[k + 1])].0 += f
                }
            }
            guard let best = pairs.max(by: { $0.value.0 != $1.value.0 ? $0.value.0 < $1.value.0 : $0.key > $1.key }), best.value.0 >= 2 else { break }
            let (a, b) = (best.value.1, best.value.2)
            let merged = a + b
            if vocab[merged] != nil && merges.contains(where: { $0 == [a, b] }) { break }
            merges.append([a, b])
            add(merged)
            for w in 0..<words.count where words[w].0.count > 1 {
                var syms = words[w].0
                var k = 0
                var out: [String] = []
                while k < syms.count {
                    if k + 1 < syms.count && syms[k] == a && syms[k + 1] == b { out.append(merged); k += 2 } else { out.append(syms[k]); k += 1 }
                }
                syms = out
                words[w].0 = syms
            }
        }
        add("<start_of_image>"); add("<end_of_image>")
        let imageSoft = order.count

        func addedEntry(_ t: String, _ id: Int) -> [String: Any] {
            ["id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        var added: [[String: Any]] = specialTokens.map { addedEntry($0, vocab[$0]!) }
        added += ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"].map { addedEntry($0, vocab[$0]!) }
        added.append(addedEntry("<image_soft_token>", imageSoft))
        let bos: [String: Any] = ["SpecialToken": ["id": "<bos>", "type_id": 0]]
        let seqA: [String: Any] = ["Sequence": ["id": "A", "type_id": 0]]
        let tj: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": ["type": "Replace", "pattern": ["String": " "], "content": "▁"],
            "pre_tokenizer": ["type": "Split", "pattern": ["String": " "], "behavior": "MergedWithPrevious", "invert": false],
            "post_processor": ["type": "TemplateProcessing", "single": [bos, seqA],
                               "pair": [bos, seqA, ["SpecialToken": ["id": "<bos>", "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                               "special_tokens": ["<bos>": ["id": "<bos>", "ids": [2], "tokens": ["<bos>"]]]],
            "decoder": ["type": "Sequence", "decoders": [["type": "Replace", "pattern": ["String": "▁"], "content": " "],
                                                         ["type": "ByteFallback"], ["type": "Fuse"]]],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": "<unk>", "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                      "vocab": vocab, "merges": merges],
        ]
        var decoderMap: [String: Any] = [:]
        for e in added {
            var d = e; let id = d.removeValue(forKey: "id") as! Int
            decoderMap[String(id)] = d
        }
        let cfg: [String: Any] = [
            "tokenizer_class": "GemmaTokenizer", "add_bos_token": true, "add_eos_token": false,
            "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
            "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
            "extra_special_tokens": ["boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"],
            "model_max_length": 131072, "padding_side": "left", "spaces_between_special_tokens": false,
            "clean_up_tokenization_spaces": false, "added_tokens_decoder": decoderMap,
        ]
        var ids: [String: Int] = [:]
        for t in ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"] { ids[t] = vocab[t]! }
        ids["<image_soft_token>"] = imageSoft
        let opts: JSONSerialization.WritingOptions = [.sortedKeys]
        return Built(tokenizerJSON: try! JSONSerialization.data(withJSONObject: tj, options: opts),
                     tokenizerConfigJSON: try! JSONSerialization.data(withJSONObject: cfg, options: [.sortedKeys, .prettyPrinted]),
                     specialTokenIds: ids, vocabularySize: imageSoft + 1)
    }

    /// Writes tokenizer.json, tokenizer_config.json and chat_template.jinja (gemma3) into `folder` (created if needed).
    @discardableResult
    public static func writeFolder(_ folder: URL, corpus: [String], mergeCount: Int = 200) throws -> Built {
        let b = build(corpus: corpus, mergeCount: mergeCount)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try b.tokenizerJSON.write(to: folder.appendingPathComponent("tokenizer.json"))
            try b.tokenizerConfigJSON.write(to: folder.appendingPathComponent("tokenizer_config.json"))
            try Data(gemma3ChatTemplate.utf8).write(to: folder.appendingPathComponent("chat_template.jinja"))
        } catch { throw TokenizerError("\(folder.path): cannot write tokenizer files (\(error.localizedDescription))") }
        return b
    }
}
