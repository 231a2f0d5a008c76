import Foundation
import LMDB
import Synchronization

/// An identity graph stored in one LMDB environment (a directory).
///
/// ```swift
/// let graph = try IdentityGraph.open(at: "./idgraph.db", createIfMissing: true)
/// let report = try graph.apply([
///     .event(EventInput(identifiers: [RawIdentifier(type: "email", value: "a@x.com"),
///                                     RawIdentifier(type: "cookie", value: "c-1")])),
/// ])
/// let entity = try graph.read { try $0.entity(of: RawIdentifier(type: "cookie", value: "c-1")) }
/// ```
///
/// Every ``apply(_:now:)`` is one write transaction: all of the batch or none of it.
/// Readers (``read(_:)``) see a consistent snapshot and never block the writer.
public final class IdentityGraph: Sendable {
    /// The storage format this version reads and writes. Format 1 (before profiles) is
    /// upgraded when opened for writing: its summaries are recounted from the stored events.
    public static let formatVersion: UInt64 = 2

    /// Options for opening a database.
    public struct Options: Sendable {
        /// How commits reach the disk.
        public var durability: Durability = .durable
        /// The first LMDB map size; it grows by itself when full.
        public var initialMapSize: Int = 1 << 30
        /// Open for reading only.
        public var readOnly = false
        /// Defaults: durable, 1 GiB first map, read-write.
        public init() {}
    }

    /// The database directory.
    public let path: String
    let environment: Environment
    let databases: Databases
    let tombstoneKey: [UInt8]
    /// The newest catalog seen (readers share it; writers copy it to change it).
    let cachedCatalog: ReadMostly<CatalogSnapshot>
    private let recovered = ReadMostly<JournalRecoveryReport?>(nil)
    /// Whether the database has tombstones, as far as this process knows
    /// (``addTombstoneKeys(to:)``).
    private let tombstonesSeen = TombstonesSeen()

    /// What opening the database recovered from a real-time writer's journal (nil: there was
    /// none to recover, see ``RealtimeWriter/journaled(graph:options:)``).
    public var journalRecovery: JournalRecoveryReport? { recovered.current }

    private init(path: String, environment: Environment, databases: Databases, catalog: Catalog, tombstoneKey: [UInt8]) {
        self.path = path
        self.environment = environment
        self.databases = databases
        self.cachedCatalog = ReadMostly(CatalogSnapshot(catalog))
        self.tombstoneKey = tombstoneKey
    }

    /// Whether `path` holds an idgraph database.
    public static func exists(at path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/data.mdb")
    }

    /// Creates a new database at `path` with the built-in schema laid under `schema`.
    /// Throws ``GraphError/alreadyExists(path:)`` when one is there.
    public static func create(at path: String, schema: Schema? = nil, options: Options = Options()) throws -> IdentityGraph {
        if exists(at: path) { throw GraphError.alreadyExists(path: path) }
        return try open(at: path, options: options, createIfMissing: true, schema: schema)
    }

    /// Opens the database at `path`; with `createIfMissing`, creates it (built-in schema, or
    /// `schema` over it) when absent.
    public static func open(at path: String, options: Options = Options(), createIfMissing: Bool = false, schema: Schema? = nil) throws -> IdentityGraph {
        let fresh = !exists(at: path)
        if fresh && (!createIfMissing || options.readOnly) { throw GraphError.notADatabase(path: path) }
        // A real-time writer's journal left by a crash: undo a commit a system crash may have
        // torn before the environment opens, apply the rest after (JournalRecovery).
        let journalLock = fresh || options.readOnly ? nil : try JournalRecovery.prepare(path: path)
        let graph: IdentityGraph
        do {
            graph = try openEnvironment(at: path, options: options, fresh: fresh, schema: schema)
        } catch {
            if let journalLock { Journal.unlock(journalLock.fd) }
            throw error
        }
        if let journalLock {
            let report = try graph.replayJournal(lock: journalLock)
            graph.recovered.update { $0 = report }
        }
        return graph
    }

