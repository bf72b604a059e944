import ArgumentParser
import Datasets
import Foundation
import Models
import Tokenizers

/// `sftdeck generate --model DIR [--adapter DIR] [--image PATH ...] --prompt STR`: streams the answer.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate an answer from a Gemma 3 checkpoint (optionally with a LoRA adapter and images).",
        discussion: """
        The prompt is one user turn (images first, then the text) rendered with the checkpoint's chat \
        template with the generation prompt (without a template: Gemma 3's \
        <bos><start_of_turn>user\\n[images]TEXT<end_of_turn>\\n<start_of_turn>model\\n), each image expanded as the Gemma 3 processor does (\\n\\n<start_of_image> + mm_tokens_per_image \
        soft tokens + <end_of_image>\\n\\n). --raw sends the prompt text as is (with <bos>). \
        Generation uses a KV cache and stops at <end_of_turn> or an eos id from config.json. \
        Decoding is greedy unless --temperature > 0 (then top-k, top-p as transformers applies them).

        Examples:
          sftdeck generate --model ~/models/gemma-3-4b-it --image cat.jpg --prompt "What is this?"
          sftdeck generate --model base --adapter out/checkpoint-20 --prompt "Hi" --max-new-tokens 32 --json
        """)

    @Option(help: "Checkpoint folder (config.json, safetensors, tokenizer.json).", completion: .directory)
    var model: String
    @Option(help: "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).", completion: .directory)
    var adapter: String?
    @Option(name: .customLong("image"), help: "Image file (JPEG/PNG); repeat for several.", completion: .file())
    var images: [String] = []
    @Option(help: "The user message.")
    var prompt: String
    @Option(help: "Most new tokens.")
    var maxNewTokens = 256
    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature = 0.0
    @Option(help: "Nucleus sampling mass (with --temperature).")
    var topP = 1.0
    @Option(help: "Top-k (with --temperature); 0 = off.")
    var topK = 0
    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0
    @Flag(help: "Use the prompt text as is (no chat turn markup).")
    var raw = false
    @Flag(help: "Print one JSON object: {\"prompt_tokens\", \"new_token_ids\", \"text\", \"stop_reason\", \"seconds\", \"tokens_per_second\"}.")
    var json = false

    func run() throws {
        do { try generate() } catch let e as CLIError { throw e } catch { throw CLIError("\(error)") }
    }

    func generate() throws {
        let dir = URL(fileURLWithPath: (model as NSString).expandingTildeInPath)
        let m = try Gemma3Model.load(from: dir)
        if let a = adapter { try m.loadAdapter(from: URL(fileURLWithPath: (a as NSString).expandingTildeInPath)) }
        let tokURL = dir.appendingPathComponent("tokenizer.json")
        let tok = try Tokenizer.load(folder: dir)

        // images → pixel values (N, 3, S, S)
        var pixels: [Float] = []
        if !images.isEmpty {
            guard let mm = m.multimodal else { throw CLIError("\(dir.path): a text-only model (Gemma3ForCausalLM) takes no --image") }
            let proc = try Gemma3ImageProcessor(config: try Gemma3ImageProcessorConfig.load(modelDirectory: dir))
            for path in images {
                guard let data = FileManager.default.contents(atPath: (path as NSString).expandingTildeInPath) else {
                    throw CLIError("\(path): cannot read image")
                }
                let img: RGBImage
                do { img = try ImageDecoder.decodeRGB(data) } catch { throw CLIError("\(path): \(error)") }
                proc.process(img, into: &pixels)
            }
            let S = mm.visionConfig.imageSize
            guard pixels.count == images.count * 3 * S * S else {
                throw CLIError("\(dir.path): preprocessor_config.json size does not match vision_config.image_size \(S)")
            }
        }

        // prompt text → ids
        func tokenString(_ id: Int, _ what: String) throws -> String {
            guard let s = tok.idToToken(id) else { throw CLIError("\(tokURL.path): no token for \(what) id \(id)") }
            return s
        }
        var text: String
        if raw { text = "<bos>" + prompt } else if tok.chatTemplate != nil {
            // the checkpoint's own chat template: one user turn, images first
            let parts = [ContentPart](repeating: .image, count: images.count) + [.text(prompt)]
            text = try tok.renderChatTemplate(messages: [ChatMessage(role: "user", parts: parts).jinjaValue], addGenerationPrompt: true).text
        } else {
            // no template in the folder: Gemma 3's format
            text = "<bos><start_of_turn>user\n"
            if !images.isEmpty { text += String(repeating: "<start_of_image>", count: images.count) }
            text += prompt.trimmingCharacters(in: .whitespacesAndNewlines) + "<end_of_turn>\n<start_of_turn>model\n"
        }
        var tokenTypes: [Int32]? = nil
        if let mm = m.multimodal, !images.isEmpty {
            let boi = try tokenString(mm.boiTokenIndex, "boi"), eoi = try tokenString(mm.eoiTokenIndex, "eoi")
            let img = try tokenString(mm.imageTokenIndex, "image")
            let full = "\n\n" + boi + String(repeating: img, count: mm.mmTokensPerImage) + eoi + "\n\n"
            text = text.replacingOccurrences(of: boi, with: full)
        }
        let ids = tok.encode(text, addSpecialTokens: false).ids.map(Int32.init)
        if let mm = m.multimodal, !images.isEmpty { tokenTypes = ids.map { Int($0) == mm.imageTokenIndex ? 1 : 0 } }

        var stops = Set(m.eosTokenIDs)
        if let eot = tok.tokenToId("<end_of_turn>") { stops.insert(eot) }
        let sampling = SamplingOptions(temperature: temperature, topP: topP, topK: topK, seed: seed)
        var produced: [Int] = []
        var printed = ""
        let start = Date()
        let out = try m.generate(prompt: ids, tokenTypeIDs: tokenTypes, pixelValues: pixels.isEmpty ? nil : pixels,
                                 numImages: images.count, maxNewTokens: maxNewTokens, sampling: sampling, stopIDs: stops) { t in
            if stops.contains(Int(t)) { return true }
            produced.append(Int(t))
            if !json {
                // stream the decoded text's new suffix (a character may span several tokens)
                let s = tok.decode(produced)
                if s.hasPrefix(printed) {
                    FileHandle.standardOutput.write(Data(s.dropFirst(printed.count).utf8))
                    printed = s
                }
            }
            return true
        }
        let seconds = Date().timeIntervalSince(start)
        let stopReason = out.last.map { stops.contains(Int($0)) } == true ? "eos" : "max_new_tokens"
        let answer = tok.decode(produced)
        if json {
            let obj: [String: Any] = ["prompt_tokens": ids.count, "new_token_ids": out.map { Int($0) }, "text": answer,
                                      "stop_reason": stopReason, "seconds": seconds,
                                      "tokens_per_second": seconds > 0 ? Double(out.count) / seconds : 0]
            let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            if answer.count > printed.count, answer.hasPrefix(printed) { print(answer.dropFirst(printed.count), terminator: "") }
            print("")
        }
    }
}
