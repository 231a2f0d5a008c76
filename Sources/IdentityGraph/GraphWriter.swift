import Foundation
import LMDB

/// Applies prepared operations inside one write transaction.
///
/// One writer lives for one transaction attempt: if LMDB has to grow the map and retry, a new
/// writer starts from the stored state, so nothing in memory outlives an aborted attempt.
///
/// Algorithms (DESIGN.md): a new active link between two entities relabels the smaller one
/// (union by size); a removed link, an erased identifier or a retracted event starts a lockstep
/// search from every endpoint, and every search that runs out before meeting another is a part
/// that split off, so the cost follows the smaller parts.
final class GraphWriter {
    let txn: WriteTransaction
    let db: Databases
    private(set) var catalog: Catalog
    private let storedCatalogVersion: UInt64
    private var counters: Counters
    private let storedCounters: Counters
    private(set) var report = ApplyReport()
    let now: Int64
    private let tombstones: Keys.Tombstones
    private var tombstonesExist: Bool
    private var unlinkedExist: Bool
    /// Per type id: is the type's role `merge`? Extended as types are interned.
    private var mergeTypes: [Bool] = []
    /// Per type id: the `generic_after` threshold, if any.
    private var genericThresholds: [UInt32?] = []
    /// Per type id: the `limit` (most values of the type one entity may hold), if any.
    private var limits: [Int?] = []
    /// Whether any type has a limit (else no merge needs counting).
    private var anyLimit = false
    /// Nodes and entities whose first/last seen must be recomputed after a subtraction.
    private var staleNodeBounds: Set<NodeID> = []
    private var staleEntityBounds: Set<EntityID> = []
    /// Values dropped by blocked patterns in this transaction, per `type /pattern/`.
    private var blockedCounts: [String: Int] = [:]
    /// The catalog's profile rules, held here so that using them copies nothing; taken again
    /// when an event type they do not cover appears or the schema changes.
    private var rules: ProfileRules

    init(transaction: WriteTransaction, databases: Databases, catalog: Catalog, now: Int64, tombstoneKey: [UInt8]) throws {
        self.txn = transaction
        self.db = databases
        self.now = now
        tombstones = Keys.Tombstones(key: tombstoneKey)
        // Another process may have changed the catalog since we cached it.
        let current = try Catalog.current(catalog, in: transaction, meta: databases.meta)
        self.catalog = current
        self.storedCatalogVersion = current.version
        let counters = try Counters.stored(in: transaction, meta: databases.meta)
        self.counters = counters
        self.storedCounters = counters
        tombstonesExist = try transaction.entryCount(databases.tombstone) > 0
        unlinkedExist = try transaction.entryCount(databases.unlinked) > 0
        rules = current.rules
        refreshMergeTypes()
    }

    /// Replaces the schema: policies of existing types may change their `generic_after` and
    /// `limit`, never how values are normalized or what role they play (that would need a reload).
    func replaceSchema(with schema: Schema) throws {
        for name in catalog.typeNames {
            let old = catalog.schema.policy(for: name), new = schema.policy(for: name)
            if old.normalize != new.normalize {
                throw SchemaError.badPolicy(name, "normalize cannot change from \(old.normalize.rawValue) to \(new.normalize.rawValue) once values are stored; reload the archives into a new database")
            }
            if old.role != new.role {
                throw SchemaError.badPolicy(name, "role cannot change from \(old.role.rawValue) to \(new.role.rawValue) once values are stored; reload the archives into a new database")
            }
        }
        let profileChanged = catalog.schema.profile != schema.profile
        catalog.schema = schema
        catalog.version += 1
        if profileChanged {
            rules = catalog.rules  // rebuilt by the catalog
            try rebuildSummaries()
        }
        mergeTypes = []
        genericThresholds = []
        limits = []
        anyLimit = false
        refreshMergeTypes()
    }

    /// Re-evaluates every node against the policies in force (generic values), as writes would have.
    func reapplyPolicies() throws {
        var nodes: [NodeID] = []
        try txn.forEach(db.node) { key, value in
            let type = Int(value.loadUnaligned(fromByteOffset: 0, as: UInt16.self).bigEndian)
            if type < genericThresholds.count, genericThresholds[type] != nil || (value[2] & NodeRecord.genericFlag) != 0 {
                nodes.append(key.loadBigEndianUInt64(at: 0))
            }
            return true
        }
        for node in nodes { try refreshGeneric(node, try readNode(node), cause: .policy, sequence: 0) }
        try fixStaleBounds()
        try reapplyLimits()
    }

    /// Re-evaluates every link against the limits in force, as if the links arrived again in
    /// the order their identifiers were first seen (by the later end's node id, then the
    /// earlier's: the store keeps no arrival order of links): a link is refused when its merge
    /// would exceed a limit, accepted otherwise. Links that change state are split apart or
    /// merged through the usual machinery, so entities end as the components of accepted links.
    private func reapplyLimits() throws {
        var links: [(u: NodeID, v: NodeID, entry: EdgeEntry)] = []
        var refusedBefore = 0
        try txn.forEach(db.adjacency) { key, value in
            let u = key.loadBigEndianUInt64(at: 0), entry = EdgeEntry(bytes: value)
            if u < entry.neighbour { links.append((u, entry.neighbour, entry)) }
            if entry.flags & EdgeEntry.refusedFlag != 0 { refusedBefore += 1 }
            return true
        }
        guard anyLimit || refusedBefore > 0 else { return }
        links.sort { ($0.v, $0.u) < ($1.v, $1.u) }

        // The target: union-find over accepted links between active nodes, with counts of
        // limited types per component.
        var parent: [NodeID: NodeID] = [:]
        var counts: [NodeID: [UInt16: Int]] = [:]
        var records: [NodeID: NodeHeader] = [:]
        func record(_ n: NodeID) throws -> NodeHeader {
            if let r = records[n] { return r }
            let r = try readNode(n)
            records[n] = r
            return r
        }
        func find(_ x: NodeID) throws -> NodeID {
            if parent[x] == nil {
                parent[x] = x
                let type = try record(x).typeID
                if limits[Int(type)] != nil { counts[x] = [type: 1] }
            }
            var root = x
            while let p = parent[root], p != root { root = p }
            var y = x
            while let p = parent[y], p != root { parent[y] = root; y = p }
            return root
        }
        var becomeRefused: [(NodeID, NodeID)] = []
        var becomeAccepted: [(NodeID, NodeID)] = []
        for (u, v, entry) in links {
            let wasRefused = entry.flags & EdgeEntry.refusedFlag != 0
            var refuse = false
            if try isActive(record(u)) && isActive(record(v)) {
                let (a, b) = (try find(u), try find(v))
                if a != b {
                    var merged = counts[a] ?? [:]
                    for (type, n) in counts[b] ?? [:] { merged[type, default: 0] += n }
                    refuse = merged.contains { type, n in limits[Int(type)].map { n > $0 } ?? false }
                    if !refuse {
                        parent[b] = a
                        counts[a] = merged
                        counts[b] = nil
                    }
                }
            }
            if refuse && !wasRefused { becomeRefused.append((u, v)) }
            if !refuse && wasRefused { becomeAccepted.append((u, v)) }
        }

        // Refuse first (each may split an entity), then accept (each may merge two).
        for (u, v) in becomeRefused {
            let (eu, ev) = (try readNode(u).entity, try readNode(v).entity)
            try refuse(u, v, between: eu, ev, cause: .policy, sequence: 0)
            try separate(seeds: [u, v], cause: .policy, sequence: 0)
        }
        for (u, v) in becomeAccepted {
            try changeExistingLink(u, v) { $0.flags &= ~EdgeEntry.refusedFlag }
            counters.refused -= 1
            let (ru, rv) = (try readNode(u), try readNode(v))
            if isActive(ru) && isActive(rv) && ru.entity != rv.entity { try merge(ru.entity, rv.entity, cause: .policy, sequence: 0) }
        }
        try fixStaleBounds()
    }

