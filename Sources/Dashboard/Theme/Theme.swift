import Foundation
import Training

/// Why a token's label is what it is, as the token view colours it. The collator's own reasons map
/// onto these (see the adapters); `trained` is the only one whose label is not -100.
public enum TokenKind: String, CaseIterable, Sendable, Codable {
    case trained, prompt, system, pad, image, imageBoundary = "image_boundary", truncated
    public var label: String { self == .imageBoundary ? "image-boundary" : rawValue }
}

/// Semantic colour slots (like btop's `main_fg`/`hi_fg`, lazygit's `activeBorderColor`): widgets ask
/// for "border, focused" or "token: trained", never for a colour.
public struct Theme: Sendable, Equatable {
    public var name: String
    public var background: Color, foreground: Color, muted: Color, accent: Color
    public var border: Color, borderFocused: Color, title: Color
    public var selectionFg: Color, selectionBg: Color, statusFg: Color, statusBg: Color
    public var success: Color, warning: Color, error: Color
    public var chartAxis: Color, chartLoss: Color, chartLossSmoothed: Color, chartLearningRate: Color, chartGradNorm: Color
    /// Colours for overlaid runs on the Runs screen, in order.
    public var runColors: [Color]
    public var tokens: [TokenKind: Color]
    public var roleUser: Color, roleAssistant: Color, roleSystem: Color

    // Styles the widgets use.
    public var base: Style { Style(fg: foreground, bg: background) }
    public var mutedText: Style { Style(fg: muted, bg: background) }
    public var accentText: Style { Style(fg: accent, bg: background, attrs: .bold) }
    public func borderStyle(focused: Bool) -> Style {
        Style(fg: focused ? borderFocused : border, bg: background, attrs: focused ? .bold : [])
    }
    public var titleStyle: Style { Style(fg: title, bg: background, attrs: .bold) }
    public var selection: Style { Style(fg: selectionFg, bg: selectionBg, attrs: .bold) }
    public var status: Style { Style(fg: statusFg, bg: statusBg) }
    public var successText: Style { Style(fg: success, bg: background, attrs: .bold) }
    public var warningText: Style { Style(fg: warning, bg: background, attrs: .bold) }
    public var errorText: Style { Style(fg: error, bg: background, attrs: .bold) }

    /// A token's style. Attributes carry the meaning too, so monochrome terminals and colour-blind
    /// readers still tell trained (bold, underlined) from masked (dim) and images (reverse).
    public func tokenStyle(_ kind: TokenKind) -> Style {
        let fg = tokens[kind] ?? foreground
        switch kind {
        case .trained: return Style(fg: fg, bg: background, attrs: [.bold, .underline])
        case .prompt, .system: return Style(fg: fg, bg: background, attrs: [.dim])
        case .pad: return Style(fg: fg, bg: background, attrs: [.dim])
        case .image: return Style(fg: fg, bg: background, attrs: [.reverse])
        case .imageBoundary: return Style(fg: fg, bg: background, attrs: [.reverse, .bold])
        case .truncated: return Style(fg: fg, bg: background, attrs: [.dim, .italic])
        }
    }
    public func roleStyle(_ role: String) -> Style {
        switch role {
        case "assistant", "model": return Style(fg: roleAssistant, bg: background, attrs: .bold)
        case "system": return Style(fg: roleSystem, bg: background, attrs: .bold)
        default: return Style(fg: roleUser, bg: background, attrs: .bold)
        }
    }
    public func runColor(_ i: Int) -> Color { runColors.isEmpty ? foreground : runColors[i % runColors.count] }
}

/// A theme file that could not be used: one line naming the file and the problem.
public struct ThemeError: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    public var errorDescription: String? { description }
}

extension Theme {
    /// The slot names a theme file sets, as "table.key" (all required, so a typo is caught).
    static let colorKeys: [String] = [
        "ui.background", "ui.foreground", "ui.muted", "ui.accent", "ui.border", "ui.border_focused", "ui.title",
        "ui.selection_fg", "ui.selection_bg", "ui.status_fg", "ui.status_bg", "ui.success", "ui.warning", "ui.error",
        "chart.axis", "chart.loss", "chart.loss_smoothed", "chart.learning_rate", "chart.grad_norm",
        "roles.user", "roles.assistant", "roles.system",
    ] + TokenKind.allCases.map { "tokens.\($0.rawValue)" }

