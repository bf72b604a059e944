import Datasets
import Foundation

/// One listed dataset: its newest summary, and the open in progress when there is one.
public struct DatasetItem: Sendable, Equatable {
    /// A queued or running open: its ticket, and the newest image-extraction report (MMIU, first open).
    public struct Opening: Sendable, Equatable {
        public var ticket: Int
        public var progress: ZipExtractionProgress?
        /// `x` asked its extraction to stop; the answer (an error line saying so) is on its way.
        public var cancelling = false
        public init(ticket: Int, progress: ZipExtractionProgress? = nil) { self.ticket = ticket; self.progress = progress }
        /// An image extraction is running that `x` can stop.
        public var extracting: Bool { progress.map { !$0.finished } ?? false }
    }
    public var entry: DatasetEntry
    /// Nil until the first open finishes; a rescan keeps showing the previous one while it reopens.
    public var summary: DatasetSummary?
    public var opening: Opening?
    public init(entry: DatasetEntry, summary: DatasetSummary? = nil, opening: Opening? = nil) {
        self.entry = entry; self.summary = summary; self.opening = opening
    }
}

/// The Datasets screen's state and the scan's state machine (pure: the app runs the work it asks for
/// on background lanes and feeds the answers back in, on the UI thread, in whatever order they come).
///
/// A scan is a listing (cheap: which datasets there are) and then one open per dataset (slow: MMIU
/// unpacks its image zips). Each request gets a ticket; an answer whose ticket is no longer the one
/// awaited (a newer listing was asked for, the dataset left the list) is dropped. A dataset whose
/// open is still queued or running is not opened again by a rescan: the rescan waits for that answer.
public struct DatasetsState: Sendable {
    public var items: [DatasetItem] = []
    public var selected = 0
    public var splitIndex = 0
    /// The newest listing asked for; true in `listing` until it arrives.
    public private(set) var listingTicket = 0
    public private(set) var listing = false
    /// Opens queued or running, spec -> ticket (including datasets a rescan dropped from the list).
    public private(set) var inFlight: [String: Int] = [:]
    private var lastTicket = 0
    public init() {}

    public var currentItem: DatasetItem? { items.indices.contains(selected) ? items[selected] : nil }
    /// The selected dataset's summary; nil while it has not been opened yet.
    public var current: DatasetSummary? { currentItem?.summary }
    public var openingCount: Int { items.filter { $0.opening != nil }.count }

    mutating func newTicket() -> Int { lastTicket += 1; return lastTicket }

    /// Starts a listing; returns the ticket its answer must carry.
    public mutating func beginListing() -> Int {
        listingTicket = newTicket()
        listing = true
        return listingTicket
    }

    /// Takes the datasets a listing found; returns the opens to start (nil: the answer to an older
    /// listing, dropped). Summaries and opens in progress carry over by spec; so does the selection.
    public mutating func applyListing(ticket: Int, entries: [DatasetEntry]) -> [(DatasetEntry, Int)]? {
        guard ticket == listingTicket else { return nil }
        listing = false
        let selectedSpec = currentItem?.entry.spec
        var old: [String: DatasetItem] = [:]
        for it in items { old[it.entry.spec] = it }
        var requests: [(DatasetEntry, Int)] = []
        items = entries.map { e in
            var it = DatasetItem(entry: e, summary: old[e.spec]?.summary)
            if let t = inFlight[e.spec] {
                let same = old[e.spec]?.opening?.ticket == t
                it.opening = .init(ticket: t, progress: same ? old[e.spec]?.opening?.progress : nil)
                it.opening?.cancelling = same && old[e.spec]?.opening?.cancelling == true
            } else {
                let t = newTicket()
                inFlight[e.spec] = t
                it.opening = .init(ticket: t)
                requests.append((e, t))
            }
            return it
        }
        if let spec = selectedSpec, let i = items.firstIndex(where: { $0.entry.spec == spec }) {
            selected = i
        } else {
            selected = min(selected, max(0, items.count - 1))
            splitIndex = 0
        }
        clampSplit()
        return requests
    }

    /// The newest extraction report of an open.
    public mutating func applyProgress(ticket: Int, _ p: ZipExtractionProgress) {
        guard let i = items.firstIndex(where: { $0.opening?.ticket == ticket }) else { return }
        items[i].opening?.progress = p
    }

    /// Marks the selected dataset's extraction as cancelling; returns its ticket, or nil when no image
    /// extraction of the selected dataset is running.
    public mutating func cancelSelectedExtraction() -> Int? {
        guard items.indices.contains(selected), let o = items[selected].opening, o.extracting, !o.cancelling else { return nil }
        items[selected].opening?.cancelling = true
        return o.ticket
    }

