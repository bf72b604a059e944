import Foundation
import ZIPFoundation
#if canImport(Glibc)
import Glibc
#endif

/// A zip archive that cannot be extracted safely: one line naming the archive and the problem.
public struct ZipExtractionError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var archive: String
    public var problem: String
    /// True when the archive itself is at fault (hostile or corrupt): its partial extraction is removed.
    /// False for the machine's problems (a full disk, a failed write), where the next run resumes.
    var archiveIsBad = true
    public var description: String { "\(archive): \(problem)" }
    public var errorDescription: String? { description }
    public init(archive: String, problem: String) {
        self.archive = archive
        self.problem = problem
    }
    init(archive: String, problem: String, archiveIsBad: Bool) {
        self.init(archive: archive, problem: problem)
        self.archiveIsBad = archiveIsBad
    }
}

/// Where an extraction stands: bytes and entries done of the totals the archives' central
/// directories declare, over every archive being extracted in this call.
public struct ZipExtractionProgress: Sendable, Equatable {
    /// File name of the archive being extracted now, its index among `archiveCount`.
    public var archive: String
    public var archiveIndex: Int
    public var archiveCount: Int
    public var entriesDone: Int
    public var entriesTotal: Int
    public var bytesDone: UInt64
    public var bytesTotal: UInt64
    /// Bytes already on disk from an interrupted earlier run (counted in `bytesDone`, not in the rate).
    public var bytesResumed: UInt64
    /// Seconds since this extraction began.
    public var elapsed: Double
    /// True on the last report, once everything is extracted.
    public var finished: Bool

    public init(archive: String, archiveIndex: Int, archiveCount: Int, entriesDone: Int, entriesTotal: Int,
                bytesDone: UInt64, bytesTotal: UInt64, bytesResumed: UInt64 = 0, elapsed: Double, finished: Bool) {
        self.archive = archive; self.archiveIndex = archiveIndex; self.archiveCount = archiveCount
        self.entriesDone = entriesDone; self.entriesTotal = entriesTotal
        self.bytesDone = bytesDone; self.bytesTotal = bytesTotal; self.bytesResumed = bytesResumed
        self.elapsed = elapsed; self.finished = finished
    }

    public var fraction: Double { bytesTotal == 0 ? (entriesTotal == 0 ? 1 : Double(entriesDone) / Double(entriesTotal)) : Double(bytesDone) / Double(bytesTotal) }

    /// Bytes per second written in this run (nil until something was written).
    public var bytesPerSecond: Double? {
        let written = bytesDone >= bytesResumed ? bytesDone - bytesResumed : 0
        guard elapsed > 0, written > 0 else { return nil }
        return Double(written) / elapsed
    }

    /// Seconds left at this run's average rate (nil until there is a rate; 0 when finished).
    public var etaSeconds: Double? {
        if finished { return 0 }
        guard let rate = bytesPerSecond else { return nil }
        return Double(bytesTotal > bytesDone ? bytesTotal - bytesDone : 0) / rate
    }

    /// One progress line: `extracting images: 2D-spatial.zip (2 of 7), 1.2 GB of 30.1 GB (4%), 1234 of
    /// 56789 files, 85.3 MB/s, ETA 5m 40s`.
    public var line: String {
        var s = "extracting images: \(archive)"
        if archiveCount > 1 { s += " (\(archiveIndex + 1) of \(archiveCount))" }
        s += ", \(Self.size(bytesDone)) of \(Self.size(bytesTotal)) (\(Int((fraction * 100).rounded(.down)))%)"
        s += ", \(entriesDone) of \(entriesTotal) files"
        if bytesResumed > 0 { s += " (\(Self.size(bytesResumed)) kept from an interrupted run)" }
        if let rate = bytesPerSecond { s += ", \(Self.size(UInt64(rate)))/s" }
        if finished {
            s += ", done in \(Self.duration(elapsed))"
        } else if let eta = etaSeconds {
            s += ", ETA \(Self.duration(eta))"
        }
        return s
    }

    /// Decimal units, one decimal (`950 B`, `12.5 kB`, `1.2 GB`).
    static func size(_ bytes: UInt64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var v = Double(bytes), u = 0
        while v >= 1000, u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(bytes) B" : String(format: "%.1f %@", v, units[u])
    }

    /// `45s`, `5m 40s`, `2h 03m`.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h \(String(format: "%02d", s / 60 % 60))m"
    }
}

public typealias ZipExtractionProgressHandler = @Sendable (ZipExtractionProgress) -> Void

