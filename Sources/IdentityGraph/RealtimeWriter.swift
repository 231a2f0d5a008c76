import Foundation
import LMDB

/// Real-time ingest: many concurrent submitters, one writer thread, group commit.
///
/// ```swift
/// let writer = RealtimeWriter(graph: graph)
/// let resolution = try await writer.submit([.event(EventInput(identifiers: ids))])
/// // durable now (in the default mode): resolution.entity, resolution.report.merges, …
/// ```
///
/// The writer thread takes what is queued, waits for more until the oldest queued submission
/// has waited `window` (up to `maxBatch` operations), applies it all in one write transaction
/// and only then completes each submitter. Submissions are validated on the submitter's side:
/// an invalid one throws to its submitter alone. LMDB's write lock belongs to a thread, which is why the writer is a thread
/// and never holds a transaction across an `await`.
///
/// Durability follows the graph's: `durable` completes a submitter after the commit's fsync;
/// `fast` (open the graph with `Durability.fast`) completes it after the commit reached the OS,
/// and a second thread syncs every `syncInterval` (the writer never waits for the disk): a
/// process crash loses nothing, a system crash loses at most what was acknowledged in the last
/// `syncInterval` plus the time of one sync. ``close()`` syncs what is left. With a journal
/// (``journaled(graph:options:)``) commits are not synced either, but a submitter is completed
/// only once its operations are also in the database's journal: nothing acknowledged is lost
/// to a system crash, and the database is never left damaged by one.
public final class RealtimeWriter: @unchecked Sendable {
    /// How the writer gathers and syncs.
    public struct Options: Sendable {
        /// Longest time a queued submission waits for others before the writer starts its commit
        /// (0: commit what is queued at once; what queues during a commit goes in the next).
        public var window: Duration = .milliseconds(1)
        /// Most operations in one commit. Under light load batches are far smaller (what queued
        /// during the previous commit); the cap only binds when the writer is behind, and there
        /// a larger batch catches up faster: a commit copies and writes every page it touched,
        /// so 10,000-operation batches saturated at 23.5k durable events/s where 100,000 reach
        /// 40k (800,000 events offered at 200,000/s). As the loader's default batch: past it a
        /// transaction dirties more pages than LMDB keeps in memory on a large database.
        public var maxBatch = 100_000
        /// In `fast` mode, the time from the end of one sync to the start of the next (with the
        /// time of a sync, the bound on loss after a system crash).
        public var syncInterval: Duration = .milliseconds(10)
        /// Called on the writer thread after each commit (successful or not), before its
        /// submitters are completed: what it held and how long it took. For measurements
        /// (`idgraph bench realtime`); it must be short.
        public var onCommit: (@Sendable (CommitReport) -> Void)?
        /// Defaults: 1 ms window, 100,000 operations, 10 ms sync interval, no commit observer.
        public init() {}
    }

    /// One commit of the writer, as ``Options/onCommit`` sees it.
    public struct CommitReport: Sendable {
        /// Operations applied in it.
        public var operations: Int
        /// Submissions they came in.
        public var submissions: Int
        /// From the moment the writer took the batch to the end of the commit (applying,
        /// writing the pages, and in `durable` mode syncing them).
        public var duration: Duration
    }

    /// Counts since the writer started.
    public struct Statistics: Sendable {
        /// Submissions completed (successfully or not).
        public var submissions: UInt64 = 0
        /// Operations in them.
        public var operations: UInt64 = 0
        /// Write transactions committed.
        public var commits: UInt64 = 0
        /// Forced syncs in fast mode.
        public var syncs: UInt64 = 0
        /// Time the writer spent applying and committing (the rest it waited for submissions):
        /// near the time elapsed, it is saturated.
        public var busy: Duration = .zero
    }

    private struct Pending {
        var operations: [PreparedOperation]
        /// With a journal: the submission's `G` record, framed on the submitter's thread.
        var framed: [UInt8] = []
        var completion: @Sendable (Result<Resolution, Error>) -> Void
        /// When it was queued: the window runs from the oldest queued submission's arrival.
        var arrival: Date
    }

    /// The graph written to.
    public let graph: IdentityGraph
    private let options: Options
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var queuedOperations = 0
    private var closed = false
    private var finished = false
    private var applied: UInt64 = 0
    private var stats = Statistics()
    private var thread: Thread?
    /// The periodic syncs of `fast` mode and of a journaled writer (which records each synced
    /// snapshot), on their own thread (nil in `durable` mode).
    private let syncer: PeriodicSync?
    /// With a journal (``journaled(graph:options:)``): the thread that appends and syncs it
    /// and acknowledges, and the snapshots the database can go back to.
    private let flusher: JournalFlusher?
    private let snapshots: JournalSnapshots?
    /// The sequence number of the next journaled batch.
    private var nextBatch: UInt64 = 0