    /// The entity an identifier belongs to now (nil when unknown or in no entity).
    func entity(of id: Identifier) throws -> EntityID? {
        guard let node = try nodeID(of: id) else { return nil }
        let e = try readNode(node).entity
        return e == 0 ? nil : e
    }

    /// The sequence number the next history record will get.
    var nextHistorySequence: UInt64 { counters.nextHistory }

    /// Writes counters and (when changed) the catalog.
    func finish() throws {
        try flushDeferredWrites()
        try fixStaleBounds()
        try MetaKey.addBlockedCounts(blockedCounts, in: txn, meta: db.meta)
        if counters != storedCounters { try txn.put(db.meta, key: MetaKey.counters, value: counters.bytes) }
        if catalog.version != storedCatalogVersion { try catalog.store(in: txn, meta: db.meta) }
    }

    func apply(_ op: PreparedOperation) throws {
        switch op {
        case .event(let event): try applyEvent(event)
        case .link(let a, let b): try applyLink(a, b)
        // These read links, so the evidence counted at the end must be there first; timeline
        // entries and contributions stay pending unless the operation concerns them (see
        // ``pendingNodes``).
        case .unlink(let a, let b):
            if !pendingEvidence.isEmpty { try flushEvidence() }
            linkHints = nil  // it may remove a link a hint names
            try applyUnlink(a, b)
        case .forget(let id):
            if !pendingEvidence.isEmpty { try flushEvidence() }
            hints = nil  // it may remove an identifier a hint names
            linkHints = nil
            try applyForget(id)
        case .retract(let eventID):
            if !pendingEvidence.isEmpty { try flushEvidence() }
            linkHints = nil
            try applyRetract(eventID)
        }
        try fixStaleNodeBounds()
    }

    /// Whether events' timeline entries and contributions to summaries wait until
    /// ``flushDeferredWrites()`` (see ``deferWrites()``).
    private var defersWrites = false
    /// Contributions not yet counted: the anchor node, the event's sequence and what it adds,
    /// in the order they were made.
    private var pendingContributions: [(anchor: NodeID, sequence: UInt64, contribution: SummaryContribution)] = []
    /// Timeline entries (`node_event`) not yet written.
    private var pendingTimeline: [(node: NodeID, entry: UInt64Pair)] = []
    /// The sequence of the first event whose timeline entries and contribution are pending:
    /// events are stored in sequence order and a flush writes all that is pending, so an event
    /// from this one on has all of them pending, and one before it none (unless a forget
    /// re-anchored it: ``reanchoredEvents``).
    private var firstPendingSequence: UInt64 = 0
    /// Events retracted while their timeline entries and contribution were pending: the flush
    /// leaves them out, which is what writing and then deleting them would have left.
    private var retractedPendingEvents: Set<UInt64> = []
    /// Stored events whose contribution a forget moved to another anchor since the last flush
    /// (pending for the new anchor): a retract of one flushes first.
    private var reanchoredEvents: Set<UInt64> = []
    /// The nodes with pending timeline entries or contributions (a superset): a forget of one
    /// of them flushes first, since it reads and deletes the node's timeline and summary.
    /// Unlinks, splits and other forgets and retracts leave the pending writes pending: a
    /// part's summary folds its members' stored summaries and the flush counts each pending
    /// contribution toward the entity its anchor belongs to then (sums and bounds, so the
    /// order does not matter), and a bound gathered again from a node's stored timeline sees
    /// only events whose contribution the stored summary has (or a re-anchored one's, which
    /// the flush adds again to a minimum or maximum that already holds it).
    private var pendingNodes = NodeFilter()

    /// Hints for the nodes of the identifiers of the events to come, while they hold (see
    /// ``NodeHints``), and the position of the next event's first identifier in them.
    private var hints: [UInt64]?
    private var nextHint = 0
    /// Per pair of identifiers of each event (see ``NodeHints/links``), while they hold, and
    /// the position of the next event's first pair in them.
    private var linkHints: [Bool]?
    private var nextLinkHint = 0
    /// Evidence for links that existed (by ``linkHints``), counted at ``flushDeferredWrites()``.
    private var pendingEvidence: [(u: NodeID, v: NodeID)] = []

    /// Takes the node ids of `hints` for the events applied from now on (when the database
    /// has as many tombstones as their snapshot had), and their links (when, in addition,
    /// writes are deferred and no link has been removed since their snapshot). Called after
    /// ``deferWrites()``.
    func use(_ hints: NodeHints) throws {
        self.hints = try txn.entryCount(db.tombstone) == hints.tombstones ? hints.nodes : nil
        nextHint = 0
        linkHints = self.hints != nil && defersWrites && counters.linkRemovals == hints.linkRemovals ? hints.links : nil
        nextLinkHint = 0
    }

    /// From now on, writes events' timeline entries and counts them toward node and entity
    /// summaries in one pass per transaction (``flushDeferredWrites()``, from ``finish()``),
    /// in key order, instead of a read and a write of each record per event. Taken only when
    /// the schema has no `generic_after` and `limit` policies: then nothing reads a summary or
    /// a timeline back while events and links are applied (a split does, and an unlink, forget
    /// or retract flushes first). Counting is a sum and every bound a min or max, so the order
    /// does not matter, and a merge that folds two summaries before their events are counted
    /// ends with the summary it would have had after. Measured on 1M events loaded batch by
    /// batch on top of a 1M-event database: 19.6 → 14.4 s.
    func deferWrites() {
        defersWrites = BulkWriter.schemaAllowsBulk(catalog.schema)
        firstPendingSequence = counters.nextSequence
    }

    /// Writes what ``deferWrites()`` and the link hints left for the end of the transaction:
    /// evidence of existing links, timeline entries, summary contributions.
    func flushDeferredWrites() throws {
        if !pendingEvidence.isEmpty { try flushEvidence() }
        if !pendingTimeline.isEmpty { try flushTimeline() }
        if !pendingContributions.isEmpty { try flushContributions() }
        firstPendingSequence = counters.nextSequence
        retractedPendingEvents.removeAll()
        reanchoredEvents.removeAll()
        pendingNodes.removeAll()
    }

    /// Counts the pending evidence of existing links: both directions, in key order, each
    /// entry read and rewritten once.
    private func flushEvidence() throws {
        var entries: [(key: NodeID, neighbour: NodeID)] = []
        entries.reserveCapacity(pendingEvidence.count * 2)
        for (u, v) in pendingEvidence { entries.append((u, v)); entries.append((v, u)) }
        pendingEvidence.removeAll()
        entries.sort { ($0.key, $0.neighbour) < ($1.key, $1.neighbour) }
        let cursor = try txn.cursor(db.adjacency)
        defer { cursor.close() }
        var i = 0
        while i < entries.count {
            let (key, neighbour) = entries[i]
            var count: UInt32 = 0
            while i < entries.count && entries[i] == (key, neighbour) {
                count += 1
                i += 1
            }
            guard var entry = try cursor.seekEdge(key, to: neighbour) else {
                throw GraphError.damaged(.corrupt("adjacency \(key)→\(neighbour) missing"))
            }
            entry.evidence += count
            try cursor.put(key: key, value: entry, flags: .current)
        }
    }