    private static func openEnvironment(at path: String, options: Options, fresh: Bool, schema: Schema?) throws -> IdentityGraph {
        var envOptions = EnvironmentOptions()
        envOptions.durability = options.durability
        envOptions.initialMapSize = options.initialMapSize
        envOptions.readOnly = options.readOnly
        let env: Environment
        do { env = try Environment(path: path, options: envOptions) } catch { throw GraphError.storage(error) }
        env.clearStaleReaders()
        if !fresh, let (dbs, catalog, key) = try openWithoutWriting(env, path: path, readOnly: options.readOnly) {
            return IdentityGraph(path: path, environment: env, databases: dbs, catalog: catalog, tombstoneKey: key)
        }
        if options.readOnly { throw GraphError.notADatabase(path: path) }
        let dbs = try Databases(environment: env, create: true)
        let (catalog, key) = try env.write { txn -> (Catalog, [UInt8]) in
            if let (found, stored, key) = try storedState(txn, meta: dbs.meta, path: path) {
                guard found == formatVersion || found == 1 else {
                    throw GraphError.incompatibleFormat(path: path, found: found, expected: formatVersion)
                }
                var catalog = stored
                if found == 1 {
                    // Format 1 summaries lack orders, per-source counts and tallies: recount them.
                    let writer = try GraphWriter(transaction: txn, databases: dbs, catalog: catalog, now: currentTimeMillis(), tombstoneKey: key)
                    try writer.rebuildSummaries()
                    try writer.finish()
                    catalog = writer.catalog
                    try txn.put(dbs.meta, key: MetaKey.formatVersion, value: formatVersion)
                }
                return (catalog, key)
            }
            // A new database: format, schema, counters, and the secret key of tombstone hashes.
            let catalog = Catalog(schema: schema.map { Schema.builtIn(overriddenBy: $0) } ?? .builtIn)
            var key = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for i in key.indices { key[i] = UInt8.random(in: 0...255, using: &generator) }
            try txn.put(dbs.meta, key: MetaKey.formatVersion, value: formatVersion)
            try catalog.store(in: txn, meta: dbs.meta)
            try txn.put(dbs.meta, key: MetaKey.counters, value: Counters().bytes)
            try txn.put(dbs.meta, key: MetaKey.tombstoneKey, value: key)
            try txn.put(dbs.meta, key: MetaKey.created, value: UInt64(bitPattern: currentTimeMillis()))
            return (catalog, key)
        }
        return IdentityGraph(path: path, environment: env, databases: dbs, catalog: catalog, tombstoneKey: key)
    }

    /// Opens an existing, current database with read transactions only, so opening never waits
    /// for a writer (a bulk load holds the write lock for its whole run). `nil` when a write is
    /// needed: a database whose creation was interrupted (no tables or no format yet), or one of
    /// format 1 to upgrade.
    private static func openWithoutWriting(_ env: Environment, path: String, readOnly: Bool) throws -> (Databases, Catalog, [UInt8])? {
        let dbs: Databases
        do {
            dbs = try Databases(environment: env, create: false)
        } catch let error as LMDBError where error == .notFound {
            if readOnly { throw GraphError.notADatabase(path: path) }
            return nil
        }
        let opened = try env.read { txn -> (Catalog, [UInt8])? in
            guard let (found, catalog, key) = try storedState(txn, meta: dbs.meta, path: path) else {
                if readOnly { throw GraphError.notADatabase(path: path) }
                return nil  // creation was interrupted before it committed
            }
            if found == 1 && !readOnly { return nil }  // upgraded in a write transaction
            guard found == formatVersion else {
                throw GraphError.incompatibleFormat(path: path, found: found, expected: formatVersion)
            }
            return (catalog, key)
        }
        guard let (catalog, key) = opened, dbs.rfm != nil || readOnly else { return nil }
        return (dbs, catalog, key)
    }

