import Datasets
import Foundation

/// Which background queue a job runs on. Listing is cheap and must not wait behind an MMIU
/// extraction; rows of an open dataset must not either, so each lane has its own serial queue.
public enum WorkLane: Sendable, CaseIterable {
    /// Finding the datasets to list (config, recent paths, the HF cache's folder names).
    case listing
    /// Opening datasets, up to `QueueWork.concurrentOpens` at once, so a small dataset listed after a big
    /// MMIU one (which unpacks its image zips on first open) does not wait for it. Two opens of the same
    /// folder never extract at once: the extraction holds a file lock per target.
    case opening
    /// Reading and encoding one Inspector row.
    case rows
}

/// Where the app runs slow work. Jobs only call the data source and post their results to the
/// app's `WorkInbox`; they never touch app state (that belongs to the UI thread, which drains the
/// inbox once per frame, as it does the engine's `EventInbox`).
public protocol WorkScheduler: AnyObject {
    func schedule(_ lane: WorkLane, _ job: @escaping () -> Void)
}

/// The shipped scheduler, at utility priority so a training run on the same two cores keeps its share:
/// a serial dispatch queue for listing and for rows, and an operation queue running a few opens at once.
public final class QueueWork: WorkScheduler, @unchecked Sendable {
    /// Opens that may run at the same time (each mostly waits on the disk or on unzipping).
    public static let concurrentOpens = 3
    private let queues: [WorkLane: DispatchQueue]
    private let opens: OperationQueue
    public init() {
        var q: [WorkLane: DispatchQueue] = [:]
        for lane in WorkLane.allCases where lane != .opening { q[lane] = DispatchQueue(label: "sftdeck.dashboard.\(lane)", qos: .utility) }
        queues = q
        opens = OperationQueue()
        opens.name = "sftdeck.dashboard.opening"
        opens.maxConcurrentOperationCount = QueueWork.concurrentOpens
        opens.qualityOfService = .utility
    }
    public func schedule(_ lane: WorkLane, _ job: @escaping () -> Void) {
        let box = UncheckedJob(job)
        if lane == .opening { opens.addOperation { box.run() } } else { queues[lane]!.async { box.run() } }
    }
}

/// Runs each job at once on the calling thread (tests, and tools that want the old blocking
/// behaviour). Results still travel through the inbox.
public final class InlineWork: WorkScheduler {
    public init() {}
    public func schedule(_ lane: WorkLane, _ job: @escaping () -> Void) { job() }
}

/// A job closure handed to a dispatch queue. The closures capture the data source, which is built
/// for use from the background lanes (its caches are lock-protected).
struct UncheckedJob: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// What background work sends back to the UI thread. Each result carries the ticket of the request
/// it answers, so the state machines drop answers to requests that were superseded.
public enum WorkResult: Sendable {
    case listed(ticket: Int, entries: [DatasetEntry])
    case openProgress(ticket: Int, ZipExtractionProgress)
    case opened(ticket: Int, DatasetSummary)
    case rowLoaded(ticket: Int, index: Int, row: InspectedRow?, error: String?)
}

/// Background results waiting for the UI thread (lock-protected; ncurses and the app state are
/// touched from the UI thread only). Extraction progress is coalesced: only the newest report per
/// request is kept, so a fast extraction cannot flood the queue between frames.
public final class WorkInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [WorkResult] = []
    private var progressSlot: [Int: Int] = [:]      // ticket -> index in `pending` of its progress report
    public init() {}

    public func post(_ r: WorkResult) {
        lock.lock(); defer { lock.unlock() }
        if case .openProgress(let ticket, _) = r {
            if let i = progressSlot[ticket] { pending[i] = r; return }
            progressSlot[ticket] = pending.count
        }
        pending.append(r)
    }

    public func drain() -> [WorkResult] {
        lock.lock(); defer { lock.unlock() }
        let out = pending
        pending.removeAll(keepingCapacity: true)
        progressSlot.removeAll(keepingCapacity: true)
        return out
    }
}

/// Set when the app quits: queued jobs that have not started yet are skipped (a running extraction has
/// its own flag per open, which quitting sets too; extraction writes each file under a temporary name
/// and renames it only once complete, so the next open resumes where it stopped).
public typealias WorkCancellation = CancellationFlag

/// The newest row request, readable from the rows lane: a queued row load that is no longer the one
/// the user is waiting for (they pressed `l` five times) is skipped instead of read.
final class LatestTicket: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func set(_ v: Int) { lock.lock(); value = v; lock.unlock() }
    func isLatest(_ v: Int) -> Bool { lock.lock(); defer { lock.unlock() }; return value == v }
}
