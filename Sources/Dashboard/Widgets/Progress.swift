import Foundation
import Training

/// Formatting used by the progress bar and the headless printer (pure, testable).
public enum Fmt {
    /// 75 → "01:15", 3725 → "1:02:05" (tqdm's style).
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        let h = s / 3600, m = (s % 3600) / 60, sec = s % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, sec) : String(format: "%02d:%02d", m, sec)
    }
    /// Bytes as "812 MiB" / "1.2 GiB".
    public static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if d >= Double(1 << 30) { return String(format: "%.1f GiB", d / Double(1 << 30)) }
        if d >= Double(1 << 20) { return String(format: "%.0f MiB", d / Double(1 << 20)) }
        if d >= 1024 { return String(format: "%.0f KiB", d / 1024) }
        return "\(n) B"
    }
    /// Python's `f"{v:.4g}"`, which the HF Trainer's progress callback uses for floats (C's %g
    /// follows the same rules: 4 significant digits, trailing zeros dropped, e-05 exponents).
    public static func g4(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return String(format: "%.4g", v)
    }
    public static func count(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2fB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.2fM", d / 1e6) }
        if d >= 1e4 { return String(format: "%.1fk", d / 1e3) }
        return "\(n)"
    }
}

/// What the progress bar shows; built from the run's latest step.
public struct ProgressInfo: Sendable, Equatable {
    public var step: Int, maxSteps: Int
    public var epoch: Double, numEpochs: Double
    public var elapsed: Double
    public var tokensPerSecond: Double
    public var residentBytes: Int
    public var state: RunState
    public init(step: Int, maxSteps: Int, epoch: Double, numEpochs: Double, elapsed: Double,
                tokensPerSecond: Double, residentBytes: Int, state: RunState) {
        self.step = step; self.maxSteps = maxSteps; self.epoch = epoch; self.numEpochs = numEpochs
        self.elapsed = elapsed; self.tokensPerSecond = tokensPerSecond; self.residentBytes = residentBytes; self.state = state
    }
    public var fraction: Double { maxSteps > 0 ? min(1, Double(step) / Double(maxSteps)) : 0 }
    /// Remaining time at the average pace so far.
    public var eta: Double? {
        guard step > 0, maxSteps > step, elapsed > 0 else { return step >= maxSteps && maxSteps > 0 ? 0 : nil }
        return elapsed / Double(step) * Double(maxSteps - step)
    }
}

public struct ProgressBar {
    public var info: ProgressInfo
    public init(_ info: ProgressInfo) { self.info = info }

    /// Two lines: the bar with step and percentage, then epoch / elapsed / ETA / tokens/s / RSS.
    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext) {
        guard rect.height >= 1, rect.width >= 10 else { return }
        let i = info, theme = ctx.theme
        let left = "step \(i.step)/\(i.maxSteps) "
        let right = String(format: " %3.0f%% ", i.fraction * 100) + i.state.rawValue
        let barW = max(0, rect.width - DisplayWidth.of(left) - DisplayWidth.of(right))
        let filled = Int((Double(barW) * i.fraction).rounded(.down))
        var x = buf.put(left, x: rect.x, y: rect.y, style: theme.base.with(attrs: .bold), clip: rect)
        x = buf.put(String(repeating: ctx.glyphs.barFull, count: filled), x: x, y: rect.y, style: Style(fg: theme.accent, bg: theme.background), clip: rect)
        x = buf.put(String(repeating: ctx.glyphs.barEmpty, count: barW - filled), x: x, y: rect.y, style: theme.mutedText, clip: rect)
        let stateStyle: Style
        switch i.state {
        case .running: stateStyle = theme.successText
        case .paused, .stopping: stateStyle = theme.warningText
        case .failed: stateStyle = theme.errorText
        default: stateStyle = theme.base
        }
        buf.put(right, x: x, y: rect.y, style: stateStyle, clip: rect)
        guard rect.height >= 2 else { return }
        let details = [
            String(format: "epoch %.2f/%g", i.epoch, i.numEpochs),
            "elapsed \(Fmt.duration(i.elapsed))",
            "ETA \(i.eta.map { Fmt.duration($0) } ?? "--:--")",
            String(format: "%.0f tok/s", i.tokensPerSecond),
            "RSS \(Fmt.bytes(i.residentBytes))",
        ].joined(separator: "  ")
        buf.put(details, x: rect.x, y: rect.y + 1, style: theme.mutedText, clip: rect)
    }
}

/// A log line with its level, as the log pane shows it.
public struct LogLine: Sendable, Equatable {
    public var level: LogLevel
    public var text: String
    public init(_ level: LogLevel, _ text: String) { self.level = level; self.text = text }
}

/// The newest lines at the bottom; `scrollBack` lines up from the end when scrolled.
public struct LogPane {
    public var lines: [LogLine]
    public var scrollBack: Int
    public init(lines: [LogLine], scrollBack: Int = 0) { self.lines = lines; self.scrollBack = scrollBack }
    public func draw(_ buf: inout ScreenBuffer, _ rect: Rect, ctx: RenderContext) {
        guard rect.height > 0 else { return }
        // Wrap from the newest line backwards, only as far as the pane (plus the scroll) reaches.
        var wrapped: [LogLine] = []
        let need = rect.height + scrollBack
        for l in lines.reversed() {
            wrapped.insert(contentsOf: TextWrap.wrap(l.text, width: max(1, rect.width)).map { LogLine(l.level, $0) }, at: 0)
            if wrapped.count >= need { break }
        }
        let end = max(0, wrapped.count - scrollBack)
        let start = max(0, end - rect.height)
        for (row, l) in wrapped[start..<end].enumerated() {
            let st: Style
            switch l.level { case .info: st = ctx.theme.base; case .warning: st = ctx.theme.warningText; case .error: st = ctx.theme.errorText }
            buf.put(l.text, x: rect.x, y: rect.y + row, style: st, clip: rect)
        }
    }
}
