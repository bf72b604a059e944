import Foundation

public struct InspectorState: Sendable {
    public enum Pane: Sendable { case conversation, tokens }
    public var rowIndex = 0
    public var row: InspectedRow?
    public var error: String?
    public var focus: Pane = .tokens
    public var conversationScroll = 0
    public var tokenCursor = 0
    public var query = ""
    public var matches: [Int] = []       // token index where each match starts
    public var matchTokens: Set<Int> = []
    public var showRendered = false
    public var datasetName = ""
    public var split = ""
    /// The row being read on the rows lane (nil: none); the shown row stays until it arrives.
    public var loading: RowRequest?
    public struct RowRequest: Sendable, Equatable {
        public var ticket: Int, index: Int
        public init(ticket: Int, index: Int) { self.ticket = ticket; self.index = index }
    }
    public init() {}

    /// Start indices of maximal runs of trained tokens.
    public var trainedRunStarts: [Int] {
        guard let t = row?.tokens else { return [] }
        var out: [Int] = []
        for i in t.indices where t[i].kind == .trained && (i == 0 || t[i - 1].kind != .trained) { out.append(i) }
        return out
    }
}

/// One row at a time: the conversation by role with image thumbnails, and the token view.
public enum InspectorScreen {
    public static let bindings: [KeyBinding] = [
        KeyBinding([.char("l"), .right, .char("h"), .left], "next / previous row", status: true),
        KeyBinding([.char("j"), .down, .char("k"), .up], "scroll / move token cursor"),
        KeyBinding([.char("]"), .char("[")], "next / previous trained run", status: true),
        KeyBinding([.char("/")], "search text", status: true),
        KeyBinding([.char("n"), .char("N")], "next / previous match"),
        KeyBinding([.char("g")], "go to row N", status: true),
        KeyBinding([.char("v")], "messages / rendered template"),
    ]

    /// Conversation lines: a role header per message, then its wrapped text.
    public static func conversationLines(_ row: InspectedRow, width: Int, rendered: Bool, ctx: RenderContext) -> [(String, Style)] {
        var out: [(String, Style)] = []
        if rendered, let text = row.renderedText {
            for l in TextWrap.wrap(text, width: width) { out.append((l, ctx.theme.base)) }
            return out
        }
        for m in row.messages {
            let images = m.imageCount > 0 ? " (\(m.imageCount) image\(m.imageCount == 1 ? "" : "s"))" : ""
            out.append(("\(ctx.glyphs.horizontal)\(ctx.glyphs.horizontal) \(m.role)\(images)", ctx.theme.roleStyle(m.role)))
            for l in TextWrap.wrap(m.text, width: width) { out.append((l, ctx.theme.base)) }
            out.append(("", ctx.theme.base))
        }
        return out
    }

