import XCTest
@testable import Dashboard
import Datasets
import Training

/// Holds background jobs until the test releases them, in any order.
final class HeldWork: WorkScheduler {
    var jobs: [(lane: WorkLane, job: () -> Void)] = []
    func schedule(_ lane: WorkLane, _ job: @escaping () -> Void) { jobs.append((lane, job)) }
    func count(_ lane: WorkLane) -> Int { jobs.filter { $0.lane == lane }.count }
    /// Runs the `k`-th held job of `lane` (0: oldest), removing it.
    func run(_ lane: WorkLane, _ k: Int = 0) {
        let idx = jobs.indices.filter { jobs[$0].lane == lane }[k]
        let j = jobs.remove(at: idx)
        j.job()
    }
}

/// A data source whose opens can be held part-way: each open reports `progress` (when set), then
/// waits for `release` before returning, like an MMIU first open unpacking its zips.
final class GatedSource: DashboardDataSource, @unchecked Sendable {
    let lock = NSLock()
    var entries: [DatasetEntry]
    var rows: [String: Int]
    var progress: ZipExtractionProgress?
    var gated: Set<String> = []
    let release = DispatchSemaphore(value: 0)
    private var _opens: [String: Int] = [:]
    var opens: [String: Int] { lock.lock(); defer { lock.unlock() }; return _opens }
    var rowLoads: [Int] = []
    /// Opens that ended because their flag was set.
    var cancelled: Set<String> = []

    init(_ specs: [String], rows: [String: Int]) {
        entries = specs.map { DatasetEntry(spec: "/data/" + $0, source: "config") }
        self.rows = rows
    }
    func datasetEntries() -> [DatasetEntry] { lock.lock(); defer { lock.unlock() }; return entries }
    func openDataset(_ entry: DatasetEntry, progress report: @escaping ZipExtractionProgressHandler, cancellation: CancellationFlag) -> DatasetSummary {
        lock.lock(); _opens[entry.spec, default: 0] += 1; let p = progress; let gate = gated.contains(entry.spec); lock.unlock()
        if let p { report(p) }
        if gate {
            // held until released, or until the app sets the open's flag (x, quitting), as an extraction stops
            while release.wait(timeout: .now() + 0.005) == .timedOut {
                if cancellation.isCancelled {
                    lock.lock(); cancelled.insert(entry.spec); lock.unlock()
                    return DatasetSummary(name: entry.name, path: entry.spec, layout: "?", source: entry.source, splits: [], schema: [],
                                          error: "\(entry.spec)/2D-spatial.zip: extraction cancelled after 3 of 10 files", spec: entry.spec)
                }
            }
        }
        return DatasetSummary(name: entry.name, path: entry.spec, layout: "MMIU", source: entry.source,
                              splits: [.init(name: "test", rows: rows[entry.name] ?? 0)], schema: ["question: string"], spec: entry.spec)
    }
    func loadRow(dataset: DatasetSummary, split: String, index: Int) throws -> InspectedRow {
        lock.lock(); rowLoads.append(index); lock.unlock()
        return InspectedRow(index: index, rowCount: dataset.splits.first?.rows ?? 0, messages: [RenderedMessage(role: "user", text: "question \(index)")])
    }
    func loadConfig() -> ConfigDocument? { nil }
    func saveConfig(_ doc: ConfigDocument) throws -> String { "/tmp/x.yaml" }
    func startRun(_ doc: ConfigDocument?, observer: EngineObserver) throws -> EngineControl { throw DashboardError("no runs here") }
    func listRuns() -> [RunSummary] { [] }
}

/// Pumps the app (as the UI loop does each frame) until `condition` holds; fails after a generous deadline.
func pump(_ app: DashboardApp, until what: String, timeout: Double = 20, file: StaticString = #filePath, line: UInt = #line,
          _ condition: () -> Bool) {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { XCTFail("timed out waiting for \(what)", file: file, line: line); return }
        app.pump()
        usleep(2_000)
    }
}

final class DatasetScanTests: XCTestCase {
    override func setUp() {
        super.setUp()
        // the recent-datasets list goes to a temporary file, never the user's ~/.cache
        RecentDatasets.fileOverride = FileManager.default.temporaryDirectory.appendingPathComponent("recent-\(UUID().uuidString).txt").path
    }
    let extracting = ZipExtractionProgress(archive: "2D-spatial.zip", archiveIndex: 0, archiveCount: 2, entriesDone: 3, entriesTotal: 10,
                                           bytesDone: 3 << 20, bytesTotal: 12 << 20, elapsed: 2, finished: false)

