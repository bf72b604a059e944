import CPNG
import Foundation

/// An RGB raster the plot draws into.
public struct Raster {
    public let width: Int, height: Int
    public var rgb: [UInt8]
    public init(width: Int, height: Int, background: RGB) {
        self.width = width; self.height = height
        rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { rgb[3 * i] = background.r; rgb[3 * i + 1] = background.g; rgb[3 * i + 2] = background.b }
    }
    public func pixel(_ x: Int, _ y: Int) -> RGB { let i = (y * width + x) * 3; return RGB(rgb[i], rgb[i + 1], rgb[i + 2]) }
    public mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        rgb[i] = c.r; rgb[i + 1] = c.g; rgb[i + 2] = c.b
    }
    public mutating func fillRect(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: RGB) {
        for yy in max(0, y)..<min(height, y + h) { for xx in max(0, x)..<min(width, x + w) { set(xx, yy, c) } }
    }
    /// A line `thickness` pixels wide (Bresenham with a square brush).
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        let r = thickness / 2
        while true {
            fillRect(x - r, y - r, thickness, thickness, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
    public mutating func text(_ s: String, x: Int, y: Int, _ c: RGB, scale: Int = 2) {
        var cx = x
        for ch in s {
            let g = BitmapFont.glyph(ch)
            for (row, bits) in g.enumerated() {
                for col in 0..<BitmapFont.width where bits & (0x10 >> UInt8(col)) != 0 {
                    fillRect(cx + col * scale, y + row * scale, scale, scale, c)
                }
            }
            cx += (BitmapFont.width + 1) * scale
        }
    }

    /// Writes the raster as an 8-bit RGB PNG through libpng's simplified API (no setjmp needed).
    public func writePNG(to path: String) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        let ok = rgb.withUnsafeBufferPointer { p in
            png_image_write_to_file(&image, path, 0, p.baseAddress, Int32(width * 3), nil)
        }
        if ok == 0 {
            let msg = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            throw DashboardError("\(path): cannot write the PNG (\(msg))")
        }
    }
}

/// `sftdeck plot`: training curves as a PNG, one panel per metric (loss with its smoothed line,
/// learning rate, grad norm), several runs overlaid in the theme's run colours.
public struct CurvePlot {
    public var runs: [RunSummary]
    public var metrics: [String]
    public var smoothing: Double
    public var theme: Theme
    public init(runs: [RunSummary], metrics: [String] = ["loss", "learning_rate", "grad_norm"], smoothing: Double = 0.6, theme: Theme = Theme.builtIn("light")!) {
        self.runs = runs; self.metrics = metrics; self.smoothing = smoothing; self.theme = theme
    }

    static func rgb(_ c: Color, _ fallback: RGB) -> RGB { if case .rgb(let v) = c { return v }; return fallback }

