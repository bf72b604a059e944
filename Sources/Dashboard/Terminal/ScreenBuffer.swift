import Foundation

/// Text attributes a cell can carry (kept apart from colour so monochrome terminals still show them).
public struct CellAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let bold = CellAttributes(rawValue: 1)
    public static let dim = CellAttributes(rawValue: 2)
    public static let underline = CellAttributes(rawValue: 4)
    public static let reverse = CellAttributes(rawValue: 8)
    public static let italic = CellAttributes(rawValue: 16)
}

/// Foreground, background and attributes: what a theme slot resolves to.
public struct Style: Hashable, Sendable {
    public var fg: Color
    public var bg: Color
    public var attrs: CellAttributes
    public init(fg: Color = .default, bg: Color = .default, attrs: CellAttributes = []) {
        self.fg = fg; self.bg = bg; self.attrs = attrs
    }
    public static let plain = Style()
    public func with(fg: Color? = nil, bg: Color? = nil, attrs more: CellAttributes = []) -> Style {
        Style(fg: fg ?? self.fg, bg: bg ?? self.bg, attrs: attrs.union(more))
    }
}

/// One terminal cell. A double-width character occupies its cell and marks the next one as its
/// continuation (`text` empty), which the flush skips.
public struct Cell: Hashable, Sendable {
    public var text: String
    public var style: Style
    public init(_ text: String = " ", _ style: Style = .plain) { self.text = text; self.style = style }
    public var isContinuation: Bool { text.isEmpty }
}

/// A rectangle of cells: x, y of the top-left corner, width, height.
public struct Rect: Hashable, Sendable, CustomStringConvertible {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public var isEmpty: Bool { width <= 0 || height <= 0 }
    public var description: String { "(\(x),\(y) \(width)x\(height))" }
    public func inset(_ d: Int) -> Rect { Rect(x: x + d, y: y + d, width: width - 2 * d, height: height - 2 * d) }
    public func inset(dx: Int, dy: Int) -> Rect { Rect(x: x + dx, y: y + dy, width: width - 2 * dx, height: height - 2 * dy) }
    /// Splits off the top `n` rows: (top, rest).
    public func splitTop(_ n: Int) -> (Rect, Rect) {
        let n = min(max(0, n), height)
        return (Rect(x: x, y: y, width: width, height: n), Rect(x: x, y: y + n, width: width, height: height - n))
    }
    public func splitBottom(_ n: Int) -> (Rect, Rect) {
        let n = min(max(0, n), height)
        return (Rect(x: x, y: y, width: width, height: height - n), Rect(x: x, y: maxY - n, width: width, height: n))
    }
    public func splitLeft(_ n: Int) -> (Rect, Rect) {
        let n = min(max(0, n), width)
        return (Rect(x: x, y: y, width: n, height: height), Rect(x: x + n, y: y, width: width - n, height: height))
    }
    /// Splits into `count` rows of (nearly) equal height.
    public func rows(_ count: Int) -> [Rect] {
        guard count > 0 else { return [] }
        return (0..<count).map { i in
            let top = y + height * i / count, bottom = y + height * (i + 1) / count
            return Rect(x: x, y: top, width: width, height: bottom - top)
        }
    }
    public func columns(_ count: Int) -> [Rect] {
        guard count > 0 else { return [] }
        return (0..<count).map { i in
            let l = x + width * i / count, r = x + width * (i + 1) / count
            return Rect(x: l, y: y, width: r - l, height: height)
        }
    }
    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
}