    /// Starts a writer thread for `graph`.
    public convenience init(graph: IdentityGraph, options: Options = Options()) {
        self.init(graph: graph, options: options, journal: nil)
    }

    /// Starts a writer that acknowledges a submission once it is committed and its operations
    /// are in the database's journal (`journal/`: one `fdatasync` of a few hundred bytes per
    /// batch, on a thread of its own), while the commits themselves are not synced: a second
    /// thread syncs the database every ``Options/syncInterval`` and records in the journal the
    /// snapshot it synced, which stays whole in the file (pinned: LMDB reuses none of its pages)
    /// until the next one is recorded. A crash of the process loses nothing (the commits are in
    /// the operating system's cache); after a crash of the system, the next opening of the
    /// database goes back to the last recorded snapshot and applies the journal's batches
    /// since, with their own `now`: every acknowledged submission is there, with the resolution
    /// it was told. Readers see a submission when it commits, as in the other modes. `graph`
    /// must be opened with ``Durability/fast``; one journaled writer per database, and writes of
    /// other processes while it runs are not covered (a system crash may take back those after
    /// its last sync).
    public static func journaled(graph: IdentityGraph, options: Options = Options()) throws -> RealtimeWriter {
        guard graph.environment.durability == .fast else { throw RealtimeWriterError.journalNeedsFastDurability }
        let journal = try Journal(directory: JournalRecovery.directory(of: graph.path))
        let flusher = JournalFlusher(journal: journal)
        do {
            // The snapshot to go back to is recorded before anything is acknowledged.
            let snapshots = try JournalSnapshots(graph: graph, flusher: flusher)
            return RealtimeWriter(graph: graph, options: options, journal: (flusher, snapshots, try graph.storedJournalBatch() + 1))
        } catch {
            flusher.stop()  // closes the journal
            throw error
        }
    }

    private init(graph: IdentityGraph, options: Options, journal: (flusher: JournalFlusher, snapshots: JournalSnapshots, nextBatch: UInt64)?) {
        self.graph = graph
        self.options = options
        flusher = journal?.flusher
        snapshots = journal?.snapshots
        nextBatch = journal?.nextBatch ?? 0
        if let snapshots = journal?.snapshots {
            syncer = PeriodicSync(interval: options.syncInterval) { snapshots.recordNext() }
        } else if graph.environment.durability == .durable {
            syncer = nil
        } else {
            syncer = PeriodicSync(interval: options.syncInterval) { try? graph.sync() }
        }
        let thread = Thread { [weak self] in
            ThreadControl.name("idgraph-writer")
            self?.run()
        }
        thread.qualityOfService = .userInitiated
        self.thread = thread
        thread.start()
    }

    deinit { close() }

    /// Counts since the writer started.
    public var statistics: Statistics {
        condition.lock()
        var result = stats
        condition.unlock()
        result.syncs = syncer?.syncs ?? 0
        return result
    }