/// A flag another thread sets to stop slow work at its next check: an extraction between entries and
/// between chunks of one, the dashboard's queued jobs before they start.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false, honoured = false
    public init() {}
    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }
    public func cancel() { lock.lock(); cancelled = true; lock.unlock() }
    /// For the work that stops: true when cancelled, and then remembered in `stoppedWork`.
    public func shouldStop() -> Bool { lock.lock(); defer { lock.unlock() }; if cancelled { honoured = true }; return cancelled }
    /// Some work stopped because of this flag (it was not only set).
    public var stoppedWork: Bool { lock.lock(); defer { lock.unlock() }; return honoured }
}

extension ZipExtractionProgress {
    /// A handler that passes `line` to `write` at most once per `interval` seconds (the first report
    /// at once), and always the final one: what a terminal or log shows.
    public static func lineWriter(interval: Double = 1, write: @escaping @Sendable (String) -> Void) -> ZipExtractionProgressHandler {
        final class Throttle: @unchecked Sendable {
            let lock = NSLock()
            var last: Date? = nil
        }
        let throttle = Throttle()
        return { p in
            throttle.lock.lock()
            let now = Date()
            let due = p.finished || throttle.last.map { now.timeIntervalSince($0) >= interval } ?? true
            if due { throttle.last = now }
            throttle.lock.unlock()
            if due { write(p.line) }
        }
    }
}

/// Extracts zip archives (MMIU ships one per image category) with the checks a downloaded archive
/// deserves: no entry may leave the target folder (`..`, absolute paths), no links, and the total
/// expanded size must stay under a bound (checked on the declared sizes first, then on the bytes
/// actually produced, since headers can lie).
///
/// Interrupted runs (killed, out of disk) resume, and never leave a file that is later taken as
/// complete: the archive is extracted into a work folder beside the target (`.<name>.partial`, stamped
/// with the archive's size and date); each entry is written under a temporary name and renamed only
/// once written in full and its CRC checked; the work folder gets its completion marker and is renamed
/// to the target only when every entry is there. A later run finds the marker and does nothing, or
/// finds the work folder and extracts only the entries it lacks. A lock file serialises processes.
public enum ZipExtractor {
    public static let defaultMaxTotalBytes: UInt64 = 200 << 30   // MMIU's seven archives are ~30 GB expanded
    static let completeMarker = ".sftdeck-extracted"
    /// In a work folder: the stamp of the archive being extracted into it.
    static let workStamp = ".sftdeck-extracting"
    /// Suffix of an entry being written (renamed away once complete).
    static let partSuffix = ".sftdeck-part"

    public struct Summary: Sendable, Equatable {
        public var files: Int
        public var bytes: UInt64
        /// False when an earlier run had already extracted this archive.
        public var extractedNow: Bool
        /// Files found complete in the work folder of an interrupted earlier run (not written again).
        public var resumedFiles: Int
        public var resumedBytes: UInt64
        public init(files: Int, bytes: UInt64, extractedNow: Bool, resumedFiles: Int = 0, resumedBytes: UInt64 = 0) {
            self.files = files; self.bytes = bytes; self.extractedNow = extractedNow
            self.resumedFiles = resumedFiles; self.resumedBytes = resumedBytes
        }
    }

    /// True when `folder` holds a completed extraction of `archive` (the marker matches its stamp).
    public static func isExtracted(archive: URL, into folder: URL) -> Bool { completedSummary(archive: archive, folder: folder) != nil }

    private static func completedSummary(archive: URL, folder: URL) -> Summary? {
        let marker = folder.appendingPathComponent(completeMarker)
        guard let done = try? String(contentsOf: marker, encoding: .utf8), done.hasPrefix(archiveStamp(archive) + "\n") else { return nil }
        let parts = done.split(separator: "\n")
        let files = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        let bytes = parts.count > 2 ? UInt64(parts[2]) ?? 0 : 0
        return Summary(files: files, bytes: bytes, extractedNow: false)
    }

    /// Entries (files) and bytes the archive's central directory declares, after the same checks as
    /// extraction (so a hostile archive is refused before anything is written).
    public static func declaredSize(archive: URL, maxTotalBytes: UInt64 = defaultMaxTotalBytes) throws -> (entries: Int, bytes: UInt64) {
        let (_, entries) = try checkedEntries(archive, maxTotalBytes: maxTotalBytes)
        return (entries.filter { $0.0.type != .directory }.count, entries.reduce(0) { $0 + $1.0.uncompressedSize })
    }

    /// Extracts `archive` into `folder` unless an earlier run completed it (a marker file records the
    /// archive's size and modification time), resuming an interrupted run. `progress` is called as
    /// entries and bytes are written (at most about 10 times a second, and once at the end).
    @discardableResult
    /// `cancellation`: when set, the extraction stops at the next entry or chunk with an error that says
    /// so; what is unpacked is kept, as after a killed run, and the next call resumes.
    public static func extractOnce(archive: URL, into folder: URL, maxTotalBytes: UInt64 = defaultMaxTotalBytes,
                                   progress: ZipExtractionProgressHandler? = nil, cancellation: CancellationFlag? = nil) throws -> Summary {
        try extractOnce(archive: archive, into: folder, maxTotalBytes: maxTotalBytes, progress: progress, interruptAfterFiles: nil,
                        cancellation: cancellation)
    }

