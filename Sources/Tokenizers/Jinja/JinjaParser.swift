import Foundation

/// A template problem with its position: "chat template line 3, column 14: unknown filter 'foo'".
public struct JinjaError: Error, CustomStringConvertible, LocalizedError {
    public enum Kind: Sendable { case syntax, runtime, raised }
    public var kind: Kind
    public var message: String
    public var line: Int
    public var column: Int
    public var description: String {
        switch kind {
        case .raised: return "chat template raised an error (line \(line)): \(message)"
        default: return "chat template line \(line), column \(column): \(message)"
        }
    }
    public var errorDescription: String? { description }
}

struct Pos { var line: Int; var col: Int }

// MARK: - Lexing

enum Tok: Equatable {
    case name(String), string(String), int(Int), double(Double), op(String), end
}

struct PTok { var tok: Tok; var pos: Pos }

/// One chunk of template source after whitespace control.
enum Chunk {
    case text(String)
    case output([PTok], Pos)
    case tag([PTok], Pos)
}

/// jinja2's lexer with transformers' environment: trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.
struct JinjaLexer {
    let src: [Unicode.Scalar]
    var i = 0
    var line = 1, col = 1

    init(_ source: String) {
        // jinja2 normalizes newlines to "\n" and drops one trailing newline (keep_trailing_newline=False).
        var s = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if s.hasSuffix("\n") { s.removeLast() }
        src = Array(s.unicodeScalars)
    }

    func err(_ m: String, _ p: Pos) -> JinjaError { JinjaError(kind: .syntax, message: m, line: p.line, column: p.col) }
    var pos: Pos { Pos(line: line, col: col) }

    mutating func adv(_ n: Int = 1) {
        for _ in 0..<n where i < src.count {
            if src[i] == "\n" { line += 1; col = 1 } else { col += 1 }
            i += 1
        }
    }
    func at(_ s: String, _ k: Int? = nil) -> Bool {
        var j = k ?? i
        for c in s.unicodeScalars { guard j < src.count, src[j] == c else { return false }; j += 1 }
        return true
    }

