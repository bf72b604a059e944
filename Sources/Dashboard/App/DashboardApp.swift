import Datasets
import Foundation
import Training

public enum ScreenID: Int, CaseIterable, Sendable {
    case datasets = 1, inspector, config, train, runs
    public var title: String {
        switch self {
        case .datasets: return "Datasets"; case .inspector: return "Inspector"; case .config: return "Config"
        case .train: return "Train"; case .runs: return "Runs"
        }
    }
}

/// A one-line text input at the bottom of the screen (search, go to row, edit a field).
public struct Prompt: Sendable, Equatable {
    public enum Purpose: Sendable, Equatable { case search, gotoRow, editField(String), addKey, addValue(String) }
    public var label: String
    public var text: String
    public var purpose: Purpose
    public var error: String?
    public init(label: String, text: String = "", purpose: Purpose) { self.label = label; self.text = text; self.purpose = purpose }
}

/// What a confirmed dialog does.
public enum PendingAction: Sendable, Equatable { case stopRun, quit, startRun }

/// Engine events arrive on the engine's queue; this lock-protected inbox hands them to the UI
/// thread, which drains it once per frame (ncurses is not thread-safe).
public final class EventInbox: EngineObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [EngineEvent] = []
    public init() {}
    public func engine(didEmit event: EngineEvent) {
        lock.lock(); pending.append(event); lock.unlock()
    }
    public func drain() -> [EngineEvent] {
        lock.lock(); defer { lock.unlock() }
        let out = pending; pending.removeAll(keepingCapacity: true); return out
    }
}

public struct DashboardOptions: Sendable {
    public var themeSpec: String?
    public var initialScreen: ScreenID
    public var mouse: Bool
    /// The title shown at the top right (e.g. "watch runs/x").
    public var banner: String?
    public init(themeSpec: String? = nil, initialScreen: ScreenID = .datasets, mouse: Bool = true, banner: String? = nil) {
        self.themeSpec = themeSpec; self.initialScreen = initialScreen; self.mouse = mouse; self.banner = banner
    }
}

/// The dashboard: state for every screen, key handling, and rendering into a `ScreenBuffer`.
/// It never touches the terminal itself; `TerminalLoop` owns ncurses and calls `pump`, `handle`
/// and `render` from the main thread.
public final class DashboardApp {
    public let source: DashboardDataSource
    public var screen: ScreenID
    public var theme: Theme
    public var themeIndex = 0
    public var statusMessage: LogLine?
    public var showHelp = false
    public var dialog: (ConfirmDialog, PendingAction)?
    public var prompt: Prompt?
    public var shouldQuit = false
    /// Quit was asked while a run was going: leave once it has stopped.
    public var quitPending = false
    public var dirty = true
    public let options: DashboardOptions

    // Per-screen state.
    public var datasets = DatasetsState()
    public var inspector = InspectorState()
    public var config = ConfigState()
    public var run = RunModel()
    public var train = TrainState()
    public var runs = RunsState()

    public let inbox = EventInbox()
    public private(set) var engine: EngineControl?

    /// Slow work (listing and opening datasets, loading rows) runs here; its results come back
    /// through `workInbox`, drained on the UI thread like the engine's events.
    public let work: WorkScheduler
    public let workInbox = WorkInbox()
    /// Set on quit: queued background jobs are skipped.
    public let cancellation = WorkCancellation()
    /// The flag of each open queued or running, by ticket: `x` sets the selected one's (stopping its image
    /// extraction), quitting sets them all.
    var openCancellations: [Int: CancellationFlag] = [:]
    /// `r` asked for the scan whose listing is awaited: say what it found.
    var announceListing = false
    /// Row requests are numbered app-wide (the Inspector's state is rebuilt per dataset).
    var lastRowTicket = 0
    let latestRow = LatestTicket()

    /// Minimum terminal size the layout needs; below it the screen shows a message instead.
    public static let minWidth = 60, minHeight = 16