    public static func render(_ s: InspectorState, into buf: inout ScreenBuffer, _ r: Rect, ctx: RenderContext) {
        let (left, right) = r.splitLeft(r.width * 9 / 20)
        let position = s.loading.map { "loading row \($0.index)\(ctx.glyphs.ellipsis)" }
            ?? s.row.map { "row \($0.index)/\(max(0, $0.rowCount - 1))" } ?? ""
        let convTitle = "\(s.showRendered ? "Rendered template" : "Conversation")  \(s.datasetName) \(s.split)"
        let conv = Frame.draw(&buf, left, title: convTitle, focused: s.focus == .conversation, ctx: ctx, right: position)
        let tok = Frame.draw(&buf, right, title: "Tokens", focused: s.focus == .tokens, ctx: ctx,
                             right: s.query.isEmpty ? nil : "/\(s.query): \(s.matches.count) matches")
        if s.row == nil, let l = s.loading {
            buf.put("loading row \(l.index)\(ctx.glyphs.ellipsis)", x: conv.x + 1, y: conv.y, style: ctx.theme.mutedText, clip: conv)
            return
        }
        if let e = s.error {
            for (i, l) in TextWrap.wrap(e, width: max(10, conv.width - 2)).enumerated() {
                buf.put(l, x: conv.x + 1, y: conv.y + i, style: ctx.theme.errorText, clip: conv)
            }
            return
        }
        guard let row = s.row else {
            buf.put("No row loaded: pick a dataset on screen 1.", x: conv.x + 1, y: conv.y, style: ctx.theme.mutedText, clip: conv)
            return
        }
        // Thumbnails take a strip at the bottom of the conversation pane.
        var textArea = conv
        if !row.images.isEmpty && !s.showRendered {
            let stripH = min(10, max(4, conv.height / 3))
            let (top, strip) = conv.splitBottom(stripH)
            textArea = top
            var x = strip.x
            let each = max(8, min(24, strip.width / max(1, row.images.count) - 1))
            for (i, img) in row.images.enumerated() {
                guard x + 4 <= strip.maxX else { break }
                let cell = Rect(x: x, y: strip.y, width: min(each, strip.maxX - x), height: strip.height)
                let used = Thumbnail(img, caption: "#\(i + 1) \(img.width)x\(img.height)").draw(&buf, cell, ctx: ctx)
                x += max(used.width, min(cell.width, DisplayWidth.of("#\(i + 1) \(img.width)x\(img.height)"))) + 2
            }
        }
        let lines = conversationLines(row, width: max(1, textArea.width - 1), rendered: s.showRendered, ctx: ctx)
        let top = min(s.conversationScroll, max(0, lines.count - textArea.height))
        for (i, (l, st)) in lines.dropFirst(top).prefix(textArea.height).enumerated() {
            buf.put(l, x: textArea.x + 1, y: textArea.y + i, style: st, clip: textArea)
        }
        if row.tokens.isEmpty {
            let why = row.tokenNote ?? "No tokens: the model folder has no tokenizer."
            for (i, l) in TextWrap.wrap(why, width: max(10, tok.width - 2)).enumerated() {
                buf.put(l, x: tok.x + 1, y: tok.y + i, style: ctx.theme.mutedText, clip: tok)
            }
        } else {
            TokenView(tokens: row.tokens, cursor: s.focus == .tokens ? s.tokenCursor : nil, highlight: s.matchTokens)
                .draw(&buf, tok, ctx: ctx)
        }
    }
}

extension DashboardApp {
    /// Asks for a row of the selected dataset and split; it is read (a cold parquet row group, image
    /// decoding, encoding) on the rows lane, and shown when it arrives (`applyRow`). Only the newest
    /// request counts: queued older ones are skipped, late answers dropped.
    public func loadInspectorRow(_ index: Int) {
        guard let d = datasets.current else { inspector.error = nil; inspector.row = nil; inspector.loading = nil; return }
        let split = d.splits.indices.contains(datasets.splitIndex) ? d.splits[datasets.splitIndex] : d.splits.first
        let count = split?.rows ?? 0
        let i = max(0, count > 0 ? min(index, count - 1) : index)
        inspector.datasetName = d.name
        inspector.split = split?.name ?? ""
        lastRowTicket += 1
        let ticket = lastRowTicket
        inspector.loading = .init(ticket: ticket, index: i)
        inspector.rowIndex = i
        latestRow.set(ticket)
        let src = source, inbox = workInbox, cancel = cancellation, latest = latestRow, splitName = split?.name ?? "train"
        work.schedule(.rows) {
            guard !cancel.isCancelled, latest.isLatest(ticket) else { return }
            do {
                let row = try src.loadRow(dataset: d, split: splitName, index: i)
                inbox.post(.rowLoaded(ticket: ticket, index: i, row: row, error: nil))
            } catch {
                inbox.post(.rowLoaded(ticket: ticket, index: i, row: nil, error: "\(error)"))
            }
        }
    }

    /// A row load's answer; dropped unless it answers the newest request.
    func applyRow(ticket: Int, index: Int, row: InspectedRow?, error: String?) {
        guard inspector.loading?.ticket == ticket else { return }
        inspector.loading = nil
        inspector.rowIndex = index
        if let row {
            inspector.row = row
            inspector.error = nil
            inspector.conversationScroll = 0
            inspector.tokenCursor = inspector.trainedRunStarts.first ?? 0
            if !inspector.query.isEmpty { inspectorSearch(inspector.query, announce: false) }
        } else {
            inspector.row = nil
            inspector.error = error ?? "cannot read row \(index)"
        }
    }

