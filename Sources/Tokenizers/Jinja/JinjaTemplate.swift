import Foundation

/// A compiled chat template. Renders like transformers' `ImmutableSandboxedEnvironment(trim_blocks=True,
/// lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])` with its globals (`raise_exception`,
/// `strftime_now`, `namespace`, `dict`) and its `tojson` (ensure_ascii=False). `{% generation %}` blocks record
/// the character spans (Unicode scalars, Python `str` indices) of assistant text.
public final class JinjaTemplate: @unchecked Sendable {
    let nodes: [Node]
    public let source: String

    public init(_ source: String) throws {
        self.source = source
        var lexer = JinjaLexer(source)
        var parser = JinjaParser(try lexer.chunks())
        let (nodes, stray) = try parser.parseBody(until: [], opener: nil)
        if let stray { throw JinjaError(kind: .syntax, message: "unexpected '\(stray)'", line: 0, column: 0) }
        self.nodes = nodes
        hasGenerationBlocks = source.range(of: #"\{\%-?\s*generation\s*-?\%\}"#, options: .regularExpression) != nil
    }

    /// True when the template has `{% generation %}` blocks (what transformers checks before building a mask).
    public let hasGenerationBlocks: Bool

    public struct Rendered: Sendable {
        public var text: String
        /// [start, end) in Unicode scalars of `text`, one per `{% generation %}` block rendered.
        public var generationSpans: [Range<Int>]
    }

    public func render(_ context: [String: JinjaValue]) throws -> Rendered {
        let r = JinjaRenderer(globals: context)
        try r.run(nodes)
        return Rendered(text: r.out, generationSpans: r.spans)
    }
}

/// Control flow out of loops.
private enum LoopSignal: Error { case breakLoop, continueLoop }

final class JinjaRenderer {
    var scopes: [[String: JinjaValue]]
    var out = ""
    var outScalars = 0
    var spans: [Range<Int>] = []
    var captureDepth = 0

    init(globals: [String: JinjaValue]) {
        var g = JinjaRenderer.builtinGlobals()
        for (k, v) in globals { g[k] = v }
        scopes = [g, [:]]
    }

    static func builtinGlobals() -> [String: JinjaValue] {
        var g: [String: JinjaValue] = [:]
        g["raise_exception"] = .function(JinjaFunction("raise_exception") { a, _ in
            throw JinjaError(kind: .raised, message: a.first?.str ?? "", line: 0, column: 0)
        })
        g["strftime_now"] = .function(JinjaFunction("strftime_now") { a, _ in .string(strftimeNow(a.first?.str ?? "")) })
        g["namespace"] = .function(JinjaFunction("namespace") { a, k in
            var d = JinjaDict()
            if case .dict(let init0)? = a.first { for key in init0.keys { d[key] = init0[key] } }
            for (key, v) in k {
                if key.hasPrefix("_") { throw JinjaError(kind: .runtime, message: "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(key)'", line: 0, column: 0) }
                d[key] = v
            }
            return .namespace(JinjaNamespace(d))
        })
        g["dict"] = .function(JinjaFunction("dict") { a, k in
            var d = JinjaDict()
            if case .dict(let init0)? = a.first { for key in init0.keys { d[key] = init0[key] } }
            for (key, v) in k { d[key] = v }
            return .dict(d)
        })
        g["range"] = .function(JinjaFunction("range") { a, _ in
            let n = a.compactMap { $0.intValue }
            var start = 0, stop = 0, step = 1
            switch n.count {
            case 1: stop = n[0]
            case 2: start = n[0]; stop = n[1]
            case 3: start = n[0]; stop = n[1]; step = n[2]
            default: throw JinjaError(kind: .runtime, message: "range expects 1 to 3 integers", line: 0, column: 0)
            }
            guard step != 0 else { throw JinjaError(kind: .runtime, message: "range() arg 3 must not be zero", line: 0, column: 0) }
            return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
        })
        return g
    }

