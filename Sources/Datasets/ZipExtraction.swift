import Foundation
import ZIPFoundation

/// A zip archive that cannot be extracted safely: one line naming the archive and the problem.
public struct ZipExtractionError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var archive: String
    public var problem: String
    public var description: String { "\(archive): \(problem)" }
    public var errorDescription: String? { description }
}

/// Extracts zip archives (MMIU ships one per image category) with the checks a downloaded archive
/// deserves: no entry may leave the target folder (`..`, absolute paths), no links, and the total
/// expanded size must stay under a bound (checked on the declared sizes first, then on the bytes
/// actually produced, since headers can lie). Extraction goes to a temporary sibling folder that is
/// renamed into place when complete, so an interrupted run never leaves a half folder that looks done.
public enum ZipExtractor {
    public static let defaultMaxTotalBytes: UInt64 = 200 << 30   // MMIU's seven archives are ~30 GB expanded
    static let completeMarker = ".sftdeck-extracted"

    public struct Summary: Sendable, Equatable {
        public var files: Int
        public var bytes: UInt64
        /// False when an earlier run had already extracted this archive.
        public var extractedNow: Bool
    }

    /// Extracts `archive` into `folder` unless an earlier run completed it (a marker file records the
    /// archive's size and modification time).
    @discardableResult
    public static func extractOnce(archive: URL, into folder: URL, maxTotalBytes: UInt64 = defaultMaxTotalBytes) throws -> Summary {
        let fm = FileManager.default
        let stamp = archiveStamp(archive)
        let marker = folder.appendingPathComponent(completeMarker)
        if let done = try? String(contentsOf: marker, encoding: .utf8), done.hasPrefix(stamp + "\n") {
            let parts = done.split(separator: "\n")
            let files = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            let bytes = parts.count > 2 ? UInt64(parts[2]) ?? 0 : 0
            return Summary(files: files, bytes: bytes, extractedNow: false)
        }
        let partial = folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).partial-\(getpid())")
        try? fm.removeItem(at: partial)
        do {
            try fm.createDirectory(at: partial, withIntermediateDirectories: true)
        } catch {
            throw ZipExtractionError(archive: archive.path, problem: "cannot create \(partial.path): \(error.localizedDescription)")
        }
        let summary: Summary
        do {
            summary = try extract(archive: archive, into: partial, maxTotalBytes: maxTotalBytes)
            try "\(stamp)\n\(summary.files)\n\(summary.bytes)\n".write(to: partial.appendingPathComponent(completeMarker), atomically: true, encoding: .utf8)
            try? fm.removeItem(at: folder)
            try fm.moveItem(at: partial, to: folder)
        } catch {
            try? fm.removeItem(at: partial)
            if let e = error as? ZipExtractionError { throw e }
            throw ZipExtractionError(archive: archive.path, problem: "extraction failed: \(error.localizedDescription)")
        }
        return summary
    }

    /// Checks every entry, then extracts all of them into `folder` (which must exist).
    public static func extract(archive url: URL, into folder: URL, maxTotalBytes: UInt64 = defaultMaxTotalBytes) throws -> Summary {
        func fail(_ problem: String) -> ZipExtractionError { ZipExtractionError(archive: url.path, problem: problem) }
        guard FileManager.default.fileExists(atPath: url.path) else { throw fail("no such file") }
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read, pathEncoding: nil) } catch {
            throw fail("not a readable zip archive (\(error))")
        }
        // Pass 1: refuse the archive before writing anything.
        var declared: UInt64 = 0
        var entries: [(Entry, [String])] = []
        for entry in archive {
            let path = entry.path
            if entry.type == .symlink { throw fail("entry '\(path)' is a symbolic link; links are refused") }
            let normalized = path.replacingOccurrences(of: "\\", with: "/")
            if normalized.hasPrefix("/") || (normalized.count >= 2 && normalized.dropFirst().first == ":") {
                throw fail("entry '\(path)' has an absolute path")
            }
            let components = normalized.split(separator: "/").map(String.init).filter { $0 != "." && !$0.isEmpty }
            if components.contains("..") { throw fail("entry '\(path)' escapes the target folder") }
            if components.isEmpty { continue }
            let (sum, overflow) = declared.addingReportingOverflow(entry.uncompressedSize)
            declared = overflow ? .max : sum
            if declared > maxTotalBytes {
                throw fail("expands to more than \(maxTotalBytes) bytes (the extraction bound); refusing a possible zip bomb")
            }
            entries.append((entry, components))
        }
        // Pass 2: extract, counting the bytes really produced.
        let root = folder.standardizedFileURL.path
        var produced: UInt64 = 0
        var files = 0
        for (entry, components) in entries {
            let target = components.reduce(folder) { $0.appendingPathComponent($1) }
            guard target.standardizedFileURL.path.hasPrefix(root + "/") else { throw fail("entry '\(entry.path)' escapes the target folder") }
            do {
                if entry.type == .directory {
                    try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
                    continue
                }
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw fail("cannot create the folder for entry '\(entry.path)' (a file of the same name?)")
            }
            guard FileManager.default.createFile(atPath: target.path, contents: nil),
                  let out = FileHandle(forWritingAtPath: target.path) else { throw fail("cannot write \(target.path)") }
            defer { try? out.close() }
            var overBound = false
            do {
                _ = try archive.extract(entry, skipCRC32: false) { chunk in
                    produced += UInt64(chunk.count)
                    if produced > maxTotalBytes { overBound = true; throw CocoaError(.fileWriteUnknown) }
                    try out.write(contentsOf: chunk)
                }
            } catch {
                if overBound { throw fail("expands past \(maxTotalBytes) bytes (the extraction bound) although its headers claim less") }
                throw fail("entry '\(entry.path)' is corrupt (\(error))")
            }
            files += 1
        }
        return Summary(files: files, bytes: produced, extractedNow: true)
    }

    static func archiveStamp(_ url: URL) -> String {
        let attrs = try? FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(url.lastPathComponent) \(size) \(Int64(mtime))"
    }
}