    /// The scan runs on real background queues while the MMIU open is held half-way: a small dataset
    /// listed after it opens meanwhile, the screen shows "opening…" with the extraction's figures, keys
    /// keep working, a rescan does not open the held dataset again, and its summary replaces the
    /// progress once it arrives.
    func testOpeningShowsProgressKeysKeepWorkingAndOthersDoNotWait() {
        let src = GatedSource(["mmiu-mini", "shapes"], rows: ["mmiu-mini": 6, "shapes": 3])
        src.progress = extracting
        src.gated = ["/data/mmiu-mini"]
        let app = DashboardApp(source: src, work: QueueWork())
        pump(app, until: "the extraction report and the small dataset's summary") {
            app.datasets.items.first?.opening?.progress == extracting && app.datasets.items.last?.summary != nil
        }
        var buf = frame(app)
        XCTAssertNotNil(buf.find("2, 1 opening"), buf.text)
        XCTAssertNotNil(buf.find("mmiu-mini  [config]  opening…"), buf.text)
        XCTAssertNotNil(buf.find("opening… unpacking images"), buf.text)
        XCTAssertNotNil(buf.find("archive 2D-spatial.zip (1 of 2)"), buf.text)
        XCTAssertNotNil(buf.find("files   3 of 10"), buf.text)
        XCTAssertNotNil(buf.find("bytes   3 MiB of 12 MiB"), buf.text)
        // 3 MiB in 2 s: 9 MiB left at 1.5 MiB/s is 6 s.
        XCTAssertNotNil(buf.find("elapsed 00:02  2 MiB/s  ETA 00:06"), buf.text)
        XCTAssertNotNil(buf.find(" 25%"), buf.text)

        // Keys are handled while the open is held: refuse to inspect it, move, switch screens and back.
        app.handle(.enter)
        XCTAssertEqual(app.screen, .datasets)
        XCTAssertEqual(app.statusMessage?.text, "mmiu-mini is still opening")
        app.handle(.char("j"))
        XCTAssertEqual(app.datasets.selected, 1)
        app.handle(.char("3")); app.handle(.char("1"))
        XCTAssertEqual(app.screen, .datasets)
        app.handle(.char("k"))

        // A rescan lists again and reads the small dataset again, but does not open the held one twice.
        app.handle(.char("r"))
        pump(app, until: "the rescan's listing") { !app.datasets.listing }
        XCTAssertEqual(app.statusMessage?.text, "found 2 datasets (1 still opening from before)")
        pump(app, until: "the small dataset's second summary") { src.opens["/data/shapes"] == 2 && app.datasets.openingCount == 1 }
        XCTAssertEqual(src.opens["/data/mmiu-mini"], 1)

        src.release.signal()
        pump(app, until: "both summaries") { app.datasets.openingCount == 0 }
        XCTAssertEqual(src.opens, ["/data/mmiu-mini": 1, "/data/shapes": 2])
        buf = frame(app)
        XCTAssertNotNil(buf.find("test  6 rows"), buf.text)
        XCTAssertNil(buf.find("opening…"), buf.text)
        XCTAssertNotNil(buf.find("layout  MMIU"), buf.text)
    }

    /// `x` stops the selected dataset's extraction: the open gets its flag set and answers with the error line
    /// that says so; the screen says it is stopping meanwhile; elsewhere `x` says what it is for.
    func testXStopsTheSelectedExtraction() {
        let src = GatedSource(["mmiu-mini", "shapes"], rows: ["mmiu-mini": 6, "shapes": 3])
        src.progress = extracting
        src.gated = ["/data/mmiu-mini"]
        let app = DashboardApp(source: src, work: QueueWork())
        pump(app, until: "the extraction report") { app.datasets.items.first?.opening?.progress == extracting && app.datasets.items.last?.summary != nil }
        XCTAssertNotNil(frame(app).find("unpacking images (x stops; the next open resumes)"), frame(app).text)
        app.handle(.char("x"))
        XCTAssertEqual(app.statusMessage?.text, "stopping the image extraction of mmiu-mini: unpacked files are kept, r resumes it")
        pump(app, until: "the cancelled open's answer") { app.datasets.items.first?.summary != nil }
        XCTAssertEqual(src.cancelled, ["/data/mmiu-mini"])
        XCTAssertEqual(app.datasets.items.first?.summary?.error, "/data/mmiu-mini/2D-spatial.zip: extraction cancelled after 3 of 10 files")
        XCTAssertNotNil(frame(app).find("error: /data/mmiu-mini/2D-spatial.zip: extraction cancelled"), frame(app).text)
        app.handle(.char("x"))
        XCTAssertEqual(app.statusMessage?.text, "mmiu-mini is not unpacking images: x stops an image extraction in progress")
        // r opens it again: while it extracts, its progress shows instead of the error; then it is let through.
        app.handle(.char("r"))
        pump(app, until: "the reopen's progress") { app.datasets.items.first?.opening?.progress == extracting }
        XCTAssertNotNil(frame(app).find("unpacking images (x stops"), frame(app).text)
        XCTAssertNil(frame(app).find("extraction cancelled"), frame(app).text)
        src.release.signal()
        pump(app, until: "the reopened summary") { app.datasets.openingCount == 0 && app.datasets.items.first?.summary?.error == nil }
        XCTAssertEqual(src.opens["/data/mmiu-mini"], 2)
    }

