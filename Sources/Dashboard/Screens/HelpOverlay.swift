import Foundation

/// `?`: every binding of the current screen and the global ones, from the same tables that
/// dispatch keys.
public enum HelpOverlay {
    public static func render(global: [KeyBinding], screen: ScreenID, bindings: [KeyBinding], into buf: inout ScreenBuffer, _ area: Rect, ctx: RenderContext) {
        var lines: [(String, Style)] = [("\(screen.title) screen", ctx.theme.accentText)]
        let keyW = max(12, (bindings + global).map { DisplayWidth.of($0.keyNames(ascii: !ctx.glyphs.unicode)) }.max() ?? 12)
        for b in bindings { lines.append(("  " + DisplayWidth.pad(b.keyNames(ascii: !ctx.glyphs.unicode), to: keyW) + "  " + b.description, ctx.theme.base)) }
        lines.append(("", ctx.theme.base))
        lines.append(("Everywhere", ctx.theme.accentText))
        for b in global { lines.append(("  " + DisplayWidth.pad(b.keyNames(ascii: !ctx.glyphs.unicode), to: keyW) + "  " + b.description, ctx.theme.base)) }
        lines.append(("", ctx.theme.base))
        lines.append(("Vim keys (h j k l) and arrows both work. Press ? or Esc to close.", ctx.theme.mutedText))
        let w = min(area.width - 4, max(50, (lines.map { DisplayWidth.of($0.0) }.max() ?? 40) + 4))
        let h = min(area.height - 2, lines.count + 2)
        let r = Rect(x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h)
        let inner = Frame.draw(&buf, r, title: "Help", focused: true, ctx: ctx)
        for (i, (l, st)) in lines.prefix(inner.height).enumerated() {
            buf.put(l, x: inner.x + 1, y: inner.y + i, style: st, clip: inner)
        }
    }
}
