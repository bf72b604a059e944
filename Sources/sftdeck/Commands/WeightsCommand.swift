import ArgumentParser
import Foundation
import Tensor

/// `sftdeck weights PATH [--json]`: what a safetensors file or checkpoint folder holds.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "List every tensor of a safetensors file or checkpoint: name, dtype, shape, sum.",
        discussion: """
        PATH is a .safetensors file, or a folder holding model.safetensors, or a sharded checkpoint \
        with model.safetensors.index.json (every shard it names must be present), or any folder of \
        .safetensors files with distinct tensor names (e.g. a PEFT adapter folder).

        The sum of each tensor's values is computed in fp64, in file order, after widening BF16/F16 \
        exactly; it is a quick checksum for comparing checkpoints (`safetensors` in Python gives the \
        same numbers up to fp64 rounding of the summation order). The headers are validated first:
        a truncated or inconsistent file stops with one line naming the file and the problem.

        Examples:
          sftdeck weights ~/models/gemma-3-4b-it
          sftdeck weights out/checkpoint-20/adapter_model.safetensors --json
        """)

    @Argument(help: "A .safetensors file or a checkpoint folder.", completion: .file())
    var path: String

    @Flag(name: .long, help: "Print JSON: {\"path\", \"files\", \"tensor_count\", \"parameter_count\", \"tensors\": [{\"name\", \"dtype\", \"shape\", \"sum\", \"file\"}]}.")
    var json = false

    func run() throws {
        let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        let ckpt: SafeTensorsCheckpoint
        do { ckpt = try SafeTensorsCheckpoint(url: url) } catch let e as SafeTensorsError { throw CLIError(e.description) }

        struct Row { var info: SafeTensorInfo; var sum: Double; var file: String }
        var rows: [Row] = []
        for name in ckpt.names {
            let file = try ckpt.file(containing: name)
            rows.append(Row(info: try file.info(name), sum: try file.sum(name), file: file.url.lastPathComponent))
        }
        let parameters = rows.reduce(0) { $0 + $1.info.elementCount }
        let bytes = rows.reduce(0) { $0 + $1.info.byteCount }

        if json {
            var out: [UInt8] = []
            func raw(_ s: String) { out.append(contentsOf: Array(s.utf8)) }
            func str(_ s: String) { SafeTensorsJSONWriter.appendString(s, to: &out) }
            raw("{\n  \"path\": "); str(url.path)
            raw(",\n  \"files\": ["); raw(ckpt.files.map { f -> String in var b: [UInt8] = []; SafeTensorsJSONWriter.appendString(f.url.lastPathComponent, to: &b); return String(decoding: b, as: UTF8.self) }.joined(separator: ", "))
            raw("],\n  \"tensor_count\": \(rows.count),\n  \"parameter_count\": \(parameters),\n  \"tensors\": [")
            for (k, r) in rows.enumerated() {
                raw(k == 0 ? "\n    {\"name\": " : ",\n    {\"name\": "); str(r.info.name)
                raw(", \"dtype\": \"\(r.info.dtype.rawValue)\", \"shape\": [\(r.info.shape.map(String.init).joined(separator: ", "))]")
                raw(", \"sum\": \(WeightsCommand.jsonNumber(r.sum)), \"file\": "); str(r.file); raw("}")
            }
            raw(rows.isEmpty ? "]\n}\n" : "\n  ]\n}\n")
            FileHandle.standardOutput.write(Data(out))
            return
        }

        let nameWidth = min(72, rows.map { $0.info.name.count }.max() ?? 4)
        let shapes = rows.map { "[" + $0.info.shape.map(String.init).joined(separator: ", ") + "]" }
        let shapeWidth = max(5, shapes.map(\.count).max() ?? 5)
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        print(pad("NAME", nameWidth) + "  DTYPE  " + pad("SHAPE", shapeWidth) + "  SUM")
        for (r, shape) in zip(rows, shapes) {
            print(pad(r.info.name, nameWidth) + "  " + pad(r.info.dtype.rawValue, 5) + "  " + pad(shape, shapeWidth) + "  " + String(format: "%.10g", r.sum))
        }
        let fileWord = ckpt.files.count == 1 ? "file" : "files"
        print("\(rows.count) tensors, \(parameters) parameters, \(bytes) bytes in \(ckpt.files.count) \(fileWord)")
    }

    /// JSON has no infinities or NaN: those are written as the strings "inf", "-inf", "nan".
    static func jsonNumber(_ d: Double) -> String {
        if d.isNaN { return "\"nan\"" }
        if d.isInfinite { return d > 0 ? "\"inf\"" : "\"-inf\"" }
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }
}