    /// A database's storage format, catalog and tombstone key, as stored in `meta`; `nil` when no
    /// format is recorded (a creation that never committed).
    private static func storedState(_ txn: ReadTransaction, meta: Database, path: String) throws -> (format: UInt64, catalog: Catalog, key: [UInt8])? {
        guard let version = try txn.value(meta, key: MetaKey.formatVersion) else { return nil }
        guard let catalogBytes = try txn.value(meta, key: MetaKey.catalog),
              let key = try txn.value(meta, key: MetaKey.tombstoneKey) else {
            throw GraphError.notADatabase(path: path)
        }
        let format = version.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) }
        return (format, try catalogBytes.withUnsafeBytes { try Catalog.decode($0) }, key)
    }

    /// The schema in force (built-in types plus those the data introduced, with policies).
    public var schema: Schema { cachedCatalog.read { $0.catalog.schema } }

    /// Every identifier type the database knows, in type-id order.
    public var knownTypes: [String] { cachedCatalog.read { $0.catalog.typeNames } }

    /// The storage environment's map size and bytes in use.
    public var storageUsage: (mapSize: Int, usedBytes: Int) { (environment.mapSize, environment.usedBytes) }

    /// Validates and normalizes every operation of `operations` without writing anything.
    /// Throws ``GraphError/invalidOperation(index:reason:)`` for the first invalid one.
    public func prepare(_ operations: [GraphOperation]) throws(GraphError) -> [PreparedOperation] {
        let schema = self.schema
        var prepared: [PreparedOperation] = []
        prepared.reserveCapacity(operations.count)
        for (index, op) in operations.enumerated() {
            do {
                prepared.append(try PreparedOperation(op, schema: schema))
            } catch {
                throw GraphError.invalidOperation(index: index, reason: error)
            }
        }
        return prepared
    }

    /// Gives each event of `operations` the `tombstone` keys of its identifiers, when the
    /// database has tombstones: a writer then looks a new identifier up among the erased ones
    /// without computing its keyed hash itself. Call it where the operations are prepared, on
    /// a thread other than the writer's (a loader's reading thread, a real-time submitter): the
    /// hash was 7% of the real-time writer's time at saturation with 2% control records, and
    /// 5% of the loader's applying thread (docs/benchmarks.md, session 18). What is written does
    /// not change; without keys the writer computes them as before.
    public func addTombstoneKeys(to operations: inout [PreparedOperation]) throws {
        let some = try tombstonesSeen.some { try environment.read { try $0.entryCount(databases.tombstone) } > 0 }
        guard some else { return }
        let keys = Keys.Tombstones(key: tombstoneKey)
        for i in operations.indices {
            guard case .event(var event) = operations[i], event.tombstoneKeys.isEmpty, !event.identifiers.isEmpty else { continue }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(event.identifiers.count * Keys.Tombstones.keyBytes)
            for id in event.identifiers { bytes += keys.key(id) }
            event.tombstoneKeys = bytes
            operations[i] = .event(event)
        }
    }

    /// Applies a batch in one write transaction: all of it, or (when anything throws) none of it.
    ///
    /// Throws ``GraphError/invalidOperation(index:reason:)`` before writing anything when an
    /// operation is invalid, so a caller can apply the operations before it and report it.
    /// `now` (ms since 1970) stamps events without a timestamp; default: the current time.
    @discardableResult
    public func apply(_ operations: [GraphOperation], now: Int64? = nil) throws -> ApplyReport {
        try apply(prepared: prepare(operations), now: now)
    }

    /// Applies already-prepared operations in one write transaction.
    ///
    /// `metadata` entries are written in the same transaction (the loader keeps its resume
    /// checkpoint there, so the checkpoint moves exactly when the data it covers commits).
    ///
    /// `hints` (from ``nodeHints(for:)`` over the same operations) spare the writer the lookup
    /// of each identifier a recent snapshot already had; they are used only while they still
    /// hold (see ``NodeHints``), and change nothing in what is written.
    @discardableResult
    public func apply(
        prepared operations: [PreparedOperation], now: Int64? = nil, metadata: [(key: String, value: [UInt8])] = [], hints: NodeHints? = nil
    ) throws -> ApplyReport {
        try withWriter(now: now) { writer, txn in
            writer.deferWrites()
            if let hints { try writer.use(hints) }
            for op in operations { try writer.apply(op) }
            for (key, value) in metadata { try txn.put(databases.meta, key: Self.userMetaPrefix + key, value: value) }
            return writer.report
        }
    }

    /// Looks up, in a read-only snapshot, the node of every identifier of `operations`' events,
    /// for ``apply(prepared:now:metadata:hints:)`` of the same operations: a loader does this on
    /// its reading thread while the writer applies the batch before (into a database with data,
    /// each lookup is a B-tree descent that misses the cache, two per event).
    public func nodeHints(for operations: [PreparedOperation]) throws -> NodeHints {
        try read { reader in
            var nodes: [UInt64] = []
            nodes.reserveCapacity(operations.count * 3)
            var links: [Bool] = []
            links.reserveCapacity(operations.count * 2)
            let adjacency = try reader.txn.cursor(reader.db.adjacency)
            defer { adjacency.close() }
            var linksEnded = false
            scan: for op in operations {
                switch op {
                case .forget: break scan  // the writer stops using hints there
                case .unlink, .retract: linksEnded = true  // and link hints there
                case .link: break
                case .event(let event):
                    let first = nodes.count
                    for id in event.identifiers { nodes.append(try reader.node(of: id) ?? 0) }
                    if linksEnded { continue scan }
                    for i in first..<nodes.count {
                        for j in (i + 1)..<nodes.count {
                            let (u, v) = (nodes[i], nodes[j])
                            links.append(try u != 0 && v != 0 && adjacency.seekEdge(u, to: v) != nil)
                        }
                    }
                }
            }
            let counters = try Counters.stored(in: reader.txn, meta: reader.db.meta)
            return NodeHints(nodes: nodes, links: links, tombstones: try reader.txn.entryCount(reader.db.tombstone), linkRemovals: counters.linkRemovals)
        }
    }

    /// Applies several submissions in one write transaction (group commit) and returns, for
    /// each, what it did and the entity its first identifier belongs to after it.
    ///
    /// All or nothing: if the transaction fails, no submission is applied.
    public func apply(groups: [[PreparedOperation]], now: Int64? = nil) throws -> [Resolution] {
        try apply(groups: groups, now: now, journalBatch: nil)
    }

    /// ``apply(groups:now:)``, storing `journalBatch` (if any) in the same transaction as the
    /// last journaled batch it holds (``RealtimeWriter/journaled(graph:options:)``).
    func apply(groups: [[PreparedOperation]], now: Int64?, journalBatch: UInt64?) throws -> [Resolution] {
        try withWriter(now: now) { writer, txn in
            writer.deferWrites()
            var results: [Resolution] = []
            results.reserveCapacity(groups.count)
            for group in groups {
                let before = writer.report
                for op in group { try writer.apply(op) }
                let entity = try group.lazy.compactMap(\.firstIdentifier).first.flatMap { try writer.entity(of: $0) }
                results.append(Resolution(entity: entity, report: writer.report.subtracting(before)))
            }
            if let journalBatch { try txn.put(databases.meta, key: MetaKey.journalBatch, value: journalBatch) }
            return results
        }
    }

    /// What operations would do, found by applying them in a write transaction that is then
    /// aborted: exact (the same code path as a real write) and nothing is kept.
    public func preview(_ operations: [GraphOperation], now: Int64? = nil) throws -> Preview {
        let prepared = try prepare(operations)
        return try withWriter(now: now, keep: false) { writer, txn in
            let firstHistory = writer.nextHistorySequence
            let named = prepared.flatMap(\.identifiers)
            var known: Set<Identifier> = []
            var before: [Identifier: EntityID] = [:]
            for id in named where try writer.nodeID(of: id) != nil {
                known.insert(id)
                before[id] = try writer.entity(of: id)
            }
            for op in prepared { try writer.apply(op) }
            // The records these operations wrote, from the first new one on (a scan of the
            // whole table took 0.11 s and touched 1.3 GB at 10M events).
            var history: [HistoryRecord] = []
            try GraphReader.forEachHistory(in: txn, databases.history, from: firstHistory) { _, record in
                history.append(record)
                return true
            }
            let identifiers = try named.map { id in
                Preview.IdentifierChange(identifier: id, known: known.contains(id), entityBefore: before[id], entityAfter: try writer.entity(of: id))
            }
            return Preview(report: writer.report, history: history, identifiers: identifiers)
        }
    }

    /// Replaces the schema (types in `schema` over the built-in ones, as at creation) and
    /// re-evaluates the graph against it in the same transaction; with `dryRun`, reports what
    /// would change and writes nothing. Normalization and roles of stored types cannot change.
    public func setSchema(_ schema: Schema, dryRun: Bool = false) throws -> ApplyReport {
        try reapply(schema: Schema.builtIn(overriddenBy: schema), dryRun: dryRun)
    }

    /// Re-evaluates the whole graph against the schema in force (generic values) and reports
    /// what changed; with `dryRun`, nothing is written.
    public func reapply(dryRun: Bool = false) throws -> ApplyReport {
        try reapply(schema: nil, dryRun: dryRun)
    }

    private func reapply(schema: Schema?, dryRun: Bool) throws -> ApplyReport {
        try withWriter(now: nil, keep: !dryRun) { writer, _ in
            if let schema { try writer.replaceSchema(with: schema) }
            try writer.reapplyPolicies()
            return writer.report
        }
    }

    /// Applies the batches `next` hands over, several to one write transaction, for a caller
    /// that reads the next batch while this one is applied (a loader: ``apply(prepared:now:metadata:hints:)``
    /// would end the transaction with every batch).
    ///
    /// A transaction ends after the batch that brings it to `operationsPerTransaction`
    /// operations or more, after a batch marked ``QueuedBatch/endsTransaction``, or when `next`
    /// returns nil; it commits with the `metadata` of its last batch. Within it the batches are
    /// applied by one writer, exactly as their concatenation would be in one
    /// ``apply(prepared:now:metadata:hints:)`` (each batch's hints validated as it starts).
    /// `applied` is called once per batch, when it is applied (not yet committed), so the
    /// caller may hand over the next, and says whether the transaction commits next (a caller
    /// that frees batches once committed may wait for that); `committed` with the
    /// transaction's batches and what they did, after each commit. When the map is full, the transaction's batches are
    /// applied again after the map grows (the caller keeps them until `committed`). On an
    /// error nothing of the open transaction is kept; earlier ones stay committed.
    ///
    /// Runs on the calling thread (it holds the write transaction between calls of `next`, so
    /// no other write starts meanwhile).
    public func applyBatches(
        now: Int64? = nil, operationsPerTransaction: Int, next: () throws -> QueuedBatch?,
        applied: (_ batch: QueuedBatch, _ commitsNext: Bool) -> Void, committed: ([QueuedBatch], ApplyReport) -> Void
    ) throws {
        var pending: QueuedBatch? = try next()
        while let first = pending {
            pending = nil
            var taken = [first]
            var announced = 0  // batches `applied` was called for
            var streamEnded = false
            // (After a full map the body runs again: what this transaction took so far, again.)
            let report = try withWriter(now: now) { writer, txn -> ApplyReport in
                writer.deferWrites()
                func apply(_ batch: QueuedBatch) throws {
                    if let hints = batch.hints { try writer.use(hints) }
                    for op in batch.operations { try writer.apply(op) }
                }
                var operations = 0
                func ends() -> Bool { taken.last!.endsTransaction || operations >= operationsPerTransaction }
                for batch in taken {
                    try apply(batch)
                    operations += batch.operations.count
                }
                while announced < taken.count {
                    applied(taken[announced], announced == taken.count - 1 && ends())
                    announced += 1
                }
                while !streamEnded && !ends() {
                    guard let batch = try next() else {
                        streamEnded = true
                        break
                    }
                    taken.append(batch)
                    try apply(batch)
                    operations += batch.operations.count
                    applied(batch, ends())
                    announced += 1
                }
                for (key, value) in taken.last!.metadata { try txn.put(databases.meta, key: Self.userMetaPrefix + key, value: value) }
                return writer.report
            }
            committed(taken, report)
            if !streamEnded { pending = try next() }
        }
    }

    /// Runs `body` with a writer inside one write transaction. With `keep`, the writer's counters
    /// and catalog are written and the transaction commits; without, it is aborted after `body`
    /// (previews, dry runs): nothing is kept, and `body`'s result is returned all the same.
    func withWriter<T>(now: Int64?, keep: Bool = true, _ body: (GraphWriter, WriteTransaction) throws -> T) throws -> T {
        let time = now ?? currentTimeMillis()
        let startCatalog = cachedCatalog.read { $0.catalog }
        do {
            let (result, catalog) = try environment.write { txn -> (T, Catalog) in
                let writer = try GraphWriter(transaction: txn, databases: databases, catalog: startCatalog, now: time, tombstoneKey: tombstoneKey)
                writer.tombstonesSeen = tombstonesSeen
                let result = try body(writer, txn)
                if !keep { throw DiscardedTransaction(result: result) }
                try writer.finish()
                return (result, writer.catalog)
            }
            remember(catalog)
            return result
        } catch let discarded as DiscardedTransaction {
            return discarded.result as! T
        }
    }

    static let userMetaPrefix = "user:"

    /// A metadata value written with ``apply(prepared:now:metadata:)``, or `nil`.
    public func metadata(_ key: String) throws -> [UInt8]? {
        try environment.read { try $0.value(databases.meta, key: Self.userMetaPrefix + key) }
    }

    /// Runs `body` on a consistent read-only snapshot of the graph.
    public func read<T>(_ body: (GraphReader) throws -> T) throws -> T {
        let cached = cachedCatalog.current
        return try environment.read { txn in
            let reader = try GraphReader(transaction: txn, databases: databases, catalog: cached)
            defer {
                let seen = reader.catalogSnapshot
                if seen !== cached { cachedCatalog.update { if seen.catalog.version > $0.catalog.version { $0 = seen } } }
            }
            return try body(reader)
        }
    }

    /// Keeps `catalog` as the newest seen, unless as new a one is kept already (a version is
    /// bumped on every change: equal versions are equal catalogs, so most commits keep the
    /// snapshot they started from).
    func remember(_ catalog: Catalog) {
        // Checked under the shared lock first: most commits keep the catalog they started from,
        // and taking the exclusive lock after each one held every reader up.
        guard cachedCatalog.read({ catalog.version > $0.catalog.version }) else { return }
        let snapshot = CatalogSnapshot(catalog)
        cachedCatalog.update { if catalog.version > $0.catalog.version { $0 = snapshot } }
    }

    /// Verifies every invariant of the store; an empty result means it is sound.
    public func check() throws -> [InvariantViolation] {
        try read { reader in
            let checker = Checker(reader: reader)
            return try checker.run()
        }
    }

    /// Flushes commits to disk (needed only in ``Durability/fast`` and ``Durability/bulk`` modes).
    public func sync() throws { try environment.sync(force: true) }

    /// Writes a compacted copy of the database to the empty directory `path` (like `mdb_copy -c`).
    public func copy(to path: String, compact: Bool = true) throws { try environment.copy(to: path, compact: compact) }
}

