import Foundation

/// One token as the inspector shows it: its decoded text, id and why its label is what it is.
public struct TokenCell: Sendable, Equatable {
    public var text: String
    public var id: Int
    public var kind: TokenKind
    /// How many identical consecutive tokens this cell stands for (an image's 256 soft tokens are
    /// one cell "<image_soft_token>×256"; counts and the legend still count each).
    public var count: Int
    public init(text: String, id: Int, kind: TokenKind, count: Int = 1) { self.text = text; self.id = id; self.kind = kind; self.count = count }
}

/// Tokens laid out as running text, each coloured (and attributed) by its label reason, with a
/// legend that counts every kind and the trained/masked split.
public struct TokenView {
    public var tokens: [TokenCell]
    public var cursor: Int?
    public var highlight: Set<Int>
    public init(tokens: [TokenCell], cursor: Int? = nil, highlight: Set<Int> = []) {
        self.tokens = tokens; self.cursor = cursor; self.highlight = highlight
    }

    public struct Counts: Equatable, Sendable {
        public var byKind: [TokenKind: Int]
        public var trained: Int { byKind[.trained] ?? 0 }
        public var masked: Int { byKind.filter { $0.key != .trained }.values.reduce(0, +) }
    }
    public var counts: Counts {
        var c: [TokenKind: Int] = [:]
        for t in tokens { c[t.kind, default: 0] += t.count }
        return Counts(byKind: c)
    }

    /// Where each token lands: (line, column) per token, wrapping at `width` and after newlines.
    public static func layout(_ tokens: [TokenCell], width: Int, glyphs: Glyphs) -> (pos: [(line: Int, col: Int)], pieces: [String], lines: Int) {
        var pos: [(Int, Int)] = [], pieces: [String] = []
        var line = 0, col = 0
        for t in tokens {
            let hasNewline = t.text.contains("\n")
            var shown = (t.count > 1 ? t.text + (glyphs.unicode ? "×" : "x") + "\(t.count)" : t.text).replacingOccurrences(of: "\n", with: glyphs.newlineMark).replacingOccurrences(of: "\t", with: " ")
            if shown.isEmpty { shown = glyphs.unicode ? "∅" : "0" }
            if !glyphs.unicode { shown = String(shown.unicodeScalars.map { $0.isASCII ? Character($0) : "?" }) }
            let w = DisplayWidth.of(shown)
            if col > 0 && col + w > width { line += 1; col = 0 }
            pos.append((line, col)); pieces.append(shown)
            col += w
            if hasNewline { line += 1; col = 0 }
        }
        return (pos, pieces, line + 1)
    }

    /// Legend text parts: (kind, "label count").
    public func legendItems() -> [(TokenKind, String)] {
        let c = counts
        return TokenKind.allCases.map { ($0, "\($0.label) \(c.byKind[$0] ?? 0)") }
    }

    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext) {
        guard rect.height >= 3, rect.width >= 10 else { return }
        let theme = ctx.theme
        // Legend (may take two lines on narrow panes), then the trained/masked split.
        var x = rect.x, y = rect.y
        for (kind, text) in legendItems() {
            let w = DisplayWidth.of(text) + 3
            if x + w > rect.maxX && x > rect.x { x = rect.x; y += 1 }
            x = buf.put(ctx.glyphs.swatch, x: x, y: y, style: theme.tokenStyle(kind).with(attrs: []), clip: rect)
            x = buf.put(" " + text + "  ", x: x, y: y, style: theme.tokenStyle(kind), clip: rect)
        }
        let c = counts
        let n = tokens.reduce(0) { $0 + $1.count }
        let total = max(1, n)
        y += 1
        buf.put(String(format: "%d tokens: trained %d (%.1f%%), masked %d", n, c.trained, 100 * Double(c.trained) / Double(total), c.masked),
                x: rect.x, y: y, style: theme.mutedText, clip: rect)
        let body = Rect(x: rect.x, y: y + 1, width: rect.width, height: rect.maxY - y - 1)
        guard body.height > 0 else { return }
        let (pos, pieces, _) = Self.layout(tokens, width: body.width, glyphs: ctx.glyphs)
        // Keep the cursor's line visible.
        let cursorLine = cursor.flatMap { $0 < pos.count ? pos[$0].line : nil } ?? 0
        let top = max(0, cursorLine - body.height / 2)
        for (i, t) in tokens.enumerated() {
            let (l, col) = pos[i]
            guard l >= top, l < top + body.height else { continue }
            var st = theme.tokenStyle(t.kind)
            if highlight.contains(i) { st = st.with(bg: theme.warning, attrs: .reverse) }
            if i == cursor { st = ctx.selection }
            buf.put(pieces[i], x: body.x + col, y: body.y + l - top, style: st, clip: body)
        }
    }
}