    mutating func chunks() throws -> [Chunk] {
        var out: [Chunk] = []
        var text = String.UnicodeScalarView()
        var lineStarting = true
        var stripNextLeading = false
        func flushText(_ out: inout [Chunk], _ text: inout String.UnicodeScalarView) {
            if !text.isEmpty { out.append(.text(String(text))); text = String.UnicodeScalarView() }
        }
        while i < src.count {
            let isBlock = at("{%"), isVar = at("{{"), isComment = at("{#")
            if !(isBlock || isVar || isComment) {
                if stripNextLeading {
                    if src[i].properties.isWhitespace { adv(); continue }
                    stripNextLeading = false
                }
                text.append(src[i]); adv(); continue
            }
            stripNextLeading = false
            let tagPos = pos
            let sign: Unicode.Scalar? = (i + 2 < src.count && (src[i + 2] == "-" || src[i + 2] == "+")) ? src[i + 2] : nil
            // whitespace control on the text before the tag
            if sign == "-" {
                while let l = text.last, l.properties.isWhitespace { text.removeLast() }
            } else if sign != "+" && !isVar {
                // lstrip_blocks: drop spaces/tabs between the line start and the tag
                var k = text.endIndex
                var onlyBlank = true
                while k > text.startIndex {
                    let p = text.index(before: k)
                    if text[p] == "\n" { break }
                    if text[p] != " " && text[p] != "\t" { onlyBlank = false; break }
                    k = p
                }
                let atLineStart = k > text.startIndex || (text.isEmpty ? lineStarting : lineStarting)
                if onlyBlank && atLineStart { text.removeSubrange(k...) }
            }
            flushText(&out, &text)
            adv(sign != nil ? 3 : 2)
            if isComment {
                // find "#}"
                while i < src.count && !at("#}") { adv() }
                guard i < src.count else { throw err("unterminated comment", tagPos) }
                let minus = i > 0 && src[i - 1] == "-"
                adv(2)
                if minus { stripNextLeading = true }
                else if i < src.count && src[i] == "\n" { adv() }  // trim_blocks
                lineStarting = true
                continue
            }
            let (toks, minus) = try exprTokens(closer: isVar ? "}}" : "%}", tagPos: tagPos)
            if isVar {
                out.append(.output(toks, tagPos))
                lineStarting = false
            } else {
                // {% raw %} ... {% endraw %}
                if toks.count == 2, case .name("raw") = toks[0].tok {
                    if minus { while i < src.count && src[i].properties.isWhitespace { adv() } }
                    else if i < src.count && src[i] == "\n" { adv() }
                    var raw = String.UnicodeScalarView()
                    while i < src.count {
                        if at("{%") {
                            var j = i + 2
                            if j < src.count && (src[j] == "-" || src[j] == "+") { j += 1 }
                            while j < src.count && src[j] == " " { j += 1 }
                            if at("endraw", j) {
                                if src[i + 2] == "-" { while let l = raw.last, l.properties.isWhitespace { raw.removeLast() } }
                                break
                            }
                        }
                        raw.append(src[i]); adv()
                    }
                    guard i < src.count else { throw err("unterminated raw block", tagPos) }
                    out.append(.text(String(raw)))
                    let endPos = pos
                    adv(2)
                    if i < src.count && (src[i] == "-" || src[i] == "+") { adv() }
                    let (_, m2) = try exprTokens(closer: "%}", tagPos: endPos)
                    if m2 { stripNextLeading = true } else if i < src.count && src[i] == "\n" { adv() }
                    lineStarting = true
                    continue
                }
                out.append(.tag(toks, tagPos))
                if minus { stripNextLeading = true }
                else if i < src.count && src[i] == "\n" { adv(); lineStarting = true; continue }  // trim_blocks
                lineStarting = false
            }
            if minus { stripNextLeading = true }
        }
        flushText(&out, &text)
        return out
    }

