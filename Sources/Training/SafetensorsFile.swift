import Foundation

/// The small slice of safetensors the trainer's own state needs (fp32 tensors: optimizer moments,
/// toy-model weights): `u64 header length | JSON header | data`, offsets relative to the data start,
/// header padded with spaces to a multiple of 8. Model weights go through module Tensor / Models.
public enum SafetensorsFile {
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:],
                             to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for t in tensors {
            let n = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + n]]
            offset += n
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { data.append(contentsOf: $0) }
        data.append(json)
        for t in tensors { t.values.withUnsafeBytes { data.append(contentsOf: $0) } }  // little-endian hosts
        try AtomicFile.write(data, to: url)
    }

    public struct F32Tensor { public var shape: [Int]; public var values: [Float] }

    public static func readF32(_ url: URL) throws -> [String: F32Tensor] {
        let (tensors, _) = try readF32WithMetadata(url)
        return tensors
    }

    public static func readF32WithMetadata(_ url: URL) throws -> ([String: F32Tensor], [String: String]) {
        func bad(_ m: String) -> TrainingError { TrainingError("\(url.path): \(m)") }
        guard let data = try? Data(contentsOf: url) else { throw bad("cannot read the file") }
        guard data.count >= 8 else { throw bad("too short for a safetensors header") }
        let n = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, 8 + n <= data.count else { throw bad("header length \(n) exceeds the file size") }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any]
        else { throw bad("header is not a JSON object") }
        let body = data.subdata(in: (8 + n)..<data.count)
        var out: [String: F32Tensor] = [:]
        var meta: [String: String] = [:]
        for (name, any) in header {
            if name == "__metadata__" { meta = any as? [String: String] ?? [:]; continue }
            guard let info = any as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offs = info["data_offsets"] as? [Int], offs.count == 2
            else { throw bad("tensor \(name): malformed header entry") }
            guard dtype == "F32" else { throw bad("tensor \(name): dtype \(dtype), expected F32") }
            let count = shape.reduce(1, *)
            guard offs[0] >= 0, offs[1] == offs[0] + count * 4, offs[1] <= body.count
            else { throw bad("tensor \(name): data offsets \(offs) do not fit shape \(shape)") }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { dst in
                body.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offs[0]..<offs[1]])) }
            }
            out[name] = F32Tensor(shape: shape, values: values)
        }
        return (out, meta)
    }
}
