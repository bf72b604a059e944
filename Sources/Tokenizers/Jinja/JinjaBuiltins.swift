import Foundation

/// Python's `str.isspace()` set: Unicode White_Space plus the ASCII separators 0x1C–0x1F.
@inline(__always) func isPySpace(_ u: Unicode.Scalar) -> Bool {
    (u.value >= 0x1C && u.value <= 0x1F) || u.properties.isWhitespace
}

enum PyStr {
    static func strip(_ s: String, _ chars: String?, left: Bool = true, right: Bool = true) -> String {
        let u = Array(s.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPySpace(c) }
        var a = 0, b = u.count
        if left { while a < b && drop(u[a]) { a += 1 } }
        if right { while b > a && drop(u[b - 1]) { b -= 1 } }
        var v = String.UnicodeScalarView(); v.append(contentsOf: u[a..<b])
        return String(v)
    }
    static func mapScalars(_ s: String, _ f: (Unicode.Scalar) -> String) -> String { s.unicodeScalars.map(f).joined() }
    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }
    static func capitalize(_ s: String) -> String {
        guard let f = s.unicodeScalars.first else { return s }
        return f.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }
    static func title(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for u in s.unicodeScalars {
            let cased = u.properties.isCased || u.properties.isAlphabetic
            out += cased ? (prevCased ? u.properties.lowercaseMapping : u.properties.titlecaseMapping) : String(u)
            prevCased = cased
        }
        return out
    }
    static func replace(_ s: String, _ old: String, _ new: String, _ count: Int?) -> String {
        let u = Array(s.unicodeScalars), o = Array(old.unicodeScalars)
        var out = String.UnicodeScalarView()
        var n = 0
        if o.isEmpty {
            // Python inserts `new` between every character (and at both ends)
            for c in u { if count.map({ n < $0 }) ?? true { out.append(contentsOf: new.unicodeScalars); n += 1 }; out.append(c) }
            if count.map({ n < $0 }) ?? true { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        var i = 0
        while i < u.count {
            if (count.map { n < $0 } ?? true), i + o.count <= u.count, Array(u[i..<(i + o.count)]) == o {
                out.append(contentsOf: new.unicodeScalars); i += o.count; n += 1
            } else { out.append(u[i]); i += 1 }
        }
        return String(out)
    }
    static func split(_ s: String, _ sep: String?, _ maxsplit: Int) -> [String] {
        let u = Array(s.unicodeScalars)
        var parts: [String] = []
        func str(_ r: ArraySlice<Unicode.Scalar>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: r); return String(v) }
        if let sep, !sep.isEmpty {
            let p = Array(sep.unicodeScalars)
            var start = 0, i = 0
            while i + p.count <= u.count {
                if (maxsplit < 0 || parts.count < maxsplit) && Array(u[i..<(i + p.count)]) == p {
                    parts.append(str(u[start..<i])); i += p.count; start = i
                } else { i += 1 }
            }
            parts.append(str(u[start...]))
            return parts
        }
        var i = 0
        while i < u.count {
            while i < u.count && isPySpace(u[i]) { i += 1 }
            if i >= u.count { break }
            if maxsplit >= 0 && parts.count == maxsplit {
                var e = u.count
                while e > i && isPySpace(u[e - 1]) { e -= 1 }
                parts.append(str(u[i..<e])); break
            }
            let st = i
            while i < u.count && !isPySpace(u[i]) { i += 1 }
            parts.append(str(u[st..<i]))
        }
        return parts
    }
}

