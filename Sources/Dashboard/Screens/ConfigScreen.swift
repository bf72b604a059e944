import Foundation
import Training

public struct ConfigState: Sendable {
    public var document: ConfigDocument?
    public var selected = 0        // index into `rows` among fields only
    public var showUnset = true
    public var modified = false
    public init() {}

    /// The visible fields in group order.
    public var fields: [(group: String, field: EditableField)] {
        guard let d = document else { return [] }
        return d.groups.flatMap { g in g.fields.filter { showUnset || $0.isSet }.map { (g.name, $0) } }
    }
    public var current: EditableField? { let f = fields; return f.indices.contains(selected) ? f[selected].field : nil }
}

/// The run's YAML fields grouped as TRL's `SFTConfig` groups them, editable with validation.
public enum ConfigScreen {
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("j"), .down, .char("k"), .up], "select field"),
        KeyBinding([.enter], "edit value", status: true),
        KeyBinding([.char("a")], "set another key"),
        KeyBinding([.char("u")], "show / hide defaults"),
        KeyBinding([.char("w")], "save YAML", status: true),
        KeyBinding([.char("s")], "start training", status: true),
    ]

    public static func render(_ s: ConfigState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        let (left, right) = r.splitLeft(r.width * 3 / 5)
        let title = "Config" + (s.document?.path.map { "  " + $0 } ?? "") + (s.modified ? " *" : "")
        let inner = Frame.draw(&buf, left, title: title, focused: true, ctx: ctx)
        guard s.document != nil else {
            buf.put("No config: start with --config FILE or run `sftdeck demo`.", x: inner.x + 1, y: inner.y, style: ctx.theme.mutedText, clip: inner)
            return
        }
        // Rows with group headers; selection counts fields only.
        var rows: [(String, Style, Bool)] = []    // text, style, isSelectedField
        var lastGroup = ""
        let fields = s.fields
        let keyW = min(34, max(12, fields.map { DisplayWidth.of($0.field.key) }.max() ?? 12))
        var selectedRow = 0
        for (i, f) in fields.enumerated() {
            if f.group != lastGroup { rows.append((f.group, ctx.theme.accentText, false)); lastGroup = f.group }
            if i == s.selected { selectedRow = rows.count }
            let st = f.field.isSet ? ctx.theme.base : ctx.theme.mutedText
            rows.append(("  " + DisplayWidth.pad(f.field.key, to: keyW) + "  " + f.field.value, st, i == s.selected))
        }
        let top = ListView.scrollOffset(selected: selectedRow, count: rows.count, height: inner.height)
        for (i, row) in rows.enumerated().dropFirst(top).prefix(inner.height) {
            let st = row.2 ? ctx.selection : row.1
            buf.put(DisplayWidth.pad(row.0, to: inner.width), x: inner.x, y: inner.y + i - top, style: st, clip: inner)
        }
        let detail = Frame.draw(&buf, right, title: "Field", ctx: ctx)
        guard let f = s.current else { return }
        var lines: [(String, Style)] = [(f.key, ctx.theme.titleStyle), ("value  \(f.value)", ctx.theme.base),
                                        ("type   \(kindName(f.kind))", ctx.theme.mutedText),
                                        (f.isSet ? "set in the YAML" : "default (not in the YAML)", ctx.theme.mutedText), ("", ctx.theme.base)]
        for l in TextWrap.wrap(f.help, width: max(10, detail.width - 2)) { lines.append((l, ctx.theme.base)) }
        for (i, (l, st)) in lines.prefix(detail.height).enumerated() {
            buf.put(l, x: detail.x + 1, y: detail.y + i, style: st, clip: detail)
        }
    }

    static func kindName(_ k: EditableField.Kind) -> String {
        switch k {
        case .int: return "integer"; case .float: return "number"; case .bool: return "true / false"
        case .string: return "text"; case .list: return "list"
        case .choice(let c): return "one of " + c.joined(separator: ", ")
        }
    }
}

extension DashboardApp {
    func handleConfigKey(_ key: Key) {
        let count = config.fields.count
        switch key {
        case .char("j"), .down: config.selected = min(max(0, count - 1), config.selected + 1)
        case .char("k"), .up: config.selected = max(0, config.selected - 1)
        case .pageDown: config.selected = min(max(0, count - 1), config.selected + 10)
        case .pageUp: config.selected = max(0, config.selected - 10)
        case .char("u"): config.showUnset.toggle(); config.selected = 0
        case .enter:
            guard let f = config.current else { return }
            prompt = Prompt(label: "\(f.key)", text: f.value, purpose: .editField(f.key))
        case .char("a"):
            guard config.document != nil else { setStatus(.warning, "no config loaded"); return }
            prompt = Prompt(label: "key", purpose: .addKey)
        case .char("w"): saveConfig()
        case .char("s"):
            dialog = (ConfirmDialog(title: "Train", message: "Start training with this config?"), .startRun)
        default: break
        }
    }

    func beginAddValue(key: String) {
        guard let doc = config.document else { return }
        guard let f = doc[key] else {
            let hint = NearestKey.suggest(key, among: doc.allKeys).map { "; did you mean '\($0)'?" } ?? ""
            setStatus(.error, "unknown key '\(key)'\(hint)")
            return
        }
        if let i = config.fields.firstIndex(where: { $0.field.key == key }) { config.selected = i }
        prompt = Prompt(label: key, text: f.value, purpose: .addValue(key))
    }

    func commitConfigEdit(key: String, text: String, prompt p: Prompt) {
        guard let doc = config.document, let f = doc[key] else { return }
        if let problem = f.validate(text) ?? source.validateEdit(doc, key: key, value: text) {
            var again = p
            again.error = problem
            prompt = again          // keep the prompt open with the error beside it
            setStatus(.error, problem)
            return
        }
        config.document?.set(key, text.trimmingCharacters(in: .whitespaces))
        config.modified = true
        setStatus(.info, "\(key) = \(text)  (w saves)")
    }

    func saveConfig() {
        guard let doc = config.document else { setStatus(.warning, "no config loaded"); return }
        do {
            let path = try source.saveConfig(doc)
            config.document?.path = path
            config.modified = false
            setStatus(.info, "saved \(path)")
        } catch {
            setStatus(.error, "cannot save: \(error)")
        }
    }
}