    /// Writes the pending timeline entries in key order.
    private func flushTimeline() throws {
        pendingTimeline.sort { ($0.node, $0.entry.first, $0.entry.second) < ($1.node, $1.entry.first, $1.entry.second) }
        // (A cursor of our own would save nothing: a put that is not an append searches from
        // the root either way, and in key order the pages it passes are in cache.)
        if retractedPendingEvents.isEmpty {
            for (node, entry) in pendingTimeline { try txn.put(db.nodeEvent, key: node, value: entry) }
        } else {
            for (node, entry) in pendingTimeline where !retractedPendingEvents.contains(entry.second) {
                try txn.put(db.nodeEvent, key: node, value: entry)
            }
        }
        pendingTimeline.removeAll()
    }

    /// Counts the pending contributions: node summaries in node order, then entities in entity
    /// order (the entity each anchor belongs to now, after any merge), each record read and
    /// written once.
    private func flushContributions() throws {
        var pending = pendingContributions
        pendingContributions = []
        if !retractedPendingEvents.isEmpty { pending.removeAll { retractedPendingEvents.contains($0.sequence) } }
        pending.sort { $0.anchor < $1.anchor }
        var byEntity: [(entity: EntityID, index: Int)] = []
        byEntity.reserveCapacity(pending.count)
        // Each summary gets what its events add counted apart, then merged into its stored
        // encoding in place (`Summary.appendMerging`): decoding each into maps and encoding it
        // again was most of the time a batch spent here.
        var added = Summary()
        var out = ByteWriter(capacity: 1024)
        var i = 0
        while i < pending.count {
            let anchor = pending[i].anchor
            var j = i
            added.removeAll()
            while j < pending.count && pending[j].anchor == anchor {
                added.add(pending[j].contribution)
                j += 1
            }
            out.bytes.removeAll(keepingCapacity: true)
            let stored = try txn.withValue(db.nodeSummary, key: anchor) { bytes -> Bool in
                guard let bytes else { return false }
                try Summary.appendMerging(stored: bytes, added: added, into: &out)
                return true
            }
            if !stored { added.encode(into: &out) }
            try txn.put(db.nodeSummary, key: anchor, value: out.bytes)
            let entity = try readNode(anchor).entity
            if entity != 0 { for k in i..<j { byEntity.append((entity, k)) } }
            i = j
        }
        byEntity.sort { $0.entity < $1.entity }
        i = 0
        while i < byEntity.count {
            let entity = byEntity[i].entity
            added.removeAll()
            while i < byEntity.count && byEntity[i].entity == entity {
                added.add(pending[byEntity[i].index].contribution)
                i += 1
            }
            out.bytes.removeAll(keepingCapacity: true)
            let live = try txn.withValue(db.entity, key: entity) { bytes -> Bool in
                guard let bytes else { return false }
                return try EntityRecord.appendLiveMerging(stored: bytes, added: added, updated: now, into: &out)
            }
            guard live else { throw GraphError.damaged(.corrupt("entity \(entity) is not live")) }
            try txn.put(db.entity, key: entity, value: out.bytes)
        }
    }

    // MARK: - Types and nodes

    private func refreshMergeTypes() {
        while mergeTypes.count < catalog.typeNames.count {
            let policy = catalog.policy(ofType: UInt16(mergeTypes.count))
            mergeTypes.append(policy.role == .merge)
            genericThresholds.append(policy.role == .merge ? policy.genericAfter.map { UInt32(clamping: $0) } : nil)
            let limit = policy.role == .merge ? policy.limit : nil
            limits.append(limit)
            if limit != nil { anyLimit = true }
        }
    }

    @inline(__always)
    private func isMergeType(_ type: UInt16) -> Bool { mergeTypes[Int(type)] }

    /// A node takes part in entities: its type merges and it is not generic.
    @inline(__always)
    private func isActive(_ node: NodeHeader) -> Bool { isMergeType(node.typeID) && !node.isGeneric }

    /// The type id of an identifier's type, if the catalog has it. Read from the index field:
    /// calling a method of the class-held `Catalog` copied it whole (about 20 retains and
    /// releases), twice per identifier of every event.
    private func typeID(of id: Identifier) -> UInt16? { catalog.typeIndex[id.type] }

    private func identKey(_ id: Identifier) -> [UInt8]? {
        guard let type = typeID(of: id) else { return nil }
        return Keys.ident(type: type, value: id.value)
    }

    /// The node of an identifier, when the database has it.
    func nodeID(of id: Identifier) throws -> NodeID? {
        guard let key = identKey(id) else { return nil }
        return try txn.withValue(db.ident, key: key) { $0.map { $0.loadBigEndianUInt64(at: 0) } }
    }

    /// Whether `id` was erased; `key` is its `tombstone` key when the caller has it.
    private func isTombstoned(_ id: Identifier, key: ArraySlice<UInt8>? = nil) throws -> Bool {
        guard tombstonesExist else { return false }
        if let key { return try txn.contains(db.tombstone, key: key) }
        return try txn.contains(db.tombstone, key: tombstones.key(id))
    }

    /// Told of this transaction's first tombstone (see ``IdentityGraph/addTombstoneKeys(to:)``).
    var tombstonesSeen: TombstonesSeen?

    /// Creates the node of a new identifier; a `merge`-type node starts its own entity.
    private func createNode(_ id: Identifier) throws -> NodeID {
        let type = catalog.internType(id.type)
        refreshMergeTypes()
        let node = counters.nextID
        counters.nextID += 1
        let merges = isMergeType(type)
        try txn.put(db.ident, key: Keys.ident(type: type, value: id.value), value: node)
        try txn.put(db.node, key: node, value: NodeRecord(typeID: type, entity: merges ? node : 0, value: id.value).bytes, flags: .append)
        if merges {
            try txn.put(db.member, key: node, value: node, flags: .append)
            try txn.put(db.entity, key: node, value: EntityRecord.live(size: 1, created: now, updated: now, summary: Summary()).bytes)
            counters.entities += 1
        }
        counters.identifiers += 1
        report.identifiersCreated += 1
        return node
    }

    /// The fixed fields of a node's record (see ``NodeHeader``).
    func readNode(_ node: NodeID) throws -> NodeHeader {
        try txn.withValue(db.node, key: node) { bytes in
            guard let bytes else { throw GraphError.damaged(.corrupt("node \(node) missing")) }
            return try NodeHeader(bytes: bytes)
        }
    }

    /// Rewrites a node record's fixed fields (its value stays): one descent to the record,
    /// then an overwrite in place.
    private func writeNode(_ node: NodeID, _ header: NodeHeader) throws {
        let cursor = try nodeCursors.first
        guard try cursor.seek(key: node) else { throw GraphError.damaged(.corrupt("node \(node) missing")) }
        try overwriteNode(at: cursor, node, header)
    }