    /// An open's answer; false when no request with that ticket is awaited (dropped).
    @discardableResult
    public mutating func applyOpened(ticket: Int, summary: DatasetSummary) -> Bool {
        guard let spec = inFlight.first(where: { $0.value == ticket })?.key else { return false }
        inFlight[spec] = nil
        guard let i = items.firstIndex(where: { $0.entry.spec == spec && $0.opening?.ticket == ticket }) else { return false }
        items[i].summary = summary
        items[i].opening = nil
        clampSplit()
        return true
    }

    mutating func clampSplit() {
        let n = current?.splits.count ?? 0
        if splitIndex >= n { splitIndex = 0 }
    }
}

/// Lists datasets (from the config, recent paths, the HF cache) with their splits, row counts,
/// schema and layout kind.
public enum DatasetsScreen {
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("j"), .down, .char("k"), .up], "select dataset"),
        KeyBinding([.char("s")], "next split"),
        KeyBinding([.enter], "inspect rows", status: true),
        KeyBinding([.char("r")], "rescan"),
        KeyBinding([.char("x")], "stop the image extraction of the selected dataset (kept; the next open resumes)"),
    ]

    public static func render(_ s: DatasetsState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        let cols = r.width >= 100 ? r.splitLeft(r.width * 2 / 5) : r.splitLeft(r.width / 2)
        let opening = s.openingCount
        let count = "\(s.items.count)" + (opening > 0 ? ", \(opening) opening" : "")
        let listInner = Frame.draw(&buf, cols.0, title: "Datasets", focused: true, ctx: ctx, right: count)
        if s.items.isEmpty {
            let text = s.listing ? "Looking for datasets\(ctx.glyphs.ellipsis)"
                : "No datasets found. Give one in the config (dataset_name: a folder, a parquet/JSONL file or a hub id in the HF cache), or run `sftdeck demo`."
            let msg = TextWrap.wrap(text, width: max(10, listInner.width - 2))
            for (i, l) in msg.enumerated() { buf.put(l, x: listInner.x + 1, y: listInner.y + i, style: ctx.theme.mutedText, clip: listInner) }
        } else {
            let rows = s.items.map { it -> String in
                var row = "\(it.entry.name)  [\(it.entry.source)]"
                if it.opening != nil { row += it.summary == nil ? "  opening\(ctx.glyphs.ellipsis)" : "  rescanning\(ctx.glyphs.ellipsis)" }
                return row
            }
            let styles: [Style?] = s.items.map { $0.summary == nil ? ctx.theme.mutedText : nil }
            ListView(rows: rows, selected: s.selected, styles: styles).draw(&buf, listInner, ctx: ctx)
        }
        let detail = Frame.draw(&buf, cols.1, title: "Details", ctx: ctx)
        guard let item = s.currentItem else { return }
        let lines: [(String, Style)]
        // An extraction in progress wins over an older summary (a rescan resuming a stopped extraction).
        let extracting = item.opening?.extracting == true
        if let d = item.summary, !extracting {
            lines = summaryLines(d, s, rescanning: item.opening != nil, width: detail.width, ctx: ctx)
        } else {
            lines = openingLines(item, width: detail.width, ctx: ctx)
        }
        for (i, (l, st)) in lines.prefix(detail.height).enumerated() {
            buf.put(DisplayWidth.truncate(l, to: detail.width - 1, ellipsis: ctx.glyphs.ellipsis), x: detail.x + 1, y: detail.y + i, style: st, clip: detail)
        }
        // The extraction's bar, under its figures.
        if item.summary == nil || extracting, let p = item.opening?.progress, lines.count + 1 < detail.height {
            let bar = Rect(x: detail.x + 1, y: detail.y + lines.count, width: max(0, detail.width - 2), height: 1)
            let pct = String(format: " %3.0f%%", p.fraction * 100)
            let barW = max(0, bar.width - DisplayWidth.of(pct))
            let filled = min(barW, Int((Double(barW) * p.fraction).rounded(.down)))
            var x = buf.put(String(repeating: ctx.glyphs.barFull, count: filled), x: bar.x, y: bar.y, style: Style(fg: ctx.theme.accent, bg: ctx.theme.background), clip: bar)
            x = buf.put(String(repeating: ctx.glyphs.barEmpty, count: barW - filled), x: x, y: bar.y, style: ctx.theme.mutedText, clip: bar)
            buf.put(pct, x: x, y: bar.y, style: ctx.theme.base, clip: bar)
        }
    }

    static func summaryLines(_ d: DatasetSummary, _ s: DatasetsState, rescanning: Bool, width: Int, ctx: RenderContext) -> [(String, Style)] {
        var lines: [(String, Style)] = [
            (d.name + (rescanning ? "  (rescanning\(ctx.glyphs.ellipsis))" : ""), ctx.theme.titleStyle),
            ("path    \(d.path)", ctx.theme.base),
            ("layout  \(d.layout)", ctx.theme.base),
            ("source  \(d.source)", ctx.theme.base),
        ]
        if let e = d.error {
            lines.append(("", ctx.theme.base))
            for l in TextWrap.wrap("error: \(e)", width: max(10, width - 2)) { lines.append((l, ctx.theme.errorText)) }
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
        return lines
    }

    /// A dataset still opening: what is known so far, and the image extraction's figures when its
    /// first open unpacks archives (files and bytes done of the archives' declared totals, rate, ETA).
    static func openingLines(_ item: DatasetItem, width: Int, ctx: RenderContext) -> [(String, Style)] {
        let e = ctx.glyphs.ellipsis
        var lines: [(String, Style)] = [
            (item.entry.name, ctx.theme.titleStyle),
            ("spec    \(item.entry.spec)", ctx.theme.base),
            ("source  \(item.entry.source)", ctx.theme.base),
            ("", ctx.theme.base),
        ]
        guard let p = item.opening?.progress else {
            lines.append(("opening\(e)", ctx.theme.accentText))
            lines.append(("reading its files; keys keep working meanwhile", ctx.theme.mutedText))
            return lines
        }
        let state = p.finished ? "opening\(e) images unpacked, reading the records"
            : item.opening?.cancelling == true ? "stopping the extraction\(e)" : "opening\(e) unpacking images (x stops; the next open resumes)"
        lines.append((state, ctx.theme.accentText))
        lines.append(("archive \(p.archive)" + (p.archiveCount > 1 ? " (\(p.archiveIndex + 1) of \(p.archiveCount))" : ""), ctx.theme.base))
        lines.append(("files   \(p.entriesDone) of \(p.entriesTotal)", ctx.theme.base))
        lines.append(("bytes   \(Fmt.bytes(Int(clamping: p.bytesDone))) of \(Fmt.bytes(Int(clamping: p.bytesTotal)))", ctx.theme.base))
        var timing = "elapsed \(Fmt.duration(p.elapsed))"
        if let rate = p.bytesPerSecond { timing += "  \(Fmt.bytes(Int(rate)))/s" }
        timing += "  ETA \(p.etaSeconds.map { Fmt.duration($0) } ?? "--:--")"
        lines.append((timing, ctx.theme.base))
        if p.bytesResumed > 0 { lines.append(("resumed: \(Fmt.bytes(Int(clamping: p.bytesResumed))) were already unpacked", ctx.theme.mutedText)) }
        return lines
    }
}

