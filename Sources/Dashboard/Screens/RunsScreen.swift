import Foundation

public struct RunsState: Sendable {
    public var runs: [RunSummary] = []
    public var selected = 0
    public var overlay: Set<String> = []     // run paths drawn together
    public var metric = "loss"
    public init() {}
}

/// Past runs found under output folders (trainer_state.json or TensorBoard event files), with
/// several runs' curves overlaid.
public enum RunsScreen {
    public static let metrics = ["loss", "learning_rate", "grad_norm"]
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("j"), .down, .char("k"), .up], "select run"),
        KeyBinding([.char(" ")], "add / remove from the overlay", status: true),
        KeyBinding([.char("m")], "next metric (loss, learning_rate, grad_norm)", status: true),
        KeyBinding([.char("r")], "rescan"),
    ]

    public static func render(_ s: RunsState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        let (left, right) = r.splitLeft(max(30, r.width * 2 / 5))
        let inner = Frame.draw(&buf, left, title: "Runs", focused: true, ctx: ctx, right: "\(s.runs.count)")
        if s.runs.isEmpty {
            for (i, l) in TextWrap.wrap("No runs found. Runs are read from trainer_state.json and TensorBoard event files under the output folders.", width: max(10, inner.width - 2)).enumerated() {
                buf.put(l, x: inner.x + 1, y: inner.y + i, style: ctx.theme.mutedText, clip: inner)
            }
        }
        let shown = overlayRuns(s)
        let rows = s.runs.map { run -> String in
            let mark = s.overlay.contains(run.path) ? "[x]" : "[ ]"
            let loss = run.lastLoss.map { " loss " + LineChart.format($0) } ?? ""
            return "\(mark) \(run.name)  step \(run.globalStep)\(loss)"
        }
        var styles: [Style?] = []
        for run in s.runs {
            if let idx = shown.firstIndex(where: { $0.path == run.path }) { styles.append(Style(fg: ctx.theme.runColor(idx), bg: ctx.theme.background)) }
            else { styles.append(nil) }
        }
        ListView(rows: rows, selected: s.selected, styles: styles).draw(&buf, inner, ctx: ctx)
        let chartInner = Frame.draw(&buf, right, title: "Compare: \(s.metric)", ctx: ctx)
        let series = shown.enumerated().map { i, run in
            ChartSeries(name: run.name, points: (run.scalars[s.metric] ?? []).map { ($0.step, $0.value) }, color: ctx.theme.runColor(i))
        }
        let (chartArea, infoArea) = chartInner.splitBottom(min(4, chartInner.height / 4))
        LineChart(title: "", series: series).draw(&buf, chartArea, ctx: ctx)
        if s.runs.indices.contains(s.selected) {
            let run = s.runs[s.selected]
            let info = ["path \(run.path)", "from \(run.source), \(run.globalStep)/\(run.maxSteps) steps, tags: \(run.scalars.keys.sorted().joined(separator: ", "))"]
            for (i, l) in info.enumerated() { buf.put(l, x: infoArea.x, y: infoArea.y + i, style: ctx.theme.mutedText, clip: infoArea) }
        }
    }

    /// The runs in the overlay, or the selected one when the overlay is empty.
    public static func overlayRuns(_ s: RunsState) -> [RunSummary] {
        let chosen = s.runs.filter { s.overlay.contains($0.path) }
        if !chosen.isEmpty { return chosen }
        return s.runs.indices.contains(s.selected) ? [s.runs[s.selected]] : []
    }
}

extension DashboardApp {
    func handleRunsKey(_ key: Key) {
        switch key {
        case .char("j"), .down: runs.selected = min(max(0, runs.runs.count - 1), runs.selected + 1)
        case .char("k"), .up: runs.selected = max(0, runs.selected - 1)
        case .char(" "), .enter:
            guard runs.runs.indices.contains(runs.selected) else { return }
            let p = runs.runs[runs.selected].path
            if runs.overlay.contains(p) { runs.overlay.remove(p) } else { runs.overlay.insert(p) }
        case .char("m"):
            let i = RunsScreen.metrics.firstIndex(of: runs.metric) ?? 0
            runs.metric = RunsScreen.metrics[(i + 1) % RunsScreen.metrics.count]
        case .char("r"): runs.runs = source.listRuns(); setStatus(.info, "found \(runs.runs.count) runs")
        default: break
        }
    }
}