/// The off-screen frame every widget draws into. The terminal backend diffs it against the last
/// frame it flushed; tests read it back as text and styles.
public struct ScreenBuffer: Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Style = .plain) {
        self.width = max(0, width); self.height = max(0, height)
        cells = Array(repeating: Cell(" ", fill), count: self.width * self.height)
    }
    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    /// Reads outside the frame give a blank cell and writes there are dropped: a layout slip
    /// clips instead of taking the terminal down.
    public subscript(x: Int, y: Int) -> Cell {
        get { x >= 0 && y >= 0 && x < width && y < height ? cells[y * width + x] : Cell() }
        set { if x >= 0 && y >= 0 && x < width && y < height { cells[y * width + x] = newValue } }
    }

    public mutating func clear(_ style: Style = .plain) {
        for i in cells.indices { cells[i] = Cell(" ", style) }
    }

    public mutating func fill(_ rect: Rect, _ style: Style, char: String = " ") {
        let r = clipped(rect)
        guard !r.isEmpty else { return }
        for yy in r.y..<r.maxY { for xx in r.x..<r.maxX { self[xx, yy] = Cell(char, style) } }
    }

    public func clipped(_ r: Rect) -> Rect {
        let x0 = max(0, r.x), y0 = max(0, r.y), x1 = min(width, r.maxX), y1 = min(height, r.maxY)
        return Rect(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }

    /// Writes `text` from (x, y) on one line, clipped to `clip` (default: the row to the buffer's
    /// edge). Returns the column after the last character written. Control characters become
    /// spaces so a stray tab or newline never shifts the screen.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: Style = .plain, clip: Rect? = nil) -> Int {
        let c = clipped(clip ?? bounds)
        guard y >= c.y, y < c.maxY else { return x }
        var col = x
        for ch in text {
            let s = ch.isNewline || ch == "\t" || (ch.asciiValue.map { $0 < 32 } ?? false) ? " " : String(ch)
            let w = DisplayWidth.of(ch)
            if w == 0 {
                // A combining mark joins the previous cell's character.
                if col - 1 >= c.x, col - 1 < c.maxX { self[col - 1, y].text += s }
                continue
            }
            if col + w > c.maxX { break }
            if col >= c.x {
                self[col, y] = Cell(s, style)
                if w == 2 { self[col + 1, y] = Cell("", style) }
            }
            col += w
        }
        return col
    }

    /// Styles a cell without changing its character (highlights, selection bars).
    public mutating func restyle(_ rect: Rect, _ transform: (Style) -> Style) {
        let r = clipped(rect)
        guard !r.isEmpty else { return }
        for yy in r.y..<r.maxY { for xx in r.x..<r.maxX { self[xx, yy].style = transform(self[xx, yy].style) } }
    }

    /// The characters of row `y` (continuation cells dropped), for tests and headless snapshots.
    public func line(_ y: Int) -> String {
        (0..<width).map { self[$0, y].text }.joined()
    }
    /// The whole frame as text, one line per row, trailing spaces kept.
    public var text: String { (0..<height).map(line).joined(separator: "\n") }

    /// Finds `needle` in the frame: (x, y) of its first character, counted in cells.
    public func find(_ needle: String) -> (x: Int, y: Int)? {
        for y in 0..<height {
            var cols: [Int] = []   // cell index of each character of the line
            var chars: [Character] = []
            for x in 0..<width where !self[x, y].isContinuation {
                for ch in self[x, y].text { chars.append(ch); cols.append(x) }
            }
            let hay = String(chars)
            if let r = hay.range(of: needle) {
                return (cols[hay.distance(from: hay.startIndex, to: r.lowerBound)], y)
            }
        }
        return nil
    }
}

/// Terminal column widths without the C library (whose `wcwidth` depends on the process locale):
/// East Asian wide and emoji ranges take two columns, combining marks none.
public enum DisplayWidth {
    public static func of(_ ch: Character) -> Int {
        guard let first = ch.unicodeScalars.first else { return 0 }
        return of(first)
    }
    public static func of(_ s: Unicode.Scalar) -> Int {
        let v = s.value
        if v < 0x300 { return 1 }
        if (0x300...0x36F).contains(v) || (0x200B...0x200F).contains(v) || (0xFE00...0xFE0F).contains(v) { return 0 }
        if (0x1100...0x115F).contains(v) || (0x2E80...0x303E).contains(v) || (0x3041...0x33FF).contains(v)
            || (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0xA000...0xA4CF).contains(v)
            || (0xAC00...0xD7A3).contains(v) || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v)
            || (0xFF00...0xFF60).contains(v) || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v)
            || (0x1F900...0x1F9FF).contains(v) || (0x20000...0x3FFFD).contains(v) {
            return 2
        }
        return 1
    }
    public static func of(_ s: String) -> Int { s.reduce(0) { $0 + of($1) } }

    /// `s` cut to at most `width` columns, with "…" (or "~" in ASCII) when it was cut.
    public static func truncate(_ s: String, to width: Int, ellipsis: String = "…") -> String {
        guard width > 0 else { return "" }
        if of(s) <= width { return s }
        var out = "", w = 0
        let ew = of(ellipsis)
        for ch in s {
            let cw = of(ch)
            if w + cw > width - ew { break }
            out.append(ch); w += cw
        }
        return out + ellipsis
    }
    public static func pad(_ s: String, to width: Int) -> String {
        let t = truncate(s, to: width)
        return t + String(repeating: " ", count: max(0, width - of(t)))
    }
    public static func padLeft(_ s: String, to width: Int) -> String {
        let t = truncate(s, to: width)
        return String(repeating: " ", count: max(0, width - of(t))) + t
    }
}