/// json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...), as transformers' tojson.
enum PyJSON {
    static func dumps(_ v: JinjaValue, indent: Int?, sortKeys: Bool, itemSep: String? = nil, keySep: String? = nil) throws -> String {
        var out = ""
        let isep = itemSep ?? (indent == nil ? ", " : ",")
        let ksep = keySep ?? ": "
        func esc(_ s: String) -> String { PythonJSONText.string(s, ensureASCII: false) }
        func go(_ v: JinjaValue, _ level: Int) throws {
            switch v {
            case .none, .undefined: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .double(let d): out += PythonJSONText.double(d)
            case .string(let s): out += esc(s)
            case .array(let a), .tuple(let a):
                if a.isEmpty { out += "[]"; return }
                out += "["
                for (k, x) in a.enumerated() {
                    if k > 0 { out += isep }
                    if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                    try go(x, level + 1)
                }
                if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
                out += "]"
            case .dict(let d):
                if d.isEmpty { out += "{}"; return }
                out += "{"
                let keys = sortKeys ? d.keys.sorted() : d.keys
                for (k, key) in keys.enumerated() {
                    if k > 0 { out += isep }
                    if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                    out += esc(key) + ksep
                    try go(d[key]!, level + 1)
                }
                if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
                out += "}"
            case .namespace(let ns): try go(.dict(ns.values), level)
            case .function(let f): throw JinjaError(kind: .runtime, message: "Object of type function (\(f.name)) is not JSON serializable", line: 0, column: 0)
            }
        }
        try go(v, 0)
        return out
    }
}

enum JinjaMethods {
    static func fn(_ name: String, _ f: @escaping ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) -> JinjaFunction { JinjaFunction(name, f) }
    static func arg(_ a: [JinjaValue], _ k: [(String, JinjaValue)], _ i: Int, _ name: String) -> JinjaValue? {
        if i < a.count { return a[i] }
        return k.first { $0.0 == name }?.1
    }

    static func dictMethod(_ d: JinjaDict, _ name: String) -> JinjaFunction? {
        switch name {
        case "items": return fn("items") { _, _ in .array(d.keys.map { .tuple([.string($0), d[$0]!]) }) }
        case "keys": return fn("keys") { _, _ in .array(d.keys.map { .string($0) }) }
        case "values": return fn("values") { _, _ in .array(d.keys.map { d[$0]! }) }
        case "get": return fn("get") { a, k in
            guard let key = arg(a, k, 0, "key") else { return .none }
            return d[key.str] ?? (arg(a, k, 1, "default") ?? .none)
        }
        default: return nil
        }
    }

    static func listMethod(_ l: [JinjaValue], _ name: String) -> JinjaFunction? {
        switch name {
        case "index": return fn("index") { a, _ in
            guard let x = a.first, let i = l.firstIndex(where: { JinjaValue.equal($0, x) }) else {
                throw JinjaError(kind: .runtime, message: "value is not in list", line: 0, column: 0)
            }
            return .int(i)
        }
        case "count": return fn("count") { a, _ in
            guard let x = a.first else { return .int(0) }
            return .int(l.filter { JinjaValue.equal($0, x) }.count)
        }
        case "append", "pop", "extend", "insert", "remove", "clear", "sort", "reverse":
            return fn(name) { _, _ in throw JinjaError(kind: .runtime, message: "access to attribute '\(name)' of 'list' object is unsafe (the sandbox forbids modifying lists)", line: 0, column: 0) }
        default: return nil
        }
    }

