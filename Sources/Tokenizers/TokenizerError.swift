import Foundation

/// A tokenizer or template problem, printed as one line naming the file (or template position) and the problem.
public struct TokenizerError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}

// Small accessors over JSONSerialization output: tokenizer.json has many optional, loosely typed fields.
typealias JSONObject = [String: Any]

extension Dictionary where Key == String, Value == Any {
    func string(_ k: String) -> String? { self[k] as? String }
    func bool(_ k: String, _ d: Bool) -> Bool { (self[k] as? Bool) ?? (self[k] as? NSNumber)?.boolValue ?? d }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue ?? (self[k] as? Int) }
    func object(_ k: String) -> JSONObject? { self[k] as? JSONObject }
    func array(_ k: String) -> [Any]? { self[k] as? [Any] }
}

/// JSONSerialization (swift-corelibs-foundation) drops a raw U+FEFF at the start of a string value, and vocabularies
/// contain such tokens: escape every raw BOM (only legal inside strings) before parsing.
func parseJSON(_ data: Data) throws -> Any {
    var bytes = [UInt8](data)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    var i = 0
    var fixed: [UInt8]? = nil
    while i + 2 < bytes.count {
        if bytes[i] == 0xEF && bytes[i + 1] == 0xBB && bytes[i + 2] == 0xBF {
            if fixed == nil { fixed = Array(bytes[0..<i]) }
            fixed!.append(contentsOf: Array("\\ufeff".utf8)); i += 3; continue
        }
        fixed?.append(bytes[i]); i += 1
    }
    if fixed != nil { fixed!.append(contentsOf: bytes[i...]); bytes = fixed! }
    return try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
}
