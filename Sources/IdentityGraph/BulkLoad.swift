import Foundation
import LMDB
import Synchronization

/// Why the bulk path cannot take a load (the loader then uses the incremental path).
public enum BulkLoadError: Error, CustomStringConvertible {
    /// The database already holds identifiers or events.
    case databaseNotEmpty
    /// A `generic_after` or `limit` policy is set: only the incremental path follows them.
    case policyNeedsIncremental
    /// More than 2,147,483,647 identifiers in one bulk run.
    case tooManyIdentifiers
    /// More events than one run numbers in 32 bits.
    case tooManyEvents
    /// The map filled during the run: nothing of it was kept, and the map has grown.
    case mapFull
    /// An unlink, forget or retract: only the incremental path applies them.
    case unsupportedOperation

    public var description: String {
        switch self {
        case .databaseNotEmpty: return "the bulk path loads only into an empty database"
        case .policyNeedsIncremental: return "the schema has generic_after or limit policies, which only the incremental path applies"
        case .unsupportedOperation: return "unlink, forget and retract records go through the incremental path"
        case .mapFull: return "the database map filled during the bulk run; nothing of it was kept and the map has grown: run it again"
        case .tooManyIdentifiers: return "more than 2,147,483,647 identifiers in one bulk run; lower --memory-limit so the load commits in parts"
        case .tooManyEvents: return "more than 4,294,967,294 events in one bulk run; lower --memory-limit so the load commits in parts"
        }
    }
}

extension IdentityGraph {
    /// Whether ``bulkLoad(now:reserveBytes:_:)`` can take a load now: the database holds no
    /// identifier, no event and no tombstone, and no type has a `generic_after` or `limit` policy.
    public var acceptsBulkLoad: Bool { bulkLoadRefusal == nil }

    /// Why the bulk path cannot take a load now (``BulkLoadError/policyNeedsIncremental`` or
    /// ``BulkLoadError/databaseNotEmpty``), `nil` when it can.
    public var bulkLoadRefusal: BulkLoadError? {
        guard BulkWriter.schemaAllowsBulk(schema) else { return .policyNeedsIncremental }
        let fresh = (try? environment.read { txn in
            try txn.withValue(databases.meta, key: MetaKey.counters) { bytes in
                guard let bytes else { return false }
                return try Counters(bytes: bytes).isFresh && txn.entryCount(databases.tombstone) == 0
            }
        }) ?? false
        return fresh ? nil : .databaseNotEmpty
    }

    /// Runs `body` with a ``BulkWriter`` inside one write transaction and commits what it took:
    /// all of it or, if anything throws, none of it. `reserveBytes` grows the map beforehand
    /// (a bulk run cannot be replayed the way a batch is when the map fills: it would throw
    /// ``LMDB/LMDBError/mapFull`` after growing it, having written nothing).
    /// `timings` gets the seconds spent writing the tables and committing.
    public func bulkLoad<T>(now: Int64? = nil, reserveBytes: Int, timings: inout BulkTimings, _ body: (BulkWriter) throws -> T) throws -> T {
        let time = now ?? currentTimeMillis()
        let startCatalog = cachedCatalog.read { $0.catalog }
        try environment.reserveMapSize(environment.usedBytes + reserveBytes)
        let clock = ContinuousClock()
        var finished = clock.now
        let written: (T, Catalog)
        do {
            written = try environment.writeOnce { txn -> (T, Catalog) in
                let writer = try BulkWriter(transaction: txn, databases: databases, catalog: startCatalog, now: time)
                let result = try body(writer)
                let start = clock.now
                try writer.finish()
                finished = clock.now
                timings.writeTablesSeconds = (finished - start).seconds
                return (result, writer.catalog)
            }
        } catch let error as LMDBError where error == .mapFull {
            throw BulkLoadError.mapFull
        }
        let (result, catalog) = written
        timings.commitSeconds = (clock.now - finished).seconds
        remember(catalog)
        return result
    }
}