    /// Applies `operations` as one submission; returns once they are committed (durable in the
    /// default mode) with what they did. Throws ``GraphError/invalidOperation(index:reason:)``
    /// without queueing anything when an operation is invalid, or the storage error of the
    /// commit it was part of.
    public func submit(_ operations: [GraphOperation]) async throws -> Resolution {
        var prepared = try graph.prepare(operations)
        try graph.addTombstoneKeys(to: &prepared)
        let framed = journalRecord(operations)
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(prepared, framed: framed) { continuation.resume(with: $0) }
        }
    }

    /// The submission's journal record (empty without a journal).
    private func journalRecord(_ operations: [GraphOperation]) -> [UInt8] {
        guard flusher != nil else { return [] }
        var body = ByteWriter(capacity: 256)
        for op in operations { op.encode(into: &body) }
        var framed = ByteWriter(capacity: body.bytes.count + 9)
        Journal.frame(.group, body: body.bytes, into: &framed)
        return framed.bytes
    }

    /// Applies `operations` as one submission and calls `completion` on the writer thread once
    /// they are committed (durable in the default mode), or with the error. Invalid operations
    /// throw here and queue nothing. For callers outside Swift concurrency (an event loop, a
    /// load generator): no task and no continuation per submission. `completion` runs on the
    /// writer thread (with a journal: on the journal's thread): it must be short and must not
    /// submit and wait.
    public func submit(_ operations: [GraphOperation], completion: @escaping @Sendable (Result<Resolution, Error>) -> Void) throws {
        var prepared = try graph.prepare(operations)
        try graph.addTombstoneKeys(to: &prepared)
        enqueue(prepared, framed: journalRecord(operations), completion: completion)
    }

    private func enqueue(_ prepared: [PreparedOperation], framed: [UInt8], completion: @escaping @Sendable (Result<Resolution, Error>) -> Void) {
        condition.lock()
        if closed {
            condition.unlock()
            completion(.failure(RealtimeWriterError.closed))
            return
        }
        queue.append(Pending(operations: prepared, framed: framed, completion: completion, arrival: Date()))
        queuedOperations += prepared.count
        // The writer waits for a first submission, then for the window to pass or the batch
        // to fill: waking it for every submission in between costs a context switch each.
        if queue.count == 1 || queuedOperations >= options.maxBatch { condition.signal() }
        condition.unlock()
    }

    /// Commits what is queued, then stops the writer thread. Later submissions throw.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        while !finished && thread != nil { condition.wait() }
        condition.unlock()
        syncer?.stop()
        // The last record covers everything committed: the journal is no longer needed.
        let recorded = snapshots?.close() ?? false
        flusher?.stop(clean: recorded)
    }

    /// The size past which the journal continues in a new segment (after the flush that passed it).
    static let segmentBytes: UInt64 = 64 << 20

    /// Takes the next batch: waits for a first submission (none once closed with nothing
    /// queued: `[]`), then for more until the oldest queued submission has waited the window,
    /// unless the batch is full. What queued during the last commit has usually waited that
    /// long already and goes at once: no submission waits more than the window for others
    /// (timed from the writer's wake-up instead, the window came on top of the commit before
    /// it: durable, 5,000/s, p50 3.5 ms).
    private func takeBatch() -> (batch: [Pending], operations: Int) {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closed { condition.wait() }
        if queue.isEmpty { return ([], 0) }
        if options.window > .zero {
            let windowEnd = queue[0].arrival.addingTimeInterval(options.window.seconds)
            while queuedOperations < options.maxBatch && !closed && Date() < windowEnd {
                if !condition.wait(until: windowEnd) { break }
            }
        }
        // The longest prefix of the queue within the batch size (at least one submission),
        // removed in one step (removing one by one from the front is quadratic).
        var count = 0
        var taken = 0
        while count < queue.count && (count == 0 || taken + queue[count].operations.count <= options.maxBatch) {
            taken += queue[count].operations.count
            count += 1
        }
        let batch: [Pending]
        if count == queue.count {
            batch = queue
            queue.removeAll(keepingCapacity: true)
        } else {
            batch = Array(queue[0..<count])
            queue.removeFirst(count)
        }
        queuedOperations -= taken
        return (batch, taken)
    }

    /// The writer thread: takes a batch, applies it in one transaction and commits it, then
    /// completes its submitters — at once, or with a journal once the journal thread has
    /// appended and synced the batch's records (``journaled(graph:options:)``; the transaction
    /// also stores the batch's number, and a batch whose transaction fails is not journaled).
    private func run() {
        while true {
            let (batch, taken) = takeBatch()
            if batch.isEmpty { break }
            let began = ContinuousClock.now
            let now = currentTimeMillis()
            let number = nextBatch
            let groups = batch.map(\.operations)
            let outcome = Result {
                flusher == nil ? try graph.apply(groups: groups, now: now) : try graph.apply(groups: groups, now: now, journalBatch: number)
            }
            let took = ContinuousClock.now - began
            syncer?.committed()
            condition.lock()
            stats.commits += 1
            stats.submissions += UInt64(batch.count)
            stats.operations += UInt64(taken)
            stats.busy += took
            condition.unlock()
            options.onCommit?(CommitReport(operations: taken, submissions: batch.count, duration: took))
            switch outcome {
            case .success(var resolutions):
                for i in batch.indices {
                    resolutions[i].order = applied
                    applied += 1
                }
                if let flusher {
                    nextBatch += 1
                    flusher.submit(journalRecords(batch, number: number, now: now), acknowledgements: zip(batch, resolutions).map { ($0.completion, $1) })
                } else {
                    for i in batch.indices { batch[i].completion(.success(resolutions[i])) }
                }
            case .failure(let error):
                for pending in batch { pending.completion(.failure(error)) }
            }
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// A journaled batch's records: its `T` header, then each submission's `G` record.
    private func journalRecords(_ batch: [Pending], number: UInt64, now: Int64) -> [UInt8] {
        var header = ByteWriter(capacity: 16)
        header.append(number)
        header.append(now)
        var records = ByteWriter(capacity: 25 + batch.reduce(0) { $0 + $1.framed.count })
        Journal.frame(.transaction, body: header.bytes, into: &records)
        for pending in batch { records.append(bytes: pending.framed) }
        return records.bytes
    }
}

/// Periodic syncs on a thread of their own: every `interval` after the previous one ended,
/// when something was committed since (and once more at ``stop()``). In `fast` mode the action
/// syncs the data file; with a journal it records a synced snapshot (``JournalSnapshots``). An
/// fsync of what a busy writer committed in 10 ms took milliseconds here; done on the writer
/// thread it held every submission queued behind it (5,000 events/s, fast: ingest p99
/// 7.0–7.2 ms with it, 2.1 ms without).
private final class PeriodicSync: @unchecked Sendable {  // state under `condition`
    private let action: @Sendable () -> Void
    private let interval: Duration
    private let condition = NSCondition()
    private var commits: UInt64 = 0
    private var synced: UInt64 = 0
    private var stopped = false
    private var running = true
    private(set) var syncCount: UInt64 = 0

    init(interval: Duration, action: @escaping @Sendable () -> Void) {
        self.action = action
        self.interval = interval
        let thread = Thread { [self] in
            ThreadControl.name("idgraph-sync")
            run()
        }
        thread.start()
    }

    /// Syncs done so far.
    var syncs: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return syncCount
    }

    /// The writer committed a transaction (not yet synced).
    func committed() {
        condition.lock()
        commits += 1
        condition.unlock()
    }

    /// Syncs what is left, then ends the thread; returns when it has.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func run() {
        let seconds = interval.seconds
        condition.lock()
        while true {
            let deadline = Date().addingTimeInterval(seconds)
            while !stopped { if !condition.wait(until: deadline) { break } }
            let target = commits
            let stopping = stopped
            if target != synced {
                condition.unlock()
                action()
                condition.lock()
                synced = target
                syncCount += 1
            }
            if stopping { break }
        }
        running = false
        condition.broadcast()
        condition.unlock()
    }
}

