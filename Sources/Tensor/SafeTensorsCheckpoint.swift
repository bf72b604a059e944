// A checkpoint folder as transformers saves it: one `model.safetensors`, or shards listed in
// `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor: shard file}}).
import Foundation

public final class SafeTensorsCheckpoint: @unchecked Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    /// The folder (or, when opened on a file, that file's folder).
    public let folder: URL
    /// The opened files, in shard order.
    public let files: [SafeTensorsFile]
    /// The index's `metadata` object as strings (e.g. "total_size"), empty without an index.
    public let indexMetadata: [String: String]
    private let owner: [String: Int]

    /// Opens `url`: a `.safetensors` file, a folder with `model.safetensors`, a folder with
    /// `model.safetensors.index.json`, or else a folder whose `*.safetensors` files (e.g. a PEFT
    /// `adapter_model.safetensors`) together hold distinct tensor names.
    public init(url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SafeTensorsError(path: url.path, problem: "no such file or folder")
        }
        if !isDir.boolValue {
            folder = url.deletingLastPathComponent()
            files = [try SafeTensorsFile(url: url)]
            indexMetadata = [:]
            owner = SafeTensorsCheckpoint.ownerMap(files)
            return
        }
        folder = url
        let single = url.appendingPathComponent(SafeTensorsCheckpoint.singleFileName)
        let index = url.appendingPathComponent(SafeTensorsCheckpoint.indexFileName)
        if FileManager.default.fileExists(atPath: single.path) {
            files = [try SafeTensorsFile(url: single)]
            indexMetadata = [:]
            owner = SafeTensorsCheckpoint.ownerMap(files)
        } else if FileManager.default.fileExists(atPath: index.path) {
            (files, owner, indexMetadata) = try SafeTensorsCheckpoint.openIndexed(index: index, folder: url)
        } else {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else {
                throw SafeTensorsError(path: url.path, problem: "no \(SafeTensorsCheckpoint.singleFileName), \(SafeTensorsCheckpoint.indexFileName) or other .safetensors file in this folder")
            }
            files = try names.map { try SafeTensorsFile(url: url.appendingPathComponent($0)) }
            indexMetadata = [:]
            var map: [String: Int] = [:]
            for (k, f) in files.enumerated() {
                for t in f.tensors {
                    if let other = map[t.name] {
                        throw SafeTensorsError(path: url.path, problem: "tensor '\(t.name)' is in both \(files[other].url.lastPathComponent) and \(f.url.lastPathComponent), and no index says which to use")
                    }
                    map[t.name] = k
                }
            }
            owner = map
        }
    }

    public convenience init(folder: URL) throws { try self.init(url: folder) }

    private static func ownerMap(_ files: [SafeTensorsFile]) -> [String: Int] {
        var map: [String: Int] = [:]
        for (k, f) in files.enumerated() { for t in f.tensors { map[t.name] = k } }
        return map
    }

    private static func openIndexed(index: URL, folder: URL) throws -> ([SafeTensorsFile], [String: Int], [String: String]) {
        func fail(_ problem: String) -> SafeTensorsError { SafeTensorsError(path: index.path, problem: problem) }
        let data: Data
        do { data = try Data(contentsOf: index) } catch { throw fail("cannot read: \(error.localizedDescription)") }
        let bytes = [UInt8](data)
        guard bytes.withUnsafeBytes({ SafeTensorsFile.isValidUTF8($0) }) else { throw fail("not valid UTF-8") }
        let json: SafeTensorsJSON
        do { json = try SafeTensorsJSONParser.parse(bytes) } catch let e as SafeTensorsJSONError {
            throw fail("not valid JSON: \(e.message) at byte \(e.offset)")
        }
        guard case .object(let top) = json else { throw fail("not a JSON object") }
        var metadata: [String: String] = [:]
        var weightMap: [(String, String)]?
        for (k, v) in top {
            if k == "metadata", case .object(let m) = v {
                for (mk, mv) in m {
                    switch mv {
                    case .string(let s): metadata[mk] = s
                    case .integer(let n): metadata[mk] = String(n)
                    case .number(let d): metadata[mk] = String(d)
                    default: continue
                    }
                }
            } else if k == "weight_map" {
                guard case .object(let pairs) = v else { throw fail("weight_map is \(v.kindName), expected an object") }
                var seen = Set<String>()
                weightMap = try pairs.map { name, file in
                    guard seen.insert(name).inserted else { throw fail("weight_map lists tensor '\(name)' twice") }
                    guard case .string(let f) = file else { throw fail("weight_map entry '\(name)' is \(file.kindName), expected a file name") }
                    guard !f.contains("/"), f != "..", !f.isEmpty else { throw fail("weight_map entry '\(name)' names '\(f)', which is not a file in this folder") }
                    return (name, f)
                }
            }
        }
        guard let weightMap else { throw fail("no weight_map") }
        let shardNames = Array(Set(weightMap.map(\.1))).sorted()
        let missing = shardNames.filter { !FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
        guard missing.isEmpty else {
            throw fail("\(missing.count) of \(shardNames.count) shard files listed in weight_map are missing: \(missing.joined(separator: ", "))")
        }
        let files = try shardNames.map { try SafeTensorsFile(url: folder.appendingPathComponent($0)) }
        let fileIndex = Dictionary(uniqueKeysWithValues: shardNames.enumerated().map { ($1, $0) })
        var owner: [String: Int] = [:]
        for (name, shard) in weightMap {
            let k = fileIndex[shard]!
            guard files[k].contains(name) else { throw fail("weight_map puts tensor '\(name)' in \(shard), which does not contain it") }
            owner[name] = k
        }
        return (files, owner, metadata)
    }

    /// Every tensor name, sorted by code point.
    public var names: [String] { owner.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }

    public func contains(_ name: String) -> Bool { owner[name] != nil }

    /// The file that holds `name`.
    public func file(containing name: String) throws -> SafeTensorsFile {
        guard let k = owner[name] else { throw SafeTensorsError(path: folder.path, problem: "no tensor named '\(name)' in this checkpoint") }
        return files[k]
    }

    public func info(_ name: String) throws -> SafeTensorInfo { try file(containing: name).info(name) }
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer { try file(containing: name).rawBytes(name) }
    public func floats(_ name: String) throws -> [Float] { try file(containing: name).floats(name) }
    public func int64s(_ name: String) throws -> [Int64] { try file(containing: name).int64s(name) }
    public func sum(_ name: String) throws -> Double { try file(containing: name).sum(name) }
}