/// Milliseconds since 1970, now.
public func currentTimeMillis() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
}

/// An operation whose identifiers are validated and normalized: what the writer applies.
public enum PreparedOperation: Sendable, Equatable {
    /// An event (identifiers deduplicated, in first-seen order).
    case event(PreparedEvent)
    /// A link; `nil` ends are of an ignored type.
    case link(Identifier?, Identifier?)
    /// An unlink; `nil` ends are of an ignored type.
    case unlink(Identifier?, Identifier?)
    /// A forget; `nil` for an ignored type.
    case forget(Identifier?)
    /// A retract.
    case retract(eventID: [UInt8])

    /// Validates and normalizes `op` under `schema`.
    public init(_ op: GraphOperation, schema: Schema) throws(IdentifierError) {
        switch op {
        case .event(let input):
            var identifiers: [Identifier] = []
            var blocked: [String] = []
            identifiers.reserveCapacity(input.identifiers.count)
            for raw in input.identifiers {
                switch try Normalizer.classify(raw, schema: schema) {
                case .identifier(let id): if !identifiers.contains(id) { identifiers.append(id) }
                case .blocked(let pattern): blocked.append(pattern)
                case .ignored: break
                }
            }
            self = .event(PreparedEvent(input: input, identifiers: identifiers, blocked: blocked))
        case .link(let a, let b):
            self = .link(try Normalizer.identifier(a, schema: schema), try Normalizer.identifier(b, schema: schema))
        case .unlink(let a, let b):
            self = .unlink(try Normalizer.identifier(a, schema: schema), try Normalizer.identifier(b, schema: schema))
        case .forget(let a):
            self = .forget(try Normalizer.identifier(a, schema: schema))
        case .retract(let id):
            self = .retract(eventID: id)
        }
    }
}

