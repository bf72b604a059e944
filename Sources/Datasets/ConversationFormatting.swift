import Foundation
import Tokenizers

/// An image of a row, not yet decoded: the stored bytes (parquet) or a file (JSON, MMIU).
public enum ImageReference: Sendable, Equatable {
    case bytes(Data)
    case file(URL)

    public var summary: String {
        switch self {
        case .bytes(let d): return "<\(d.count) bytes>"
        case .file(let u): return u.path
        }
    }
}

/// One row, formatted as TRL formats it for the chat template.
public struct DatasetRow: Sendable {
    public var index: Int
    /// The conversation (for prompt/completion rows: the prompt).
    public var messages: [ChatMessage]
    /// TRL's conversational prompt/completion rows: the completion turns (nil for `messages` rows).
    public var completion: [ChatMessage]? = nil
    /// The images in the order their `{"type": "image"}` parts appear.
    public var images: [ImageReference]
    /// References that could not be resolved (missing files, empty entries): left out of `images`,
    /// and (for MMIU, like the guide's `format_data`) out of the user turn's image parts too.
    public var missingImages: [String]
    /// The stored record, for the dataset browser.
    public var raw: RowValue
}

/// A row that cannot be turned into a conversation: one line naming the dataset file and row.
public struct DatasetError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var source: String
    public var problem: String
    public init(source: String, _ problem: String) { self.source = source; self.problem = problem }
    public var description: String { "\(source): \(problem)" }
    public var errorDescription: String? { description }
}

/// How rows of each layout become conversations.
enum RowFormatter {
    /// `messages` as stored (TRL conversational / llava-instruct-mix-vsft), `images` beside them;
    /// relative image paths resolve against `baseDirectory`.
    case messages(baseDirectory: URL)
    /// MMIU records: system = context, user = images then question, assistant = output.
    case mmiu(imageRoots: [URL])

    func format(_ raw: RowValue, index: Int, source: String) throws -> DatasetRow {
        switch self {
        case .messages(let base): return try formatMessages(raw, index: index, base: base, source: source)
        case .mmiu(let roots): return try formatMMIU(raw, index: index, roots: roots, source: source)
        }
    }

    /// The image references a row names, resolved (nil entries are missing), without building messages.
    func imageReferences(_ raw: RowValue, source: String) -> [(String, ImageReference?)] {
        switch self {
        case .messages(let base):
            return (raw["images"]?.list ?? (raw["image"].map { [$0] } ?? [])).map { resolveStoredImage($0, base: base) }
        case .mmiu(let roots):
            return (raw["input_image_path"]?.list ?? []).map { p in
                let s = p.string ?? ""
                return (s, MMIU.resolveImagePath(s, roots: roots).map { .file($0) })
            }
        }
    }
}

private func formatMessages(_ raw: RowValue, index: Int, base: URL, source: String) throws -> DatasetRow {
    var completion: [ChatMessage]? = nil
    let list: [RowValue]
    if let m = raw["messages"]?.list {
        list = m
    } else if let prompt = raw["prompt"], let comp = raw["completion"] {
        guard let p = prompt.list, let c = comp.list else {
            throw DatasetError(source: source, "row \(index): prompt/completion must be lists of messages (conversational); plain-text prompts are not supported for vision models")
        }
        list = p
        completion = try convertMessages(c, index: index, source: source)
    } else {
        throw DatasetError(source: source, "row \(index) has no 'messages' list and no 'prompt'/'completion' (fields: \(raw.fields?.map(\.name).joined(separator: ", ") ?? "none"))")
    }
    let messages = try convertMessages(list, index: index, source: source)
    var images: [ImageReference] = []
    var missing: [String] = []
    for item in raw["images"]?.list ?? (raw["image"].map { [$0] } ?? []) {
        let (name, ref) = resolveStoredImage(item, base: base)
        if let ref { images.append(ref) } else { missing.append(name) }
    }
    return DatasetRow(index: index, messages: messages, completion: completion, images: images, missingImages: missing, raw: raw)
}

private func convertMessages(_ list: [RowValue], index: Int, source: String) throws -> [ChatMessage] {
    var messages: [ChatMessage] = []
    for (t, m) in list.enumerated() {
        guard let role = m["role"]?.string else { throw DatasetError(source: source, "row \(index) message \(t) has no role") }
        switch m["content"] ?? .null {
        case .string(let s): messages.append(ChatMessage(role: role, text: s))
        case .null: messages.append(ChatMessage(role: role, text: ""))
        case .list(let items):
            let parts: [ContentPart] = items.map { item in
                if let s = item.string { return .text(s) }
                switch item["type"]?.string ?? "text" {
                case "text": return .text(item["text"]?.string ?? "")
                case "image": return .image
                case let other: return .other(type: other)
                }
            }
            messages.append(ChatMessage(role: role, parts: parts))
        default:
            throw DatasetError(source: source, "row \(index) message \(t) has content of an unknown shape")
        }
    }
    return messages
}

/// An `images` entry: bytes, a `{bytes, path}` struct (the datasets Image feature), or a path string.
private func resolveStoredImage(_ item: RowValue, base: URL) -> (String, ImageReference?) {
    if let d = item.bytes { return d.isEmpty ? ("<empty bytes>", nil) : ("<bytes>", .bytes(d)) }
    if let d = item["bytes"]?.bytes, !d.isEmpty { return ("<bytes>", .bytes(d)) }
    let path = item.string ?? item["path"]?.string
    guard let path, !path.isEmpty else { return ("<no bytes and no path>", nil) }
    let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
    return FileManager.default.fileExists(atPath: url.path) ? (path, .file(url)) : (path, nil)
}

private func formatMMIU(_ raw: RowValue, index: Int, roots: [URL], source: String) throws -> DatasetRow {
    func text(_ name: String) throws -> String {
        guard let v = raw[name] else { throw DatasetError(source: source, "MMIU row \(index) has no '\(name)' field") }
        return v.string ?? (v.isNull ? "" : v.preview())
    }
    let context = try text("context"), question = try text("question"), output = try text("output")
    var images: [ImageReference] = []
    var missing: [String] = []
    for p in raw["input_image_path"]?.list ?? [] {
        let s = p.string ?? ""
        if let url = MMIU.resolveImagePath(s, roots: roots) { images.append(.file(url)) } else { missing.append(s) }
    }
    // The guide's format_data: [system: [text context], user: [image..., text question], assistant: [text output]].
    let messages = [
        ChatMessage(role: "system", parts: [.text(context)]),
        ChatMessage(role: "user", parts: Array(repeating: ContentPart.image, count: images.count) + [.text(question)]),
        ChatMessage(role: "assistant", parts: [.text(output)]),
    ]
    return DatasetRow(index: index, messages: messages, images: images, missingImages: missing, raw: raw)
}

extension ImageReference {
    /// The encoded image bytes (reads the file for `.file`).
    public func loadData() throws -> Data {
        switch self {
        case .bytes(let d): return d
        case .file(let url):
            do { return try Data(contentsOf: url) } catch {
                throw DatasetError(source: url.path, "image cannot be read: \(error.localizedDescription)")
            }
        }
    }
}

extension DatasetRow {
    /// The collator's input: the conversation and the encoded bytes of each image, in placeholder order.
    public func trainingSample() throws -> TrainingSample {
        TrainingSample(row: index, messages: messages, completion: completion, images: try images.map { try $0.loadData() })
    }
}