    func moveTokenCursor(_ delta: Int) {
        guard let n = inspector.row?.tokens.count, n > 0 else { return }
        inspector.tokenCursor = min(n - 1, max(0, inspector.tokenCursor + delta))
    }

    func handleInspectorKey(_ key: Key) {
        let s = inspector
        switch key {
        case .char("l"), .right, .pageDown: loadInspectorRow(s.rowIndex + 1)
        case .char("h"), .left, .pageUp: loadInspectorRow(max(0, s.rowIndex - 1))
        case .tab, .backTab: inspector.focus = s.focus == .tokens ? .conversation : .tokens
        case .char("j"), .down:
            if s.focus == .tokens { moveTokenCursor(8) } else { inspector.conversationScroll += 1 }
        case .char("k"), .up:
            if s.focus == .tokens { moveTokenCursor(-8) } else { inspector.conversationScroll = max(0, s.conversationScroll - 1) }
        case .char("w"): moveTokenCursor(1)
        case .char("b"): moveTokenCursor(-1)
        case .char("]"):
            if let next = s.trainedRunStarts.first(where: { $0 > s.tokenCursor }) { inspector.tokenCursor = next; inspector.focus = .tokens }
            else { setStatus(.info, "no later trained run in this row") }
        case .char("["):
            if let prev = s.trainedRunStarts.last(where: { $0 < s.tokenCursor }) { inspector.tokenCursor = prev; inspector.focus = .tokens }
            else { setStatus(.info, "no earlier trained run in this row") }
        case .char("/"): prompt = Prompt(label: "search", text: s.query, purpose: .search)
        case .char("g"): prompt = Prompt(label: "go to row", purpose: .gotoRow)
        case .char("n"): jumpMatch(forward: true)
        case .char("N"): jumpMatch(forward: false)
        case .char("v"): inspector.showRendered.toggle(); inspector.conversationScroll = 0
        default: break
        }
    }

    func jumpMatch(forward: Bool) {
        let m = inspector.matches
        guard !m.isEmpty else { setStatus(.info, inspector.query.isEmpty ? "no search: press /" : "no matches for '\(inspector.query)'"); return }
        let c = inspector.tokenCursor
        inspector.tokenCursor = forward ? (m.first { $0 > c } ?? m[0]) : (m.last { $0 < c } ?? m[m.count - 1])
        inspector.focus = .tokens
    }

    /// Finds `query` in the tokens' joined text (so a match may span tokens) and in the messages.
    func inspectorSearch(_ query: String, announce: Bool = true) {
        inspector.query = query
        inspector.matches = []; inspector.matchTokens = []
        guard !query.isEmpty, let row = inspector.row else { return }
        var owner: [Int] = []   // token index of each character of the joined text
        var joined: [Character] = []
        for (i, t) in row.tokens.enumerated() { for ch in t.text.lowercased() { joined.append(ch); owner.append(i) } }
        let q = Array(query.lowercased())
        if !q.isEmpty && joined.count >= q.count {
            var i = 0
            while i + q.count <= joined.count {
                if Array(joined[i..<(i + q.count)]) == q {
                    inspector.matches.append(owner[i])
                    for k in i..<(i + q.count) { inspector.matchTokens.insert(owner[k]) }
                    i += q.count
                } else { i += 1 }
            }
        }
        var seen = Set<Int>()
        inspector.matches = inspector.matches.filter { seen.insert($0).inserted }
        if let first = inspector.matches.first(where: { $0 >= inspector.tokenCursor }) ?? inspector.matches.first {
            inspector.tokenCursor = first
        }
        let inMessages = row.messages.filter { $0.text.lowercased().contains(query.lowercased()) }.count
        if announce { setStatus(.info, "'\(query)': \(inspector.matches.count) matches in tokens, \(inMessages) messages") }
    }
}
