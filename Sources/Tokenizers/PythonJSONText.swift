import Foundation

/// JSON strings and floats exactly as Python's `json.dumps` writes them: the one escaper of the project.
/// Chat templates' `tojson` uses it with `ensure_ascii=False` (transformers' override), Training's
/// PythonJSON (trainer_state.json, JSONL logs) with `ensure_ascii=True` (json.dumps' default). It lives in
/// Tokenizers because Training depends on Tokenizers, not the other way round.
public enum PythonJSONText {
    /// `json.dumps(s, ensure_ascii=...)`: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` short escapes, other
    /// control characters as `\u00XX`; with `ensureASCII` also DEL and everything above it as `\uXXXX`
    /// (characters above the BMP as a surrogate pair), lowercase hex as Python writes it.
    public static func string(_ s: String, ensureASCII: Bool) -> String {
        var o = "\""
        o.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\r": o += "\\r"
            case "\t": o += "\\t"
            case "\u{08}": o += "\\b"
            case "\u{0C}": o += "\\f"
            default:
                if u.value < 0x20 || (ensureASCII && u.value > 0x7E) {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        o += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else {
                        o += String(format: "\\u%04x", u.value)
                    }
                } else {
                    o.unicodeScalars.append(u)
                }
            }
        }
        return o + "\""
    }

    /// A float as json.dumps writes it: `float.__repr__` digits (shortest round trip, `1.0`, `1e-05`,
    /// `1e+16`), and the `NaN` / `Infinity` / `-Infinity` literals Python emits by default.
    public static func double(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        return floatRepr(d)
    }

    /// Python's `repr(float)` for finite values (Swift's description gives the same shortest digits;
    /// Python keeps `.0` on integral values below 1e16 and switches to exponents at 1e16).
    public static func floatRepr(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }
}
