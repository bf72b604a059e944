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
/// spaces to a multiple of 8), to a temporary name then renamed. The tensor bytes go to the file straight
/// from their buffers (no in-memory copy of the whole file: for a modules_to_save adapter that copy alone
/// is 140 MB of fresh pages).
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
    var head = Data(capacity: 8 + h.count)
    var len = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &len) { head.append(contentsOf: $0) }
    head.append(h)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
    guard fd >= 0 else { throw ModelError("\(url.path): cannot write (\(String(cString: strerror(errno))))") }
    func writeAll(_ p: UnsafeRawPointer?, _ n: Int) throws {
        guard var q = p else { return }
        var left = n
        while left > 0 {
            let w = write(fd, q, min(left, 1 << 30))
            if w < 0 && errno == EINTR { continue }
            guard w > 0 else { throw ModelError("\(url.path): cannot write (\(String(cString: strerror(errno))))") }
            q += w; left -= w
        }
    }
    var closed = false
    do {
        try head.withUnsafeBytes { try writeAll($0.baseAddress, head.count) }
        for t in sorted { try writeAll(t.data.baseAddress.map(UnsafeRawPointer.init), t.data.count * 4) }
        closed = true
        guard close(fd) == 0 else { throw ModelError("\(url.path): cannot write (\(String(cString: strerror(errno))))") }
    } catch {
        if !closed { close(fd) }
        try? FileManager.default.removeItem(at: tmp)
        throw error
    }
    guard rename(tmp.path, url.path) == 0 else {
        let e = errno
        try? FileManager.default.removeItem(at: tmp)
        throw ModelError("\(url.path): cannot rename the temporary file into place (errno \(e))")
    }
}
