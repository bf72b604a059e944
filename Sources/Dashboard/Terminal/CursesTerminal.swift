import CNcursesw
import Foundation

/// The only code that calls ncurses. Owns the screen from `init` to `shutdown`, on one thread.
/// Frames arrive as `ScreenBuffer`s; only cells that differ from the last flushed frame are
/// written, then one `doupdate`.
public final class CursesTerminal {
    public let glyphs: Glyphs
    public private(set) var colorMode: ColorMode
    private let win: UnsafeMutablePointer<WINDOW>
    private var previous: ScreenBuffer?
    private var pairs: [Int64: Int32] = [:]
    private var nextPair: Int32 = 1
    private let maxPairs: Int32

    /// `environment` decides NO_COLOR; `mouse` turns on click and wheel reporting.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, mouse: Bool = true, frameTimeoutMs: Int32 = 33) throws {
        // The locale must be set before initscr, or wide characters come out as garbage.
        setlocale(LC_ALL, "")
        glyphs = Glyphs.forCodeset(String(cString: sftdeck_codeset()))
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw DashboardError("the dashboard needs a terminal (use --headless for line output)")
        }
        guard let w = initscr() else { throw DashboardError("cannot start the terminal (TERM=\(environment["TERM"] ?? "unset"))") }
        win = w
        raw()
        noecho()
        keypad(win, true)
        wtimeout(win, frameTimeoutMs)
        set_escdelay(25)
        curs_set(0)
        var mode = ColorMode.monochrome
        if has_colors() {
            start_color()
            use_default_colors()
            mode = ColorMode.detect(colors: Int(sftdeck_colors()), environment: environment)
        }
        colorMode = mode
        maxPairs = Int32(max(1, sftdeck_color_pairs()))
        if mouse { sftdeck_enable_mouse() }
    }

    public func shutdown() {
        endwin()
    }

    public var size: (width: Int, height: Int) { (Int(sftdeck_getmaxx(win)), Int(sftdeck_getmaxy(win))) }

    /// Blocks up to the frame timeout for one key.
    public func readKey() -> Key? {
        var ch: wint_t = 0
        let r = wget_wch(win, &ch)
        if r == ERR { return nil }
        if r == KEY_CODE_YES { return Self.decode(function: Int32(ch)) }
        let v = UInt32(ch)
        switch v {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .ctrl(Character(Unicode.Scalar(v + 96)!))
        default: return Unicode.Scalar(v).map { .char(Character($0)) }
        }
    }

    static func decode(function c: Int32) -> Key? {
        switch c {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_ENTER: return .enter
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case sftdeck_KEY_BTAB(): return .backTab
        case sftdeck_KEY_RESIZE(): return .resize
        case sftdeck_KEY_MOUSE():
            var x: Int32 = 0, y: Int32 = 0
            let b = sftdeck_get_mouse(&x, &y)
            return b == 0 ? nil : .mouse(x: Int(x), y: Int(y), button: Int(b))
        default:
            for n in 1...12 where c == sftdeck_KEY_F(Int32(n)) { return .function(n) }
            return nil
        }
    }

    /// Forgets the last frame so the next flush repaints everything (after a resize).
    public func invalidate() {
        previous = nil
        clearok(win, true)
    }

    public func flush(_ buf: ScreenBuffer) {
        let full = previous == nil || previous!.width != buf.width || previous!.height != buf.height
        if full { werase(win) }
        var wide = [wchar_t](repeating: 0, count: 8)
        for y in 0..<buf.height {
            for x in 0..<buf.width {
                let cell = buf[x, y]
                if cell.isContinuation { continue }
                if !full, let p = previous, p[x, y] == cell { continue }
                let pair = pairNumber(cell.style, hasText: cell.text != " ")
                var n = 0
                for s in cell.text.unicodeScalars where n < 7 {
                    wide[n] = wchar_t(bitPattern: s.value); n += 1
                }
                wide[n] = 0
                // The bottom-right cell cannot be written without scrolling in some terminals;
                // ncurses reports ERR but draws it, which is fine to ignore.
                _ = sftdeck_put_cell(win, Int32(y), Int32(x), wide, attributes(cell.style.attrs), pair)
            }
        }
        previous = buf
        wnoutrefresh(win)
        doupdate()
    }

    func attributes(_ a: CellAttributes) -> attr_t {
        var out = sftdeck_A_NORMAL()
        if a.contains(.bold) { out |= sftdeck_A_BOLD() }
        if a.contains(.dim) { out |= sftdeck_A_DIM() }
        if a.contains(.underline) { out |= sftdeck_A_UNDERLINE() }
        if a.contains(.reverse) { out |= sftdeck_A_REVERSE() }
        if a.contains(.italic) { out |= sftdeck_A_ITALIC() }
        return out
    }

    /// The colour pair for a style, allocated on first use. When the terminal runs out of pairs
    /// (images use many colours) the table starts over and the next frame repaints fully.
    func pairNumber(_ st: Style, hasText: Bool) -> Int32 {
        guard colorMode != .monochrome else { return 0 }
        var fg = ColorQuantizer.terminalColor(st.fg, mode: colorMode)
        let bg = ColorQuantizer.terminalColor(st.bg, mode: colorMode)
        if hasText && fg == bg && fg >= 0 && colorMode != .truecolor {
            // Text that quantised onto its own background would vanish.
            fg = (colorMode == .basic8 ? (bg == 0 ? 7 : 0) : (bg >= 244 || (bg >= 7 && bg < 16) ? 16 : 231))
        }
        if fg == -1 && bg == -1 { return 0 }
        let key = Int64(fg) << 32 | Int64(UInt32(bitPattern: Int32(bg)))
        if let p = pairs[key] { return p }
        if nextPair >= maxPairs {
            pairs.removeAll(); nextPair = 1; previous = nil
        }
        let p = nextPair
        nextPair += 1
        init_extended_pair(p, Int32(fg), Int32(bg))
        pairs[key] = p
        return p
    }
}