    /// Reads a theme from TOML text. Unknown keys are errors with the nearest known key suggested.
    public static func parse(_ text: String, file: String) throws -> Theme {
        let kv: [String: TOMLValue]
        do { kv = try TOMLSubset.parse(text, file: file) } catch let e as TOMLError { throw ThemeError(description: "theme \(e.description)") }
        let known = Set(colorKeys + ["name", "chart.runs"])
        for key in kv.keys.sorted() where !known.contains(key) {
            let hint = NearestKey.suggest(key, among: Array(known)).map { " (did you mean '\($0)'?)" } ?? ""
            throw ThemeError(description: "theme \(file): unknown key '\(key)'\(hint)")
        }
        func color(_ key: String) throws -> Color {
            guard let v = kv[key] else { throw ThemeError(description: "theme \(file): missing key '\(key)'") }
            guard case .string(let s) = v else { throw ThemeError(description: "theme \(file): '\(key)' must be a string like \"#1e88e5\"") }
            if s == "default" { return .default }
            guard let rgb = RGB(hex: s) else { throw ThemeError(description: "theme \(file): '\(key)' = \"\(s)\" is not a #rrggbb colour") }
            return .rgb(rgb)
        }
        var runs: [Color] = []
        if let v = kv["chart.runs"] {
            guard case .array(let items) = v else { throw ThemeError(description: "theme \(file): 'chart.runs' must be an array of colours") }
            for item in items {
                guard case .string(let s) = item, let rgb = RGB(hex: s) else {
                    throw ThemeError(description: "theme \(file): 'chart.runs' holds a value that is not a #rrggbb colour")
                }
                runs.append(.rgb(rgb))
            }
        }
        var name = (file as NSString).lastPathComponent.replacingOccurrences(of: ".toml", with: "")
        if case .string(let n)? = kv["name"] { name = n }
        var tokens: [TokenKind: Color] = [:]
        for k in TokenKind.allCases { tokens[k] = try color("tokens.\(k.rawValue)") }
        return Theme(
            name: name, background: try color("ui.background"), foreground: try color("ui.foreground"),
            muted: try color("ui.muted"), accent: try color("ui.accent"), border: try color("ui.border"),
            borderFocused: try color("ui.border_focused"), title: try color("ui.title"),
            selectionFg: try color("ui.selection_fg"), selectionBg: try color("ui.selection_bg"),
            statusFg: try color("ui.status_fg"), statusBg: try color("ui.status_bg"),
            success: try color("ui.success"), warning: try color("ui.warning"), error: try color("ui.error"),
            chartAxis: try color("chart.axis"), chartLoss: try color("chart.loss"),
            chartLossSmoothed: try color("chart.loss_smoothed"), chartLearningRate: try color("chart.learning_rate"),
            chartGradNorm: try color("chart.grad_norm"), runColors: runs, tokens: tokens,
            roleUser: try color("roles.user"), roleAssistant: try color("roles.assistant"), roleSystem: try color("roles.system"))
    }

    /// The built-in themes (the same text as `themes/*.toml`, so the binary works from any folder).
    public static let builtInNames = ["dark", "light", "high-contrast"]
    public static func builtIn(_ name: String) -> Theme? {
        guard let text = BuiltInThemes.text[name] else { return nil }
        return try? parse(text, file: "themes/\(name).toml")
    }
    public static var defaultTheme: Theme { builtIn("dark")! }

    /// Resolves `--theme NAME|PATH` (or the config's `theme`): a path to a .toml file, else a theme
    /// name looked up in `themes/` folders and then the built-ins. Returns the theme and, when it had
    /// to fall back to the default, the error line to show.
    public static func load(_ spec: String?, searchDirs: [String] = Theme.searchDirectories()) -> (Theme, String?) {
        guard let spec, !spec.isEmpty else { return (defaultTheme, nil) }
        let fm = FileManager.default
        var path: String? = nil
        if spec.contains("/") || spec.hasSuffix(".toml") {
            path = spec
        } else {
            path = searchDirs.map { "\($0)/\(spec).toml" }.first { fm.fileExists(atPath: $0) }
        }
        if let path {
            guard let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                return (defaultTheme, "theme \(path): cannot read the file; using the default theme")
            }
            do { return (try parse(text, file: path), nil) }
            catch { return (defaultTheme, "\(error); using the default theme") }
        }
        if let t = builtIn(spec) { return (t, nil) }
        let hint = NearestKey.suggest(spec, among: builtInNames).map { " (did you mean '\($0)'?)" } ?? ""
        return (defaultTheme, "theme '\(spec)' not found\(hint); using the default theme")
    }

    /// Where named themes are looked for: $SFTDECK_THEMES, ./themes, the repository's themes/ next
    /// to a development build, and ~/.config/sftdeck/themes.
    public static func searchDirectories() -> [String] {
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment["SFTDECK_THEMES"] { dirs.append(env) }
        dirs.append(FileManager.default.currentDirectoryPath + "/themes")
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            dirs.append(dir.path + "/themes")
        }
        dirs.append((ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"] ?? ((ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.config")) + "/sftdeck/themes")
        return dirs
    }
}
