import Foundation

/// One turn of a conversation in TRL's conversational format: `{"role": ..., "content": ...}` where
/// content is either a plain string or a list of typed parts (`{"type": "text", "text": ...}`,
/// `{"type": "image"}`). Shared by the dataset readers (which build it) and the chat template (which
/// renders it), so both agree on one shape.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Content: Sendable, Equatable {
        case text(String)
        case parts([ContentPart])
    }
    public var role: String
    public var content: Content

    public init(role: String, content: Content) { self.role = role; self.content = content }
    public init(role: String, text: String) { self.init(role: role, content: .text(text)) }
    public init(role: String, parts: [ContentPart]) { self.init(role: role, content: .parts(parts)) }

    /// Number of `{"type": "image"}` parts.
    public var imageCount: Int {
        if case .parts(let p) = content { return p.filter { $0 == .image }.count }
        return 0
    }

    private enum CodingKeys: String, CodingKey { case role, content }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        if let s = try? c.decode(String.self, forKey: .content) {
            content = .text(s)
        } else {
            content = .parts(try c.decode([ContentPart].self, forKey: .content))
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        switch content {
        case .text(let s): try c.encode(s, forKey: .content)
        case .parts(let p): try c.encode(p, forKey: .content)
        }
    }
}

/// A typed content item. Unknown types are kept (the Gemma template ignores them; others may not).
public enum ContentPart: Sendable, Equatable, Codable {
    case text(String)
    case image
    case other(type: String)

    private enum CodingKeys: String, CodingKey { case type, text }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "text": self = .text(try c.decodeIfPresent(String.self, forKey: .text) ?? "")
        case "image": self = .image
        default: self = .other(type: type)
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let t): try c.encode("text", forKey: .type); try c.encode(t, forKey: .text)
        case .image: try c.encode("image", forKey: .type)
        case .other(let t): try c.encode(t, forKey: .type)
        }
    }
}