    /// `interruptAfterFiles` (tests): stop as a killed run would, after that many files were written.
    static func extractOnce(archive: URL, into folder: URL, maxTotalBytes: UInt64, progress: ZipExtractionProgressHandler?,
                            interruptAfterFiles: Int?, cancellation: CancellationFlag? = nil) throws -> Summary {
        if let done = completedSummary(archive: archive, folder: folder) { return done }
        let fm = FileManager.default
        let parent = folder.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw ZipExtractionError(archive: archive.path, problem: "cannot create \(parent.path): \(error.localizedDescription)", archiveIsBad: false)
        }
        // One process at a time per target; a second one waits, then finds the work done.
        let lockPath = parent.appendingPathComponent(".\(folder.lastPathComponent).lock").path
        let lock = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard lock >= 0 else {
            throw ZipExtractionError(archive: archive.path, problem: "cannot create the lock file \(lockPath)", archiveIsBad: false)
        }
        defer { close(lock) }
        _ = flock(lock, LOCK_EX)
        if let done = completedSummary(archive: archive, folder: folder) { return done }

        let stamp = archiveStamp(archive)
        let work = parent.appendingPathComponent(".\(folder.lastPathComponent).partial")
        let stampFile = work.appendingPathComponent(workStamp)
        let resuming = (try? String(contentsOf: stampFile, encoding: .utf8)) == stamp + "\n"
        if !resuming {
            // A work folder of another version of the archive (or none): start afresh.
            try? fm.removeItem(at: work)
            do {
                try fm.createDirectory(at: work, withIntermediateDirectories: true)
                try (stamp + "\n").write(to: stampFile, atomically: true, encoding: .utf8)
            } catch {
                throw ZipExtractionError(archive: archive.path, problem: "cannot create \(work.path): \(error.localizedDescription)", archiveIsBad: false)
            }
        }
        let summary: Summary
        do {
            summary = try extract(archive: archive, into: work, maxTotalBytes: maxTotalBytes, resume: resuming,
                                  progress: progress, interruptAfterFiles: interruptAfterFiles, cancellation: cancellation)
            try "\(stamp)\n\(summary.files)\n\(summary.bytes)\n".write(to: work.appendingPathComponent(completeMarker), atomically: true, encoding: .utf8)
            try? fm.removeItem(at: stampFile)
            try? fm.removeItem(at: folder)
            try fm.moveItem(at: work, to: folder)
        } catch let e as ZipExtractionError {
            if e.archiveIsBad { try? fm.removeItem(at: work) }
            throw e
        } catch {
            throw ZipExtractionError(archive: archive.path, problem: "extraction failed: \(error.localizedDescription)", archiveIsBad: false)
        }
        return summary
    }

    /// Opens the archive and checks every entry (links, absolute or escaping paths, declared size).
    private static func checkedEntries(_ url: URL, maxTotalBytes: UInt64) throws -> (Archive, [(Entry, [String])]) {
        func fail(_ problem: String) -> ZipExtractionError { ZipExtractionError(archive: url.path, problem: problem) }
        guard FileManager.default.fileExists(atPath: url.path) else { throw fail("no such file") }
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read, pathEncoding: nil) } catch {
            throw fail("not a readable zip archive (\(error))")
        }
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
            if components.last!.hasSuffix(partSuffix) || components.last == completeMarker || components.last == workStamp {
                throw fail("entry '\(path)' uses a name SFTDeck reserves for its own bookkeeping")
            }
            let (sum, overflow) = declared.addingReportingOverflow(entry.uncompressedSize)
            declared = overflow ? .max : sum
            if declared > maxTotalBytes {
                throw fail("expands to more than \(maxTotalBytes) bytes (the extraction bound); refusing a possible zip bomb")
            }
            entries.append((entry, components))
        }
        return (archive, entries)
    }

    /// Checks every entry, then extracts all of them into `folder` (which must exist). With `resume`,
    /// files already in `folder` with their entry's size (written by an earlier, interrupted run, which
    /// renames a file into place only when complete) are kept, not written again.
    public static func extract(archive url: URL, into folder: URL, maxTotalBytes: UInt64 = defaultMaxTotalBytes,
                               resume: Bool = false, progress: ZipExtractionProgressHandler? = nil) throws -> Summary {
        try extract(archive: url, into: folder, maxTotalBytes: maxTotalBytes, resume: resume, progress: progress, interruptAfterFiles: nil)
    }

    static func extract(archive url: URL, into folder: URL, maxTotalBytes: UInt64, resume: Bool,
                        progress: ZipExtractionProgressHandler?, interruptAfterFiles: Int?,
                        cancellation: CancellationFlag? = nil) throws -> Summary {
        func fail(_ problem: String, bad: Bool = true) -> ZipExtractionError {
            ZipExtractionError(archive: url.path, problem: problem, archiveIsBad: bad)
        }
        // Pass 1: refuse the archive before writing anything.
        let (archive, entries) = try checkedEntries(url, maxTotalBytes: maxTotalBytes)
        let fileCount = entries.filter { $0.0.type != .directory }.count
        let declared = entries.reduce(UInt64(0)) { $0 + $1.0.uncompressedSize }
        // Pass 2: extract, counting the bytes really produced.
        let fm = FileManager.default
        let root = folder.standardizedFileURL.path
        let started = Date()
        // A fresh extraction reports at once (0 of the declared totals); a resumed one after its first 0.1 s, by
        // when the files an interrupted run finished have been counted (each is only checked, not rewritten).
        var lastReport = resume ? started : Date.distantPast
        var produced: UInt64 = 0, resumedBytes: UInt64 = 0
        var files = 0, resumedFiles = 0
        func report(final: Bool = false) {
            guard let progress else { return }
            let now = Date()
            guard final || now.timeIntervalSince(lastReport) >= 0.1 else { return }
            lastReport = now
            progress(ZipExtractionProgress(archive: url.lastPathComponent, archiveIndex: 0, archiveCount: 1, entriesDone: files,
                                           entriesTotal: fileCount, bytesDone: produced, bytesTotal: max(declared, produced),
                                           bytesResumed: resumedBytes, elapsed: now.timeIntervalSince(started), finished: final))
        }
        func cancelled() -> ZipExtractionError {
            fail("extraction cancelled after \(files) of \(fileCount) files; those are kept and the next open resumes", bad: false)
        }
        report()
        for (entry, components) in entries {
            if cancellation?.shouldStop() == true { throw cancelled() }
            let target = components.reduce(folder) { $0.appendingPathComponent($1) }
            guard target.standardizedFileURL.path.hasPrefix(root + "/") else { throw fail("entry '\(entry.path)' escapes the target folder") }
            do {
                if entry.type == .directory {
                    try fm.createDirectory(at: target, withIntermediateDirectories: true)
                    continue
                }
                try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw fail("cannot create the folder for entry '\(entry.path)' (a file of the same name?)")
            }
            if resume, let attrs = try? fm.attributesOfItem(atPath: target.path), attrs[.type] as? FileAttributeType == .typeRegular,
               (attrs[.size] as? NSNumber)?.uint64Value == entry.uncompressedSize {
                produced += entry.uncompressedSize
                resumedBytes += entry.uncompressedSize
                files += 1
                resumedFiles += 1
                report()
                continue
            }
            if let stop = interruptAfterFiles, files - resumedFiles >= stop {
                throw fail("interrupted (test)", bad: false)
            }
            let part = target.deletingLastPathComponent().appendingPathComponent(target.lastPathComponent + partSuffix)
            guard fm.createFile(atPath: part.path, contents: nil), let out = FileHandle(forWritingAtPath: part.path) else {
                throw fail("cannot write \(part.path)", bad: false)
            }
            var overBound = false, stopped = false, writeFailed: Error? = nil
            do {
                _ = try archive.extract(entry, skipCRC32: false) { chunk in
                    if cancellation?.shouldStop() == true { stopped = true; throw CocoaError(.userCancelled) }
                    produced += UInt64(chunk.count)
                    if produced > maxTotalBytes { overBound = true; throw CocoaError(.fileWriteUnknown) }
                    do { try out.write(contentsOf: chunk) } catch { writeFailed = error; throw error }
                    report()
                }
                try out.close()
            } catch {
                try? out.close()
                try? fm.removeItem(at: part)
                if stopped { throw cancelled() }
                if overBound { throw fail("expands past \(maxTotalBytes) bytes (the extraction bound) although its headers claim less") }
                if let writeFailed { throw fail("cannot write \(target.path): \(writeFailed.localizedDescription)", bad: false) }
                throw fail("entry '\(entry.path)' is corrupt (\(error))")
            }
            // Complete and CRC-checked: only now does the file get its name.
            do {
                if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
                try fm.moveItem(at: part, to: target)
            } catch {
                throw fail("cannot move \(part.path) into place: \(error.localizedDescription)", bad: false)
            }
            files += 1
            report()
        }
        report(final: true)
        return Summary(files: files, bytes: produced, extractedNow: true, resumedFiles: resumedFiles, resumedBytes: resumedBytes)
    }

    static func archiveStamp(_ url: URL) -> String {
        let attrs = try? FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(url.lastPathComponent) \(size) \(Int64(mtime))"
    }
}
