// Writing what PEFT writes: safetensors (fp32 tensors, {"format": "pt"} metadata) and JSON formatted as
// Python's json.dumps(indent=2, sort_keys=True) (ensure_ascii, float repr).
import Foundation

/// A JSON value with Python's json.dumps formatting.
indirect enum PyJSON {
    case null, bool(Bool), int(Int), double(Double), string(String)
    case array([PyJSON])
    case object([(String, PyJSON)])

    func dumps(indent: Int, level: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent * (level + 1)), end = String(repeating: " ", count: indent * level)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            if d == d.rounded() && abs(d) < 1e16 { return String(format: "%.1f", d) }
            return "\(d)"
        case .string(let s): return PyJSON.quote(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.dumps(indent: indent, level: level + 1) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let sorted = o.sorted { $0.0 < $1.0 }
            return "{\n" + sorted.map { pad + PyJSON.quote($0.0) + ": " + $0.1.dumps(indent: indent, level: level + 1) }
                .joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.utf16 {
            switch u {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(u)!)
            default: out += String(format: "\\u%04x", u)
            }
        }
        return out + "\""
    }
}

/// Writes fp32 tensors as a safetensors file (header keys sorted, data in header order, header padded with
/// spaces to a multiple of 8), to a temporary name then renamed.
func writeSafeTensorsF32(_ tensors: [(name: String, shape: [Int], data: UnsafeBufferPointer<Float>)],
                         metadata: [String: String], to url: URL) throws {
    let sorted = tensors.sorted { $0.name < $1.name }
    var header: [String: Any] = ["__metadata__": metadata]
    var offset = 0
    for t in sorted {
        let n = t.data.count * 4
        header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + n]] as [String: Any]
        offset += n
    }
    var h = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while h.count % 8 != 0 { h.append(0x20) }
    var out = Data(capacity: 8 + h.count + offset)
    var len = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
    out.append(h)
    for t in sorted { out.append(UnsafeBufferPointer(start: UnsafeRawPointer(t.data.baseAddress!).assumingMemoryBound(to: UInt8.self), count: t.data.count * 4)) }
    try writeAtomically(out, to: url)
}