    static func stringMethod(_ s: String, _ name: String) -> JinjaFunction? {
        switch name {
        case "strip": return fn(name) { a, _ in .string(PyStr.strip(s, a.first.flatMap { $0.isNone ? nil : $0.str })) }
        case "lstrip": return fn(name) { a, _ in .string(PyStr.strip(s, a.first.flatMap { $0.isNone ? nil : $0.str }, right: false)) }
        case "rstrip": return fn(name) { a, _ in .string(PyStr.strip(s, a.first.flatMap { $0.isNone ? nil : $0.str }, left: false)) }
        case "upper": return fn(name) { _, _ in .string(PyStr.upper(s)) }
        case "lower": return fn(name) { _, _ in .string(PyStr.lower(s)) }
        case "capitalize": return fn(name) { _, _ in .string(PyStr.capitalize(s)) }
        case "title": return fn(name) { _, _ in .string(PyStr.title(s)) }
        case "startswith", "endswith":
            return fn(name) { a, _ in
                let cands: [String]
                switch a.first?.norm {
                case .array(let l)?: cands = l.map { $0.str }
                case let v?: cands = [v.str]
                case nil: cands = []
                }
                let u = Array(s.unicodeScalars)
                return .bool(cands.contains { c in
                    let p = Array(c.unicodeScalars)
                    guard p.count <= u.count else { return false }
                    return name == "startswith" ? Array(u[0..<p.count]) == p : Array(u[(u.count - p.count)...]) == p
                })
            }
        case "split": return fn(name) { a, k in
            let sep = arg(a, k, 0, "sep").flatMap { $0.isNone ? nil : $0.str }
            return .array(PyStr.split(s, sep, arg(a, k, 1, "maxsplit")?.intValue ?? -1).map { .string($0) })
        }
        case "replace": return fn(name) { a, _ in
            .string(PyStr.replace(s, a.count > 0 ? a[0].str : "", a.count > 1 ? a[1].str : "", a.count > 2 ? a[2].intValue : nil))
        }
        case "join": return fn(name) { a, _ in
            guard case .array(let l)? = a.first?.norm else { return .string("") }
            return .string(l.map { $0.str }.joined(separator: s))
        }
        case "find": return fn(name) { a, _ in
            .int(JinjaRenderer.findScalars(Array(s.unicodeScalars), Array((a.first?.str ?? "").unicodeScalars)) ?? -1)
        }
        case "count": return fn(name) { a, _ in
            let sub = Array((a.first?.str ?? "").unicodeScalars)
            let u = Array(s.unicodeScalars)
            if sub.isEmpty { return .int(u.count + 1) }
            var n = 0, i = 0
            while let f = JinjaRenderer.findScalars(u, sub, from: i) { n += 1; i = f + sub.count }
            return .int(n)
        }
        case "splitlines": return fn(name) { _, _ in
            var parts = s.components(separatedBy: "\n")
            if parts.last == "" { parts.removeLast() }
            return .array(parts.map { .string($0.hasSuffix("\r") ? String($0.dropLast()) : $0) })
        }
        case "isdigit": return fn(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit }) }
        case "isspace": return fn(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPySpace)) }
        default: return nil
        }
    }
}

extension JinjaRenderer {
    func items(_ v: JinjaValue, _ p: Pos) throws -> [JinjaValue] {
        switch v.norm {
        case .array(let a): return a
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw fail("'\(v.typeName)' object is not iterable", p)
        }
    }