    /// A node read through `cursor`, which stays on it for ``overwriteNode(at:_:_:)``.
    private func readNode(_ node: NodeID, at cursor: Cursor) throws -> NodeHeader {
        guard try cursor.seek(key: node) else { throw GraphError.damaged(.corrupt("node \(node) missing")) }
        return try cursor.withCurrent { _, value in try NodeHeader(bytes: value) }
    }

    /// Replaces the fixed fields of the node record `cursor` is on (same size, so LMDB writes
    /// it where it is: no second descent, as a put by key took).
    private func overwriteNode(at cursor: Cursor, _ node: NodeID, _ header: NodeHeader) throws {
        cursor.withCurrent { _, value in
            nodeScratch.removeAll(keepingCapacity: true)
            nodeScratch.append(contentsOf: value)
        }
        header.write(over: &nodeScratch)
        try cursor.put(key: node, value: nodeScratch, flags: .current)
    }

    /// Two cursors on `node`, opened at the first use and kept for the transaction: both ends
    /// of a new link are read, then their degrees rewritten in place, each cursor staying on its
    /// node in between (a read and a put by key descended twice per node). ``writeNode(_:_:)``
    /// moves the first, so no other node write may come between a positioned read and its
    /// overwrite.
    private var nodeCursorPair: (first: Cursor, second: Cursor)?
    private var nodeCursors: (first: Cursor, second: Cursor) {
        get throws {
            if let nodeCursorPair { return nodeCursorPair }
            let pair = (try txn.cursor(db.node), try txn.cursor(db.node))
            nodeCursorPair = pair
            return pair
        }
    }
    /// A node record's bytes while its fixed fields are rewritten (reused).
    private var nodeScratch: [UInt8] = []

    // MARK: - Entities and summaries

    private struct LiveEntity {
        var size: UInt64
        var created: Int64
        var updated: Int64
        var summary: Summary
    }

    private func readEntity(_ entity: EntityID) throws -> LiveEntity {
        try txn.withValue(db.entity, key: entity) { bytes in
            guard let bytes, case .live(let size, let created, let updated, let summary) = try EntityRecord(bytes: bytes) else {
                throw GraphError.damaged(.corrupt("entity \(entity) is not live"))
            }
            return LiveEntity(size: size, created: created, updated: updated, summary: summary)
        }
    }

    private func writeEntity(_ entity: EntityID, _ e: LiveEntity) throws {
        try txn.put(db.entity, key: entity, value: EntityRecord.live(size: e.size, created: e.created, updated: e.updated, summary: e.summary).bytes)
    }

    func nodeSummary(_ node: NodeID) throws -> Summary {
        try txn.withValue(db.nodeSummary, key: node) { bytes in try bytes.map { try Summary(bytes: $0) } ?? Summary() }
    }

    private func writeNodeSummary(_ node: NodeID, _ summary: Summary) throws {
        if summary.isEmpty { try txn.delete(db.nodeSummary, key: node) } else { try txn.put(db.nodeSummary, key: node, value: summary.bytes) }
    }

    /// What a stored event contributes to summaries under the schema in force.
    private func contribution(_ event: EventRecord) -> SummaryContribution {
        if Int(event.typeID) >= rules.coveredTypes { rules = catalog.rules }  // a type interned since
        return rules.contribution(of: event)
    }

    /// Counts an event toward its anchor node and the anchor's entity.
    private func addContribution(_ event: EventRecord, sequence: UInt64) throws {
        let c = contribution(event)
        if defersWrites {
            pendingContributions.append((event.anchor, sequence, c))
            pendingNodes.insert(event.anchor)
            return
        }
        var s = try nodeSummary(event.anchor)
        s.add(c)
        try writeNodeSummary(event.anchor, s)
        let entity = try readNode(event.anchor).entity
        if entity != 0 {
            var e = try readEntity(entity)
            e.summary.add(c)
            e.updated = now
            try writeEntity(entity, e)
        }
    }

    /// Uncounts an event from its anchor node (unless the node is being erased) and its entity.
    private func removeContribution(_ event: EventRecord, nodeIsGoing: Bool = false) throws {
        let c = contribution(event)
        if !nodeIsGoing {
            var s = try nodeSummary(event.anchor)
            if s.remove(c) { staleNodeBounds.insert(event.anchor) }
            try writeNodeSummary(event.anchor, s)
        }
        let entity = try readNode(event.anchor).entity
        if entity != 0 {
            var e = try readEntity(entity)
            if e.summary.remove(c) { staleEntityBounds.insert(entity) }
            e.updated = now
            try writeEntity(entity, e)
        }
    }

    /// Recomputes maxima and minima (first/last seen, last order, tally times) where a
    /// subtraction removed one: a node's from its anchored events, an entity's from its members.
    private func fixStaleBounds() throws {
        try fixStaleNodeBounds()
        try fixStaleEntityBounds()
    }

    /// The nodes' part of ``fixStaleBounds()``, after every operation and before a node's
    /// summary is folded into an entity's (a split, a value turning back from generic).
    private func fixStaleNodeBounds() throws {
        if staleNodeBounds.isEmpty { return }
        for node in staleNodeBounds {
            guard try txn.contains(db.node, key: node) else { continue }
            var s = try nodeSummary(node)
            guard !s.isEmpty else { continue }
            s.refreshMaxima(from: [try summaryOfAnchoredEvents(node)])
            try writeNodeSummary(node, s)
        }
        staleNodeBounds.removeAll()
    }

    /// The entities' part of ``fixStaleBounds()``, once per transaction (from ``finish()``).
    /// An entity's bounds gathered again cost a read of every member's summary, and a device
    /// shared by strangers holds an entity of 143,748 identifiers together: done after every
    /// retract, forget and split it took part in, that was a fifth of a load's time. Until
    /// then its stale bounds are only wider than the true ones; the counts stay exact, a merge
    /// hands the mark on to the entity that absorbs it, and nothing in the transaction reads
    /// an entity's bounds to decide anything.
    private func fixStaleEntityBounds() throws {
        if staleEntityBounds.isEmpty { return }
        for entity in staleEntityBounds {
            guard case .live? = try entityRecord(entity) else { continue }
            var e = try readEntity(entity)
            // Read from the members' stored bytes: folding their decoded summaries cost
            // O(members × tallies) allocations per refresh (see SummaryBounds).
            var bounds = SummaryBounds(tallies: e.summary.tallyKeys)
            for member in try members(of: entity) {
                try txn.withValue(db.nodeSummary, key: member) { bytes in if let bytes { try bounds.add(encoded: bytes) } }
            }
            e.summary.refreshBounds(from: bounds)
            try writeEntity(entity, e)
        }
        staleEntityBounds.removeAll()
    }

    /// The summary of the events anchored at `node`, recomputed from its timeline.
    private func summaryOfAnchoredEvents(_ node: NodeID) throws -> Summary {
        var s = Summary()
        var sequences: [UInt64] = []
        try txn.forEachDuplicate(db.nodeEvent, key: node) { value in
            sequences.append(UInt64Pair(bytes: value).second)
            return true
        }
        for sequence in sequences {
            guard let event = try loadEvent(sequence), event.anchor == node else { continue }
            s.add(contribution(event))
        }
        return s
    }

