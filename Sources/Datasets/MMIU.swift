import Foundation

/// The MMIU-Benchmark layout: `all.parquet` (or a JSON list of the same records) beside one zip per
/// image category; each record's `input_image_path` entries look like `./<Category>/<task>/<file>`.
/// The zips are extracted once, each into a folder named after it, under an extraction root.
public enum MMIU {
    public static let recordFields = ["task", "visual_input_component", "source", "options", "question", "context",
                                      "input_image_path", "output"]
    public static let split = "test"

    /// The records file of a folder: `all.parquet`, else `all.json`, else nil.
    static func recordsFile(in folder: URL) -> URL? {
        for name in ["all.parquet", "all.json"] {
            let u = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: u.path) { return u }
        }
        return nil
    }

    static func zips(in folder: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.lowercased().hasSuffix(".zip") }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// Where the zips of `folder` are extracted: next to the data when that folder is writable and not
    /// a Hugging Face cache snapshot, else `~/.cache/sftdeck/mmiu/<name>`.
    static func defaultExtractionRoot(for folder: URL, cacheName: String, environment env: [String: String]) -> URL {
        let inHubCache = folder.path.contains("/snapshots/") && folder.path.contains("/datasets--")
        if !inHubCache, FileManager.default.isWritableFile(atPath: folder.path) {
            return folder.appendingPathComponent(".sftdeck-images")
        }
        let home = env["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        let cache = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".cache")
        return cache.appendingPathComponent("sftdeck/mmiu").appendingPathComponent(cacheName)
    }

    /// Extracts every zip of `folder` into `root/<zip name without .zip>/` (once; an interrupted run
    /// resumes). `progress` sees the totals of all archives still to extract, declared by their central
    /// directories (read first, which also refuses a hostile archive before anything is written).
    static func extractArchives(in folder: URL, root: URL, maxTotalBytes: UInt64,
                                progress: ZipExtractionProgressHandler? = nil,
                                cancellation: CancellationFlag? = nil) throws -> [ZipExtractor.Summary] {
        let archives = zips(in: folder)
        guard !archives.isEmpty else { return [] }
        do { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw DatasetError(source: folder.path, "cannot create the image folder \(root.path): \(error.localizedDescription)")
        }
        let targets = archives.map { ($0, root.appendingPathComponent($0.deletingPathExtension().lastPathComponent)) }
        let pending = targets.indices.filter { !ZipExtractor.isExtracted(archive: targets[$0].0, into: targets[$0].1) }
        var sizes: [Int: (entries: Int, bytes: UInt64)] = [:]
        if progress != nil {
            for k in pending { sizes[k] = try ZipExtractor.declaredSize(archive: targets[k].0, maxTotalBytes: maxTotalBytes) }
        }
        let entriesTotal = sizes.values.reduce(0) { $0 + $1.entries }
        let bytesTotal = sizes.values.reduce(UInt64(0)) { $0 + $1.bytes }
        let started = Date()
        var entriesBefore = 0, bytesBefore: UInt64 = 0, resumedBefore: UInt64 = 0
        var summaries: [ZipExtractor.Summary] = []
        for (k, (zip, target)) in targets.enumerated() {
            var handler: ZipExtractionProgressHandler? = nil
            if let progress, let position = pending.firstIndex(of: k) {
                let eb = entriesBefore, bb = bytesBefore, rb = resumedBefore, count = pending.count
                handler = { p in
                    progress(ZipExtractionProgress(
                        archive: p.archive, archiveIndex: position, archiveCount: count,
                        entriesDone: eb + p.entriesDone, entriesTotal: max(entriesTotal, eb + p.entriesDone),
                        bytesDone: bb + p.bytesDone, bytesTotal: max(bytesTotal, bb + p.bytesDone), bytesResumed: rb + p.bytesResumed,
                        elapsed: Date().timeIntervalSince(started), finished: p.finished && position == count - 1))
                }
            }
            let summary = try ZipExtractor.extractOnce(archive: zip, into: target, maxTotalBytes: maxTotalBytes, progress: handler,
                                                       cancellation: cancellation)
            if pending.contains(k) {
                entriesBefore += summary.files
                bytesBefore += summary.bytes
                resumedBefore += summary.resumedBytes
            }
            summaries.append(summary)
        }
        return summaries
    }

    /// Resolves `./<Category>/<task>/<file>` against each root: `root/<path>`, then `root/<Category>/<path>`
    /// (archives whose entries already start with the category folder).
    public static func resolveImagePath(_ path: String, roots: [URL]) -> URL? {
        var rel = path
        while rel.hasPrefix("./") { rel.removeFirst(2) }
        guard !rel.isEmpty else { return nil }
        if rel.hasPrefix("/") {
            return FileManager.default.fileExists(atPath: rel) ? URL(fileURLWithPath: rel) : nil
        }
        let category = rel.split(separator: "/").first.map(String.init) ?? ""
        for root in roots {
            for candidate in [root.appendingPathComponent(rel), root.appendingPathComponent(category).appendingPathComponent(rel)] {
                if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            }
        }
        return nil
    }

    /// A JSON file holds MMIU records when its first record has `input_image_path` and `question`.
    static func isMMIURecord(_ v: RowValue) -> Bool { v["input_image_path"] != nil && v["question"] != nil }
}
