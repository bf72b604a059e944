import XCTest
@testable import Datasets

/// Zip extraction progress and resumption (ZipExtraction.swift, MMIU.extractArchives). The archives are
/// gen_parquet.py's (good.zip: task/a.txt "alpha", task/sub/b.txt "beta"; the MMIU layout's two zips).
final class ZipExtractionTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("sftdeck-zip-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [ZipExtractionProgress] = []
        func add(_ p: ZipExtractionProgress) { lock.lock(); items.append(p); lock.unlock() }
        var all: [ZipExtractionProgress] { lock.lock(); defer { lock.unlock() }; return items }
    }

    /// Files under a folder (relative paths), the bookkeeping files included.
    func listing(_ folder: URL) -> [String] {
        (FileManager.default.enumerator(atPath: folder.path)?.allObjects as? [String] ?? []).filter {
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path, isDirectory: &dir) && !dir.boolValue
        }.sorted()
    }

    func testProgressIsMonotonicAndEndsAtTheDeclaredTotals() throws {
        let zip = fixturesURL("layouts/zips/good.zip")
        XCTAssertEqual(try ZipExtractor.declaredSize(archive: zip).entries, 2)
        XCTAssertEqual(try ZipExtractor.declaredSize(archive: zip).bytes, 9)
        let reports = Reports()
        let s = try ZipExtractor.extractOnce(archive: zip, into: tmp.appendingPathComponent("good"), progress: { reports.add($0) })
        XCTAssertEqual(s, ZipExtractor.Summary(files: 2, bytes: 9, extractedNow: true))
        let all = reports.all
        XCTAssertGreaterThanOrEqual(all.count, 2)
        XCTAssertEqual(all.first?.bytesDone, 0)
        XCTAssertEqual(all.first?.finished, false)
        for (a, b) in Swift.zip(all, all.dropFirst()) {
            XCTAssertLessThanOrEqual(a.bytesDone, b.bytesDone)
            XCTAssertLessThanOrEqual(a.entriesDone, b.entriesDone)
        }
        let last = try XCTUnwrap(all.last)
        XCTAssertTrue(last.finished)
        XCTAssertEqual([last.entriesDone, last.entriesTotal], [2, 2])
        XCTAssertEqual([last.bytesDone, last.bytesTotal], [9, 9])
        XCTAssertEqual(all.filter(\.finished).count, 1)
        // A second open reports nothing: the marker says it is done.
        let again = Reports()
        XCTAssertFalse(try ZipExtractor.extractOnce(archive: zip, into: tmp.appendingPathComponent("good"), progress: { again.add($0) }).extractedNow)
        XCTAssertTrue(again.all.isEmpty)
    }

    /// An interrupted run leaves no target folder (nothing that looks complete), only a work folder of
    /// complete files plus, at worst, one half-written temporary; the next run keeps the complete files,
    /// rewrites the rest and finishes with exactly the archive's files.
    func testInterruptedExtractionResumes() throws {
        let zip = fixturesURL("layouts/zips/good.zip")
        let dest = tmp.appendingPathComponent("good")
        let work = tmp.appendingPathComponent(".good.partial")
        XCTAssertThrowsError(try ZipExtractor.extractOnce(archive: zip, into: dest, maxTotalBytes: 1 << 20, progress: nil,
                                                          interruptAfterFiles: 1))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest.path))
        XCTAssertFalse(ZipExtractor.isExtracted(archive: zip, into: dest))
        XCTAssertEqual(listing(work), [".sftdeck-extracting", "task/a.txt"])
        // What a kill in the middle of the second entry leaves: its temporary, half written.
        try Data("be".utf8).write(to: work.appendingPathComponent("task/sub/b.txt.sftdeck-part"))
        let reports = Reports()
        let s = try ZipExtractor.extractOnce(archive: zip, into: dest, progress: { reports.add($0) })
        XCTAssertEqual(s, ZipExtractor.Summary(files: 2, bytes: 9, extractedNow: true, resumedFiles: 1, resumedBytes: 5))
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("task/a.txt"), encoding: .utf8), "alpha")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("task/sub/b.txt"), encoding: .utf8), "beta")
        XCTAssertEqual(listing(dest), [".sftdeck-extracted", "task/a.txt", "task/sub/b.txt"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.path))
        XCTAssertEqual(reports.all.last?.bytesResumed, 5)
        // A resumed run does not open with a "0 done" report: its first comes once the kept files are counted.
        XCTAssertTrue(reports.all.allSatisfy { $0.bytesResumed == 5 }, "\(reports.all)")
        XCTAssertTrue(ZipExtractor.isExtracted(archive: zip, into: dest))
    }

    /// A cancelled extraction stops before its next entry with one line saying how far it got; the files it
    /// finished are kept (nothing looks complete) and the next call resumes from them. A dataset open whose
    /// flag is already set fails the same way, naming the archive.
    func testCancelledExtractionKeepsItsFilesAndResumes() throws {
        let zip = fixturesURL("layouts/zips/good.zip")
        let dest = tmp.appendingPathComponent("good"), work = tmp.appendingPathComponent(".good.partial")
        let flag = CancellationFlag()
        // Each report waits out the 0.1 s throttle so the one after the first file arrives; it sets the flag.
        let progress: ZipExtractionProgressHandler = { p in
            usleep(110_000)
            if p.entriesDone >= 1 { flag.cancel() }
        }
        XCTAssertThrowsError(try ZipExtractor.extractOnce(archive: zip, into: dest, progress: progress, cancellation: flag)) { e in
            XCTAssertEqual("\(e)", "\(zip.path): extraction cancelled after 1 of 2 files; those are kept and the next open resumes")
        }
        XCTAssertFalse(ZipExtractor.isExtracted(archive: zip, into: dest))
        XCTAssertEqual(listing(work), [".sftdeck-extracting", "task/a.txt"])
        let s = try ZipExtractor.extractOnce(archive: zip, into: dest)
        XCTAssertEqual(s, ZipExtractor.Summary(files: 2, bytes: 9, extractedNow: true, resumedFiles: 1, resumedBytes: 5))
        XCTAssertEqual(listing(dest), [".sftdeck-extracted", "task/a.txt", "task/sub/b.txt"])

        // Through Dataset.open on the MMIU layout: a set flag stops before the first file.
        let mmiu = tmp.appendingPathComponent("mmiu")
        try FileManager.default.copyItem(at: fixturesURL("layouts/mmiu"), to: mmiu)
        var options = DatasetOpenOptions(extractionRoot: tmp.appendingPathComponent("images"))
        options.extractionProgress = nil
        options.extractionCancellation = CancellationFlag()
        options.extractionCancellation?.cancel()
        XCTAssertThrowsError(try Dataset.open(mmiu.path, options: options)) { e in
            XCTAssertTrue("\(e)".contains(".zip: extraction cancelled after 0 of "), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        options.extractionCancellation = nil
        XCTAssertEqual(try Dataset.open(mmiu.path, options: options).count, 6)
    }

    /// A work folder left by another version of the archive (different size/date stamp) is discarded.
    func testWorkFolderOfAnotherArchiveVersionIsDiscarded() throws {
        let zip = fixturesURL("layouts/zips/good.zip")
        let work = tmp.appendingPathComponent(".good.partial")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("task"), withIntermediateDirectories: true)
        try Data("good.zip 1 1\n".utf8).write(to: work.appendingPathComponent(".sftdeck-extracting"))
        try Data("stale".utf8).write(to: work.appendingPathComponent("task/a.txt"))   // same size as "alpha"
        try Data("x".utf8).write(to: work.appendingPathComponent("leftover.bin"))
        let s = try ZipExtractor.extractOnce(archive: zip, into: tmp.appendingPathComponent("good"))
        XCTAssertEqual(s.resumedFiles, 0)
        XCTAssertEqual(try String(contentsOf: tmp.appendingPathComponent("good/task/a.txt"), encoding: .utf8), "alpha")
        XCTAssertEqual(listing(tmp.appendingPathComponent("good")), [".sftdeck-extracted", "task/a.txt", "task/sub/b.txt"])
    }

    /// A hostile archive still leaves nothing behind (its work folder is removed), and names that
    /// SFTDeck's bookkeeping uses are refused inside archives.
    func testHostileArchiveLeavesNoWorkFolder() throws {
        let zip = fixturesURL("layouts/zips/escape.zip")
        XCTAssertThrowsError(try ZipExtractor.extractOnce(archive: zip, into: tmp.appendingPathComponent("escape")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { !$0.hasSuffix(".lock") }, [])
    }

    /// MMIU's archives report one combined progress (totals over both zips) through DatasetOpenOptions.
    func testMMIUOpenReportsCombinedProgress() throws {
        let folder = tmp.appendingPathComponent("mmiu")
        try FileManager.default.copyItem(at: fixturesURL("layouts/mmiu"), to: folder)
        let reports = Reports()
        var options = DatasetOpenOptions()
        options.extractionProgress = { reports.add($0) }
        let d = try Dataset.open(folder.path, options: options)
        XCTAssertEqual(d.count, 6)
        let all = reports.all
        let sizes = try MMIU.zips(in: folder).map { try ZipExtractor.declaredSize(archive: $0) }
        let last = try XCTUnwrap(all.last)
        XCTAssertTrue(last.finished)
        XCTAssertEqual(last.archiveCount, 2)
        XCTAssertEqual(last.archiveIndex, 1)
        XCTAssertEqual(last.entriesTotal, sizes.reduce(0) { $0 + $1.entries })
        XCTAssertEqual(last.entriesDone, last.entriesTotal)
        XCTAssertEqual(last.bytesDone, sizes.reduce(0) { $0 + $1.bytes })
        XCTAssertEqual(Set(all.map(\.archive)), Set(MMIU.zips(in: folder).map(\.lastPathComponent)))
        XCTAssertEqual(all.filter(\.finished).count, 1)
        for (a, b) in Swift.zip(all, all.dropFirst()) { XCTAssertLessThanOrEqual(a.bytesDone, b.bytesDone) }
    }

    /// The process-wide default (what the headless CLI sets) reaches options made anywhere later.
    func testDefaultProgressHandlerReachesNewOptions() throws {
        let reports = Reports()
        DatasetOpenOptions.defaultExtractionProgress = { reports.add($0) }
        defer { DatasetOpenOptions.defaultExtractionProgress = nil }
        let folder = tmp.appendingPathComponent("mmiu")
        try FileManager.default.copyItem(at: fixturesURL("layouts/mmiu"), to: folder)
        _ = try Dataset.open(folder.path)
        XCTAssertEqual(reports.all.last?.finished, true)
        XCTAssertNotNil(DatasetOpenOptions(environment: [:]).extractionProgress)
    }

    /// The line writer the headless CLI uses: at most one line per interval, the final one always.
    func testLineWriterThrottles() {
        final class Lines: @unchecked Sendable { var items: [String] = [] }
        let lines = Lines()
        let handler = ZipExtractionProgress.lineWriter(interval: 3600) { lines.items.append($0) }
        for k in 0...5 {
            handler(ZipExtractionProgress(archive: "a.zip", archiveIndex: 0, archiveCount: 1, entriesDone: k, entriesTotal: 5,
                                          bytesDone: UInt64(k), bytesTotal: 5, elapsed: Double(k), finished: k == 5))
        }
        XCTAssertEqual(lines.items.count, 2)
        XCTAssertTrue(lines.items[0].contains("0 of 5 files"), lines.items[0])
        XCTAssertTrue(lines.items[1].contains("done in 5s"), lines.items[1])
    }

    func testProgressLine() {
        var p = ZipExtractionProgress(archive: "2D-spatial.zip", archiveIndex: 1, archiveCount: 7, entriesDone: 1234,
                                      entriesTotal: 56789, bytesDone: 1_200_000_000, bytesTotal: 30_100_000_000, elapsed: 14.1, finished: false)
        // 1.2 GB in 14.1 s = 85.1 MB/s; 28.9 GB left at that rate = 339.6 s.
        XCTAssertEqual(p.line, "extracting images: 2D-spatial.zip (2 of 7), 1.2 GB of 30.1 GB (3%), 1234 of 56789 files, 85.1 MB/s, ETA 5m 40s")
        p.bytesDone = 0
        p.elapsed = 0
        XCTAssertEqual(p.line, "extracting images: 2D-spatial.zip (2 of 7), 0 B of 30.1 GB (0%), 1234 of 56789 files")
        p = ZipExtractionProgress(archive: "a.zip", archiveIndex: 0, archiveCount: 1, entriesDone: 3, entriesTotal: 3,
                                  bytesDone: 950, bytesTotal: 950, bytesResumed: 450, elapsed: 2, finished: true)
        XCTAssertEqual(p.line, "extracting images: a.zip, 950 B of 950 B (100%), 3 of 3 files (450 B kept from an interrupted run), 250 B/s, done in 2s")
        XCTAssertEqual(ZipExtractionProgress.duration(7300), "2h 01m")
    }
}