    /// Recomputes every node's and entity's summary from the stored events (the profile
    /// section of the schema changed what events contribute).
    func rebuildSummaries() throws {
        var nodeSummaries: [NodeID: Summary] = [:]
        try txn.forEach(db.event) { _, value in
            let event = try EventRecord(bytes: value)
            nodeSummaries[event.anchor, default: Summary()].add(contribution(event))
            return true
        }
        try txn.clear(db.nodeSummary)
        for (node, s) in nodeSummaries.sorted(by: { $0.key < $1.key }) { try writeNodeSummary(node, s) }
        var entities: [EntityID] = []
        try txn.forEach(db.entity) { key, value in
            if case .live = try EntityRecord(bytes: value) { entities.append(key.loadBigEndianUInt64(at: 0)) }
            return true
        }
        for entity in entities {
            var e = try readEntity(entity)
            var total = Summary()
            for node in try members(of: entity) { if let s = nodeSummaries[node] { total.merge(s) } }
            e.summary = total
            try writeEntity(entity, e)
        }
    }

    private func entityRecord(_ entity: EntityID) throws -> EntityRecord? {
        try txn.withValue(db.entity, key: entity) { try $0.map { try EntityRecord(bytes: $0) } }
    }

    func members(of entity: EntityID) throws -> [NodeID] {
        var nodes: [NodeID] = []
        try txn.forEachDuplicate(db.member, key: entity) { value in
            nodes.append(value.loadBigEndianUInt64(at: 0))
            return true
        }
        return nodes
    }

    private func recordHistory(_ kind: HistoryRecord.Kind, cause: HistoryRecord.Cause, sequence: UInt64, entities: [EntityID]) throws {
        let record = HistoryRecord(kind: kind, time: now, cause: cause, causeSequence: sequence, entities: entities)
        try txn.put(db.history, key: counters.nextHistory, value: record.bytes, flags: .append)
        counters.nextHistory += 1
    }

    // MARK: - Edges

    /// The adjacency entry `u → v`, when the link exists.
    private func edge(_ u: NodeID, _ v: NodeID) throws -> EdgeEntry? {
        try adjacencyCursor.seekEdge(u, to: v)
    }

    /// A cursor on `adj` for the lookups and in-place changes of links, opened at the first
    /// use and kept for the transaction (one per call was an allocation in Swift and one in
    /// LMDB for every pair of identifiers an event names).
    private var openAdjacencyCursor: Cursor?
    private var adjacencyCursor: Cursor {
        get throws {
            if let openAdjacencyCursor { return openAdjacencyCursor }
            let cursor = try txn.cursor(db.adjacency)
            openAdjacencyCursor = cursor
            return cursor
        }
    }

    /// Changes the link `u–v` in both directions, if it exists: `change` edits its entry under `u`
    /// (evidence and flags; the neighbour stays), and the entry under `v` follows. One cursor, two
    /// descents (a lookup and two replacements took three, each with a cursor of its own); nothing
    /// is written when `change` changes nothing. Returns the entry under `u` as it was, `nil`
    /// when there is no link.
    @discardableResult
    private func changeLink(_ u: NodeID, _ v: NodeID, _ change: (inout EdgeEntry) -> Void) throws -> EdgeEntry? {
        let cursor = try adjacencyCursor
        guard let old = try cursor.seekEdge(u, to: v) else { return nil }
        var new = old
        change(&new)
        new.neighbour = v
        guard new != old else { return old }
        // Same size, same place among `u`'s entries (one per neighbour): `MDB_CURRENT`.
        try cursor.put(key: u, value: new, flags: .current)
        let back = EdgeEntry(neighbour: u, evidence: old.evidence, flags: old.flags)
        guard try cursor.seek(key: v, value: back) else { throw GraphError.damaged(.corrupt("adjacency \(v)→\(u) missing")) }
        try cursor.put(key: v, value: EdgeEntry(neighbour: u, evidence: new.evidence, flags: new.flags), flags: .current)
        return old
    }

    /// ``changeLink(_:_:_:)`` for a link that must exist.
    private func changeExistingLink(_ u: NodeID, _ v: NodeID, _ change: (inout EdgeEntry) -> Void) throws {
        guard try changeLink(u, v, change) != nil else { throw GraphError.damaged(.corrupt("adjacency \(u)→\(v) missing")) }
    }

    /// Adds one piece of evidence to the link `u–v`, creating it (and merging) when new.
    private func addEvidence(_ u: NodeID, _ v: NodeID, cause: HistoryRecord.Cause, sequence: UInt64) throws {
        if try changeLink(u, v, { $0.evidence += 1 }) != nil { return }
        try txn.put(db.adjacency, key: u, value: EdgeEntry(neighbour: v, evidence: 1))
        try txn.put(db.adjacency, key: v, value: EdgeEntry(neighbour: u, evidence: 1))
        counters.links += 1
        // Both ends read through cursors that stay on them: each degree is rewritten in place.
        let cursors = try nodeCursors
        var ru = try readNode(u, at: cursors.first)
        var rv = try readNode(v, at: cursors.second)
        if isMergeType(rv.typeID) { ru.degree += 1; try overwriteNode(at: cursors.first, u, ru) }
        if isMergeType(ru.typeID) { rv.degree += 1; try overwriteNode(at: cursors.second, v, rv) }
        // A higher degree may make either end generic (it leaves its entity); only then do the
        // records in hand go stale.
        let changedU = try refreshGeneric(u, ru, cause: cause, sequence: sequence)
        // u turning generic may have split its entity and moved v to a new one: read v again.
        if changedU { rv = try readNode(v) }
        let changedV = try refreshGeneric(v, rv, cause: cause, sequence: sequence)
        if changedU || changedV {
            ru = try readNode(u)
            rv = try readNode(v)
        }
        if isActive(ru) && isActive(rv) && ru.entity != rv.entity {
            if try wouldExceedLimit(ru.entity, rv.entity) {
                try refuse(u, v, between: ru.entity, rv.entity, cause: cause, sequence: sequence)
            } else {
                try merge(ru.entity, rv.entity, cause: cause, sequence: sequence)
            }
        }
    }

    // MARK: - Limits

    /// Whether merging two entities would give the result more values of some type than its
    /// `limit` allows. Counts the members of both (only when some type has a limit).
    private func wouldExceedLimit(_ a: EntityID, _ b: EntityID) throws -> Bool {
        guard anyLimit else { return false }
        var counts: [UInt16: Int] = [:]
        for entity in [a, b] {
            for node in try members(of: entity) {
                let type = try readNode(node).typeID
                guard let limit = limits[Int(type)] else { continue }
                counts[type, default: 0] += 1
                if counts[type]! > limit { return true }
            }
        }
        return false
    }

    /// Marks the link `u–v` refused: it relates the two entities and never merges them, until
    /// it goes (SPEC.md: not retried by itself).
    private func refuse(_ u: NodeID, _ v: NodeID, between a: EntityID, _ b: EntityID, cause: HistoryRecord.Cause, sequence: UInt64) throws {
        try changeExistingLink(u, v) { $0.flags |= EdgeEntry.refusedFlag }
        counters.refused += 1
        report.refusedLinks += 1
        try recordHistory(.refused, cause: cause, sequence: sequence, entities: [a, b])
    }

    /// Takes one piece of evidence from `u–v`; when none is left the link goes. Returns whether
    /// an active link went (its ends must then be checked for a split).
    private func removeEvidence(_ u: NodeID, _ v: NodeID, cause: HistoryRecord.Cause, sequence: UInt64) throws -> Bool {
        // The last piece of evidence is not taken here: the link goes with it, below.
        guard let old = try changeLink(u, v, { if $0.evidence > 1 { $0.evidence -= 1 } }) else { return false }
        if old.evidence > 1 { return false }
        return try removeLink(u, v, entry: old, cause: cause, sequence: sequence)
    }