/// The hand-over between a producer that parses (on the calling thread) and the bulk writer
/// (on its own thread): chunks of events through a short queue, so parsing and resolving run on
/// two cores. See ``IdentityGraph/bulkLoad(now:reserveBytes:produce:)``.
public final class BulkFeed: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Chunk] = []
    private var producerDone = false
    private var producerError: Error?
    private var writerError: Error?
    /// Chunks the writer is done with: freed on the producer's thread (measured: freeing each
    /// event's arrays on the writer took about 8% of its time at 10M events).
    private var spent: [[PreparedOperation]] = []
    /// Emptied event batches, handed back to the producer for reuse (their storage is kept).
    private var emptied: [EventBatch] = []

    /// What goes through the queue: operations or events, with what claiming the events' ids
    /// did (one outcome per operation or event).
    fileprivate enum Chunk {
        case operations([PreparedOperation], claims: [EventKeyClaims.Outcome])
        case events(EventBatch, claims: [EventKeyClaims.Outcome])
    }

    /// The run's event ids, claimed here, on the producer's thread, as chunks are sent (see
    /// ``EventKeyClaims``); the writer's once the producer is done.
    let claims = EventKeyClaims()
    fileprivate var metadata: [(key: String, value: [UInt8])] = []
    private let memory = Atomic<Int>(0)

    /// Chunks waiting at most; the producer blocks when the writer is this far behind.
    static let depth = 8

    /// Memory the run holds: the writer's (``BulkWriter/estimatedBytes``) as of the last chunk
    /// it took, and the claimed event ids. (Read on the producer's thread.)
    public var estimatedBytes: Int { memory.load(ordering: .relaxed) + claims.memoryBytes }

    private let expected = Atomic<Int>(0)

    /// Set by the producer before it returns when nothing will be written after this run (no
    /// batch-by-batch remainder, which would read these pages back): while the writer then
    /// writes the tables, the pages it wrote are let go from the OS page cache as they reach the
    /// disk (``LMDB/Environment/releaseCachedPages()``). At 10M events that took the writing of
    /// the tables from 20.3 to 13.8 s here: the writes reuse the memory instead of touching
    /// gigabytes the host had reclaimed. Queries right after the load read from the disk.
    /// (Set and read on the producer's thread only.)
    public var nothingFollows = false

    /// Tells the writer about how many events the run will hold in all, so that it sizes its
    /// tables once (``BulkWriter/reserve(events:)``); the first hint counts.
    public func expect(events: Int) {
        if expectedEvents == 0 { claims.reserve(events: events) }
        expected.store(events, ordering: .relaxed)
    }

    fileprivate var expectedEvents: Int { expected.load(ordering: .relaxed) }

    /// How far the writer is with the tables, once it writes them.
    let progress = BulkProgress()

    /// Hands a chunk of events and links to the writer; blocks while the queue is full. Throws the
    /// writer's error when it has failed (nothing of the bulk run will be kept).
    public func send(_ operations: [PreparedOperation]) throws {
        let outcomes = operations.map { op -> EventKeyClaims.Outcome in
            if case .event(let event) = op { claims.claim(event) } else { .unkeyed }
        }
        var done: [[PreparedOperation]] = []
        defer { done.removeAll() }  // after unlocking: the frees happen here, on this thread
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.depth && writerError == nil { condition.wait() }
        if let writerError { throw writerError }
        queue.append(.operations(operations, claims: outcomes))
        swap(&done, &spent)
        condition.broadcast()
    }

    /// Hands a batch of events to the writer and gives `events` back empty, for the producer to
    /// fill again (a batch the writer is done with, when there is one: its storage is reused).
    /// Blocks while the queue is full; throws the writer's error when it has failed.
    public func send(_ events: inout EventBatch) throws {
        var outcomes: [EventKeyClaims.Outcome] = []
        claims.claim(events, into: &outcomes)
        var next = emptied.popLast() ?? EventBatch(schema: events.schema)
        swap(&next, &events)
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.depth && writerError == nil { condition.wait() }
        if let writerError { throw writerError }
        queue.append(.events(next, claims: outcomes))
        if let reusable = returned.popLast() { emptied.append(reusable) }
        condition.broadcast()
    }

    /// Batches the writer emptied, not yet picked up by the producer (guarded by `condition`).
    private var returned: [EventBatch] = []

    /// The next chunk for the writer; nil when the producer is done and the queue is empty.
    /// Throws when the producer failed, so the writer's transaction is abandoned.
    fileprivate func take() throws -> Chunk? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !producerDone { condition.wait() }
        if let producerError { throw producerError }
        if queue.isEmpty { return nil }
        let chunk = queue.removeFirst()
        condition.broadcast()
        return chunk
    }

    /// The writer hands back a chunk it has applied, with its memory estimate.
    fileprivate func done(with chunk: consuming Chunk, memory bytes: Int) {
        memory.store(bytes, ordering: .relaxed)
        switch consume chunk {
        case .operations(let operations, _):
            condition.lock()
            spent.append(operations)
            condition.unlock()
        case .events(var batch, _):
            batch.removeAll()
            condition.lock()
            if returned.count < Self.depth { returned.append(batch) }
            condition.unlock()
        }
    }

    fileprivate func finishProducing(metadata: [(key: String, value: [UInt8])], error: Error?) {
        condition.lock()
        self.metadata = metadata
        producerError = error
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    fileprivate func writerFailed(_ error: Error) {
        condition.lock()
        writerError = error
        condition.broadcast()
        condition.unlock()
    }
}

/// Where a bulk run's writer spent its time (seconds), for the load summary.
public struct BulkTimings: Sendable, Equatable {
    /// Resolving events as they came (hash tables, union-find, streaming events and history).
    public var resolveSeconds = 0.0
    /// Waiting for the parser (the writer was faster).
    public var waitSeconds = 0.0
    /// Writing the tables in key order at the end.
    public var writeTablesSeconds = 0.0
    /// The commit (LMDB writes the pages and syncs).
    public var commitSeconds = 0.0
    /// No time yet.
    public init() {}
}