extension PreparedOperation {
    /// The record kind as archives name it: `event`, `link`, `unlink`, `forget` or `retract`.
    public var kind: String {
        switch self {
        case .event: return "event"
        case .link: return "link"
        case .unlink: return "unlink"
        case .forget: return "forget"
        case .retract: return "retract"
        }
    }

    /// The first identifier the operation names (nil for retract and ignored ends).
    public var firstIdentifier: Identifier? {
        switch self {
        case .event(let e): return e.identifiers.first
        case .link(let a, let b), .unlink(let a, let b): return a ?? b
        case .forget: return nil
        case .retract: return nil
        }
    }
}

/// What operations would do (``IdentityGraph/preview(_:now:)``); nothing of it was written.
public struct Preview: Sendable {
    /// One named identifier before and after.
    public struct IdentifierChange: Sendable, Equatable {
        /// The identifier, normalized.
        public var identifier: Identifier
        /// Whether the database knows it already.
        public var known: Bool
        /// Its entity before (nil: unknown or in no entity).
        public var entityBefore: EntityID?
        /// Its entity after (nil: in no entity, or erased).
        public var entityAfter: EntityID?
    }
    /// The counts the operations would produce.
    public var report: ApplyReport
    /// The lineage records they would write (merges, splits, …).
    public var history: [HistoryRecord]
    /// Every identifier they name.
    public var identifiers: [IdentifierChange]
}

