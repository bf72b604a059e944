import Foundation

/// Writes files the way every SFTDeck output is written: to a temporary name in the same folder, then
/// renamed over the destination, so a crash never leaves a half-written file under the real name.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: tmp)
            if rename(tmp.path, url.path) != 0 {
                throw TrainingError("\(url.path): cannot rename the temporary file into place (errno \(errno))")
            }
        } catch let e as TrainingError {
            try? FileManager.default.removeItem(at: tmp); throw e
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw TrainingError("\(url.path): cannot write (\(error.localizedDescription))")
        }
    }

    public static func writeJSON(_ object: Any, to url: URL) throws {
        try write(Data((PythonJSON.dumps(object) + "\n").utf8), to: url)
    }
}
