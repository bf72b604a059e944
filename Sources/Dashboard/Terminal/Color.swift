import Foundation

/// A 24-bit colour as themes and images give it; the terminal backend degrades it to what the
/// terminal can show (truecolor → 256-colour cube → 8 ANSI colours → none).
public struct RGB: Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    /// Parses `#rrggbb` or `#rgb`.
    public init?(hex: String) {
        var s = Substring(hex.trimmingCharacters(in: .whitespaces))
        guard s.first == "#" else { return nil }
        s = s.dropFirst()
        if s.count == 3 { s = Substring(s.map { "\($0)\($0)" }.joined()) }
        guard s.count == 6, let v = UInt32(s, radix: 16) else { return nil }
        self.init(UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff))
    }
    public var description: String { String(format: "#%02x%02x%02x", r, g, b) }

    /// Relative luminance in 0...1 (Rec. 709 weights on the gamma-encoded values; good enough to
    /// choose ASCII shades and black-or-white text).
    public var luminance: Double { (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255 }
}

/// A cell colour: the terminal's own default, or an explicit RGB value.
public enum Color: Hashable, Sendable {
    case `default`
    case rgb(RGB)
}

/// What the terminal can show, best first.
public enum ColorMode: String, Sendable, CaseIterable {
    case truecolor, palette256, basic8, monochrome

    /// Chooses from the number of colours the terminal reports and `NO_COLOR`
    /// (https://no-color.org: any non-empty value disables colour).
    public static func detect(colors: Int, environment: [String: String]) -> ColorMode {
        if let v = environment["NO_COLOR"], !v.isEmpty { return .monochrome }
        if colors >= 0x1000000 { return .truecolor }
        if colors >= 256 { return .palette256 }
        if colors >= 8 { return .basic8 }
        return .monochrome
    }
}

/// Maps RGB colours to terminal colour numbers for a given mode.
public enum ColorQuantizer {
    /// The levels of xterm's 6x6x6 cube (indices 16...231).
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    /// The xterm-256 index nearest to `c`, choosing between the colour cube and the grey ramp (232...255).
    public static func xterm256(_ c: RGB) -> Int {
        func nearestLevel(_ v: Int) -> Int {
            var best = 0
            for i in 1..<6 where abs(cubeLevels[i] - v) < abs(cubeLevels[best] - v) { best = i }
            return best
        }
        let (r, g, b) = (Int(c.r), Int(c.g), Int(c.b))
        let (ri, gi, bi) = (nearestLevel(r), nearestLevel(g), nearestLevel(b))
        let cube = (cubeLevels[ri], cubeLevels[gi], cubeLevels[bi])
        let cubeDist = sq(cube.0 - r) + sq(cube.1 - g) + sq(cube.2 - b)
        let grey = (r + g + b) / 3
        let gi2 = max(0, min(23, (grey - 8 + 5) / 10))
        let gv = 8 + 10 * gi2
        let greyDist = sq(gv - r) + sq(gv - g) + sq(gv - b)
        return greyDist < cubeDist ? 232 + gi2 : 16 + 36 * ri + 6 * gi + bi
    }

    /// The nearest of the 8 ANSI colours (COLOR_BLACK = 0 ... COLOR_WHITE = 7). Plain RGB distance
    /// sends orange to red and teal to black; hue keeps the colour's family, which is what matters
    /// when 8 colours must tell series and token kinds apart.
    public static func ansi8(_ c: RGB) -> Int {
        let r = Double(c.r) / 255, g = Double(c.g) / 255, b = Double(c.b) / 255
        let mx = max(r, g, b), mn = min(r, g, b)
        let chroma = mx - mn
        if chroma < 0.18 || mx < 0.12 { return c.luminance > 0.45 ? 7 : 0 }   // greys
        var hue: Double
        if mx == r { hue = ((g - b) / chroma).truncatingRemainder(dividingBy: 6) }
        else if mx == g { hue = (b - r) / chroma + 2 }
        else { hue = (r - g) / chroma + 4 }
        hue *= 60
        if hue < 0 { hue += 360 }
        // Sectors centred on the six hues: red 0, yellow 60, green 120, cyan 180, blue 240, magenta 300.
        let sector = Int(((hue + 30) / 60).rounded(.down)) % 6
        return [1, 3, 2, 6, 4, 5][sector]
    }

    /// The colour number ncurses wants for `c` in `mode` (-1: the terminal default).
    public static func terminalColor(_ c: Color, mode: ColorMode) -> Int {
        guard case .rgb(let v) = c else { return -1 }
        switch mode {
        case .truecolor: return Int(v.r) << 16 | Int(v.g) << 8 | Int(v.b)
        case .palette256: return xterm256(v)
        case .basic8: return ansi8(v)
        case .monochrome: return -1
        }
    }

    @inline(__always) static func sq(_ x: Int) -> Int { x * x }
}