extension PreparedOperation {
    /// Every identifier the operation names.
    var identifiers: [Identifier] {
        switch self {
        case .event(let e): return e.identifiers
        case .link(let a, let b), .unlink(let a, let b): return [a, b].compactMap { $0 }
        case .forget(let a): return [a].compactMap { $0 }
        case .retract: return []
        }
    }
}

/// What one submission did, as its submitter learns it from a group commit.
public struct Resolution: Sendable, Equatable {
    /// The entity of the submission's first identifier after it was applied (nil when that
    /// identifier is in no entity, or the submission named none).
    public var entity: EntityID?
    /// What it did: events stored, merges and splits it caused, and so on.
    public var report: ApplyReport
    /// Position in the order of application (set by ``RealtimeWriter``).
    public var order: UInt64 = 0
}

/// An event with normalized identifiers.
public struct PreparedEvent: Sendable, Equatable {
    /// The event as received (its raw identifiers are not used after preparation).
    public var input: EventInput
    /// Its identifiers, normalized and deduplicated, in first-seen order.
    public var identifiers: [Identifier]
    /// The blocked patterns its dropped values matched (`type /pattern/`).
    public var blocked: [String] = []
    /// The `tombstone` keys of its identifiers, ``Keys/Tombstones/keyBytes`` each in their
    /// order, or empty: set by ``IdentityGraph/addTombstoneKeys(to:)``.
    public internal(set) var tombstoneKeys: [UInt8] = []
}

