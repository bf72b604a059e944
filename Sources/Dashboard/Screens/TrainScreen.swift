import Foundation
import Training

public struct TrainState: Sendable {
    public enum Pane: Sendable { case charts, log }
    public var focus: Pane = .charts
    public var logScroll = 0
    public init() {}
}

/// Live charts (loss raw + smoothed, learning rate, grad norm), the newest entropy and token accuracy in
/// the Loss pane's header, the progress bar and the log.
public enum TrainScreen {
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("s")], "start training", status: true),
        KeyBinding([.char("p"), .char(" ")], "pause / resume", status: true),
        KeyBinding([.char("x")], "stop (asks first)", status: true),
        KeyBinding([.char("c")], "save a checkpoint now", status: true),
        KeyBinding([.char("+"), .char("-")], "more / less smoothing"),
        KeyBinding([.char("j"), .down, .char("k"), .up], "scroll the log"),
    ]

    public static func render(_ m: RunModel, _ s: TrainState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext, hasEngine: Bool) {
        let theme = ctx.theme
        let logH = max(5, r.height / 4)
        let (top, logRect) = r.splitBottom(logH)
        let (progRect, chartsRect) = top.splitTop(4)
        let pInner = Frame.draw(&buf, progRect, title: "Progress", ctx: ctx, right: m.info?.outputDir)
        if m.info == nil && m.steps.isEmpty {
            let msg = hasEngine ? "waiting for the first step…" : "No run yet: press s to start training with the config (screen 3)."
            buf.put(msg, x: pInner.x + 1, y: pInner.y, style: theme.mutedText, clip: pInner)
        } else {
            ProgressBar(m.progress).draw(&buf, pInner.inset(dx: 1, dy: 0), ctx: ctx)
        }
        let wide = chartsRect.width >= 100
        let lossRect: Rect, lrRect: Rect, gnRect: Rect
        if wide {
            let (l, rr) = chartsRect.splitLeft(chartsRect.width * 3 / 5)
            lossRect = l
            let halves = rr.rows(2); lrRect = halves[0]; gnRect = halves[1]
        } else {
            let (l, rr) = chartsRect.splitTop(chartsRect.height * 3 / 5)
            lossRect = l
            let halves = rr.columns(2); lrRect = halves[0]; gnRect = halves[1]
        }
        let lossInner = Frame.draw(&buf, lossRect, title: "Loss", focused: s.focus == .charts, ctx: ctx,
                                   right: (m.tokenMetricsSummary.map { $0 + "  " } ?? "") + String(format: "smoothing %.2f", m.smoothing))
        LineChart(title: "", series: [
            ChartSeries(name: "raw", points: m.lossRaw, color: theme.chartLoss),
            ChartSeries(name: "smoothed", points: m.lossSmoothed, color: theme.chartLossSmoothed),
        ]).draw(&buf, lossInner, ctx: ctx)
        let lrInner = Frame.draw(&buf, lrRect, title: "Learning rate", ctx: ctx)
        LineChart(title: "", series: [ChartSeries(name: "lr", points: m.series(\.learningRate), color: theme.chartLearningRate)])
            .draw(&buf, lrInner, ctx: ctx)
        let gnInner = Frame.draw(&buf, gnRect, title: "Grad norm", ctx: ctx)
        LineChart(title: "", series: [ChartSeries(name: "grad_norm", points: m.series(\.gradNorm), color: theme.chartGradNorm)])
            .draw(&buf, gnInner, ctx: ctx)
        let logInner = Frame.draw(&buf, logRect, title: "Log", focused: s.focus == .log, ctx: ctx,
                                  right: m.lastCheckpoint.map { "last checkpoint " + ($0 as NSString).lastPathComponent })
        LogPane(lines: m.lines, scrollBack: s.logScroll).draw(&buf, logInner.inset(dx: 1, dy: 0), ctx: ctx)
    }
}

extension DashboardApp {
    func handleTrainKey(_ key: Key) {
        switch key {
        case .char("s"):
            if engine != nil && run.isActive { setStatus(.warning, "a run is already going"); return }
            startRun()
        case .char("p"), .char(" "):
            guard let e = engine, run.isActive else { setStatus(.warning, "no run to pause"); return }
            if run.state == .paused { e.send(.resume); setStatus(.info, "resuming") } else { e.send(.pause); setStatus(.info, "pausing after this step") }
        case .char("x"):
            guard engine != nil, run.isActive else { setStatus(.warning, "no run to stop"); return }
            dialog = (ConfirmDialog(title: "Stop training",
                                    message: "Stop the run? A checkpoint is saved first; the steps not yet taken are not run."), .stopRun)
        case .char("c"):
            guard let e = engine, run.isActive else { setStatus(.warning, "no run to checkpoint"); return }
            e.send(.saveNow); setStatus(.info, "checkpoint requested")
        case .char("+"), .char("="): run.smoothing = min(0.99, (run.smoothing * 100 + 5).rounded() / 100)
        case .char("-"), .char("_"): run.smoothing = max(0, (run.smoothing * 100 - 5).rounded() / 100)
        case .tab, .backTab: train.focus = train.focus == .charts ? .log : .charts
        case .char("k"), .up: train.logScroll = min(max(0, run.lines.count - 1), train.logScroll + 1)
        case .char("j"), .down: train.logScroll = max(0, train.logScroll - 1)
        case .end: train.logScroll = 0
        default: break
        }
    }
}