    /// Removes the link `u–v` with all its evidence. Returns whether it was active (its ends must
    /// then be checked for a split); a lower degree may turn either end back from generic.
    private func removeLink(_ u: NodeID, _ v: NodeID, entry: EdgeEntry, cause: HistoryRecord.Cause, sequence: UInt64) throws -> Bool {
        try txn.delete(db.adjacency, key: u, value: entry)
        try txn.delete(db.adjacency, key: v, value: EdgeEntry(neighbour: u, evidence: entry.evidence, flags: entry.flags))
        counters.links -= 1
        counters.linkRemovals += 1
        if entry.flags & EdgeEntry.refusedFlag != 0 { counters.refused -= 1 }
        var ru = try readNode(u)
        var rv = try readNode(v)
        if isMergeType(rv.typeID) { ru.degree -= 1; try writeNode(u, ru) }
        if isMergeType(ru.typeID) { rv.degree -= 1; try writeNode(v, rv) }
        let active = isActive(ru) && isActive(rv) && entry.flags & EdgeEntry.refusedFlag == 0
        // u turning back from generic may have merged v's entity into another: read v again.
        if try refreshGeneric(u, ru, cause: cause, sequence: sequence) { rv = try readNode(v) }
        try refreshGeneric(v, rv, cause: cause, sequence: sequence)
        return active
    }

    // MARK: - Generic values

    /// Makes a node generic exactly while its degree exceeds its type's `generic_after` (SPEC.md):
    /// a value turning generic leaves its entity, which splits where it held it together; a
    /// value turning back joins the entities of its active neighbours.
    /// `current` is the node's record as stored now (callers have just read or written it).
    /// Returns whether the node changed state, and with it possibly the entities around it.
    @discardableResult
    private func refreshGeneric(_ node: NodeID, _ current: NodeHeader, cause: HistoryRecord.Cause, sequence: UInt64) throws -> Bool {
        var record = current
        guard let threshold = genericThresholds[Int(record.typeID)] else { return false }
        let generic = record.degree > threshold
        guard generic != record.isGeneric else { return false }
        if generic {
            let entity = record.entity
            var neighbours: [NodeID] = []
            try forEachActiveNeighbour(of: node) { neighbours.append($0) }
            record.flags |= NodeRecord.genericFlag
            record.entity = 0
            try writeNode(node, record)
            try txn.delete(db.member, key: entity, value: node)
            var e = try readEntity(entity)
            e.size -= 1
            e.updated = now
            counters.generic += 1
            if e.size == 0 {
                try txn.put(db.entity, key: entity, value: EntityRecord.erased(at: now).bytes)
                staleEntityBounds.remove(entity)
                counters.entities -= 1
            } else {
                if e.summary.subtract(try nodeSummary(node)) { staleEntityBounds.insert(entity) }
                try writeEntity(entity, e)
            }
            try recordHistory(.demoted, cause: cause, sequence: sequence, entities: [entity])
            report.demotions += 1
            try separate(seeds: neighbours, cause: cause, sequence: sequence)
        } else {
            try fixStaleNodeBounds()  // the new entity starts from the node's summary
            let id = counters.nextID
            counters.nextID += 1
            record.flags &= ~NodeRecord.genericFlag
            record.entity = id
            try writeNode(node, record)
            try txn.put(db.member, key: id, value: node)
            try txn.put(db.entity, key: id, value: EntityRecord.live(size: 1, created: now, updated: now, summary: try nodeSummary(node)).bytes)
            counters.entities += 1
            counters.generic -= 1
            try recordHistory(.promoted, cause: cause, sequence: sequence, entities: [id])
            report.promotions += 1
            var neighbours: [NodeID] = []
            try forEachActiveNeighbour(of: node) { neighbours.append($0) }
            for w in neighbours {
                let mine = try readNode(node).entity
                let theirs = try readNode(w).entity
                guard mine != theirs else { continue }
                if try wouldExceedLimit(mine, theirs) {
                    try refuse(node, w, between: mine, theirs, cause: cause, sequence: sequence)
                } else {
                    try merge(mine, theirs, cause: cause, sequence: sequence)
                }
            }
        }
        return true
    }

    /// Calls `body` with each neighbour joined to `node` by an active link.
    private func forEachActiveNeighbour(of node: NodeID, _ body: (NodeID) throws -> Void) throws {
        for w in try linkedNeighbours(of: node) where isActive(try readNode(w)) { try body(w) }
    }

    /// The neighbours joined to `node` by links that are not refused (active or not).
    private func linkedNeighbours(of node: NodeID) throws -> [NodeID] {
        var neighbours: [NodeID] = []
        try txn.forEachDuplicate(db.adjacency, key: node) { value in
            let entry = EdgeEntry(bytes: value)
            if entry.flags & EdgeEntry.refusedFlag == 0 { neighbours.append(entry.neighbour) }
            return true
        }
        return neighbours
    }

    // MARK: - Merge and split

    /// Merges two entities: the smaller one's members move to the larger (union by size), its
    /// summary folds in, and its id becomes a redirect.
    private func merge(_ a: EntityID, _ b: EntityID, cause: HistoryRecord.Cause, sequence: UInt64) throws {
        let ea = try readEntity(a)
        let eb = try readEntity(b)
        let keepA = ea.size > eb.size || (ea.size == eb.size && a < b)
        let (keep, gone) = keepA ? (a, b) : (b, a)
        // Bounds a subtraction made stale stay stale in the fold: the survivor is gathered
        // again at the end of the transaction (``fixStaleEntityBounds()``).
        if staleEntityBounds.remove(gone) != nil { staleEntityBounds.insert(keep) }
        var kept = keepA ? ea : eb
        let absorbed = keepA ? eb : ea
        let cursor = try nodeCursors.first
        for node in try members(of: gone) {
            var record = try readNode(node, at: cursor)
            record.entity = keep
            try overwriteNode(at: cursor, node, record)
            try txn.put(db.member, key: keep, value: node)
        }
        try txn.delete(db.member, key: gone)
        kept.size += absorbed.size
        kept.summary.merge(absorbed.summary)
        kept.created = min(kept.created, absorbed.created)
        kept.updated = now
        try writeEntity(keep, kept)
        try txn.put(db.entity, key: gone, value: EntityRecord.redirect(to: keep, at: now).bytes)
        try recordHistory(.merge, cause: cause, sequence: sequence, entities: [keep, gone])
        counters.entities -= 1
        report.merges += 1
    }

    /// One search of the lockstep split: the nodes it reached and those still to expand.
    private struct Search {
        var nodes: [NodeID]
        var pending: [NodeID]
        var exhausted = false
    }