    func applyFilter(_ name: String, _ v0: JinjaValue, _ a: [JinjaValue], _ k: [(String, JinjaValue)], _ p: Pos) throws -> JinjaValue {
        let v = name == "string" || name == "tojson" ? v0 : v0.norm
        func kw(_ i: Int, _ n: String) -> JinjaValue? { JinjaMethods.arg(a, k, i, n) }
        switch name {
        case "trim": return .string(PyStr.strip(v.str, kw(0, "chars").flatMap { $0.isNone ? nil : $0.str }))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let x): return .int(x.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw fail("object of type '\(v.typeName)' has no len()", p)
            }
        case "upper": return .string(PyStr.upper(v.str))
        case "lower": return .string(PyStr.lower(v.str))
        case "capitalize": return .string(PyStr.capitalize(v.str))
        case "title": return .string(PyStr.title(v.str))
        case "string": return .string(v.str)
        case "safe", "escape", "e", "forceescape":
            if name == "safe" { return v }
            var s = v.str
            for (a, b) in [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\"", "&#34;"), ("'", "&#39;")] { s = s.replacingOccurrences(of: a, with: b) }
            return .string(s)
        case "tojson":
            var indent: Int? = nil
            if let i = kw(0, "indent"), !i.isNone { indent = i.intValue }
            let sortKeys = k.first { $0.0 == "sort_keys" }?.1.truthy ?? false
            var isep: String? = nil, ksep: String? = nil
            if case .array(let seps)? = k.first(where: { $0.0 == "separators" })?.1, seps.count == 2 { isep = seps[0].str; ksep = seps[1].str }
            do { return .string(try PyJSON.dumps(v, indent: indent, sortKeys: sortKeys, itemSep: isep, keySep: ksep)) }
            catch var e as JinjaError { e.line = p.line; e.column = p.col; throw e }
        case "first":
            let l = try items(v, p); return l.first ?? .undefined("first")
        case "last":
            let l = try items(v, p); return l.last ?? .undefined("last")
        case "join":
            var l = try items(v, p)
            if let attr = k.first(where: { $0.0 == "attribute" })?.1 { l = try l.map { try getItem($0, attr, p) } }
            return .string(l.map { $0.str }.joined(separator: kw(0, "d")?.str ?? ""))
        case "default", "d":
            let boolean = kw(1, "boolean")?.truthy ?? false
            if v.isUndefined || (boolean && !v.truthy) { return kw(0, "default_value") ?? .string("") }
            return v
        case "items":
            guard case .dict(let d) = v else { if v.isUndefined { return .array([]) }; throw fail("items filter needs a mapping, got '\(v.typeName)'", p) }
            return .array(d.keys.map { .tuple([.string($0), d[$0]!]) })
        case "dictsort":
            guard case .dict(let d) = v else { throw fail("dictsort needs a mapping", p) }
            return .array(d.keys.sorted().map { .tuple([.string($0), d[$0]!]) })
        case "list": return .array(try items(v, p))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .array(try items(v, p).reversed())
        case "unique":
            var out: [JinjaValue] = []
            for x in try items(v, p) where !out.contains(where: { JinjaValue.equal($0, x) }) { out.append(x) }
            return .array(out)
        case "sort":
            let rev = kw(0, "reverse")?.truthy ?? false
            let attr = kw(2, "attribute")
            var l = try items(v, p)
            var err: Error? = nil
            l.sort { x, y in
                do {
                    let a1 = try attr.map { try getItem(x, $0, p) } ?? x, b1 = try attr.map { try getItem(y, $0, p) } ?? y
                    return try compare(rev ? ">" : "<", a1, b1, p)
                } catch { err = error; return false }
            }
            if let err { throw err }
            return .array(l)
        case "sum":
            var acc: JinjaValue = kw(1, "start") ?? .int(0)
            for x in try items(v, p) { acc = try binary("+", acc, x, p) }
            return acc
        case "min", "max":
            let l = try items(v, p)
            guard var best = l.first else { return .undefined(name) }
            for x in l.dropFirst() where try compare(name == "min" ? "<" : ">", x, best, p) { best = x }
            return best
        case "int":
            switch v {
            case .int: return v
            case .double(let d): return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(PyStr.strip(s, nil)) ?? Int(Double(PyStr.strip(s, nil)) ?? Double(kw(0, "default")?.intValue ?? 0)))
            default: return kw(0, "default") ?? .int(0)
            }
        case "float":
            if let n = v.number { return .double(n) }
            if case .string(let s) = v, let d = Double(PyStr.strip(s, nil)) { return .double(d) }
            return kw(0, "default") ?? .double(0)
        case "abs":
            switch v {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            default: throw fail("bad operand type for abs(): '\(v.typeName)'", p)
            }
        case "round":
            let prec = kw(0, "precision")?.intValue ?? 0
            let method = kw(1, "method")?.str ?? "common"
            guard let x = v.number else { throw fail("round needs a number", p) }
            let m = pow(10.0, Double(prec))
            let r: Double
            switch method {
            case "ceil": r = (x * m).rounded(.up) / m
            case "floor": r = (x * m).rounded(.down) / m
            default: r = (x * m).rounded(.toNearestOrAwayFromZero) / m
            }
            return .double(r)
        case "replace":
            guard a.count >= 2 || k.count >= 2 else { throw fail("replace needs old and new strings", p) }
            return .string(PyStr.replace(v.str, kw(0, "old")?.str ?? "", kw(1, "new")?.str ?? "", kw(2, "count").flatMap { $0.isNone ? nil : $0.intValue }))
        case "indent":
            let width = kw(0, "width")?.intValue ?? 4
            let first = kw(1, "first")?.truthy ?? false
            let blank = kw(2, "blank")?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = v.str.components(separatedBy: "\n")
            var out: [String] = []
            for (i, l) in lines.enumerated() {
                if i == 0 { out.append(first ? pad + l : l); continue }
                out.append((l.isEmpty && !blank) ? l : pad + l)
            }
            return .string(out.joined(separator: "\n"))
        case "wordcount": return .int(PyStr.split(v.str, nil, -1).count)
        case "center":
            let w = kw(0, "width")?.intValue ?? 80
            let s = v.str, n = s.unicodeScalars.count
            guard w > n else { return .string(s) }
            let left = (w - n) / 2 + ((w - n) % 2 == 1 && w % 2 == 1 ? 1 : 0)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: w - n - left))
        case "attr":
            return try getAttr(v, kw(0, "name")?.str ?? "", p)
        case "map":
            let l = try items(v, p)
            if let attr = k.first(where: { $0.0 == "attribute" })?.1 {
                let def = k.first { $0.0 == "default" }?.1
                return .array(try l.map { x in
                    let r = try getItem(x, attr, p)
                    if r.isUndefined, let def { return def }
                    return r
                })
            }
            guard let fname = a.first?.str else { throw fail("map needs a filter name or attribute=", p) }
            guard JinjaParser.knownFilters.contains(fname) else { throw fail("no filter named '\(fname)'", p) }
            return .array(try l.map { try applyFilter(fname, $0, Array(a.dropFirst()), [], p) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttr = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var rest = a
            var attr: JinjaValue? = nil
            if byAttr {
                guard !rest.isEmpty else { throw fail("\(name) needs an attribute name", p) }
                attr = rest.removeFirst()
            }
            let testName = rest.isEmpty ? nil : rest.removeFirst().str
            if let testName, !JinjaParser.knownTests.contains(testName) { throw fail("no test named '\(testName)'", p) }
            return .array(try items(v, p).filter { x in
                let subject = try attr.map { try getItem(x, $0, p) } ?? x
                let r = try testName.map { try applyTest($0, subject, rest, p) } ?? subject.truthy
                return r == keep
            })
        case "batch", "striptags", "truncate", "pprint", "xmlattr", "urlencode", "filesizeformat":
            throw fail("filter '\(name)' is not supported", p)
        default: throw fail("no filter named '\(name)'", p)
        }
    }

    func applyTest(_ name: String, _ v0: JinjaValue, _ a: [JinjaValue], _ p: Pos) throws -> Bool {
        let v = v0.norm
        let other = a.first ?? .undefined("argument")
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "string": if case .string = v { return true }; return false
        case "number": switch v { case .int, .double, .bool: return true; default: return false }
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "iterable": switch v { case .array, .dict, .string: return true; default: return false }
        case "sequence": switch v { case .array, .dict, .string: return true; default: return false }
        case "mapping": if case .dict = v { return true }; return false
        case "callable": if case .function = v { return true }; return false
        case "equalto", "eq", "==": return JinjaValue.equal(v, other)
        case "ne", "!=": return !JinjaValue.equal(v, other)
        case "sameas":
            switch (v, other) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.namespace(let x), .namespace(let y)): return x === y
            default: return false
            }
        case "lt", "<": return try compare("<", v, other, p)
        case "le", "<=": return try compare("<=", v, other, p)
        case "gt", ">": return try compare(">", v, other, p)
        case "ge", ">=": return try compare(">=", v, other, p)
        case "in": return try contains(other, v, p)
        case "odd": return (v.intValue ?? 0) % 2 != 0
        case "even": return (v.intValue ?? 1) % 2 == 0
        case "divisibleby": guard let d = other.intValue, d != 0 else { return false }; return (v.intValue ?? 1) % d == 0
        case "lower": return v.str == PyStr.lower(v.str)
        case "upper": return v.str == PyStr.upper(v.str)
        case "escaped": return false
        case "filter": return JinjaParser.knownFilters.contains(v.str)
        case "test": return JinjaParser.knownTests.contains(v.str)
        default: throw fail("no test named '\(name)'", p)
        }
    }
}
