import Foundation

/// One curve: (x, y) points in drawing order, a colour, and whether the legend shows its last value.
public struct ChartSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var color: Color
    public var showLatest: Bool
    public init(name: String, points: [(x: Double, y: Double)], color: Color, showLatest: Bool = true) {
        self.name = name; self.points = points; self.color = color; self.showLatest = showLatest
    }
}

/// A dot grid: braille gives 2x4 dots per cell (U+2800 + bit pattern), ASCII 1x3 (`'`, `-`, `_`).
/// Each series paints its own layer; where several share a cell the later series wins the cell, so
/// lines stay distinguishable (ratatui's rule: a colour change resets the pattern).
struct DotGrid {
    let cols: Int, rows: Int, braille: Bool
    var dotW: Int { braille ? 2 : 1 }
    var dotH: Int { braille ? 4 : 3 }
    var pixelWidth: Int { cols * dotW }
    var pixelHeight: Int { rows * dotH }
    var bits: [UInt8]
    var owner: [Int]       // series index that last painted the cell, -1 for none

    init(cols: Int, rows: Int, braille: Bool) {
        self.cols = cols; self.rows = rows; self.braille = braille
        bits = Array(repeating: 0, count: cols * rows); owner = Array(repeating: -1, count: cols * rows)
    }
    // Braille dot numbering: left column dots 1,2,3,7 and right column 4,5,6,8.
    static let brailleBit: [[UInt8]] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]]

    mutating func set(px: Int, py: Int, series: Int) {
        guard px >= 0, py >= 0, px < pixelWidth, py < pixelHeight else { return }
        let cx = px / dotW, cy = py / dotH, i = cy * cols + cx
        if owner[i] != series { bits[i] = 0; owner[i] = series }
        bits[i] |= braille ? Self.brailleBit[px % 2][py % 4] : UInt8(1 << (py % 3))
    }
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, series: Int) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            set(px: x, py: y, series: series)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
    func glyph(_ i: Int) -> String? {
        let b = bits[i]
        guard b != 0 else { return nil }
        if braille { return String(Character(Unicode.Scalar(0x2800 + UInt32(b))!)) }
        switch b { case 1: return "'"; case 2: return "-"; case 4: return "_"; default: return "|" }
    }
}

/// A line chart with a legend row (series names and latest values), a y axis with tick labels and
/// an x axis with step ticks.
public struct LineChart {
    public var title: String
    public var series: [ChartSeries]
    /// Fixed y range, else the data's range with a margin.
    public var yRange: ClosedRange<Double>?
    public var xLabel: String
    public init(title: String, series: [ChartSeries], yRange: ClosedRange<Double>? = nil, xLabel: String = "step") {
        self.title = title; self.series = series; self.yRange = yRange; self.xLabel = xLabel
    }

    public static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        if !v.isFinite { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
        let a = abs(v)
        if a >= 1e-3 && a < 1e5 { return String(format: "%.4g", v) }
        return String(format: "%.2g", v)
    }