    /// The state while stopping: the item says so, a second x does not ask again.
    func testCancellingStateIsShownAndAskedOnce() {
        var s = DatasetsState()
        let t = s.beginListing()
        let reqs = s.applyListing(ticket: t, entries: [DatasetEntry(spec: "/data/m", source: "config")])!
        XCTAssertNil(s.cancelSelectedExtraction(), "nothing is extracting before a report")
        s.applyProgress(ticket: reqs[0].1, extracting)
        XCTAssertEqual(s.cancelSelectedExtraction(), reqs[0].1)
        XCTAssertNil(s.cancelSelectedExtraction(), "asked once")
        XCTAssertEqual(s.items[0].opening?.cancelling, true)
        var buf = ScreenBuffer(width: 100, height: 30)
        DatasetsScreen.render(s, into: &buf, Rect(x: 0, y: 0, width: 100, height: 30), ctx: RenderContext(theme: Theme.builtIn("dark")!))
        XCTAssertNotNil(buf.find("stopping the extraction…"), buf.text)
        // A rescan while it stops keeps the state.
        let t2 = s.beginListing()
        _ = s.applyListing(ticket: t2, entries: [DatasetEntry(spec: "/data/m", source: "config")])
        XCTAssertEqual(s.items[0].opening?.cancelling, true)
    }

