import Foundation

/// Decoded pixels, 8-bit RGB, row-major (what the image decoders produce).
public struct PixelImage: Sendable, Equatable {
    public var width: Int, height: Int
    public var rgb: [UInt8]
    public init(width: Int, height: Int, rgb: [UInt8]) { self.width = width; self.height = height; self.rgb = rgb }
    public func pixel(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * 3
        return RGB(rgb[i], rgb[i + 1], rgb[i + 2])
    }
}

/// An image drawn with upper-half blocks: each cell shows two pixels, the top as foreground of
/// `▀` and the bottom as background. Without colour or UTF-8 it falls back to an ASCII shade ramp.
public struct Thumbnail {
    public var image: PixelImage
    public var caption: String?
    public init(_ image: PixelImage, caption: String? = nil) { self.image = image; self.caption = caption }

    /// The cell size that fits `maxCols x maxRows` keeping the aspect ratio (a cell is two pixels tall).
    public static func fit(width: Int, height: Int, maxCols: Int, maxRows: Int) -> (cols: Int, rows: Int) {
        guard width > 0, height > 0, maxCols > 0, maxRows > 0 else { return (0, 0) }
        let scale = min(Double(maxCols) / Double(width), Double(maxRows * 2) / Double(height))
        let cols = max(1, min(maxCols, Int((Double(width) * scale).rounded())))
        let rows = max(1, min(maxRows, Int((Double(height) * scale / 2).rounded())))
        return (cols, rows)
    }

    /// Box-filtered samples: the average colour of the source pixels under each target pixel.
    public static func downsample(_ img: PixelImage, to w: Int, _ h: Int) -> [RGB] {
        var out: [RGB] = []
        out.reserveCapacity(w * h)
        img.rgb.withUnsafeBufferPointer { p in
            for ty in 0..<h {
                let y0 = ty * img.height / h, y1 = max(y0 + 1, (ty + 1) * img.height / h)
                for tx in 0..<w {
                    let x0 = tx * img.width / w, x1 = max(x0 + 1, (tx + 1) * img.width / w)
                    var r = 0, g = 0, b = 0
                    for yy in y0..<y1 { for xx in x0..<x1 { let i = (yy * img.width + xx) * 3; r += Int(p[i]); g += Int(p[i + 1]); b += Int(p[i + 2]) } }
                    let n = (y1 - y0) * (x1 - x0)
                    out.append(RGB(UInt8(r / n), UInt8(g / n), UInt8(b / n)))
                }
            }
        }
        return out
    }

    static let shades = Array(" .:-=+*#%@")

    /// Draws at the top-left of `rect`; returns the rectangle used (caption included).
    @discardableResult
    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext) -> Rect {
        let captionRows = caption == nil ? 0 : 1
        let (cols, rows) = Self.fit(width: image.width, height: image.height, maxCols: rect.width, maxRows: rect.height - captionRows)
        guard cols > 0, rows > 0 else { return Rect(x: rect.x, y: rect.y, width: 0, height: 0) }
        let px = Self.downsample(image, to: cols, rows * 2)
        let halfBlocks = ctx.glyphs.unicode && ctx.hasColor
        for r in 0..<rows {
            for c in 0..<cols {
                let top = px[(2 * r) * cols + c], bottom = px[(2 * r + 1) * cols + c]
                if halfBlocks {
                    buf[rect.x + c, rect.y + r] = Cell(ctx.glyphs.upperHalf, Style(fg: .rgb(top), bg: .rgb(bottom)))
                } else {
                    let l = (top.luminance + bottom.luminance) / 2
                    let ch = Self.shades[min(Self.shades.count - 1, Int(l * Double(Self.shades.count)))]
                    buf[rect.x + c, rect.y + r] = Cell(String(ch), ctx.hasColor ? Style(fg: .rgb(top), bg: ctx.theme.background) : .plain)
                }
            }
        }
        if let caption {
            buf.put(DisplayWidth.truncate(caption, to: rect.width, ellipsis: ctx.glyphs.ellipsis), x: rect.x, y: rect.y + rows, style: ctx.theme.mutedText, clip: rect)
        }
        return Rect(x: rect.x, y: rect.y, width: cols, height: rows + captionRows)
    }
}