    /// Tokens up to the closing `}}` / `%}` (brackets balanced); returns whether it was `-}}` / `-%}`.
    mutating func exprTokens(closer: String, tagPos: Pos) throws -> ([PTok], Bool) {
        var toks: [PTok] = []
        var depth = 0
        while true {
            while i < src.count && src[i].properties.isWhitespace { adv() }
            guard i < src.count else { throw err("unterminated tag: expected '\(closer)'", tagPos) }
            if depth == 0 {
                if at("-" + closer) { adv(3); toks.append(PTok(tok: .end, pos: pos)); return (toks, true) }
                if at("+" + closer) { adv(3); toks.append(PTok(tok: .end, pos: pos)); return (toks, false) }
                if at(closer) { adv(2); toks.append(PTok(tok: .end, pos: pos)); return (toks, false) }
            }
            let p = pos
            let c = src[i]
            if c == "'" || c == "\"" {
                adv()
                var s = String.UnicodeScalarView()
                while true {
                    guard i < src.count else { throw err("unterminated string literal", p) }
                    let d = src[i]
                    if d == c { adv(); break }
                    if d == "\\" && i + 1 < src.count {
                        let e = src[i + 1]
                        adv(2)
                        switch e {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        case "\\": s.append("\\")
                        case "'": s.append("'")
                        case "\"": s.append("\"")
                        case "0": s.append("\0")
                        case "a": s.append("\u{07}")
                        case "b": s.append("\u{08}")
                        case "f": s.append("\u{0C}")
                        case "v": s.append("\u{0B}")
                        case "\n": break
                        case "x", "u", "U":
                            let n = e == "x" ? 2 : (e == "u" ? 4 : 8)
                            var h = ""
                            for _ in 0..<n where i < src.count { h.unicodeScalars.append(src[i]); adv() }
                            guard let v = UInt32(h, radix: 16), let u = Unicode.Scalar(v) else { throw err("bad escape in string literal", p) }
                            s.append(u)
                        default: s.append("\\"); s.append(e)
                        }
                        continue
                    }
                    s.append(d); adv()
                }
                toks.append(PTok(tok: .string(String(s)), pos: p))
                continue
            }
            if c.properties.numericType != nil && c.value < 0x80 {
                var s = ""
                var isFloat = false
                while i < src.count, (src[i].value >= 0x30 && src[i].value <= 0x39) || src[i] == "_" ||
                        (src[i] == "." && !isFloat && i + 1 < src.count && src[i + 1].value >= 0x30 && src[i + 1].value <= 0x39) ||
                        ((src[i] == "e" || src[i] == "E") && !s.isEmpty) {
                    if src[i] == "." || src[i] == "e" || src[i] == "E" { isFloat = true }
                    if src[i] != "_" { s.unicodeScalars.append(src[i]) }
                    adv()
                    if (s.hasSuffix("e") || s.hasSuffix("E")), i < src.count, src[i] == "-" || src[i] == "+" { s.unicodeScalars.append(src[i]); adv() }
                }
                if isFloat { toks.append(PTok(tok: .double(Double(s) ?? 0), pos: p)) }
                else { toks.append(PTok(tok: .int(Int(s) ?? 0), pos: p)) }
                continue
            }
            if c == "_" || c.properties.isAlphabetic {
                var s = ""
                while i < src.count, src[i] == "_" || src[i].properties.isAlphabetic || (src[i].value >= 0x30 && src[i].value <= 0x39) {
                    s.unicodeScalars.append(src[i]); adv()
                }
                toks.append(PTok(tok: .name(s), pos: p))
                continue
            }
            let ops = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"]
            guard let op = ops.first(where: { at($0) }) else { throw err("unexpected character '\(c)'", p) }
            if op == "(" || op == "[" || op == "{" { depth += 1 }
            if op == ")" || op == "]" || op == "}" { depth -= 1 }
            adv(op.unicodeScalars.count)
            toks.append(PTok(tok: .op(op), pos: p))
        }
    }
}

// MARK: - AST

indirect enum Expr {
    case literal(JinjaValue)
    case name(String, Pos)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attr(Expr, String, Pos)
    case item(Expr, Expr, Pos)
    case slice(Expr, Expr?, Expr?, Expr?, Pos)
    case call(Expr, [Expr], [(String, Expr)], Pos)
    case filter(Expr, String, [Expr], [(String, Expr)], Pos)
    case test(Expr, String, [Expr], negated: Bool, Pos)
    case unary(String, Expr, Pos)
    case binary(String, Expr, Expr, Pos)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case not(Expr)
    case compare(Expr, [(String, Expr)], Pos)
    case cond(Expr, Expr, Expr?)
}

indirect enum Node {
    case text(String)
    case output(Expr, Pos)
    case ifs([(Expr, [Node])], [Node]?)
    case forLoop(targets: [String], iter: Expr, filter: Expr?, body: [Node], elseBody: [Node]?, recursive: Bool, Pos)
    case set(targets: [String], attr: String?, Expr, Pos)
    case setBlock(String, [Node])
    /// `usesCaller`: the body mentions `caller` (jinja2 then accepts the `caller` of a call block).
    case macro(String, [(String, Expr?)], [Node], usesCaller: Bool)
    /// `{% call(params) macro(args) %}body{% endcall %}`: the call, with `caller` = the body as a macro.
    case callBlock(Expr, [(String, Expr?)], [Node], Pos)
    case generation([Node], Pos)
    case breakLoop, continueLoop
    case filterBlock(String, [Expr], [Node], Pos)
}

// MARK: - Parsing

struct JinjaParser {
    var chunks: [Chunk]
    var ci = 0
    // expression token stream for the current tag
    var toks: [PTok] = []
    var ti = 0