/// What a bulk run did and where its time went.
public struct BulkLoadResult: Sendable {
    /// The same counts the incremental path reports.
    public var report: ApplyReport
    /// The writer's time, by phase.
    public var timings: BulkTimings
    /// The writer's own estimate of the memory it held once it had taken the last record
    /// (``BulkWriter/estimatedBytes``: what a load's `--memory-limit` is checked against).
    public var memoryEstimateBytes = 0
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The producer gave up; the writer abandons its transaction.
private struct ProducerStopped: Error {}

/// What the writer thread ended with.
private final class WriterOutcome: @unchecked Sendable {
    var result: Result<BulkLoadResult, Error> = .failure(ProducerStopped())
    let done = DispatchSemaphore(value: 0)
}

extension IdentityGraph {
    /// A bulk load on two threads: `produce` runs on the calling thread and sends chunks of
    /// events through the ``BulkFeed``; a writer thread resolves them and writes, in one
    /// transaction that also stores the metadata `produce` returns (resume checkpoints).
    /// All or nothing: if `produce` or the writer throws, nothing is kept and the error is thrown.
    /// While the writer writes the tables after `produce` returned, `writing` is called about
    /// twice a second with how far it is (0…1), for a progress line.
    public func bulkLoad(
        now: Int64? = nil, reserveBytes: Int, writing: ((Double) -> Void)? = nil,
        produce: (BulkFeed) throws -> [(key: String, value: [UInt8])]
    ) throws -> BulkLoadResult {
        let feed = BulkFeed()
        let outcome = WriterOutcome()
        let writer = Thread { [self] in
            ThreadControl.name("idgraph-bulk")
            do {
                var timings = BulkTimings()
                var resolveSeconds = 0.0, waitSeconds = 0.0, memoryEstimate = 0
                let clock = ContinuousClock()
                let report = try bulkLoad(now: now, reserveBytes: reserveBytes, timings: &timings) { bulk -> ApplyReport in
                    bulk.progress = feed.progress
                    bulk.claimKeys(with: feed.claims)
                    var resolving = Duration.zero, waiting = Duration.zero
                    var mark = clock.now
                    var reserved = false
                    while let chunk = try feed.take() {
                        let start = clock.now
                        waiting += start - mark
                        if !reserved, case let expected = feed.expectedEvents, expected > 0 {
                            bulk.reserve(events: expected)
                            reserved = true
                        }
                        switch chunk {
                        case .operations(let operations, let claims): for (op, claimed) in zip(operations, claims) { try bulk.add(op, claimed: claimed) }
                        case .events(let batch, let claims): try bulk.add(batch, claims: claims)
                        }
                        feed.done(with: consume chunk, memory: bulk.estimatedBytes)
                        mark = clock.now
                        resolving += mark - start
                    }
                    resolveSeconds = resolving.seconds
                    waitSeconds = waiting.seconds
                    memoryEstimate = bulk.estimatedBytes + feed.claims.memoryBytes  // the producer is done
                    for (key, value) in feed.metadata { bulk.setMetadata(key, value) }
                    return bulk.report
                }
                timings.resolveSeconds = resolveSeconds
                timings.waitSeconds = waitSeconds
                outcome.result = .success(BulkLoadResult(report: report, timings: timings, memoryEstimateBytes: memoryEstimate))
            } catch {
                outcome.result = .failure(error)
                feed.writerFailed(error)
            }
            outcome.done.signal()
        }
        writer.stackSize = 8 << 20
        writer.start()
        do {
            let metadata = try produce(feed)
            feed.finishProducing(metadata: metadata, error: nil)
        } catch {
            feed.finishProducing(metadata: [], error: ProducerStopped())
            outcome.done.wait()
            // The writer's own failure (which made `send` throw) says more than the producer's.
            if case .failure(let writerError) = outcome.result, !(writerError is ProducerStopped) { throw writerError }
            throw error
        }
        // The writer resolves what is queued and writes the tables; meanwhile this thread
        // reports progress and, when nothing follows, lets written pages go from the cache.
        let releasing = feed.nothingFollows
        if writing != nil || releasing {
            while outcome.done.wait(timeout: .now() + .milliseconds(250)) == .timedOut {
                writing?(feed.progress.fraction)
                if releasing { environment.releaseCachedPages() }
            }
        } else {
            outcome.done.wait()
        }
        return try outcome.result.get()
    }
}

/// How far the writing of the tables at the end of a bulk run is, shared between threads.
final class BulkProgress: Sendable {
    private let permille = Atomic<Int>(0)
    /// 0…1.
    var fraction: Double { Double(permille.load(ordering: .relaxed)) / 1000 }
    /// Records `fraction` (0…1) of the way.
    func set(_ fraction: Double) { permille.store(Int(fraction * 1000), ordering: .relaxed) }
}