    /// After links of `entity` went, finds the parts that are no longer connected and gives each
    /// but one a new entity id.
    ///
    /// One search starts at each seed; all advance one node at a time; searches that meet join.
    /// A search that runs out of nodes without meeting another is a complete part and splits off;
    /// when one search is left, it keeps the old id without being explored further. So the cost
    /// follows the parts that split off, not the part that stays.
    ///
    /// Seeds are grouped by the entity they belong to now (merges and generic-value changes
    /// earlier in the same operation may have relabelled them); nodes no longer active are skipped.
    private func separate(seeds candidates: [NodeID], cause: HistoryRecord.Cause, sequence: UInt64) throws {
        var groups: [EntityID: [NodeID]] = [:]
        for node in candidates {
            guard let record = try txn.withValue(db.node, key: node, { try $0.map { try NodeHeader(bytes: $0) } }),
                  isActive(record), groups[record.entity]?.contains(node) != true else { continue }
            groups[record.entity, default: []].append(node)
        }
        for (entity, seeds) in groups.sorted(by: { $0.key < $1.key }) where seeds.count > 1 {
            try separate(entity, seeds: seeds, cause: cause, sequence: sequence)
        }
    }

    private func separate(_ entity: EntityID, seeds: [NodeID], cause: HistoryRecord.Cause, sequence: UInt64) throws {
        try fixStaleNodeBounds()  // the parts' summaries are folded from their nodes'

        var searches = seeds.map { Search(nodes: [$0], pending: [$0]) }
        var parent = Array(searches.indices)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        var owner: [NodeID: Int] = [:]
        for (i, s) in seeds.enumerated() { owner[s] = i }
        // A search takes a node's neighbours without reading them (a device shared by
        // strangers has tens of thousands, and the search that reaches it is usually met, and
        // done, a few steps later); a taken node is read when it is expanded or met, and one
        // found inactive (a `relate` value, a generic one) is passed over.
        var unread: Set<NodeID> = []
        var inactive: Set<NodeID> = []
        func isActiveTaken(_ w: NodeID) throws -> Bool {
            if unread.remove(w) != nil, !isActive(try readNode(w)) { inactive.insert(w) }
            return !inactive.contains(w)
        }
        var running = seeds.count
        var parts: [[NodeID]] = []

        while running > 1 {
            for i in searches.indices where running > 1 && parent[i] == i && !searches[i].exhausted {
                var next: NodeID?
                while let x = searches[i].pending.popLast() {
                    if try isActiveTaken(x) { next = x; break }
                }
                guard let x = next else {
                    // Every node it took was expanded, so read: the inactive ones are known.
                    searches[i].exhausted = true
                    parts.append(searches[i].nodes.filter { !inactive.contains($0) })
                    searches[i].nodes = []
                    running -= 1
                    continue
                }
                for w in try linkedNeighbours(of: x) {
                    let mine = root(i)
                    if let o = owner[w] {
                        let theirs = root(o)
                        if theirs != mine, try isActiveTaken(w) {
                            let (big, small) = searches[theirs].nodes.count >= searches[mine].nodes.count ? (theirs, mine) : (mine, theirs)
                            searches[big].nodes += searches[small].nodes
                            searches[big].pending += searches[small].pending
                            searches[small] = Search(nodes: [], pending: [], exhausted: true)
                            parent[small] = big
                            running -= 1
                            if running == 1 { break }  // the last search keeps the old id unexplored
                        }
                    } else {
                        owner[w] = mine
                        unread.insert(w)
                        searches[mine].nodes.append(w)
                        searches[mine].pending.append(w)
                    }
                }
            }
        }
        guard !parts.isEmpty else { return }

        var remaining = try readEntity(entity)
        var newIDs: [EntityID] = []
        for part in parts {
            let id = counters.nextID
            counters.nextID += 1
            var summary = Summary()
            for node in part.sorted() {
                var record = try readNode(node)
                record.entity = id
                try writeNode(node, record)
                try txn.delete(db.member, key: entity, value: node)
                try txn.put(db.member, key: id, value: node)
                summary.merge(try nodeSummary(node))
            }
            try txn.put(db.entity, key: id, value: EntityRecord.live(size: UInt64(part.count), created: now, updated: now, summary: summary).bytes)
            remaining.size -= UInt64(part.count)
            if remaining.summary.subtract(summary) { staleEntityBounds.insert(entity) }
            newIDs.append(id)
            counters.entities += 1
            report.splits += 1
        }
        remaining.updated = now
        try writeEntity(entity, remaining)
        try recordHistory(.split, cause: cause, sequence: sequence, entities: [entity] + newIDs)
    }

    // MARK: - Operations

    private func applyEvent(_ event: PreparedEvent) throws {
        let input = event.input
        let firstHint = nextHint
        nextHint += event.identifiers.count
        let firstLinkHint = nextLinkHint
        nextLinkHint += event.identifiers.count * (event.identifiers.count - 1) / 2
        event.countBlocked(in: &blockedCounts, report: &report)
        let eventKey = event.storageKey
        let sequence = counters.nextSequence
        // Claimed before the identifiers are resolved: one B-tree descent where a lookup and a
        // later insert took two. Released again if the event turns out to name no identifier.
        if let eventKey, try !txn.putIfAbsent(db.eventKey, key: eventKey, value: sequence) { report.duplicateEvents += 1; return }
        var nodes: [NodeID] = []
        nodes.reserveCapacity(event.identifiers.count)
        var anchor: NodeID?
        for (i, id) in event.identifiers.enumerated() {
            let node: NodeID
            if let hints, firstHint + i < hints.count, case let hint = hints[firstHint + i], hint != 0 {
                node = hint
            } else if let existing = try nodeID(of: id) {
                node = existing
            } else if try isTombstoned(id, key: event.tombstoneKey(at: i)) {
                report.erasedIdentifiersSkipped += 1
                continue
            } else {
                node = try createNode(id)
            }
            nodes.append(node)
            if anchor == nil, let type = typeID(of: id), isMergeType(type) { anchor = node }
        }
        guard !nodes.isEmpty else {
            if let eventKey { try txn.delete(db.eventKey, key: eventKey) }
            report.eventsWithoutIdentifiers += 1
            return
        }

        counters.nextSequence += 1
        let timestamp = input.timestamp ?? now
        let record = EventRecord(
            timestamp: timestamp, typeID: catalog.internEventType(input.type), sourceID: catalog.internSource(input.source),
            anchor: anchor ?? nodes[0], amountMicros: input.amountMicros, nodes: nodes, eventID: eventKey == nil ? [] : input.eventID ?? [], props: input.props,
            attributes: input.attributes)
        try txn.put(db.event, key: sequence, value: record.bytes, flags: .append)
        let entry = Keys.timelineEntry(timestamp: timestamp, sequence: sequence)
        if defersWrites {
            for node in nodes {
                pendingTimeline.append((node, entry))
                pendingNodes.insert(node)
            }
        } else {
            for node in nodes { try txn.put(db.nodeEvent, key: node, value: entry) }
        }
        try addContribution(record, sequence: sequence)
        counters.events += 1
        report.eventsStored += 1
        // A link the snapshot of the hints had still exists (no link went since): its new
        // evidence can neither merge nor change a degree, and is counted at the end. The pairs
        // of the hints are those of all the event's identifiers: only when none was left out.
        let pairHints = nodes.count == event.identifiers.count ? linkHints : nil
        var pair = firstLinkHint
        for i in nodes.indices {
            for j in (i + 1)..<nodes.count {
                if let pairHints, pair < pairHints.count, pairHints[pair] {
                    pendingEvidence.append((nodes[i], nodes[j]))
                } else {
                    try addEvidence(nodes[i], nodes[j], cause: .event, sequence: sequence)
                }
                pair += 1
            }
        }
    }

