import Foundation
import Training

/// Turns Training's `SFTConfig` field table into the Config screen's editable groups and back. The
/// field table is the single source of keys, groups, help and parsing; this only presents it.
public enum ConfigAdapter {
    public static func document(_ config: SFTConfig, path: String?) -> ConfigDocument {
        let defaults = SFTConfig()
        let groups = Training.ConfigGroup.allCases.map { g -> FieldGroup in
            let fields = SFTConfig.fields.filter { $0.group == g }.map { f -> EditableField in
                let v = f.get(config), d = f.get(defaults)
                return EditableField(key: f.key, value: v.description, kind: kind(f, default: d), help: f.help, isSet: v != d)
            }
            return FieldGroup(name: g.rawValue, fields: fields)
        }
        return ConfigDocument(path: path, groups: groups)
    }

    static func kind(_ f: Training.ConfigField, default d: ConfigValue) -> EditableField.Kind {
        if !f.choices.isEmpty { return .choice(f.choices) }
        switch d {
        case .int: return .int
        case .double: return .float
        case .bool: return .bool
        case .strings: return .list
        case .string, .null: return .string
        }
    }

    /// The text typed in the editor as a YAML value (the same reading the YAML loader applies).
    public static func value(_ text: String) -> ConfigValue {
        let t = text.trimmingCharacters(in: .whitespaces)
        if ["null", "~", "", "None"].contains(t) { return .null }
        if ["true", "True"].contains(t) { return .bool(true) }
        if ["false", "False"].contains(t) { return .bool(false) }
        if let i = Int(t) { return .int(i) }
        if let d = Double(t) { return .double(d) }
        if t.hasPrefix("[") && t.hasSuffix("]") {
            let inner = t.dropFirst().dropLast()
            return .strings(inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }.filter { !$0.isEmpty })
        }
        return .string(t)
    }

    /// Rebuilds the config from the document's set fields; throws the loader's own error text.
    public static func config(from doc: ConfigDocument) throws -> (SFTConfig, [String]) {
        var c = SFTConfig()
        for g in doc.groups {
            for f in g.fields where f.isSet {
                guard let field = SFTConfig.field(f.key) else { throw DashboardError("unknown config key '\(f.key)'") }
                try field.set(&c, value(f.value))
            }
        }
        let warnings = try c.validate()
        return (c, warnings)
    }

    /// Nil when setting `key` to `text` gives a valid config, else the reason.
    public static func validate(_ doc: ConfigDocument, key: String, text: String) -> String? {
        var d = doc
        d.set(key, text)
        do { _ = try config(from: d); return nil } catch { return "\(error)" }
    }
}