    static func strftimeNow(_ f: String) -> String {
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [Int8](repeating: 0, count: 256)
        let n = strftime(&buf, 256, f, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func emit(_ s: String) {
        out += s
        if captureDepth == 0 { outScalars += s.unicodeScalars.count }
    }

    func lookup(_ n: String) -> JinjaValue {
        for s in scopes.reversed() { if let v = s[n] { return v } }
        return .undefined(n)
    }
    func assign(_ n: String, _ v: JinjaValue) { scopes[scopes.count - 1][n] = v }

    func fail(_ m: String, _ p: Pos) -> JinjaError { JinjaError(kind: .runtime, message: m, line: p.line, column: p.col) }

    /// Renders nodes into a separate buffer (set blocks, macros, filter blocks).
    func capture(_ nodes: [Node]) throws -> String { try captureOutput { try run(nodes) } }

    func captureOutput(_ body: () throws -> Void) throws -> String {
        let saved = out
        out = ""
        captureDepth += 1
        defer { captureDepth -= 1 }
        do { try body() } catch { out = saved; throw error }
        let r = out
        out = saved
        return r
    }

    func run(_ nodes: [Node]) throws {
        for n in nodes { try exec(n) }
    }

    func exec(_ n: Node) throws {
        switch n {
        case .text(let s): emit(s)
        case .output(let e, let p):
            let v = try eval(e)
            if case .function = v { throw fail("cannot print a function", p) }
            emit(v.str)
        case .ifs(let branches, let elseBody):
            for (c, body) in branches where try eval(c).truthy { try run(body); return }
            if let elseBody { try run(elseBody) }
        case .forLoop(let targets, let iterE, let filter, let body, let elseBody, let recursive, let p):
            let loop = ForLoop(targets: targets, filter: filter, body: body, elseBody: elseBody, recursive: recursive,
                               p: p, definitionScopes: scopes)
            try runLoop(loop, over: try eval(iterE), depth0: 0)
        case .set(let targets, let attr, let e, let p):
            let v = try eval(e)
            if let attr {
                guard case .namespace(let ns) = lookup(targets[0]) else { throw fail("cannot assign attribute on non-namespace object '\(targets[0])'", p) }
                if attr.hasPrefix("_") { throw fail("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attr)'", p) }
                ns.values[attr] = v
            } else { bind(targets, v, p) }
        case .setBlock(let name, let body): assign(name, .string(try capture(body)))
        case .macro(let name, let params, let body, let usesCaller):
            let fn = JinjaFunction(name) { [unowned self] args, kwargs0 in
                var kwargs = kwargs0
                // jinja2's Macro: `caller` is its own argument, taken only by macros that mention it.
                var caller = JinjaValue.undefined(JinjaRenderer.noCaller)
                if let k = kwargs.firstIndex(where: { $0.0 == "caller" }) {
                    guard usesCaller else {
                        throw JinjaError(kind: .runtime, message: "macro '\(name)' was invoked with two values for the special caller argument. This is most likely a bug.", line: 0, column: 0)
                    }
                    caller = kwargs.remove(at: k).1
                }
                var scope = try self.bindParameters(params, args, kwargs)
                if usesCaller { scope["caller"] = caller }
                let savedScopes = self.scopes
                self.scopes = [self.scopes[0], self.scopes[1], scope]
                defer { self.scopes = savedScopes }
                return .string(try self.capture(body))
            }
            assign(name, .function(fn))
        case .callBlock(let callE, let params, let body, let p):
            guard case .call(let fe, let argsE, let kwE, let cp) = callE else { throw fail("expected call", p) }
            // The body becomes the macro `caller`, seeing the variables where the call block stands.
            let enclosing = scopes
            let caller = JinjaFunction("caller") { [unowned self] args, kwargs in
                let scope = try self.bindParameters(params, args, kwargs)
                let saved = self.scopes
                self.scopes = enclosing + [scope]
                defer { self.scopes = saved }
                return .string(try self.capture(body))
            }
            let f = try eval(fe)
            let args = try argsE.map { try eval($0) }
            let kwargs = try kwE.map { ($0.0, try eval($0.1)) } + [("caller", JinjaValue.function(caller))]
            emit(try call(f, args, kwargs, cp).str)
        case .generation(let body, _):
            let start = outScalars
            try run(body)
            if captureDepth == 0 { spans.append(start..<outScalars) }
        case .breakLoop: throw LoopSignal.breakLoop
        case .continueLoop: throw LoopSignal.continueLoop
        case .filterBlock(let name, let argsE, let body, let p):
            let s = try capture(body)
            emit(try applyFilter(name, .string(s), try argsE.map { try eval($0) }, [], p).str)
        }
    }

    /// A `{% for %}` statement, kept so that a recursive loop can run its body again (`loop(items)`).
    struct ForLoop {
        var targets: [String]
        var filter: Expr?
        var body: [Node]
        var elseBody: [Node]?
        var recursive: Bool
        var p: Pos
        /// The scopes where the for statement stands: a recursive call runs in these (as jinja2's loop
        /// function does), so an iteration's own `set`s do not leak into the levels below it.
        var definitionScopes: [[String: JinjaValue]]
    }

    /// Hidden key of a dict that can be called (the `loop` of a for statement).
    static let callKey = "__call__"
    /// The undefined `caller` of a macro called without a call block (jinja2's message).
    static let noCaller = "\u{1}No caller defined"

    /// The items a for statement iterates over.
    func iterationItems(_ v: JinjaValue, _ p: Pos) throws -> [JinjaValue] {
        let iterV = v.norm
        switch iterV {
        case .array(let a): return a
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined(let name): throw fail("'\(name)' is undefined", p)
        case .none: throw fail("'NoneType' object is not iterable", p)
        default: throw fail("'\(iterV.typeName)' object is not iterable", p)
        }
    }

    /// Runs a for statement over `iterable` at recursion depth `depth0` (0 for the statement itself).
    func runLoop(_ f: ForLoop, over iterable: JinjaValue, depth0: Int) throws {
        var items = try iterationItems(iterable, f.p)
        if let filter = f.filter {
            var kept: [JinjaValue] = []
            for it in items {
                scopes.append([:]); bind(f.targets, it, f.p)
                let ok = try eval(filter).truthy
                scopes.removeLast()
                if ok { kept.append(it) }
            }
            items = kept
        }
        if items.isEmpty { if let elseBody = f.elseBody { try run(elseBody) }; return }
        let count = items.count
        // loop(...) in a recursive loop renders the same body one level deeper, in the definition's scopes.
        let recurse = JinjaFunction("loop") { [unowned self] args, _ in
            guard f.recursive else {
                throw JinjaError(kind: .runtime, message: "The loop must have the 'recursive' marker to be called recursively.", line: 0, column: 0)
            }
            guard args.count == 1 else {
                throw JinjaError(kind: .runtime, message: "loop() takes exactly one iterable (got \(args.count) arguments)", line: 0, column: 0)
            }
            let saved = self.scopes
            self.scopes = f.definitionScopes
            defer { self.scopes = saved }
            return .string(try self.captureOutput { try self.runLoop(f, over: args[0], depth0: depth0 + 1) })
        }
        for (idx, it) in items.enumerated() {
            scopes.append([:])
            defer { scopes.removeLast() }
            var loop = JinjaDict()
            loop["index"] = .int(idx + 1); loop["index0"] = .int(idx)
            loop["revindex"] = .int(count - idx); loop["revindex0"] = .int(count - idx - 1)
            loop["first"] = .bool(idx == 0); loop["last"] = .bool(idx == count - 1)
            loop["length"] = .int(count); loop["depth"] = .int(depth0 + 1); loop["depth0"] = .int(depth0)
            loop["previtem"] = idx > 0 ? items[idx - 1] : .undefined("previtem")
            loop["nextitem"] = idx + 1 < count ? items[idx + 1] : .undefined("nextitem")
            loop["cycle"] = .function(JinjaFunction("cycle") { a, _ in a.isEmpty ? .none : a[idx % a.count] })
            loop[JinjaRenderer.callKey] = .function(recurse)
            assign("loop", .dict(loop))
            bind(f.targets, it, f.p)
            do { try run(f.body) }
            catch LoopSignal.continueLoop { continue }
            catch LoopSignal.breakLoop { break }
        }
    }

    /// Binds macro (or caller) parameters: positional, then keyword, then defaults; extra positional
    /// arguments in `varargs`.
    func bindParameters(_ params: [(String, Expr?)], _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> [String: JinjaValue] {
        var scope: [String: JinjaValue] = [:]
        for (k, (pn, def)) in params.enumerated() {
            if k < args.count { scope[pn] = args[k] }
            else if let kv = kwargs.first(where: { $0.0 == pn }) { scope[pn] = kv.1 }
            else if let def { scope[pn] = try eval(def) }
            else { scope[pn] = .undefined(pn) }
        }
        scope["varargs"] = .array(args.count > params.count ? Array(args[params.count...]) : [])
        return scope
    }

    /// Calls a function value (or a callable dict: a loop), giving errors without a position this one.
    func call(_ f: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)], _ p: Pos) throws -> JinjaValue {
        var fn: JinjaFunction
        switch f {
        case .function(let x): fn = x
        case .dict(let d):
            guard case .function(let x)? = d[JinjaRenderer.callKey] else { throw fail("'dict' object is not callable", p) }
            fn = x
        case .undefined(let n):
            throw fail(n == JinjaRenderer.noCaller ? "No caller defined" : "'\(n)' is undefined", p)
        default: throw fail("'\(f.typeName)' object is not callable", p)
        }
        do { return try fn.call(args, kwargs) }
        catch var je as JinjaError where je.line == 0 { je.line = p.line; je.column = p.col; throw je }
    }

    func bind(_ targets: [String], _ v: JinjaValue, _ p: Pos) {
        if targets.count == 1 { assign(targets[0], v); return }
        let parts: [JinjaValue]
        if case .array(let a) = v.norm { parts = a } else { parts = [] }
        for (k, t) in targets.enumerated() { assign(t, k < parts.count ? parts[k] : .undefined(t)) }
    }

    // MARK: expressions

    func eval(_ e: Expr) throws -> JinjaValue {
        switch e {
        case .literal(let v): return v
        case .name(let n, _): return lookup(n)
        case .list(let items): return .array(try items.map { try eval($0) })
        case .tuple(let items): return .tuple(try items.map { try eval($0) })
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs { d[try eval(k).str] = try eval(v) }
            return .dict(d)
        case .attr(let b, let name, let p):
            let base = try eval(b)
            if case .undefined(let n) = base { throw fail("'\(n)' is undefined", p) }
            return try getAttr(base, name, p)
        case .item(let b, let idxE, let p):
            let base = try eval(b)
            if case .undefined(let n) = base { throw fail("'\(n)' is undefined", p) }
            return try getItem(base, try eval(idxE), p)
        case .slice(let b, let lo, let hi, let st, let p):
            let base = try eval(b).norm
            let l = try lo.map { try eval($0).intValue } ?? nil
            let h = try hi.map { try eval($0).intValue } ?? nil
            let s = try st.map { try eval($0).intValue } ?? nil
            switch base {
            case .array(let a): return .array(JinjaRenderer.pySlice(a, l, h, s))
            case .string(let str):
                var v = String.UnicodeScalarView(); v.append(contentsOf: JinjaRenderer.pySlice(Array(str.unicodeScalars), l, h, s))
                return .string(String(v))
            default: throw fail("'\(base.typeName)' object is not subscriptable", p)
            }
        case .call(let fe, let argsE, let kwE, let p):
            let f = try eval(fe)
            let args = try argsE.map { try eval($0) }
            let kwargs = try kwE.map { ($0.0, try eval($0.1)) }
            return try call(f, args, kwargs, p)
        case .filter(let b, let name, let argsE, let kwE, let p):
            let v = try eval(b)
            return try applyFilter(name, v, try argsE.map { try eval($0) }, try kwE.map { ($0.0, try eval($0.1)) }, p)
        case .test(let b, let name, let argsE, let negated, let p):
            let v = try eval(b)
            let r = try applyTest(name, v, try argsE.map { try eval($0) }, p)
            return .bool(negated ? !r : r)
        case .unary(let op, let x, let p):
            let v = try eval(x)
            switch (op, v) {
            case ("-", .int(let i)): return .int(-i)
            case ("-", .double(let d)): return .double(-d)
            case ("+", .int), ("+", .double): return v
            default: throw fail("bad operand type for unary \(op): '\(v.typeName)'", p)
            }
        case .not(let x): return .bool(!(try eval(x).truthy))
        case .and(let a, let b):
            let l = try eval(a)
            return l.truthy ? try eval(b) : l
        case .or(let a, let b):
            let l = try eval(a)
            return l.truthy ? l : try eval(b)
        case .cond(let c, let a, let b):
            if try eval(c).truthy { return try eval(a) }
            return try b.map { try eval($0) } ?? .undefined("else")
        case .compare(let first, let ops, let p):
            var l = try eval(first)
            for (op, re) in ops {
                let r = try eval(re)
                if !(try compare(op, l, r, p)) { return .bool(false) }
                l = r
            }
            return .bool(true)
        case .binary(let op, let a, let b, let p):
            return try binary(op, try eval(a), try eval(b), p)
        }
    }

    static func pySlice<T>(_ a: [T], _ lo: Int?, _ hi: Int?, _ st: Int?) -> [T] {
        let n = a.count
        let step = st ?? 1
        if step == 0 { return [] }
        func norm(_ x: Int?, _ d: Int) -> Int {
            guard var x else { return d }
            if x < 0 { x += n }
            if step > 0 { return min(max(x, 0), n) }
            return min(max(x, -1), n - 1)
        }
        var out: [T] = []
        if step > 0 {
            var i = norm(lo, 0); let e = norm(hi, n)
            while i < e { out.append(a[i]); i += step }
        } else {
            var i = norm(lo, n - 1); let e = norm(hi, -1)
            while i > e { out.append(a[i]); i += step }
        }
        return out
    }

    func compare(_ op: String, _ l0: JinjaValue, _ r0: JinjaValue, _ p: Pos) throws -> Bool {
        let l = l0.norm, r = r0.norm
        switch op {
        case "==": return JinjaValue.equal(l, r)
        case "!=": return !JinjaValue.equal(l, r)
        case "in": return try contains(r, l, p)
        case "notin": return !(try contains(r, l, p))
        default:
            let c: Int
            if let x = l.number, let y = r.number { c = x < y ? -1 : (x > y ? 1 : 0) }
            else if case .string(let x) = l, case .string(let y) = r {
                let a = Array(x.unicodeScalars.map { $0.value }), b = Array(y.unicodeScalars.map { $0.value })
                c = a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
            } else { throw fail("'\(op)' not supported between instances of '\(l.typeName)' and '\(r.typeName)'", p) }
            switch op {
            case "<": return c < 0
            case ">": return c > 0
            case "<=": return c <= 0
            default: return c >= 0
            }
        }
    }

    func contains(_ container: JinjaValue, _ v: JinjaValue, _ p: Pos) throws -> Bool {
        switch container.norm {
        case .string(let s):
            guard case .string(let sub) = v else { throw fail("'in <string>' requires string as left operand, not \(v.typeName)", p) }
            return sub.isEmpty || JinjaRenderer.findScalars(Array(s.unicodeScalars), Array(sub.unicodeScalars)) != nil
        case .array(let a): return a.contains { JinjaValue.equal($0, v) }
        case .dict(let d): if case .string(let k) = v { return d[k] != nil }; return false
        case .undefined(let n): throw fail("'\(n)' is undefined", p)
        default: throw fail("argument of type '\(container.typeName)' is not iterable", p)
        }
    }

    static func findScalars(_ s: [Unicode.Scalar], _ sub: [Unicode.Scalar], from: Int = 0) -> Int? {
        guard sub.count <= s.count else { return nil }
        var i = from
        while i + sub.count <= s.count {
            if s[i] == sub[0] && Array(s[i..<(i + sub.count)]) == sub { return i }
            i += 1
        }
        return nil
    }

    func binary(_ op: String, _ l0: JinjaValue, _ r0: JinjaValue, _ p: Pos) throws -> JinjaValue {
        let l = l0.norm, r = r0.norm
        if op == "~" { return .string(l.str + r.str) }
        switch (op, l, r) {
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .array(let a), .array(let b)): return .array(a + b)
        case ("*", .string(let a), .int(let n)), ("*", .int(let n), .string(let a)): return .string(String(repeating: a, count: max(n, 0)))
        case ("*", .array(let a), .int(let n)): return .array(Array([[JinjaValue]](repeating: a, count: max(n, 0)).joined()))
        default: break
        }
        if case .undefined(let n) = l { throw fail("'\(n)' is undefined", p) }
        if case .undefined(let n) = r { throw fail("'\(n)' is undefined", p) }
        let bothInt: Bool
        switch (l, r) {
        case (.int, .int), (.bool, .int), (.int, .bool), (.bool, .bool): bothInt = true
        default: bothInt = false
        }
        guard let x = l.number, let y = r.number else {
            throw fail("unsupported operand type(s) for \(op): '\(l.typeName)' and '\(r.typeName)'", p)
        }
        switch op {
        case "+": return bothInt ? .int(l.intValue! + r.intValue!) : .double(x + y)
        case "-": return bothInt ? .int(l.intValue! - r.intValue!) : .double(x - y)
        case "*": return bothInt ? .int(l.intValue! * r.intValue!) : .double(x * y)
        case "/":
            guard y != 0 else { throw fail("division by zero", p) }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw fail("integer division or modulo by zero", p) }
            if bothInt { let a = l.intValue!, b = r.intValue!; return .int(Int((Double(a) / Double(b)).rounded(.down))) }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw fail("integer division or modulo by zero", p) }
            if bothInt { let a = l.intValue!, b = r.intValue!; let m = a % b; return .int(m != 0 && (m < 0) != (b < 0) ? m + b : m) }
            let m = fmod(x, y); return .double(m != 0 && (m < 0) != (y < 0) ? m + y : m)
        case "**":
            if bothInt, let b = r.intValue, b >= 0 { var acc = 1; for _ in 0..<b { acc *= l.intValue! }; return .int(acc) }
            return .double(pow(x, y))
        default: throw fail("unknown operator \(op)", p)
        }
    }

    // MARK: attribute / item access

    func getItem(_ base0: JinjaValue, _ idx: JinjaValue, _ p: Pos) throws -> JinjaValue {
        let base = base0.norm
        switch (base, idx) {
        case (.array(let a), _):
            guard let i0 = idx.intValue, idx.number != nil else { throw fail("list indices must be integers, not \(idx.typeName)", p) }
            let i = i0 < 0 ? i0 + a.count : i0
            return i >= 0 && i < a.count ? a[i] : .undefined("list object has no element \(i0)")
        case (.string(let s), _):
            guard let i0 = idx.intValue else { throw fail("string indices must be integers", p) }
            let u = Array(s.unicodeScalars)
            let i = i0 < 0 ? i0 + u.count : i0
            return i >= 0 && i < u.count ? .string(String(u[i])) : .undefined("string index \(i0)")
        case (.dict(let d), .string(let k)):
            if let v = d[k] { return v }
            return try getAttr(base, k, p, itemFirst: true)
        case (.dict, _): return .undefined("key \(idx.repr)")
        case (.namespace(let ns), .string(let k)): return ns.values[k] ?? .undefined(k)
        case (_, .string(let k)): return try getAttr(base, k, p, itemFirst: true)
        default: return .undefined("item")
        }
    }

    func getAttr(_ base0: JinjaValue, _ name: String, _ p: Pos, itemFirst: Bool = false) throws -> JinjaValue {
        let base = base0.norm
        if name.hasPrefix("_") { return .undefined(name) }  // sandbox: no private attributes
        switch base {
        case .dict(let d):
            if let m = JinjaMethods.dictMethod(d, name) { return .function(m) }
            return d[name] ?? .undefined(name)
        case .namespace(let ns): return ns.values[name] ?? .undefined(name)
        case .string(let s): return JinjaMethods.stringMethod(s, name).map { .function($0) } ?? .undefined(name)
        case .array(let a): return JinjaMethods.listMethod(a, name).map { .function($0) } ?? .undefined(name)
        default: return .undefined(name)
        }
    }
}