/// Appends a journaled writer's records and syncs them on a thread of its own, then completes
/// their submitters: the writer applies the next batch meanwhile (an `fdatasync`'s kernel
/// work was a fifth of the writer thread's time). What queues during a sync shares the next.
/// The only thread that touches the journal's files, except for deleting old segments.
final class JournalFlusher: @unchecked Sendable {  // state under `condition`
    /// A submitter to complete once its records are on the disk, and with what.
    typealias Acknowledgement = (completion: @Sendable (Result<Resolution, Error>) -> Void, resolution: Resolution)
    private let journal: Journal
    private let condition = NSCondition()
    private var frames: [UInt8] = []
    private var acknowledgements: [Acknowledgement] = []
    /// Bytes submitted and bytes on the disk, counted from the start: a submission's ticket
    /// is the count after it.
    private var submitted: UInt64 = 0
    private var durable: UInt64 = 0
    /// The segment the next flush writes to.
    private var segment: UInt64
    private var error: Error?
    private var stopped = false
    private var running = true

    init(journal: Journal) {
        self.journal = journal
        segment = journal.position.segment
        let thread = Thread { [self] in
            ThreadControl.name("idgraph-journal")
            run()
        }
        thread.start()
    }

    /// Queues framed records and the submitters to complete once they are on the disk;
    /// returns the ticket to wait for them with.
    @discardableResult
    func submit(_ records: [UInt8], acknowledgements more: [Acknowledgement] = []) -> UInt64 {
        condition.lock()
        if let error {
            condition.unlock()
            for a in more { a.completion(.failure(error)) }
            return .max
        }
        frames += records
        acknowledgements += more
        submitted += UInt64(records.count)
        let ticket = submitted
        condition.broadcast()
        condition.unlock()
        return ticket
    }

    /// Returns once the records of `ticket` are on the disk; throws the error an append or a
    /// sync failed with.
    func waitDurable(_ ticket: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        while durable < ticket && error == nil { condition.wait() }
        if durable < ticket, let error { throw error }
    }

