import Foundation
import Tensor

/// The trainer's own fp32 state (optimizer moments, trainable copies, toy-model weights) as
/// safetensors, through module Tensor's validated reader and Python-identical atomic writer.
public enum SafetensorsFile {
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:],
                             to url: URL) throws {
        var writer = SafeTensorsWriter(metadata: metadata.isEmpty ? nil : metadata)
        for t in tensors { try writer.add(t.name, floats: t.values, shape: t.shape, as: .F32) }
        try writer.write(to: url)
    }

    public struct F32Tensor { public var shape: [Int]; public var values: [Float] }

    public static func readF32(_ url: URL) throws -> [String: F32Tensor] {
        try readF32WithMetadata(url).0
    }

    public static func readF32WithMetadata(_ url: URL) throws -> ([String: F32Tensor], [String: String]) {
        let file = try SafeTensorsFile(url: url)
        var out: [String: F32Tensor] = [:]
        for name in file.names {
            let info = try file.info(name)
            guard info.dtype == .F32 else { throw TrainingError("\(url.path): tensor \(name): dtype \(info.dtype), expected F32") }
            out[name] = F32Tensor(shape: info.shape, values: try file.floats(name))
        }
        return (out, file.metadata)
    }
}