    public func render(width: Int = 1200, height: Int = 900) -> Raster {
        let bg = Self.rgb(theme.background, RGB(255, 255, 255)), fg = Self.rgb(theme.foreground, RGB(0, 0, 0))
        let axis = Self.rgb(theme.chartAxis, RGB(128, 128, 128))
        var img = Raster(width: width, height: height, background: bg)
        let shown = metrics.filter { m in runs.contains { !($0.scalars[m] ?? []).isEmpty } }
        guard !shown.isEmpty else {
            img.text("no scalars to plot", x: 40, y: height / 2, fg, scale: 3)
            return img
        }
        let panelH = height / shown.count
        for (pi, metric) in shown.enumerated() {
            let top = pi * panelH
            let left = 110, right = width - 30, plotTop = top + 44, plotBottom = top + panelH - 50
            guard plotBottom - plotTop > 20, right - left > 20 else { continue }
            img.text(metric, x: left, y: top + 12, fg, scale: 3)
            // Legend on the title row: run names in their colours.
            var lx = left + BitmapFont.measure(metric, scale: 3) + 30
            for (ri, run) in runs.enumerated() where !(run.scalars[metric] ?? []).isEmpty {
                let c = Self.rgb(theme.runColor(ri), fg)
                img.fillRect(lx, top + 18, 16, 6, c)
                img.text(run.name, x: lx + 22, y: top + 14, fg, scale: 2)
                lx += 22 + BitmapFont.measure(run.name, scale: 2) + 24
            }
            let series = runs.map { $0.scalars[metric] ?? [] }
            let all = series.flatMap { $0 }.filter { $0.value.isFinite }
            guard let f = all.first else { continue }
            var x0 = f.step, x1 = f.step, y0 = f.value, y1 = f.value
            for p in all { x0 = min(x0, p.step); x1 = max(x1, p.step); y0 = min(y0, p.value); y1 = max(y1, p.value) }
            if x1 == x0 { x1 = x0 + 1 }
            if y1 == y0 { let d = y0 == 0 ? 1 : abs(y0) * 0.1; y0 -= d; y1 += d } else { let m = (y1 - y0) * 0.05; y0 -= m; y1 += m }
            func px(_ x: Double) -> Int { left + Int(((x - x0) / (x1 - x0) * Double(right - left)).rounded()) }
            func py(_ y: Double) -> Int { plotBottom - Int(((y - y0) / (y1 - y0) * Double(plotBottom - plotTop)).rounded()) }
            // Axes, ticks, labels.
            img.line(left, plotTop, left, plotBottom, axis, thickness: 2)
            img.line(left, plotBottom, right, plotBottom, axis, thickness: 2)
            for t in LineChart.ticks(y0, y1, count: 5) {
                let y = py(t)
                img.line(left - 6, y, left, y, axis, thickness: 2)
                let label = LineChart.format(t)
                img.text(label, x: left - 10 - BitmapFont.measure(label, scale: 2), y: y - 7, fg)
            }
            for t in LineChart.ticks(x0, x1, count: 8) {
                let x = px(t)
                img.line(x, plotBottom, x, plotBottom + 6, axis, thickness: 2)
                let label = LineChart.format(t)
                img.text(label, x: x - BitmapFont.measure(label, scale: 2) / 2, y: plotBottom + 12, fg)
            }
            img.text("step", x: right - BitmapFont.measure("step", scale: 2), y: plotBottom + 30, axis)
            // Curves: for loss, the raw line pale and the TensorBoard-smoothed line on top.
            for (ri, pts) in series.enumerated() where !pts.isEmpty {
                let c = Self.rgb(theme.runColor(ri), fg)
                let smoothed = metric == "loss" && smoothing > 0
                if smoothed {
                    let pale = RGB(UInt8((Int(c.r) + Int(bg.r) * 2) / 3), UInt8((Int(c.g) + Int(bg.g) * 2) / 3), UInt8((Int(c.b) + Int(bg.b) * 2) / 3))
                    drawPolyline(&img, pts.map { ($0.step, $0.value) }, px, py, pale, 2)
                    let sm = TensorBoardSmoothing.smooth(pts.map(\.value), weight: smoothing)
                    drawPolyline(&img, zip(pts, sm).map { ($0.step, $1) }, px, py, c, 3)
                } else {
                    drawPolyline(&img, pts.map { ($0.step, $0.value) }, px, py, c, 3)
                }
            }
        }
        return img
    }

    func drawPolyline(_ img: inout Raster, _ pts: [(Double, Double)], _ px: (Double) -> Int, _ py: (Double) -> Int, _ c: RGB, _ t: Int) {
        var prev: (Int, Int)? = nil
        for (x, y) in pts where x.isFinite && y.isFinite {
            let p = (px(x), py(y))
            if let q = prev { img.line(q.0, q.1, p.0, p.1, c, thickness: t) } else { img.fillRect(p.0 - 1, p.1 - 1, 3, 3, c) }
            prev = p
        }
    }
}