    private func applyLink(_ a: Identifier?, _ b: Identifier?) throws {
        guard let a, let b else { report.linksIgnored += 1; return }
        let existingA = try nodeID(of: a)
        let existingB = try nodeID(of: b)
        // A link naming an erased identifier is ignored entirely: it creates neither end.
        let erasedA = try existingA == nil && isTombstoned(a)
        let erasedB = try existingB == nil && isTombstoned(b)
        if erasedA || erasedB {
            report.erasedIdentifiersSkipped += 1
            report.linksIgnored += 1
            return
        }
        let u = try existingA ?? createNode(a)
        // Look b up again: when a == b, creating a just created b too.
        let v = try existingB ?? nodeID(of: b) ?? createNode(b)
        guard u != v else { report.linksIgnored += 1; return }
        try addEvidence(u, v, cause: .link, sequence: 0)
        report.linksAsserted += 1
    }

    private func applyUnlink(_ a: Identifier?, _ b: Identifier?) throws {
        guard let a, let b, let u = try nodeID(of: a), let v = try nodeID(of: b), u != v, let entry = try edge(u, v) else {
            report.unknownUnlinks += 1
            return
        }
        let wasActive = try removeLink(u, v, entry: entry, cause: .unlink, sequence: 0)
        // Events stored before this point no longer count as evidence for the pair.
        try txn.put(db.unlinked, key: Keys.pair(u, v), value: counters.nextSequence)
        unlinkedExist = true
        report.unlinks += 1
        if wasActive { try separate(seeds: [u, v], cause: .unlink, sequence: 0) }
    }

    /// Whether the event with `sequence` still counts as evidence for the pair (no unlink since).
    private func stillEvidence(_ u: NodeID, _ v: NodeID, sequence: UInt64) throws -> Bool {
        guard unlinkedExist else { return true }
        let mark = try txn.withValue(db.unlinked, key: Keys.pair(u, v)) { $0.map { $0.loadBigEndianUInt64(at: 0) } }
        return mark.map { sequence >= $0 } ?? true
    }

    private func loadEvent(_ sequence: UInt64) throws -> EventRecord? {
        try txn.withValue(db.event, key: sequence) { try $0.map { try EventRecord(bytes: $0) } }
    }

    private func applyRetract(_ eventID: [UInt8]) throws {
        guard !eventID.isEmpty, let sequence = try txn.withValue(db.eventKey, key: Keys.eventKey(eventID), { $0.map { $0.loadBigEndianUInt64(at: 0) } }),
              let event = try loadEvent(sequence) else {
            report.unknownRetracts += 1
            return
        }
        let pending = defersWrites && sequence >= firstPendingSequence
        if !pending && reanchoredEvents.contains(sequence) { try flushDeferredWrites() }
        var seeds: [NodeID] = []
        for i in event.nodes.indices {
            for j in (i + 1)..<event.nodes.count {
                let (u, v) = (event.nodes[i], event.nodes[j])
                guard try stillEvidence(u, v, sequence: sequence) else { continue }
                if try removeEvidence(u, v, cause: .retract, sequence: sequence) { seeds += [u, v] }
            }
        }
        try txn.delete(db.event, key: sequence)
        if pending {
            retractedPendingEvents.insert(sequence)
        } else {
            let entry = Keys.timelineEntry(timestamp: event.timestamp, sequence: sequence)
            for node in event.nodes { try txn.delete(db.nodeEvent, key: node, value: entry) }
            try removeContribution(event)
        }
        counters.events -= 1
        report.retracted += 1
        try separate(seeds: seeds, cause: .retract, sequence: sequence)
    }

    private func applyForget(_ id: Identifier?) throws {
        guard let id else { report.unknownForgets += 1; return }
        try txn.put(db.tombstone, key: tombstones.key(id), value: UInt64(bitPattern: now))
        tombstonesSeen?.note()
        tombstonesExist = true
        guard let x = try nodeID(of: id) else { report.unknownForgets += 1; return }
        if pendingNodes.mayContain(x) { try flushDeferredWrites() }
        let record = try readNode(x)
        let entity = record.entity

        // Events: those naming only x go; the others lose x (and move their count if x was the anchor).
        var sequences: [UInt64] = []
        try txn.forEachDuplicate(db.nodeEvent, key: x) { value in
            sequences.append(value.loadBigEndianUInt64(at: 8))
            return true
        }
        for sequence in sequences {
            guard var event = try loadEvent(sequence) else { continue }
            let others = event.nodes.filter { $0 != x }
            if others.isEmpty {
                if event.anchor == x { try removeContribution(event, nodeIsGoing: true) }
                try txn.delete(db.event, key: sequence)
                counters.events -= 1
                report.eventsErased += 1
                continue
            }
            if event.anchor == x {
                try removeContribution(event, nodeIsGoing: true)
                var anchor = others[0]
                for node in others where isMergeType(try readNode(node).typeID) { anchor = node; break }
                event.anchor = anchor
                event.nodes = others
                try addContribution(event, sequence: sequence)
                if defersWrites { reanchoredEvents.insert(sequence) }
            } else {
                event.nodes = others
            }
            try txn.put(db.event, key: sequence, value: event.bytes)
        }
        try txn.delete(db.nodeEvent, key: x)

        // Links: every link of x goes; active neighbours in x's entity seed the split search.
        var entries: [EdgeEntry] = []
        try txn.forEachDuplicate(db.adjacency, key: x) { value in
            entries.append(EdgeEntry(bytes: value))
            return true
        }
        var seeds: [NodeID] = []
        let xActive = isActive(record)
        for entry in entries {
            let w = entry.neighbour
            try txn.delete(db.adjacency, key: w, value: EdgeEntry(neighbour: x, evidence: entry.evidence, flags: entry.flags))
            var rw = try readNode(w)
            if isMergeType(record.typeID) { rw.degree -= 1; try writeNode(w, rw) }
            if xActive && isActive(rw) && entry.flags & EdgeEntry.refusedFlag == 0 && rw.entity == entity { seeds.append(w) }
            counters.links -= 1
            counters.linkRemovals += 1
            if entry.flags & EdgeEntry.refusedFlag != 0 { counters.refused -= 1 }
        }
        try txn.delete(db.adjacency, key: x)

        // The node itself.
        try txn.delete(db.nodeSummary, key: x)
        try txn.delete(db.node, key: x)
        if let key = identKey(id) { try txn.delete(db.ident, key: key) }
        counters.identifiers -= 1
        if record.isGeneric { counters.generic -= 1 }
        report.forgotten += 1
        if entity != 0 {
            try txn.delete(db.member, key: entity, value: x)
            var e = try readEntity(entity)
            e.size -= 1
            e.updated = now
            if e.size == 0 {
                try txn.put(db.entity, key: entity, value: EntityRecord.erased(at: now).bytes)
                staleEntityBounds.remove(entity)
                counters.entities -= 1
                try recordHistory(.erased, cause: .forget, sequence: 0, entities: [entity])
            } else {
                try writeEntity(entity, e)
                try recordHistory(.forget, cause: .forget, sequence: 0, entities: [entity])
                try separate(seeds: seeds, cause: .forget, sequence: 0)
            }
        } else {
            try recordHistory(.forget, cause: .forget, sequence: 0, entities: [])
        }
        // Neighbours lost a link: a generic one may turn back.
        for entry in entries { try refreshGeneric(entry.neighbour, try readNode(entry.neighbour), cause: .forget, sequence: 0) }
    }
}
