import Foundation

public struct DatasetsState: Sendable {
    public var items: [DatasetSummary] = []
    public var selected = 0
    public var splitIndex = 0
    public init() {}
    public var current: DatasetSummary? { items.indices.contains(selected) ? items[selected] : nil }
}

/// Lists datasets (from the config, recent paths, the HF cache) with their splits, row counts,
/// schema and layout kind.
public enum DatasetsScreen {
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("j"), .down, .char("k"), .up], "select dataset"),
        KeyBinding([.char("s")], "next split"),
        KeyBinding([.enter], "inspect rows", status: true),
        KeyBinding([.char("r")], "rescan"),
    ]

    public static func render(_ s: DatasetsState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        let cols = r.width >= 100 ? r.splitLeft(r.width * 2 / 5) : r.splitLeft(r.width / 2)
        let listInner = Frame.draw(&buf, cols.0, title: "Datasets", focused: true, ctx: ctx, right: "\(s.items.count)")
        if s.items.isEmpty {
            let msg = TextWrap.wrap("No datasets found. Give one in the config (dataset_name: a folder, a parquet/JSONL file or a hub id in the HF cache), or run `sftdeck demo`.", width: max(10, listInner.width - 2))
            for (i, l) in msg.enumerated() { buf.put(l, x: listInner.x + 1, y: listInner.y + i, style: ctx.theme.mutedText, clip: listInner) }
        } else {
            let rows = s.items.map { "\($0.name)  [\($0.source)]" }
            ListView(rows: rows, selected: s.selected).draw(&buf, listInner, ctx: ctx)
        }
        let detail = Frame.draw(&buf, cols.1, title: "Details", ctx: ctx)
        guard let d = s.current else { return }
        var lines: [(String, Style)] = [
            (d.name, ctx.theme.titleStyle),
            ("path    \(d.path)", ctx.theme.base),
            ("layout  \(d.layout)", ctx.theme.base),
            ("source  \(d.source)", ctx.theme.base),
        ]
        if let e = d.error {
            lines.append(("", ctx.theme.base))
            for l in TextWrap.wrap("error: \(e)", width: max(10, detail.width - 2)) { lines.append((l, ctx.theme.errorText)) }
        } else {
            lines.append(("", ctx.theme.base))
            lines.append(("splits", ctx.theme.accentText))
            for (i, sp) in d.splits.enumerated() {
                let mark = i == s.splitIndex ? ctx.glyphs.selectedMarker : " "
                lines.append(("\(mark) \(sp.name)  \(sp.rows) rows", i == s.splitIndex ? ctx.theme.base.with(attrs: .bold) : ctx.theme.base))
            }
            lines.append(("", ctx.theme.base))
            lines.append(("schema", ctx.theme.accentText))
            for c in d.schema { lines.append(("  " + c, ctx.theme.mutedText)) }
        }
        for (i, (l, st)) in lines.prefix(detail.height).enumerated() {
            buf.put(DisplayWidth.truncate(l, to: detail.width - 1, ellipsis: ctx.glyphs.ellipsis), x: detail.x + 1, y: detail.y + i, style: st, clip: detail)
        }
    }
}

extension DashboardApp {
    public func reloadDatasets() {
        datasets.items = source.listDatasets()
        datasets.selected = min(datasets.selected, max(0, datasets.items.count - 1))
    }

    func handleDatasetsKey(_ key: Key) {
        switch key {
        case .char("j"), .down: datasets.selected = min(datasets.items.count - 1, datasets.selected + 1); datasets.splitIndex = 0
        case .char("k"), .up: datasets.selected = max(0, datasets.selected - 1); datasets.splitIndex = 0
        case .char("s"):
            if let d = datasets.current, !d.splits.isEmpty { datasets.splitIndex = (datasets.splitIndex + 1) % d.splits.count }
        case .char("r"): reloadDatasets(); setStatus(.info, "found \(datasets.items.count) datasets")
        case .enter:
            guard datasets.current != nil else { return }
            inspector = InspectorState()
            screen = .inspector
            loadInspectorRow(0)
        default: break
        }
    }
}