    /// "Nice" tick values (1, 2, 5 × 10^k) covering `lo...hi`, about `count` of them.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        guard hi > lo, count > 0, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    func dataRange() -> (x: ClosedRange<Double>, y: ClosedRange<Double>)? {
        let pts = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        guard let f = pts.first else { return nil }
        var x0 = f.x, x1 = f.x, y0 = f.y, y1 = f.y
        for p in pts { x0 = min(x0, p.x); x1 = max(x1, p.x); y0 = min(y0, p.y); y1 = max(y1, p.y) }
        if x1 == x0 { x1 = x0 + 1 }
        if let yRange { y0 = yRange.lowerBound; y1 = yRange.upperBound }
        else if y1 == y0 { let d = y0 == 0 ? 1 : abs(y0) * 0.1; y0 -= d; y1 += d }
        else { let m = (y1 - y0) * 0.05; y0 -= m; y1 += m }
        return (x0...x1, y0...y1)
    }

    /// At most the first, lowest, highest and last point of each pixel column, in x order: a long
    /// run draws the same picture from a few hundred points instead of thousands.
    public static func decimate(_ pts: [(x: Double, y: Double)], columns: Int, x xr: ClosedRange<Double>) -> [(x: Double, y: Double)] {
        guard columns > 0, pts.count > 4 * columns else { return pts }
        var out: [(x: Double, y: Double)] = []
        out.reserveCapacity(4 * columns)
        let span = xr.upperBound - xr.lowerBound
        var bucket = -1
        var first = 0, lo = 0, hi = 0, last = 0
        func flush() {
            guard bucket >= 0 else { return }
            for i in Set([first, lo, hi, last]).sorted() { out.append(pts[i]) }
        }
        for (i, p) in pts.enumerated() {
            let b = p.x.isFinite ? min(columns - 1, max(0, Int((p.x - xr.lowerBound) / span * Double(columns)))) : bucket
            if b != bucket { flush(); bucket = b; first = i; lo = i; hi = i; last = i; continue }
            if p.y.isFinite {
                if !pts[lo].y.isFinite || p.y < pts[lo].y { lo = i }
                if !pts[hi].y.isFinite || p.y > pts[hi].y { hi = i }
            }
            last = i
        }
        flush()
        return out
    }

    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext) {
        guard rect.height >= 1, rect.width >= 4 else { return }
        let theme = ctx.theme
        // Legend row: title, then each series with its latest value.
        var x = buf.put(title, x: rect.x, y: rect.y, style: theme.titleStyle, clip: rect)
        for s in series {
            let latest = s.points.last.map { " " + Self.format($0.y) } ?? ""
            x = buf.put("  " + (ctx.hasColor ? ctx.glyphs.swatch + " " : ""), x: x, y: rect.y, style: Style(fg: s.color, bg: theme.background), clip: rect)
            x = buf.put(s.name + (s.showLatest ? latest : ""), x: x, y: rect.y, style: Style(fg: s.color, bg: theme.background, attrs: .bold), clip: rect)
        }
        let body = Rect(x: rect.x, y: rect.y + 1, width: rect.width, height: rect.height - 1)
        guard body.height >= 3, let (xr, yr) = dataRange() else {
            if body.height >= 1 { buf.put("(no data yet)", x: body.x + 1, y: body.y + body.height / 2, style: theme.mutedText, clip: body) }
            return
        }
        let axisStyle = Style(fg: theme.chartAxis, bg: theme.background)
        let plotH = body.height - 2
        let yTicks = Self.ticks(yr.lowerBound, yr.upperBound, count: max(1, plotH / 3))
        let labelW = min(10, max(3, yTicks.map { Self.format($0).count }.max() ?? 3))
        let plot = Rect(x: body.x + labelW + 1, y: body.y, width: body.width - labelW - 1, height: plotH)
        guard plot.width >= 2, plot.height >= 1 else { return }
        // Axes.
        for yy in plot.y..<plot.maxY { buf.put(ctx.glyphs.vertical, x: plot.x - 1, y: yy, style: axisStyle) }
        buf.put(ctx.glyphs.axisCorner + String(repeating: ctx.glyphs.horizontal, count: plot.width), x: plot.x - 1, y: plot.maxY, style: axisStyle)
        func rowOf(_ v: Double) -> Int {
            let f = (yr.upperBound - v) / (yr.upperBound - yr.lowerBound)
            return plot.y + min(plot.height - 1, max(0, Int((f * Double(plot.height - 1)).rounded())))
        }
        for t in yTicks {
            buf.put(DisplayWidth.padLeft(Self.format(t), to: labelW), x: body.x, y: rowOf(t), style: axisStyle)
        }
        let xTicks = Self.ticks(xr.lowerBound, xr.upperBound, count: max(1, plot.width / 12))
        var lastEnd = plot.x - 1
        for t in xTicks {
            let col = plot.x + Int(((t - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * Double(plot.width - 1)).rounded())
            let label = Self.format(t)
            let start = min(col, plot.maxX - label.count)
            guard start > lastEnd else { continue }
            buf.put(ctx.glyphs.teeUp, x: col, y: plot.maxY, style: axisStyle)
            buf.put(label, x: start, y: plot.maxY + 1, style: axisStyle, clip: body)
            lastEnd = start + label.count
        }
        // Curves.
        var grid = DotGrid(cols: plot.width, rows: plot.height, braille: ctx.glyphs.unicode)
        let pw = Double(grid.pixelWidth - 1), ph = Double(grid.pixelHeight - 1)
        for (si, s) in series.enumerated() {
            var prev: (Int, Int)? = nil
            for p in Self.decimate(s.points, columns: grid.pixelWidth, x: xr) {
                guard p.x.isFinite, p.y.isFinite else { prev = nil; continue }
                let px = Int(((p.x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * pw).rounded())
                let yc = min(max(p.y, yr.lowerBound), yr.upperBound)
                let py = Int(((yr.upperBound - yc) / (yr.upperBound - yr.lowerBound) * ph).rounded())
                if let (qx, qy) = prev { grid.line(qx, qy, px, py, series: si) } else { grid.set(px: px, py: py, series: si) }
                prev = (px, py)
            }
        }
        for cy in 0..<grid.rows {
            for cx in 0..<grid.cols {
                let i = cy * grid.cols + cx
                if let g = grid.glyph(i) {
                    buf[plot.x + cx, plot.y + cy] = Cell(g, Style(fg: series[grid.owner[i]].color, bg: theme.background))
                }
            }
        }
    }
}