    /// `work` defaults to background queues; tests pass `InlineWork` (or hold jobs to release them in any order).
    public init(source: DashboardDataSource, options: DashboardOptions = DashboardOptions(), work: WorkScheduler = QueueWork()) {
        self.source = source
        self.options = options
        self.work = work
        self.screen = options.initialScreen
        let (t, err) = Theme.load(options.themeSpec)
        theme = t
        themeIndex = Theme.builtInNames.firstIndex(of: t.name) ?? 0
        if let err { statusMessage = LogLine(.error, err) }
        config.document = source.loadConfig()
        runs.runs = source.listRuns()
        reloadDatasets()
        applyWork()
    }

    /// Nobody is left to show what queued jobs would find.
    deinit { cancelBackgroundWork() }

    /// Follows an engine (a run started here, or `watch` over event files).
    public func attach(_ engine: EngineControl, observing: Bool = true) {
        self.engine = engine
        if observing { engine.addObserver(inbox) }
        let smoothing = run.smoothing
        run = RunModel()
        run.smoothing = smoothing
        run.state = engine.state
        dirty = true
    }

    /// Applies queued engine events; returns true when anything changed.
    @discardableResult
    public func pump() -> Bool {
        let worked = applyWork()
        let events = inbox.drain()
        guard !events.isEmpty else { return worked }
        for e in events {
            run.apply(e)
            // Rescanning runs reads event files: only when the run ends or the Runs screen is open.
            if case .finished = e { runs.runs = source.listRuns() }
            if case .checkpointSaved = e, screen == .runs { runs.runs = source.listRuns() }
        }
        dirty = true
        return true
    }

    /// Applies the background lanes' results; returns true when anything arrived. A few rounds: with
    /// `InlineWork` a listing's answer starts opens that answer at once. Bounded, so a fast stream
    /// of extraction reports can never keep the UI thread here.
    @discardableResult
    public func applyWork() -> Bool {
        var any = false
        for _ in 0..<4 {
            let results = workInbox.drain()
            if results.isEmpty { break }
            any = true
            for r in results {
                switch r {
                case .listed(let ticket, let entries): applyListing(ticket: ticket, entries: entries)
                case .openProgress(let ticket, let p): datasets.applyProgress(ticket: ticket, p)
                case .opened(let ticket, let summary):
                    openCancellations[ticket] = nil
                    datasets.applyOpened(ticket: ticket, summary: summary)
                case .rowLoaded(let ticket, let index, let row, let error): applyRow(ticket: ticket, index: index, row: row, error: error)
                }
            }
        }
        if any { dirty = true }
        return any
    }

    /// On quit: background jobs not started yet are skipped and running extractions stop at their next
    /// chunk (what they unpacked is kept; the next open resumes).
    public func cancelBackgroundWork() {
        cancellation.cancel()
        for flag in openCancellations.values { flag.cancel() }
    }

    // MARK: Global keys

    public var globalBindings: [KeyBinding] {
        [KeyBinding([.char("1"), .char("2"), .char("3"), .char("4"), .char("5")], "switch screen (Datasets, Inspector, Config, Train, Runs)"),
         KeyBinding([.tab, .backTab], "next / previous pane"),
         KeyBinding([.char("?")], "help", status: true),
         KeyBinding([.char("T")], "cycle theme"),
         KeyBinding([.char("q"), .ctrl("c")], "quit", status: true)]
    }

    public func bindings(for s: ScreenID) -> [KeyBinding] {
        switch s {
        case .datasets: return DatasetsScreen.bindings
        case .inspector: return InspectorScreen.bindings
        case .config: return ConfigScreen.bindings
        case .train: return TrainScreen.bindings
        case .runs: return RunsScreen.bindings
        }
    }

    /// Handles one key, then applies whatever background work has answered (at once with `InlineWork`).
    public func handle(_ key: Key) {
        handleKey(key)
        applyWork()
    }