    /// Quitting while opens run: queued work is skipped, nothing waits for the running ones. The held
    /// opens fill every slot of the opening lane, so "small" is still queued when the app quits.
    func testQuitWhileOpeningSkipsQueuedWork() {
        let held = (1...QueueWork.concurrentOpens).map { "big\($0)" }
        let src = GatedSource(held + ["small"], rows: [:])
        src.progress = extracting
        src.gated = Set(held.map { "/data/" + $0 })
        let app = DashboardApp(source: src, work: QueueWork())
        pump(app, until: "every held open running") { src.opens.count == held.count }
        app.handle(.char("q"))
        XCTAssertTrue(app.shouldQuit)
        app.cancelBackgroundWork()               // what the terminal loop does on leaving
        // The running opens stop (their flags are set: an extraction ends at its next chunk), nothing
        // releases them; the queued one ("small") never starts.
        pump(app, until: "the running opens' answers") { app.datasets.items.prefix(held.count).allSatisfy { $0.summary != nil } }
        src.lock.lock(); let stopped = src.cancelled; src.lock.unlock()
        XCTAssertEqual(stopped, Set(held.map { "/data/" + $0 }))
        let drained = DispatchSemaphore(value: 0)
        QueueWorkProbe.afterOpeningLane(app) { drained.signal() }
        XCTAssertEqual(drained.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(src.opens, Dictionary(uniqueKeysWithValues: held.map { ("/data/" + $0, 1) }))
        XCTAssertNil(app.datasets.items.last?.summary)
    }

    /// The state machine on its own, with answers in any order: stale listings, answers for
    /// datasets a rescan dropped or re-added, late answers after a reopen.
    func testScanStateMachineHandlesOutOfOrderAndStaleAnswers() {
        func e(_ n: String) -> DatasetEntry { DatasetEntry(spec: "/d/" + n, source: "recent") }
        func sum(_ n: String, _ rows: Int) -> DatasetSummary {
            DatasetSummary(name: n, path: "/d/" + n, layout: "parquet conversations", source: "recent", splits: [.init(name: "train", rows: rows)], schema: [])
        }
        var s = DatasetsState()
        let t1 = s.beginListing()
        let t2 = s.beginListing()                  // r pressed again before the first listing came
        XCTAssertNil(s.applyListing(ticket: t1, entries: [e("a")]), "an older listing is dropped")
        XCTAssertTrue(s.listing)
        let first = s.applyListing(ticket: t2, entries: [e("a"), e("b")])!
        XCTAssertEqual(first.map(\.0.spec), ["/d/a", "/d/b"])
        let ta = first[0].1, tb = first[1].1
        XCTAssertFalse(s.listing)

        // b answers before a.
        XCTAssertTrue(s.applyOpened(ticket: tb, summary: sum("b", 2)))
        XCTAssertEqual(s.items.map { $0.summary?.splits.first?.rows }, [nil, 2])
        XCTAssertNil(s.current, "a (selected) is still opening")
        s.applyProgress(ticket: ta, extracting)
        XCTAssertEqual(s.items[0].opening?.progress, extracting)

        // A rescan that reorders and adds c: a keeps its open (no second one), b reopens, c opens.
        s.selected = 0
        let t3 = s.beginListing()
        let second = s.applyListing(ticket: t3, entries: [e("b"), e("c"), e("a")])!
        XCTAssertEqual(second.map(\.0.spec), ["/d/b", "/d/c"])
        let tb2 = second[0].1, tc = second[1].1
        XCTAssertEqual(s.items[2].opening, .init(ticket: ta, progress: extracting), "a's open and its progress carry over")
        XCTAssertEqual(s.selected, 2, "the selection follows a")
        XCTAssertEqual(s.items[0].summary?.splits.first?.rows, 2, "b shows its old summary while it reopens")

        // Late answers: b's first open again, its progress, an unknown ticket.
        XCTAssertFalse(s.applyOpened(ticket: tb, summary: sum("b", 99)))
        s.applyProgress(ticket: tb, extracting)
        XCTAssertNil(s.items[0].opening?.progress)
        XCTAssertFalse(s.applyOpened(ticket: 12345, summary: sum("x", 1)))

        // c then b answer; a is dropped by a rescan while still opening, then re-added before its
        // answer: it is not opened twice, and its answer lands.
        XCTAssertTrue(s.applyOpened(ticket: tc, summary: sum("c", 3)))
        let t4 = s.beginListing()
        XCTAssertEqual(s.applyListing(ticket: t4, entries: [e("b"), e("c")])!.map(\.0.spec), ["/d/c"], "b is still opening; c reopens")
        XCTAssertTrue(s.applyOpened(ticket: tb2, summary: sum("b", 5)))
        XCTAssertEqual(s.items.map(\.entry.spec), ["/d/b", "/d/c"])
        let t5 = s.beginListing()
        let third = s.applyListing(ticket: t5, entries: [e("a"), e("b"), e("c")])!
        XCTAssertEqual(third.map(\.0.spec), ["/d/b"], "a's first open is still running; c's reopen too")
        XCTAssertEqual(s.items[0].opening?.ticket, ta)
        XCTAssertTrue(s.applyOpened(ticket: ta, summary: sum("a", 7)))
        XCTAssertEqual(s.items[0].summary?.splits.first?.rows, 7)

        // An answer for a dataset no longer listed is dropped and frees its spec for the next scan.
        let t6 = s.beginListing()
        XCTAssertEqual(s.applyListing(ticket: t6, entries: [e("a")])!.map(\.0.spec), ["/d/a"])
        XCTAssertFalse(s.applyOpened(ticket: third[0].1, summary: sum("b", 1)), "b left the list")
        XCTAssertNil(s.inFlight["/d/b"])
        XCTAssertEqual(s.items.count, 1)
    }

    /// Inspector rows load on the rows lane: "loading row N…" until the answer; only the newest of
    /// several requests is read, and a late answer to an older one is dropped.
    func testInspectorRowLoadsInTheBackgroundAndOnlyTheNewestCounts() {
        let src = GatedSource(["shapes"], rows: ["shapes": 3])
        let work = HeldWork()
        let app = DashboardApp(source: src, work: work)
        var buf = frame(app)
        XCTAssertNotNil(buf.find("Looking for datasets…"), buf.text)
        work.run(.listing); app.pump()
        buf = frame(app)
        XCTAssertNotNil(buf.find("shapes  [config]  opening…"), buf.text)
        XCTAssertNotNil(buf.find("reading its files"), buf.text)
        work.run(.opening); app.pump()
        XCTAssertNotNil(frame(app).find("test  3 rows"))

        app.handle(.enter)
        XCTAssertEqual(app.screen, .inspector)
        buf = frame(app)
        XCTAssertNotNil(buf.find("loading row 0…"), buf.text)
        app.handle(.char("l")); app.handle(.char("l"))
        XCTAssertEqual(app.inspector.loading?.index, 2)
        XCTAssertEqual(work.count(.rows), 3)
        // Answers come newest first here; the two older requests are skipped without reading.
        work.run(.rows, 2); app.pump()
        work.run(.rows, 0); work.run(.rows, 0); app.pump()
        XCTAssertEqual(src.rowLoads, [2])
        buf = frame(app)
        XCTAssertNotNil(buf.find("row 2/2"), buf.text)
        XCTAssertNotNil(buf.find("question 2"), buf.text)
        // A late answer to an old ticket changes nothing.
        app.workInbox.post(.rowLoaded(ticket: 1, index: 0, row: InspectedRow(index: 0, rowCount: 3, messages: [RenderedMessage(role: "user", text: "stale")]), error: nil))
        app.pump()
        XCTAssertEqual(app.inspector.row?.index, 2)
        // While the next row loads, the shown one stays and the title says what is coming.
        app.handle(.char("h"))
        buf = frame(app)
        XCTAssertNotNil(buf.find("loading row 1…"), buf.text)
        XCTAssertNotNil(buf.find("question 2"), buf.text)
    }

    /// The live source over a real MMIU folder (JSON records + two image zips): the open reports
    /// extraction progress to the handler it is given (not the process-wide line on stderr), and
    /// the app's background scan ends with the split's row count.
    func testLiveSourceOpensMMIUInTheBackgroundWithProgress() throws {
        var root = URL(fileURLWithPath: #filePath); for _ in 0..<3 { root.deleteLastPathComponent() }
        let fixture = root.appendingPathComponent("Tests/DatasetsTests/Fixtures/layouts/mmiu")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dash-mmiu-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in ["all.json", "2D-spatial.zip", "Low-level-semantic.zip"] {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        let src = LiveDataSource(configPath: nil)
        src.extraDatasets = [dir.path]
        final class Reports: @unchecked Sendable { let lock = NSLock(); var all: [ZipExtractionProgress] = [] }
        let reports = Reports()
        let s = src.openDataset(DatasetEntry(spec: dir.path, source: "recent"),
                                progress: { p in reports.lock.lock(); reports.all.append(p); reports.lock.unlock() }, cancellation: CancellationFlag())
        XCTAssertNil(s.error, s.error ?? "")
        XCTAssertEqual(s.layout, "MMIU")
        XCTAssertEqual(s.splits, [.init(name: "test", rows: 6)])
        let last = try XCTUnwrap(reports.all.last)
        XCTAssertTrue(last.finished)
        XCTAssertEqual(last.entriesDone, last.entriesTotal)
        XCTAssertGreaterThan(last.entriesTotal, 0)

        // Again through the app (extracted now, so no progress), on the real queues.
        let app = DashboardApp(source: src, work: QueueWork())
        defer { app.cancelBackgroundWork() }     // datasets of this machine's HF cache are listed too: leave them be
        pump(app, until: "the MMIU summary") { app.datasets.items.contains { $0.entry.spec == dir.path && $0.summary != nil } }
        app.datasets.selected = app.datasets.items.firstIndex { $0.entry.spec == dir.path }!
        XCTAssertNotNil(frame(app).find("test  6 rows"))
        app.handle(.enter)
        pump(app, until: "row 0") { app.inspector.row != nil || app.inspector.error != nil }
        XCTAssertEqual(app.inspector.row?.rowCount, 6, app.inspector.error ?? "")
    }
}

/// Waits for the opening lane to drain: schedules a marker job behind what is queued there.
enum QueueWorkProbe {
    static func afterOpeningLane(_ app: DashboardApp, _ body: @escaping () -> Void) {
        app.work.schedule(.opening, body)
    }
}

/// The shipped scheduler: opens run side by side (a slow one does not hold up the next), listing stays
/// in order on its own lane.
final class QueueWorkTests: XCTestCase {
    func testAnOpenDoesNotWaitForASlowerOne() {
        let work = QueueWork()
        let slowMayFinish = DispatchSemaphore(value: 0), fastDone = expectation(description: "second open ran")
        work.schedule(.opening) { _ = slowMayFinish.wait(timeout: .now() + 10) }
        work.schedule(.opening) { fastDone.fulfill() }
        wait(for: [fastDone], timeout: 5)   // a one-at-a-time lane would block here until the first gave up
        slowMayFinish.signal()
    }

    func testListingRunsInOrder() {
        let work = QueueWork()
        let lock = NSLock()
        var order: [Int] = []
        let done = expectation(description: "all listed")
        done.expectedFulfillmentCount = 20
        for i in 0..<20 { work.schedule(.listing) { lock.lock(); order.append(i); lock.unlock(); done.fulfill() } }
        wait(for: [done], timeout: 5)
        XCTAssertEqual(order, Array(0..<20))
    }
}