    /// The segment the next records will be written to (or a later one).
    var segmentWritten: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return segment
    }

    /// Deletes the segments before `segment` (never the one written to).
    func removeSegments(before segment: UInt64) {
        if segment > 0 { journal.removeSegments(through: segment - 1) }
    }

    /// Flushes what is queued, then ends the thread and closes the journal; with `clean`
    /// (everything is in a synced snapshot), deletes its segments.
    func stop(clean: Bool = false) {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running { condition.wait() }
        let failed = error != nil
        condition.unlock()
        journal.close(removingSegments: clean && !failed)
    }

    private func run() {
        condition.lock()
        while true {
            while frames.isEmpty && !stopped { condition.wait() }
            if frames.isEmpty { break }
            let records = frames, done = acknowledgements, upTo = submitted
            frames = []
            acknowledgements = []
            condition.unlock()
            let outcome = Result {
                journal.append(framed: records)
                try journal.flush()
            }
            switch outcome {
            case .success: for a in done { a.completion(.success(a.resolution)) }
            case .failure(let e): for a in done { a.completion(.failure(e)) }
            }
            // A new segment once this one is large; old ones go once a later snapshot is recorded.
            let rotated = outcome.flatMap { _ in Result { if journal.position.offset >= RealtimeWriter.segmentBytes { try journal.rotate() } } }
            condition.lock()
            switch rotated {
            case .success:
                durable = upTo
                segment = journal.position.segment
            case .failure(let e):
                error = e
            }
            condition.broadcast()
            if error != nil { break }
        }
        running = false
        let failed = error
        let left = acknowledgements
        acknowledgements = []
        condition.broadcast()
        condition.unlock()
        if let failed { for a in left { a.completion(.failure(failed)) } }
    }
}

/// The snapshots a journaled writer can go back to. Each ``recordNext()`` (from the periodic
/// syncs, ``PeriodicSync``) pins the newest snapshot (``PinnedSnapshot``), syncs the data file,
/// and appends an `S` record with the snapshot's meta record and batch number to the journal;
/// once that record is on the disk the previous pin is released (its pages may then be reused)
/// and the segments before the record's go. So at any moment a snapshot whose pages are all on
/// the disk and untouched is recorded in the journal, and every batch after it is journaled.
final class JournalSnapshots: @unchecked Sendable {  // `pinned` under `lock`
    private let graph: IdentityGraph
    private let flusher: JournalFlusher
    private let lock = NSLock()
    private var pinned: PinnedSnapshot

    /// Records the current snapshot at once (before the writer acknowledges anything).
    init(graph: IdentityGraph, flusher: JournalFlusher) throws {
        self.graph = graph
        self.flusher = flusher
        pinned = try Self.record(graph: graph, flusher: flusher)
    }

    /// Records the newest snapshot and releases the one before (a failure keeps the one before).
    func recordNext() {
        guard let next = try? Self.record(graph: graph, flusher: flusher) else { return }
        lock.lock()
        let previous = pinned
        pinned = next
        lock.unlock()
        previous.close()
    }

    /// Releases the last pin; returns whether its snapshot holds everything committed (the
    /// journal is then no longer needed).
    func close() -> Bool {
        lock.lock()
        let last = pinned
        lock.unlock()
        let newest = try? graph.environment.read { try $0.transactionID }
        last.close()
        return newest == last.transactionID
    }

    /// Pins the newest snapshot, syncs the data file, and appends and waits for its `S` record.
    static func record(graph: IdentityGraph, flusher: JournalFlusher) throws -> PinnedSnapshot {
        // Batches after the snapshot about to be pinned are committed after it, so journaled in
        // this segment or a later one: the segments before it can go once the record is on the disk.
        let keepFrom = flusher.segmentWritten
        let pin = try PinnedSnapshot(graph.environment, reading: MetaKey.journalBatch, in: graph.databases.meta)
        do {
            let batch: UInt64 = try pin.value.map { try JournalRecovery.uint64($0) } ?? 0
            try graph.sync()
            var body = ByteWriter(capacity: 16 + MetaPages.recordLength)
            body.append(pin.transactionID)
            body.append(batch)
            body.append(bytes: pin.metaRecord)
            var framed = ByteWriter(capacity: body.bytes.count + 9)
            Journal.frame(.synced, body: body.bytes, into: &framed)
            try flusher.waitDurable(flusher.submit(framed.bytes))
            flusher.removeSegments(before: keepFrom)
            return pin
        } catch {
            pin.close()
            throw error
        }
    }

}

/// Errors of the real-time writer.
public enum RealtimeWriterError: Error, CustomStringConvertible {
    /// The writer was closed before the submission.
    case closed
    /// ``RealtimeWriter/journaled(graph:options:)`` needs a graph whose commits do not sync.
    case journalNeedsFastDurability

    public var description: String {
        switch self {
        case .closed: return "the real-time writer is closed; create a new one to submit"
        case .journalNeedsFastDurability:
            return "a journaled real-time writer needs the graph opened with fast durability (its commits are synced behind the journal)"
        }
    }
}
