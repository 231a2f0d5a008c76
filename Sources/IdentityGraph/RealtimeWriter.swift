import Foundation

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
/// `syncInterval` plus the time of one sync. ``close()`` syncs what is left.
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
        /// With a journal (``RealtimeWriter/journaled(graph:options:)``): the longest a write
        /// transaction stays open gathering submissions before it is committed. Readers see a
        /// submission when its transaction commits; a longer interval writes fewer pages per
        /// event (a commit rewrites every page it touched, once).
        public var commitInterval: Duration = .milliseconds(50)
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
    /// The periodic syncs of `fast` mode, on their own thread (nil in `durable` mode and with
    /// a journal).
    private let syncer: PeriodicSync?
    /// The journal acknowledgements come from (``journaled(graph:options:)``), and the thread
    /// that syncs each commit behind it.
    private let journal: Journal?
    private let commitSync: CommitSync?
    /// Set when a journaled transaction failed: later submissions fail with it.
    private var failure: Error?

    /// Starts a writer thread for `graph`.
    public convenience init(graph: IdentityGraph, options: Options = Options()) {
        self.init(graph: graph, options: options, journal: nil)
    }

    /// Starts a writer that acknowledges each submission once it is applied and appended to a
    /// journal in the database directory (`journal/`, one `fdatasync` of a few hundred bytes
    /// per commit group), and commits the B-trees every ``Options/commitInterval`` without
    /// waiting for the disk, while another thread syncs each commit. A crash of the process
    /// or of the system loses nothing acknowledged: the next opening of the database applies
    /// the journal again (after a system crash, from the last commit known to be synced).
    /// Readers see a submission when its transaction commits, up to the interval after its
    /// acknowledgement. `graph` must be opened with ``Durability/fast`` (commits without a
    /// sync); one journaled writer per database.
    public static func journaled(graph: IdentityGraph, options: Options = Options()) throws -> RealtimeWriter {
        guard graph.environment.durability == .fast else { throw RealtimeWriterError.journalNeedsFastDurability }
        let stored = try graph.storedJournalPosition()
        let journal = try Journal(directory: JournalRecovery.directory(of: graph.path), after: stored.segment)
        return RealtimeWriter(graph: graph, options: options, journal: journal)
    }

    private init(graph: IdentityGraph, options: Options, journal: Journal?) {
        self.graph = graph
        self.options = options
        self.journal = journal
        commitSync = journal == nil ? nil : CommitSync(graph: graph)
        syncer = graph.environment.durability == .durable || journal != nil ? nil : PeriodicSync(graph: graph, interval: options.syncInterval)
        let thread = Thread { [weak self] in
            ThreadControl.name("idgraph-writer")
            guard let self else { return }
            if let journal = self.journal { self.runJournaled(journal) } else { self.run() }
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
        let prepared = try graph.prepare(operations)
        let framed = journalRecord(operations)
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(prepared, framed: framed) { continuation.resume(with: $0) }
        }
    }

    /// The submission's journal record (empty without a journal).
    private func journalRecord(_ operations: [GraphOperation]) -> [UInt8] {
        guard journal != nil else { return [] }
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
    /// writer thread: it must be short and must not submit and wait.
    public func submit(_ operations: [GraphOperation], completion: @escaping @Sendable (Result<Resolution, Error>) -> Void) throws {
        enqueue(try graph.prepare(operations), framed: journalRecord(operations), completion: completion)
    }

    private func enqueue(_ prepared: [PreparedOperation], framed: [UInt8], completion: @escaping @Sendable (Result<Resolution, Error>) -> Void) {
        condition.lock()
        if closed || failure != nil {
            let error = failure ?? RealtimeWriterError.closed
            condition.unlock()
            completion(.failure(error))
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
        commitSync?.stop()
    }

    /// Takes the next batch: waits for a first submission until `deadline` (none: `[]`), then
    /// up to the window for more, as ``run()`` does.
    private func takeBatch(until deadline: Date) -> (batch: [Pending], operations: Int) {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closed && failure == nil {
            if !condition.wait(until: deadline) { break }
        }
        if queue.isEmpty || failure != nil { return ([], 0) }
        if options.window > .zero {
            let windowEnd = queue[0].arrival.addingTimeInterval(options.window.seconds)
            while queuedOperations < options.maxBatch && !closed && Date() < windowEnd {
                if !condition.wait(until: windowEnd) { break }
            }
        }
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

    /// The writer thread with a journal: one write transaction per ``Options/commitInterval``;
    /// each batch in it applied, appended to the journal and synced there, then acknowledged;
    /// the transaction committed without a sync once the previous commit is synced (so the
    /// snapshot before this commit stays whole on the disk until this one is), the journal
    /// told first (`C`), and the sync thread asked to sync it (`S` follows in the journal, after
    /// which the segments it covers go).
    private func runJournaled(_ journal: Journal) {
        guard let commitSync else { return }
        var lastCommitted: (txn: UInt64, segment: UInt64)?
        var markedSynced: UInt64 = 0
        while true {
            condition.lock()
            while queue.isEmpty && !closed && failure == nil { condition.wait() }
            if queue.isEmpty || failure != nil {
                condition.unlock()
                break
            }
            condition.unlock()

            let now = currentTimeMillis()
            let deadline = Date().addingTimeInterval(options.commitInterval.seconds)
            var acknowledged: [[PreparedOperation]] = []  // this transaction's, applied again on a retry
            var inFlight: [Pending] = []
            var inFlightOperations = 0
            var busy = Duration.zero
            var operations = 0
            var submissions = 0
            var closing = ContinuousClock.now
            do {
                let txnID: UInt64 = try graph.withWriter(now: now) { writer, txn in
                    writer.deferWrites()
                    for group in acknowledged { for op in group { try writer.apply(op) } }
                    while true {
                        if inFlight.isEmpty {
                            if !acknowledged.isEmpty && Date() >= deadline { break }
                            (inFlight, inFlightOperations) = takeBatch(until: deadline)
                        }
                        if inFlight.isEmpty { break }
                        let batchBegan = ContinuousClock.now
                        var resolutions: [Resolution] = []
                        resolutions.reserveCapacity(inFlight.count)
                        for pending in inFlight {
                            let before = writer.report
                            for op in pending.operations { try writer.apply(op) }
                            let entity = try pending.operations.lazy.compactMap(\.firstIdentifier).first.flatMap { try writer.entity(of: $0) }
                            resolutions.append(Resolution(entity: entity, report: writer.report.subtracting(before)))
                        }
                        if acknowledged.isEmpty {
                            journal.append(.transaction, body: ByteWriter.bigEndian(UInt64(bitPattern: now)))
                        }
                        let synced = commitSync.synced
                        if synced > markedSynced { journal.append(.synced, body: ByteWriter.bigEndian(synced)) }
                        for pending in inFlight { journal.append(framed: pending.framed) }
                        try journal.flush()
                        if synced > markedSynced {
                            markedSynced = synced
                            // Everything before the synced commit's segment is in the database for good.
                            if let last = lastCommitted, last.txn <= synced { journal.removeSegments(through: last.segment) }
                        }
                        for i in inFlight.indices {
                            resolutions[i].order = applied
                            applied += 1
                            inFlight[i].completion(.success(resolutions[i]))
                        }
                        acknowledged += inFlight.map(\.operations)
                        operations += inFlightOperations
                        submissions += inFlight.count
                        inFlight = []
                        busy += ContinuousClock.now - batchBegan
                    }
                    try txn.put(graph.databases.meta, key: MetaKey.journalPosition, value: journal.position.bytes)
                    if let last = lastCommitted { try commitSync.waitUntilSynced(last.txn) }
                    closing = ContinuousClock.now
                    let id = try txn.id
                    journal.append(.committing, body: ByteWriter.bigEndian(id))
                    try journal.flush()
                    return id
                }
                lastCommitted = (txnID, journal.position.segment)
                try journal.rotate()
                commitSync.request(txnID)
                busy += ContinuousClock.now - closing
                condition.lock()
                stats.commits += 1
                stats.submissions += UInt64(submissions)
                stats.operations += UInt64(operations)
                stats.busy += busy
                condition.unlock()
                options.onCommit?(CommitReport(operations: operations, submissions: submissions, duration: busy))
            } catch {
                // What was acknowledged is in the journal: the next opening applies it again.
                for pending in inFlight { pending.completion(.failure(error)) }
                condition.lock()
                failure = error
                let queued = queue
                queue.removeAll()
                queuedOperations = 0
                condition.unlock()
                for pending in queued { pending.completion(.failure(error)) }
                break
            }
        }
        // Closing: the last commit synced, then every segment is covered by the database.
        var cleanEnd = false
        if let last = lastCommitted { cleanEnd = (try? commitSync.waitUntilSynced(last.txn)) != nil } else { cleanEnd = true }
        condition.lock()
        cleanEnd = cleanEnd && failure == nil
        condition.unlock()
        journal.close(removingSegments: cleanEnd)
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            if queue.isEmpty && closed {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            // Gather: wait for more until the oldest queued submission has waited the window,
            // unless the batch is full. What queued during the last commit has usually waited
            // that long already and goes at once: no submission waits more than the window for
            // others (timed from the writer's wake-up instead, the window came on top of the
            // commit before it: durable, 5,000/s, p50 3.5 ms).
            if options.window > .zero {
                let deadline = queue[0].arrival.addingTimeInterval(options.window.seconds)
                while queuedOperations < options.maxBatch && !closed && Date() < deadline {
                    if !condition.wait(until: deadline) { break }
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
            condition.unlock()

            let began = ContinuousClock.now
            let outcome = Result { try graph.apply(groups: batch.map(\.operations)) }
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
                    batch[i].completion(.success(resolutions[i]))
                }
            case .failure(let error):
                for pending in batch { pending.completion(.failure(error)) }
            }
        }
    }
}

/// The syncs of `fast` mode: every `interval` after the previous one ended, when something was
/// committed since, on a thread of their own. An fsync of what a busy writer committed in 10 ms
/// took milliseconds here; done on the writer thread it held every submission queued behind it
/// (5,000 events/s, fast: ingest p99 7.0–7.2 ms with it, 2.1 ms without).
private final class PeriodicSync: @unchecked Sendable {  // state under `condition`
    private let graph: IdentityGraph
    private let interval: Duration
    private let condition = NSCondition()
    private var commits: UInt64 = 0
    private var synced: UInt64 = 0
    private var stopped = false
    private var running = true
    private(set) var syncCount: UInt64 = 0

    init(graph: IdentityGraph, interval: Duration) {
        self.graph = graph
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
                try? graph.sync()
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

/// Syncs each commit of a journaled writer on a thread of its own, as soon as it is asked.
private final class CommitSync: @unchecked Sendable {  // state under `condition`
    private let graph: IdentityGraph
    private let condition = NSCondition()
    private var requested: UInt64 = 0
    private var done: UInt64 = 0
    private var error: Error?
    private var stopped = false
    private var running = true

    init(graph: IdentityGraph) {
        self.graph = graph
        let thread = Thread { [self] in
            ThreadControl.name("idgraph-sync")
            run()
        }
        thread.start()
    }

    /// The newest transaction known to be on the disk.
    var synced: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return done
    }

    /// Transaction `txn` was committed without a sync.
    func request(_ txn: UInt64) {
        condition.lock()
        requested = max(requested, txn)
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once transaction `txn` is on the disk; throws the sync's error if it failed.
    func waitUntilSynced(_ txn: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        while done < txn && error == nil { condition.wait() }
        if done < txn, let error { throw error }
    }

    /// Syncs what is asked, then ends the thread.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func run() {
        condition.lock()
        while true {
            while requested == done && !stopped && error == nil { condition.wait() }
            if requested == done || error != nil { break }
            let target = requested
            condition.unlock()
            let outcome = Result { try graph.sync() }
            condition.lock()
            switch outcome {
            case .success: done = target
            case .failure(let e): error = e
            }
            condition.broadcast()
        }
        running = false
        condition.broadcast()
        condition.unlock()
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