/// The UI loop: on the main thread, at most ~30 frames a second, drawing only when something
/// changed. Engine events and background results (datasets opened, rows read) are drained from the
/// app's inboxes each pass, so a slow open never holds up a key.
public enum TerminalLoop {
    public static func run(_ app: DashboardApp, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let term = try CursesTerminal(environment: environment, mouse: app.options.mouse)
        defer { term.shutdown() }
        // Leaving skips queued dataset opens and row loads; one already running ends with the process.
        defer { app.cancelBackgroundWork() }
        var size = term.size
        var quitRequestedAt: Date? = nil
        var stats = FrameStats()
        defer { if environment["SFTDECK_FRAME_STATS"] != nil { stats.report() } }
        // A key redraws at once; engine data alone at most every `dataFrameInterval` (10 fps), so
        // the screen takes little CPU from training on a 2-core machine.
        let dataFrameInterval: UInt64 = 100_000_000
        var lastDraw: UInt64 = 0
        while true {
            var urgent = false
            if let key = term.readKey() {
                if key == .resize { term.invalidate() }
                app.handle(key)
                urgent = true
                // Take every key already waiting before drawing.
                while let more = termKeyNoWait(term) { if more == .resize { term.invalidate() }; app.handle(more) }
            }
            app.pump()
            let now = term.size
            if now.width != size.width || now.height != size.height { size = now; term.invalidate(); app.dirty = true; urgent = true }
            let clock = DispatchTime.now().uptimeNanoseconds
            if app.dirty && (urgent || clock - lastDraw >= dataFrameInterval) {
                lastDraw = clock
                let t0 = DispatchTime.now().uptimeNanoseconds
                var buf = ScreenBuffer(width: size.width, height: size.height)
                app.render(into: &buf, ctx: app.renderContext(glyphs: term.glyphs, colorMode: term.colorMode))
                term.flush(buf)
                app.dirty = false
                stats.record(drawNanos: DispatchTime.now().uptimeNanoseconds - t0)
            }
            if app.shouldQuit {
                // Let a stopping run save its checkpoint before leaving (a second q leaves now).
                if !app.run.isActive || app.engine == nil || quitRequestedAt != nil { break }
                quitRequestedAt = Date()
                app.setStatus(.info, "stopping: saving a checkpoint before quitting (q again to quit now)")
                app.shouldQuit = false
                app.quitPending = true
            }
            if app.quitPending && (!app.run.isActive || Date().timeIntervalSince(quitRequestedAt ?? Date()) > 300) { break }
        }
    }

    static func termKeyNoWait(_ term: CursesTerminal) -> Key? {
        term.setTimeout(0); defer { term.setTimeout(33) }
        return term.readKey()
    }
}

/// Draw-time figures, printed to stderr at exit when SFTDECK_FRAME_STATS is set.
struct FrameStats {
    var draws: [UInt64] = []
    var lastDraw: UInt64 = 0
    var maxInterval: UInt64 = 0
    mutating func record(drawNanos: UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        if lastDraw > 0 { maxInterval = max(maxInterval, now - lastDraw) }
        lastDraw = now
        draws.append(drawNanos)
    }
    func report() {
        guard !draws.isEmpty else { return }
        let s = draws.sorted()
        func ms(_ v: UInt64) -> String { String(format: "%.2f", Double(v) / 1e6) }
        let line = "frames \(s.count): draw p50 \(ms(s[s.count / 2])) ms, p99 \(ms(s[min(s.count - 1, s.count * 99 / 100)])) ms, max \(ms(s.last!)) ms\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

extension CursesTerminal {
    func setTimeout(_ ms: Int32) { wtimeout(win, ms) }
}