    static let knownFilters: Set<String> = [
        "trim", "length", "count", "upper", "lower", "capitalize", "title", "tojson", "first", "last", "join", "default", "d",
        "items", "selectattr", "rejectattr", "select", "reject", "map", "replace", "string", "list", "int", "float", "abs",
        "round", "reverse", "sort", "unique", "sum", "min", "max", "dictsort", "safe", "escape", "e", "indent", "batch",
        "wordcount", "striptags", "center", "truncate", "attr", "pprint", "forceescape", "xmlattr", "urlencode", "filesizeformat",
    ]
    static let knownTests: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "iterable",
        "mapping", "sequence", "callable", "equalto", "eq", "==", "ne", "!=", "sameas", "lt", "<", "le", "<=", "gt", ">",
        "ge", ">=", "in", "odd", "even", "divisibleby", "lower", "upper", "escaped", "filter", "test",
    ]

    init(_ chunks: [Chunk]) { self.chunks = chunks }

    func err(_ m: String, _ p: Pos) -> JinjaError { JinjaError(kind: .syntax, message: m, line: p.line, column: p.col) }

    var cur: PTok { toks[ti] }
    mutating func next() -> PTok { let t = toks[ti]; if ti < toks.count - 1 { ti += 1 }; return t }
    func isOp(_ o: String) -> Bool { if case .op(o) = cur.tok { return true }; return false }
    func isName(_ n: String) -> Bool { if case .name(n) = cur.tok { return true }; return false }
    mutating func expectOp(_ o: String) throws {
        guard isOp(o) else { throw err("expected '\(o)'\(describe(cur))", cur.pos) }
        _ = next()
    }
    mutating func expectName() throws -> String {
        guard case .name(let n) = cur.tok else { throw err("expected a name\(describe(cur))", cur.pos) }
        _ = next(); return n
    }
    mutating func expectEnd() throws {
        guard case .end = cur.tok else { throw err("expected end of tag\(describe(cur))", cur.pos) }
    }
    func describe(_ t: PTok) -> String {
        switch t.tok {
        case .end: return ", found end of tag"
        case .name(let n): return ", found '\(n)'"
        case .op(let o): return ", found '\(o)'"
        case .string(let s): return ", found string \(JinjaValue.pyRepr(s))"
        case .int(let i): return ", found \(i)"
        case .double(let d): return ", found \(d)"
        }
    }

    /// Parses nodes until a tag whose first name is in `until`; returns the nodes and that tag's name.
    mutating func parseBody(until: Set<String>, opener: (String, Pos)?) throws -> ([Node], String?) {
        var nodes: [Node] = []
        while ci < chunks.count {
            let c = chunks[ci]; ci += 1
            switch c {
            case .text(let s): nodes.append(.text(s))
            case .output(let t, let p):
                toks = t; ti = 0
                if case .end = cur.tok { throw err("empty expression", p) }
                let e = try parseExpr()
                try expectEnd()
                nodes.append(.output(e, p))
            case .tag(let t, let p):
                toks = t; ti = 0
                guard case .name(let kw) = cur.tok else { throw err("expected a tag name\(describe(cur))", cur.pos) }
                if until.contains(kw) { _ = next(); return (nodes, kw) }
                _ = next()
                nodes.append(try parseStatement(kw, p))
            }
        }
        if let (name, p) = opener { throw err("'\(name)' tag is never closed (expected \(until.sorted().map { "'\($0)'" }.joined(separator: " or ")))", p) }
        return (nodes, nil)
    }

    mutating func parseStatement(_ kw: String, _ p: Pos) throws -> Node {
        switch kw {
        case "if":
            var branches: [(Expr, [Node])] = []
            var cond = try parseExpr()
            try expectEnd()
            var elseBody: [Node]? = nil
            while true {
                let (body, endTag) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", p))
                branches.append((cond, body))
                if endTag == "elif" { cond = try parseExpr(); try expectEnd(); continue }
                if endTag == "else" {
                    try expectEnd()
                    let (eb, _) = try parseBody(until: ["endif"], opener: ("if", p))
                    try expectEnd()
                    elseBody = eb
                } else { try expectEnd() }
                break
            }
            return .ifs(branches, elseBody)
        case "for":
            var targets = [try expectName()]
            while isOp(",") { _ = next(); targets.append(try expectName()) }
            guard isName("in") else { throw err("expected 'in'\(describe(cur))", cur.pos) }
            _ = next()
            let iter = try parseExpr(noCondExpr: true)
            var filter: Expr? = nil
            if isName("if") { _ = next(); filter = try parseExpr() }
            let recursive = isName("recursive")
            if recursive { _ = next() }
            try expectEnd()
            let (body, endTag) = try parseBody(until: ["else", "endfor"], opener: ("for", p))
            var elseBody: [Node]? = nil
            if endTag == "else" {
                try expectEnd()
                (elseBody, _) = try parseBody(until: ["endfor"], opener: ("for", p))
            }
            try expectEnd()
            return .forLoop(targets: targets, iter: iter, filter: filter, body: body, elseBody: elseBody, recursive: recursive, p)
        case "set":
            var targets = [try expectName()]
            var attr: String? = nil
            if isOp(".") { _ = next(); attr = try expectName() }
            while isOp(",") { _ = next(); targets.append(try expectName()) }
            if case .end = cur.tok {
                guard targets.count == 1, attr == nil else { throw err("block set takes one name", p) }
                let (body, _) = try parseBody(until: ["endset"], opener: ("set", p))
                try expectEnd()
                return .setBlock(targets[0], body)
            }
            try expectOp("=")
            var e = try parseExpr()
            if isOp(",") {
                var items = [e]
                while isOp(",") { _ = next(); if case .end = cur.tok { break }; items.append(try parseExpr()) }
                e = .tuple(items)
            }
            try expectEnd()
            return .set(targets: targets, attr: attr, e, p)
        case "macro":
            let name = try expectName()
            try expectOp("(")
            let params = try parseParams()
            try expectEnd()
            let bodyStart = ci
            let (body, _) = try parseBody(until: ["endmacro"], opener: ("macro", p))
            if !isOp("") { _ = try? expectName() }
            return .macro(name, params, body, usesCaller: mentionsName("caller", chunks[bodyStart..<ci]))
        case "call":
            var params: [(String, Expr?)] = []
            if isOp("(") { _ = next(); params = try parseParams() }
            let call = try parseExpr()
            guard case .call = call else { throw err("expected call", p) }
            try expectEnd()
            let (body, _) = try parseBody(until: ["endcall"], opener: ("call", p))
            try expectEnd()
            return .callBlock(call, params, body, p)
        case "generation":
            try expectEnd()
            let (body, _) = try parseBody(until: ["endgeneration"], opener: ("generation", p))
            try expectEnd()
            return .generation(body, p)
        case "break": try expectEnd(); return .breakLoop
        case "continue": try expectEnd(); return .continueLoop
        case "filter":
            let name = try expectName()
            var args: [Expr] = []
            if isOp("(") { _ = next(); while !isOp(")") { args.append(try parseExpr()); if isOp(",") { _ = next() } else { break } }; try expectOp(")") }
            guard JinjaParser.knownFilters.contains(name) else { throw err("no filter named '\(name)'", p) }
            try expectEnd()
            let (body, _) = try parseBody(until: ["endfilter"], opener: ("filter", p))
            try expectEnd()
            return .filterBlock(name, args, body, p)
        case "elif", "else", "endif", "endfor", "endmacro", "endset", "endgeneration", "endfilter", "endcall":
            throw err("unexpected '\(kw)'", p)
        default:
            throw err("unknown tag '\(kw)'", p)
        }
    }

    /// Macro / caller parameters after the `(`: `name` or `name=default`, comma-separated, through `)`.
    mutating func parseParams() throws -> [(String, Expr?)] {
        var params: [(String, Expr?)] = []
        while !isOp(")") {
            let n = try expectName()
            var d: Expr? = nil
            if isOp("=") { _ = next(); d = try parseExpr() }
            params.append((n, d))
            if isOp(",") { _ = next() } else { break }
        }
        try expectOp(")")
        return params
    }

    /// Whether any expression or tag in `chunks` names `name` (how jinja2 decides a macro takes `caller`).
    func mentionsName(_ name: String, _ chunks: ArraySlice<Chunk>) -> Bool {
        chunks.contains { c in
            switch c {
            case .text: return false
            case .output(let t, _), .tag(let t, _): return t.contains { $0.tok == .name(name) }
            }
        }
    }

    // Expressions, by jinja2's precedence: conditional < or < and < not < comparison < +,- < ~ < *,/,//,% < ** < unary < postfix/filters.
    mutating func parseExpr(noCondExpr: Bool = false) throws -> Expr {
        let e = try parseOr()
        if noCondExpr { return e }
        if isName("if") {
            _ = next()
            let c = try parseOr()
            var other: Expr? = nil
            if isName("else") { _ = next(); other = try parseExpr() }
            return .cond(c, e, other)
        }
        return e
    }
    mutating func parseOr() throws -> Expr {
        var l = try parseAnd()
        while isName("or") { _ = next(); l = .or(l, try parseAnd()) }
        return l
    }
    mutating func parseAnd() throws -> Expr {
        var l = try parseNot()
        while isName("and") { _ = next(); l = .and(l, try parseNot()) }
        return l
    }
    mutating func parseNot() throws -> Expr {
        if isName("not") { _ = next(); return .not(try parseNot()) }
        return try parseCompare()
    }
    mutating func parseCompare() throws -> Expr {
        let p = cur.pos
        let l = try parseMath1()
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = cur.tok, ["==", "!=", "<", ">", "<=", ">="].contains(o) { _ = next(); ops.append((o, try parseMath1())) }
            else if isName("in") { _ = next(); ops.append(("in", try parseMath1())) }
            else if isName("not"), ti + 1 < toks.count, case .name("in") = toks[ti + 1].tok { _ = next(); _ = next(); ops.append(("notin", try parseMath1())) }
            else { break }
        }
        return ops.isEmpty ? l : .compare(l, ops, p)
    }
    mutating func parseMath1() throws -> Expr {
        var l = try parseConcat()
        while case .op(let o) = cur.tok, o == "+" || o == "-" { let p = cur.pos; _ = next(); l = .binary(o, l, try parseConcat(), p) }
        return l
    }
    mutating func parseConcat() throws -> Expr {
        var l = try parseMath2()
        while isOp("~") { let p = cur.pos; _ = next(); l = .binary("~", l, try parseMath2(), p) }
        return l
    }
    mutating func parseMath2() throws -> Expr {
        var l = try parsePow()
        while case .op(let o) = cur.tok, ["*", "/", "//", "%"].contains(o) { let p = cur.pos; _ = next(); l = .binary(o, l, try parsePow(), p) }
        return l
    }
    mutating func parsePow() throws -> Expr {
        var l = try parseUnary()
        while isOp("**") { let p = cur.pos; _ = next(); l = .binary("**", l, try parseUnary(), p) }
        return l
    }
    mutating func parseUnary() throws -> Expr {
        if case .op(let o) = cur.tok, o == "-" || o == "+" {
            let p = cur.pos; _ = next()
            return try parseFilters(.unary(o, try parseUnary(noFilter: true), p))
        }
        return try parseFilters(try parsePostfix(try parsePrimary()))
    }
    mutating func parseUnary(noFilter: Bool) throws -> Expr {
        if case .op(let o) = cur.tok, o == "-" || o == "+" { let p = cur.pos; _ = next(); return .unary(o, try parseUnary(noFilter: true), p) }
        return try parsePostfix(try parsePrimary())
    }

    mutating func parsePrimary() throws -> Expr {
        let t = next()
        switch t.tok {
        case .string(var s):
            while case .string(let more) = cur.tok { s += more; _ = next() }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, t.pos)
            }
        case .op("("):
            if isOp(")") { _ = next(); return .tuple([]) }
            let e = try parseExpr()
            if isOp(",") {
                var items = [e]
                while isOp(",") { _ = next(); if isOp(")") { break }; items.append(try parseExpr()) }
                try expectOp(")")
                return .tuple(items)
            }
            try expectOp(")")
            return e
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") { items.append(try parseExpr()); if isOp(",") { _ = next() } else { break } }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !isOp("}") {
                let k = try parseExpr()
                try expectOp(":")
                pairs.append((k, try parseExpr()))
                if isOp(",") { _ = next() } else { break }
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw err("unexpected \(describe(t).dropFirst(8))", t.pos)
        }
    }

    mutating func parseArgs() throws -> ([Expr], [(String, Expr)]) {
        try expectOp("(")
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !isOp(")") {
            if case .name(let n) = cur.tok, ti + 1 < toks.count, case .op("=") = toks[ti + 1].tok {
                _ = next(); _ = next()
                kwargs.append((n, try parseExpr()))
            } else {
                args.append(try parseExpr())
            }
            if isOp(",") { _ = next() } else { break }
        }
        try expectOp(")")
        return (args, kwargs)
    }

    mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            let p = cur.pos
            if isOp(".") {
                _ = next()
                if case .int(let i) = cur.tok { _ = next(); e = .item(e, .literal(.int(i)), p); continue }
                e = .attr(e, try expectName(), p)
            } else if isOp("[") {
                _ = next()
                var parts: [Expr?] = [nil]
                var isSlice = false
                while !isOp("]") {
                    if isOp(":") { isSlice = true; _ = next(); parts.append(nil); continue }
                    parts[parts.count - 1] = try parseExpr()
                }
                try expectOp("]")
                if isSlice {
                    e = .slice(e, parts[0], parts.count > 1 ? parts[1] : nil, parts.count > 2 ? parts[2] : nil, p)
                } else {
                    guard let idx = parts[0] else { throw err("empty subscript", p) }
                    e = .item(e, idx, p)
                }
            } else if isOp("(") {
                let (a, k) = try parseArgs()
                e = .call(e, a, k, p)
            } else { return e }
        }
    }

    mutating func parseFilters(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            if isOp("|") {
                _ = next()
                let p = cur.pos
                var name = try expectName()
                while isOp(".") { _ = next(); name += "." + (try expectName()) }
                guard JinjaParser.knownFilters.contains(name) else { throw err("no filter named '\(name)'", p) }
                var a: [Expr] = [], k: [(String, Expr)] = []
                if isOp("(") { (a, k) = try parseArgs() }
                e = .filter(e, name, a, k, p)
            } else if isName("is") {
                _ = next()
                let p = cur.pos
                var negated = false
                if isName("not") { _ = next(); negated = true }
                var name: String
                if case .op(let o) = cur.tok, ["==", "!=", "<", ">", "<=", ">="].contains(o) { _ = next(); name = o }
                else { name = try expectName() }
                if name == "none" || name == "true" || name == "false" { name = name.lowercased() }
                guard JinjaParser.knownTests.contains(name) else { throw err("no test named '\(name)'", p) }
                var a: [Expr] = []
                if isOp("(") { a = try parseArgs().0 }
                else if !isTestEnd() { a = [try parsePostfix(try parsePrimary())] }
                e = .test(e, name, a, negated: negated, p)
            } else { return e }
        }
    }

    /// A test without parentheses may take one argument (`x is divisibleby 3`, `x is sameas none`).
    func isTestEnd() -> Bool {
        switch cur.tok {
        case .end: return true
        case .op(let o): return ![ "(", "["].contains(o) || o == ")" || o == "]"
        case .name(let n): return ["and", "or", "else", "if", "is", "in", "not"].contains(n)
        case .string, .int, .double: return false
        }
    }
}