extension PreparedEvent {
    /// Its key in `event_key` (nil when it has no event id, or an empty one): what makes a
    /// replay of it a duplicate.
    var storageKey: [UInt8]? {
        guard let id = input.eventID, !id.isEmpty else { return nil }
        return Keys.eventKey(id)
    }

    /// The `tombstone` key of identifier `i`, when ``tombstoneKeys`` holds it.
    func tombstoneKey(at i: Int) -> ArraySlice<UInt8>? {
        let start = i * Keys.Tombstones.keyBytes
        guard start + Keys.Tombstones.keyBytes <= tombstoneKeys.count else { return nil }
        return tombstoneKeys[start..<(start + Keys.Tombstones.keyBytes)]
    }

    /// Counts the values its blocked patterns dropped (per `type /pattern/`, and in the report).
    func countBlocked(in counts: inout [String: Int], report: inout ApplyReport) {
        for pattern in blocked { counts[pattern, default: 0] += 1 }
        report.blockedValues += blocked.count
    }
}

/// One batch of ``IdentityGraph/applyBatches(now:operationsPerTransaction:next:applied:committed:)``:
/// shared between the thread that reads it and the one that applies it (each hands it over
/// once, through a lock), so that the reader, not the writer, frees its operations.
public final class QueuedBatch: @unchecked Sendable {
    /// The operations (the caller may empty them once the batch is committed).
    public var operations: [PreparedOperation]
    /// From ``IdentityGraph/nodeHints(for:)`` over the same operations, or nil.
    public let hints: NodeHints?
    /// Written in the transaction when this batch is its last (a loader's checkpoint).
    public let metadata: [(key: String, value: [UInt8])]
    /// The transaction commits after this batch.
    public let endsTransaction: Bool