    func handleKey(_ key: Key) {
        dirty = true
        if key == .resize { return }
        if let (d, action) = dialog {
            _ = d
            switch key {
            case .char("y"), .char("Y"), .enter: dialog = nil; perform(action)
            case .char("n"), .char("N"), .escape, .char("q"): dialog = nil
            default: break
            }
            return
        }
        if prompt != nil { handlePromptKey(key); return }
        if showHelp {
            if key == .char("?") || key == .escape || key == .char("q") { showHelp = false }
            return
        }
        if case .mouse(let x, let y, let button) = key { handleMouse(x: x, y: y, button: button); return }
        switch key {
        case .char("?"): showHelp = true; return
        case .char("q"), .ctrl("c"):
            if quitPending { shouldQuit = true; return }
            if run.isActive, engine != nil {
                dialog = (ConfirmDialog(title: "Quit", message: "Training is running. Stop it (a checkpoint is saved first) and quit?"), .quit)
            } else { shouldQuit = true }
            return
        case .char("T"): cycleTheme(); return
        case .char(let c) where c.isNumber:
            if let n = c.wholeNumberValue, let s = ScreenID(rawValue: n) { switchTo(s); return }
        default: break
        }
        switch screen {
        case .datasets: handleDatasetsKey(key)
        case .inspector: handleInspectorKey(key)
        case .config: handleConfigKey(key)
        case .train: handleTrainKey(key)
        case .runs: handleRunsKey(key)
        }
    }

    public func switchTo(_ s: ScreenID) {
        screen = s
        if s == .inspector && inspector.row == nil && inspector.loading == nil { loadInspectorRow(inspector.rowIndex) }
        if s == .runs { runs.runs = source.listRuns() }
    }

    public func cycleTheme() {
        themeIndex = (themeIndex + 1) % Theme.builtInNames.count
        if let t = Theme.builtIn(Theme.builtInNames[themeIndex]) { theme = t }
        setStatus(.info, "theme: \(theme.name)")
    }

    public func setStatus(_ level: LogLevel, _ text: String) { statusMessage = LogLine(level, text); dirty = true }

    func perform(_ action: PendingAction) {
        switch action {
        case .stopRun:
            engine?.send(.stop); setStatus(.info, "stopping: saving a checkpoint first")
        case .quit:
            if run.isActive { engine?.send(.stop) }
            shouldQuit = true
        case .startRun: startRun()
        }
    }

    func startRun() {
        if run.isActive { setStatus(.warning, "a run is already going"); return }
        do {
            _ = inbox.drain()
            let e = try source.startRun(config.document, observer: inbox)
            attach(e, observing: false)
            screen = .train
            setStatus(.info, "training started")
        } catch {
            setStatus(.error, "cannot start training: \(error)")
        }
    }

    func handleMouse(x: Int, y: Int, button: Int) {
        if y == 0 {
            // Tab bar: find which title was clicked.
            for (s, r) in tabRects where x >= r.lowerBound && x < r.upperBound { switchTo(s); return }
            return
        }
        if button == 4 { handle(.up) } else if button == 5 { handle(.down) }
    }

    // MARK: Prompt

    func handlePromptKey(_ key: Key) {
        guard var p = prompt else { return }
        switch key {
        case .escape: prompt = nil; return
        case .enter:
            prompt = nil
            submitPrompt(p)
            return
        case .backspace: if !p.text.isEmpty { p.text.removeLast() }
        case .char(let c): p.text.append(c)
        default: break
        }
        p.error = nil
        prompt = p
    }

    func submitPrompt(_ p: Prompt) {
        switch p.purpose {
        case .search: inspectorSearch(p.text)
        case .gotoRow:
            guard let n = Int(p.text.trimmingCharacters(in: .whitespaces)) else { setStatus(.error, "not a row number: '\(p.text)'"); return }
            loadInspectorRow(n)
        case .editField(let key): commitConfigEdit(key: key, text: p.text, prompt: p)
        case .addKey: beginAddValue(key: p.text.trimmingCharacters(in: .whitespaces))
        case .addValue(let key): commitConfigEdit(key: key, text: p.text, prompt: p)
        }
    }

    // MARK: Rendering

    var tabRects: [(ScreenID, Range<Int>)] = []

    public func renderContext(glyphs: Glyphs, colorMode: ColorMode) -> RenderContext {
        RenderContext(theme: theme, glyphs: glyphs, colorMode: colorMode)
    }