extension DashboardApp {
    /// Starts a scan: the listing runs on the listing lane, then each dataset opens on the opening
    /// lane; the screen shows them as "opening…" until their summaries arrive (`applyWork`).
    public func reloadDatasets() {
        let ticket = datasets.beginListing()
        let src = source, inbox = workInbox, cancel = cancellation
        work.schedule(.listing) {
            guard !cancel.isCancelled else { return }
            inbox.post(.listed(ticket: ticket, entries: src.datasetEntries()))
        }
    }

    func applyListing(ticket: Int, entries: [DatasetEntry]) {
        guard let requests = datasets.applyListing(ticket: ticket, entries: entries) else { return }
        let src = source, inbox = workInbox, cancel = cancellation
        for (entry, t) in requests {
            let flag = CancellationFlag()
            openCancellations[t] = flag
            work.schedule(.opening) {
                guard !cancel.isCancelled else { return }
                let summary = src.openDataset(entry, progress: { p in inbox.post(.openProgress(ticket: t, p)) }, cancellation: flag)
                inbox.post(.opened(ticket: t, summary))
            }
        }
        if announceListing {
            announceListing = false
            let waiting = datasets.openingCount - requests.count
            setStatus(.info, "found \(entries.count) datasets" + (waiting > 0 ? " (\(waiting) still opening from before)" : ""))
        }
    }

    func handleDatasetsKey(_ key: Key) {
        switch key {
        case .char("j"), .down: datasets.selected = max(0, min(datasets.items.count - 1, datasets.selected + 1)); datasets.splitIndex = 0
        case .char("k"), .up: datasets.selected = max(0, datasets.selected - 1); datasets.splitIndex = 0
        case .char("s"):
            if let d = datasets.current, !d.splits.isEmpty { datasets.splitIndex = (datasets.splitIndex + 1) % d.splits.count }
        case .char("x"):
            guard let item = datasets.currentItem else { return }
            if let t = datasets.cancelSelectedExtraction() {
                openCancellations[t]?.cancel()
                setStatus(.info, "stopping the image extraction of \(item.entry.name): unpacked files are kept, r resumes it")
            } else {
                setStatus(.info, item.opening?.cancelling == true ? "\(item.entry.name): its extraction is already stopping"
                          : "\(item.entry.name) is not unpacking images: x stops an image extraction in progress")
            }
        case .char("r"):
            announceListing = true
            reloadDatasets()
            setStatus(.info, "rescanning datasets...")
        case .enter:
            guard let item = datasets.currentItem else { return }
            guard item.summary != nil else { setStatus(.info, "\(item.entry.name) is still opening"); return }
            inspector = InspectorState()
            screen = .inspector
            loadInspectorRow(0)
        default: break
        }
    }
}