    /// A batch of `operations`, with their `hints`, the `metadata` that marks it done, and
    /// whether its transaction must commit after it.
    public init(operations: [PreparedOperation], hints: NodeHints?, metadata: [(key: String, value: [UInt8])], endsTransaction: Bool) {
        self.operations = operations
        self.hints = hints
        self.metadata = metadata
        self.endsTransaction = endsTransaction
    }
}

/// The nodes a snapshot had for the identifiers of a batch's events (``IdentityGraph/nodeHints(for:)``).
///
/// An identifier's node never changes once created; only a `forget` removes it, and every
/// `forget` that removes one adds a tombstone. So the hints still hold when the database has as
/// many tombstones as the snapshot had, until the batch itself applies a `forget`: the writer
/// checks the first and stops using them at the second. An identifier the snapshot lacked
/// (0) is looked up as usual: an earlier batch may have created it since.
///
/// Likewise for the links between an event's identifiers: a link goes only by an unlink, a
/// retract or a forget, each counted (``Counters/linkRemovals``), so one the snapshot had still
/// exists while that count is the same and until the batch's first such record; its new
/// evidence can then neither merge nor change a degree, and the writer counts it at the end of
/// the transaction instead of looking the link up (second day on a 1M-event database: see
/// docs/benchmarks.md, session 10).
public struct NodeHints: Sendable {
    /// Per identifier of each event, in order: its node id, 0 when the snapshot had none.
    let nodes: [UInt64]
    /// Per pair of identifiers of each event (in the order `(0,1), (0,2), …, (1,2), …`), up
    /// to the first unlink, forget or retract: whether the snapshot had the link.
    let links: [Bool]
    /// Tombstones in the snapshot.
    let tombstones: Int
    /// Links removed before the snapshot (``Counters/linkRemovals``): the link hints hold
    /// while no link has gone since, and until the batch's first unlink, forget or retract.
    let linkRemovals: UInt64
}

/// Whether a database has tombstones, as far as its ``IdentityGraph`` knows: read once, and
/// set by its writers at their first `forget` (before the commit: keys computed for a
/// transaction that then aborts cost time, not correctness). Another process's erasures are
/// not seen; its writer then computes the keys itself, as without.
final class TombstonesSeen: Sendable {
    /// 0 not yet read, 1 none, 2 some.
    private let state = Atomic<UInt8>(0)

    /// Whether there are some: `read` the first time.
    func some(read: () throws -> Bool) rethrows -> Bool {
        var value = state.load(ordering: .relaxed)
        if value == 0 {
            value = try read() ? 2 : 1
            // A writer may have noted some meanwhile: keep that.
            _ = state.compareExchange(expected: 0, desired: value, ordering: .relaxed)
            value = state.load(ordering: .relaxed)
        }
        return value == 2
    }

    /// A writer wrote a tombstone.
    func note() { state.store(2, ordering: .relaxed) }
}

/// Thrown inside a write transaction to abort it while keeping what it computed.
private struct DiscardedTransaction: Error, @unchecked Sendable {
    let result: Any
}

/// How commits reach the disk (see ``LMDB/Durability``).
public typealias Durability = LMDB.Durability