    /// Draws the whole frame.
    public func render(into buf: inout ScreenBuffer, ctx: RenderContext) {
        buf.clear(ctx.theme.base)
        let area = buf.bounds
        if area.width < Self.minWidth || area.height < Self.minHeight {
            let lines = ["Terminal too small: \(area.width)x\(area.height)",
                         "SFTDeck needs at least \(Self.minWidth)x\(Self.minHeight).",
                         "Enlarge the window, or press q to quit."]
            for (i, l) in lines.enumerated() {
                let t = DisplayWidth.truncate(l, to: area.width, ellipsis: ctx.glyphs.ellipsis)
                let y = area.height / 2 - 1 + i
                if y >= 0 && y < area.height { buf.put(t, x: max(0, (area.width - DisplayWidth.of(t)) / 2), y: y, style: i == 0 ? ctx.theme.errorText : ctx.theme.base) }
            }
            return
        }
        let (tabBar, rest) = area.splitTop(1)
        let (body, statusRow) = rest.splitBottom(1)
        drawTabBar(&buf, tabBar, ctx: ctx)
        switch screen {
        case .datasets: DatasetsScreen.render(datasets, into: &buf, body, ctx: ctx)
        case .inspector: InspectorScreen.render(inspector, into: &buf, body, ctx: ctx)
        case .config: ConfigScreen.render(config, into: &buf, body, ctx: ctx)
        case .train: TrainScreen.render(run, train, into: &buf, body, ctx: ctx, hasEngine: engine != nil)
        case .runs: RunsScreen.render(runs, into: &buf, body, ctx: ctx)
        }
        drawStatus(&buf, statusRow, ctx: ctx)
        if showHelp { HelpOverlay.render(global: globalBindings, screen: screen, bindings: bindings(for: screen), into: &buf, body, ctx: ctx) }
        if let (d, _) = dialog { d.draw(&buf, in: body, ctx: ctx) }
    }

    func drawTabBar(_ buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        buf.fill(r, ctx.status)
        var x = buf.put(" SFTDeck ", x: r.x, y: r.y, style: ctx.status.with(attrs: .bold))
        tabRects = []
        for s in ScreenID.allCases {
            let label = " \(s.rawValue) \(s.title) "
            let st = s == screen ? ctx.selection : ctx.status
            let start = x
            x = buf.put(label, x: x, y: r.y, style: st, clip: r)
            tabRects.append((s, start..<x))
        }
        var right = options.banner ?? ""
        if engine != nil || run.state != .idle {
            let p = run.progress
            right = "\(run.state.rawValue) \(p.step)/\(p.maxSteps)" + (right.isEmpty ? "" : "  " + right)
        }
        if !right.isEmpty, x + DisplayWidth.of(right) + 2 < r.maxX {
            buf.put(right + " ", x: r.maxX - DisplayWidth.of(right) - 1, y: r.y, style: ctx.status)
        }
    }

    func drawStatus(_ buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        buf.fill(r, ctx.status)
        if let p = prompt {
            let x = buf.put(" \(p.label): ", x: r.x, y: r.y, style: ctx.status.with(attrs: .bold))
            let x2 = buf.put(p.text, x: x, y: r.y, style: ctx.status, clip: r)
            buf.put(ctx.glyphs.unicode ? "▏" : "_", x: x2, y: r.y, style: ctx.status, clip: r)
            if let e = p.error { buf.put("  " + e, x: x2 + 1, y: r.y, style: ctx.status.with(attrs: .bold), clip: r) }
            return
        }
        var hints = (bindings(for: screen) + globalBindings).filter(\.showInStatus).map { "\($0.keyNames(ascii: !ctx.glyphs.unicode)) \($0.description)" }.joined(separator: "  ")
        if let m = statusMessage {
            let st: Style = m.level == .error ? Style(fg: ctx.theme.error, bg: ctx.theme.statusBg, attrs: .bold)
                : m.level == .warning ? Style(fg: ctx.theme.warning, bg: ctx.theme.statusBg, attrs: .bold) : ctx.status.with(attrs: .bold)
            let x = buf.put(" " + m.text + " ", x: r.x, y: r.y, style: ctx.hasColor ? st : Style(attrs: [.reverse, .bold]), clip: r)
            hints = "  " + hints
            buf.put(hints, x: x, y: r.y, style: ctx.status, clip: r)
        } else {
            buf.put(" " + hints, x: r.x, y: r.y, style: ctx.status, clip: r)
        }
    }
}
