import Foundation

/// A bordered pane with a title; returns the inner rectangle.
public enum Frame {
    @discardableResult
    public static func draw(_ buf: inout ScreenBuffer, _ rect: Rect, title: String, focused: Bool = false,
                            ctx: RenderContext, right: String? = nil) -> Rect {
        guard rect.width >= 2, rect.height >= 2 else { return Rect(x: rect.x, y: rect.y, width: 0, height: 0) }
        let g = ctx.glyphs, st = ctx.theme.borderStyle(focused: focused)
        buf.fill(rect, ctx.theme.base)
        buf.put(g.topLeft + String(repeating: g.horizontal, count: rect.width - 2) + g.topRight, x: rect.x, y: rect.y, style: st)
        for yy in (rect.y + 1)..<(rect.maxY - 1) {
            buf.put(g.vertical, x: rect.x, y: yy, style: st)
            buf.put(g.vertical, x: rect.maxX - 1, y: yy, style: st)
        }
        buf.put(g.bottomLeft + String(repeating: g.horizontal, count: rect.width - 2) + g.bottomRight, x: rect.x, y: rect.maxY - 1, style: st)
        if !title.isEmpty, rect.width > 6 {
            let t = " " + DisplayWidth.truncate(title, to: rect.width - 6, ellipsis: g.ellipsis) + " "
            buf.put(t, x: rect.x + 2, y: rect.y, style: focused ? ctx.theme.titleStyle : ctx.theme.titleStyle.with(attrs: []))
        }
        if let right, rect.width > DisplayWidth.of(title) + DisplayWidth.of(right) + 10 {
            let t = " " + right + " "
            buf.put(t, x: rect.maxX - 2 - DisplayWidth.of(t), y: rect.y, style: ctx.theme.mutedText)
        }
        return rect.inset(1)
    }
}

/// A scrolling list with a selection bar; rows are pre-formatted strings (presentation stays pure).
public struct ListView {
    public var rows: [String]
    public var selected: Int
    public var styles: [Style?]
    public init(rows: [String], selected: Int, styles: [Style?] = []) { self.rows = rows; self.selected = selected; self.styles = styles }

    /// The first visible row so that `selected` stays on screen.
    public static func scrollOffset(selected: Int, count: Int, height: Int) -> Int {
        guard height > 0, count > height else { return 0 }
        return min(max(0, selected - height / 2), count - height)
    }

    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext, focused: Bool = true) {
        let top = Self.scrollOffset(selected: selected, count: rows.count, height: rect.height)
        for (i, row) in rows.enumerated().dropFirst(top).prefix(rect.height) {
            let y = rect.y + i - top
            let isSel = i == selected
            let st: Style = isSel ? (focused ? ctx.selection : ctx.theme.base.with(attrs: .bold)) : (i < styles.count ? styles[i] ?? ctx.theme.base : ctx.theme.base)
            let marker = isSel ? ctx.glyphs.selectedMarker + " " : "  "
            buf.put(DisplayWidth.pad(marker + row, to: rect.width), x: rect.x, y: y, style: st, clip: rect)
        }
    }
}

/// A centred yes/no question over the screen (stop a run, discard edits).
public struct ConfirmDialog: Sendable, Equatable {
    public var title: String
    public var message: String
    public var yesLabel: String
    public var noLabel: String
    public init(title: String, message: String, yesLabel: String = "y: yes", noLabel: String = "n/Esc: no") {
        self.title = title; self.message = message; self.yesLabel = yesLabel; self.noLabel = noLabel
    }

    public func draw(_ buf: inout ScreenBuffer, in area: Rect, ctx: RenderContext) {
        let lines = TextWrap.wrap(message, width: min(56, max(10, area.width - 8)))
        let w = min(area.width - 2, max(30, (lines.map { DisplayWidth.of($0) }.max() ?? 0) + 6))
        let h = min(area.height - 2, lines.count + 5)
        let r = Rect(x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h)
        let inner = Frame.draw(&buf, r, title: title, focused: true, ctx: ctx)
        for (i, l) in lines.enumerated() where i < inner.height - 2 {
            buf.put(l, x: inner.x + 2, y: inner.y + 1 + i, style: ctx.theme.base, clip: inner)
        }
        let keys = "[\(yesLabel)]  [\(noLabel)]"
        buf.put(keys, x: inner.x + max(0, (inner.width - DisplayWidth.of(keys)) / 2), y: inner.maxY - 1, style: ctx.theme.accentText, clip: inner)
    }
}

public enum TextWrap {
    /// Greedy word wrap to `width` columns; long words are cut.
    public static func wrap(_ text: String, width: Int) -> [String] {
        guard width > 0 else { return [] }
        var out: [String] = []
        for para in text.components(separatedBy: "\n") {
            var line = ""
            for word in para.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
                var word = word
                while DisplayWidth.of(word) > width {
                    if !line.isEmpty { out.append(line); line = "" }
                    let head = String(word.prefix(width)); out.append(head); word = String(word.dropFirst(width))
                }
                if line.isEmpty { line = word }
                else if DisplayWidth.of(line) + 1 + DisplayWidth.of(word) <= width { line += " " + word }
                else { out.append(line); line = word }
            }
            out.append(line)
        }
        return out
    }
}
