import Foundation

/// The characters widgets draw with. A UTF-8 locale gets box drawing, braille charts and
/// half-block thumbnails; any other locale gets the ASCII set, so nothing comes out as garbage.
public struct Glyphs: Sendable, Equatable {
    public var unicode: Bool
    public var horizontal, vertical, topLeft, topRight, bottomLeft, bottomRight: String
    public var teeUp, axisCorner: String
    public var barFull, barEmpty: String
    public var ellipsis: String
    public var bullet, selectedMarker: String
    public var swatch: String
    public var newlineMark: String
    public var upperHalf: String

    public static let utf8 = Glyphs(unicode: true, horizontal: "─", vertical: "│", topLeft: "┌", topRight: "┐",
                                    bottomLeft: "└", bottomRight: "┘", teeUp: "┴", axisCorner: "└",
                                    barFull: "█", barEmpty: "░", ellipsis: "…", bullet: "•", selectedMarker: "▶",
                                    swatch: "■", newlineMark: "↵", upperHalf: "▀")
    public static let ascii = Glyphs(unicode: false, horizontal: "-", vertical: "|", topLeft: "+", topRight: "+",
                                     bottomLeft: "+", bottomRight: "+", teeUp: "+", axisCorner: "+",
                                     barFull: "#", barEmpty: ".", ellipsis: "~", bullet: "*", selectedMarker: ">",
                                     swatch: "#", newlineMark: "$", upperHalf: "#")

    /// Chooses from the codeset `nl_langinfo(CODESET)` reported after `setlocale(LC_ALL, "")`.
    public static func forCodeset(_ codeset: String) -> Glyphs {
        let c = codeset.uppercased().replacingOccurrences(of: "-", with: "")
        return c == "UTF8" ? .utf8 : .ascii
    }
}

/// What a widget needs to know about the terminal besides its rectangle.
public struct RenderContext: Sendable {
    public var theme: Theme
    public var glyphs: Glyphs
    public var colorMode: ColorMode
    public init(theme: Theme, glyphs: Glyphs = .utf8, colorMode: ColorMode = .palette256) {
        self.theme = theme; self.glyphs = glyphs; self.colorMode = colorMode
    }
    /// True when colours reach the screen; widgets that encode meaning in colour alone switch to
    /// attributes or characters otherwise.
    public var hasColor: Bool { colorMode != .monochrome }
    /// The selected row: theme colours, or reverse video where there is no colour.
    public var selection: Style { hasColor ? theme.selection : Style(attrs: [.reverse, .bold]) }
    public var status: Style { hasColor ? theme.status : Style(attrs: .reverse) }
}
