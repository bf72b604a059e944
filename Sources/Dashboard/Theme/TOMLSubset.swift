import Foundation

/// The part of TOML that theme files use: `# comments`, `[table]` headers, and `key = value` with
/// strings, numbers, booleans and one-line arrays of those. Keys come out as "table.key".
public enum TOMLValue: Equatable, Sendable {
    case string(String), number(Double), bool(Bool), array([TOMLValue])
}

public struct TOMLError: Error, CustomStringConvertible, LocalizedError {
    public var file: String, line: Int, problem: String
    public var description: String { "\(file):\(line): \(problem)" }
    public var errorDescription: String? { description }
}

public enum TOMLSubset {
    public static func parse(_ text: String, file: String = "<theme>") throws -> [String: TOMLValue] {
        var out: [String: TOMLValue] = [:]
        var table = ""
        for (i, raw) in text.components(separatedBy: "\n").enumerated() {
            let n = i + 1
            let line = stripComment(raw).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            func fail(_ p: String) -> TOMLError { TOMLError(file: file, line: n, problem: p) }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else { throw fail("malformed table header \(line)") }
                table = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard isBareKey(table.replacingOccurrences(of: ".", with: "")) else { throw fail("bad table name '\(table)'") }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected key = value, got '\(line)'") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard isBareKey(key) else { throw fail("bad key '\(key)'") }
            let full = table.isEmpty ? key : "\(table).\(key)"
            guard out[full] == nil else { throw fail("duplicate key '\(full)'") }
            var rest = Substring(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
            let value = try parseValue(&rest, fail: fail)
            guard rest.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("unexpected text after value: '\(rest)'") }
            out[full] = value
        }
        return out
    }

    static func isBareKey(_ s: String) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// Drops a `#` comment that is not inside a string.
    static func stripComment(_ s: String) -> String {
        var inString = false, escaped = false
        for (i, ch) in s.enumerated() {
            if escaped { escaped = false; continue }
            if ch == "\\" && inString { escaped = true; continue }
            if ch == "\"" { inString.toggle() }
            if ch == "#" && !inString { return String(s.prefix(i)) }
        }
        return s
    }

    static func parseValue(_ s: inout Substring, fail: (String) -> TOMLError) throws -> TOMLValue {
        s = s.drop { $0 == " " }
        guard let first = s.first else { throw fail("missing value") }
        if first == "\"" {
            s = s.dropFirst()
            var str = ""
            while let ch = s.first {
                s = s.dropFirst()
                if ch == "\"" { return .string(str) }
                if ch == "\\" {
                    guard let e = s.first else { break }
                    s = s.dropFirst()
                    switch e { case "n": str.append("\n"); case "t": str.append("\t"); default: str.append(e) }
                } else { str.append(ch) }
            }
            throw fail("unterminated string")
        }
        if first == "[" {
            s = s.dropFirst()
            var items: [TOMLValue] = []
            while true {
                s = s.drop { $0 == " " }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                items.append(try parseValue(&s, fail: fail))
                s = s.drop { $0 == " " }
                if s.first == "," { s = s.dropFirst(); continue }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                throw fail("expected , or ] in array")
            }
        }
        let token = s.prefix { !",] ".contains($0) }
        s = s.dropFirst(token.count)
        if token == "true" { return .bool(true) }
        if token == "false" { return .bool(false) }
        if let d = Double(token.replacingOccurrences(of: "_", with: "")) { return .number(d) }
        throw fail("cannot read value '\(token)' (strings need double quotes)")
    }
}
