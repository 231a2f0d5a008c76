import CPrefetch
import Crypto
import Foundation
import LMDB

/// Loads a run of events into an empty database by resolving them in memory and writing each
/// table once, in key order, with `MDB_APPEND`.
///
/// It applies exactly the algorithm of the incremental writer (identifier ids in first-seen order,
/// union by size with the same tie-break, the same merge history, the same anchors and
/// summaries), so the database it leaves is the one the incremental path would have written:
/// `BulkLoadTests` compare every table of both, entry by entry.
///
/// Scope: events only (the loader hands control records to the incremental path), into a
/// database that holds no identifier and no event yet, under a schema without `generic_after`
/// or `limit` policies (those depend on degrees as they grow, which only the incremental
/// path follows). ``IdentityGraph/acceptsBulkLoad`` tells whether it applies.
///
/// Memory: see ``estimatedBytes``; the caller stops feeding events and commits when it passes
/// its budget, and goes on incrementally.
public final class BulkWriter {
    private let txn: WriteTransaction
    private let db: Databases
    private(set) var catalog: Catalog
    private let storedCatalogVersion: UInt64
    private var counters: Counters
    private let now: Int64
    /// Where ``finish()`` reports how far it is (nil: nowhere).
    var progress: BulkProgress?
    /// What the events did so far (the same counts the incremental path reports).
    public private(set) var report = ApplyReport()
    private var metadata: [(key: String, value: [UInt8])] = []
    private var blockedCounts: [String: Int] = [:]
    private var mergeTypes: [Bool] = []

    // Identifiers: node id = index + 1 (a fresh database numbers from 1, and in a run of events
    // only nodes take ids: merges reuse ids, splits and promotions do not happen).
    private var ident = ByteKeyTable()
    private var scratch: [UInt8] = []
    private var nodeType: [UInt16] = []
    /// Values of identifiers over `Keys.inlineValueLimit` bytes (their `ident` key holds a hash);
    /// every other value is read back from its key (type + value), so values are not held twice.
    private var longValues: [UInt32: [UInt8]] = [:]
    private var longValueBytes = 0
    /// Union-find over entities (index of the root = entity id - 1); `UInt32.max` for nodes in no entity.
    private var parent: [UInt32] = []
    private var entitySize: [UInt32] = []
    /// The entity an entity merged into (index), `UInt32.max` while live.
    private var redirect: [UInt32] = []
    /// Per stored event (index = sequence - 1): what its anchor's summary counts.
    private var eventType: [UInt32] = []
    private var eventSource: [UInt32] = []
    private var eventAmount: [Int64] = []
    /// Per event: for events that count toward profile tallies (most do not), index `k` of its
    /// attributes in `tallyArena` (bytes `tallyStart[k]..<tallyStart[k + 1]`, `tallyCount[k]`
    /// attributes, ``AttributeList``'s form); -1 for none. The tallies themselves are built only
    /// when summaries are folded: kept as `[TallyKey]` per event they took ~120 bytes each.
    private var eventTallyIndex: [Int32] = []
    private var tallyArena: [UInt8] = []
    private var tallyStart: [Int] = [0]
    private var tallyCount: [UInt16] = []

    /// Every piece of link evidence, counted into links (and degrees) at the end.
    private var links = LinkLog()
    /// The event ids claimed so far: by this writer, or by the feed that sends its batches
    /// (``claimKeys(with:)``).
    private var keyClaims = EventKeyClaims()
    private var claimsByProducer = false
    /// Per event key (by number): its event's sequence (below 2^32 in one bulk run).
    private var eventKeySequence: [UInt32] = []
    /// Timeline entries (node index, sortable timestamp, sequence), in sequence order; the
    /// node's top bit marks the event's anchor, so summaries are folded from the timeline at the
    /// end instead of kept per node (a dictionary each) while loading.
    private var timelineNode: [UInt32] = []
    /// The event of each timeline entry (index = sequence - 1): 8 bytes per entry with the node,
    /// the time and sequence being the event's (a copy of both per entry took 20).
    private var timelineEvent: [UInt32] = []
    /// Per stored event: its sortable timestamp.
    private var eventTime: [UInt64] = []

    fileprivate static let none = UInt32.max
    /// Bytes of profile attributes one bulk run holds at most (see ``estimatedBytes``).
    static let tallyArenaLimit = Int(UInt32.max) - (1 << 20)
    private static let anchorBit: UInt32 = 1 << 31

    init(transaction: WriteTransaction, databases: Databases, catalog: Catalog, now: Int64) throws {
        txn = transaction
        db = databases
        self.now = now
        let current = try Catalog.current(catalog, in: transaction, meta: databases.meta)
        self.catalog = current
        storedCatalogVersion = current.version
        counters = try Counters.stored(in: transaction, meta: databases.meta)
        guard counters.isFresh, try transaction.entryCount(databases.tombstone) == 0 else {
            throw BulkLoadError.databaseNotEmpty
        }
        guard Self.schemaAllowsBulk(current.schema) else { throw BulkLoadError.policyNeedsIncremental }
        refreshMergeTypes()
    }

    static func schemaAllowsBulk(_ schema: Schema) -> Bool {
        ([schema.defaultPolicy] + schema.types.values).allSatisfy { $0.genericAfter == nil && $0.limit == nil }
    }

    /// Approximate bytes of memory held for what is not yet written: per identifier about 90
    /// bytes plus its value twice, per link about 40, per event id about 70 plus its length, per
    /// timeline entry 24, per counted node about 150.
    ///
    /// Infinite once the profile attributes held pass ``tallyArenaLimit``: the encoder
    /// addresses them with 32-bit offsets, so the bulk run ends there like at the memory limit.
    public var estimatedBytes: Int {
        if tallyArena.count > Self.tallyArenaLimit { return .max }
        return ident.memoryBytes + longValueBytes + nodeType.capacity * 18 + links.memoryBytes + (claimsByProducer ? 0 : keyClaims.memoryBytes)
            + eventKeySequence.capacity * 4 + timelineNode.capacity * 8 + eventType.capacity * 28 + tallyArena.capacity + tallyStart.capacity * 10
    }

    /// Sizes the hash tables and arrays for about `events` events in all (a hint: the loader
    /// estimates it from what the first MiBs of the archives held), so that they do not rehash
    /// and copy as they grow (measured on 1M events: growing the identifier table alone took
    /// 2.7% of the writer's time). What is in them already is rehashed once.
    ///
    /// Timeline entries and link evidence per event are taken from the events seen so far when
    /// there are enough of them (Segment messages name more identifiers than native events),
    /// else from generated native archives.
    public func reserve(events: Int) {
        guard events > 0 else { return }
        let seen = Int(counters.events)
        func perEvent(_ count: Int, otherwise: Double) -> Double { seen >= 1_000 ? Double(count) / Double(seen) : otherwise }
        // Never below what native archives need (room for 2.5 timeline entries: a doubling
        // past it would hold 4); above it by 5% of what was seen. Identifiers stay at one per
        // event: early in an archive nearly every identifier is new (1.9 per event in the first
        // 4 MiB of the 10M archive, 0.94 over all of it), so what was seen would oversize the
        // table (+130 MB at 10M).
        let identifiers = events
        let entries = Int(Double(events) * max(2.5, perEvent(timelineNode.count, otherwise: 2.15) * 1.05))
        let evidence = Int(Double(events) * max(1.5, perEvent(links.count, otherwise: 1.5) * 1.05))
        ident.reserve(keys: identifiers, bytes: identifiers * 24)
        if !claimsByProducer { keyClaims.reserve(events: events) }
        links.reserve(evidence)
        eventKeySequence.reserveCapacity(events)
        nodeType.reserveCapacity(identifiers); parent.reserveCapacity(identifiers)
        entitySize.reserveCapacity(identifiers); redirect.reserveCapacity(identifiers)
        eventType.reserveCapacity(events); eventSource.reserveCapacity(events); eventAmount.reserveCapacity(events)
        eventTime.reserveCapacity(events); eventTallyIndex.reserveCapacity(events)
        timelineNode.reserveCapacity(entries); timelineEvent.reserveCapacity(entries)
    }

    /// Writes `value` under the loader's `key` in the same transaction (resume checkpoints).
    public func setMetadata(_ key: String, _ value: [UInt8]) {
        metadata.removeAll { $0.key == key }
        metadata.append((key, value))
    }

    private func refreshMergeTypes() {
        while mergeTypes.count < catalog.typeNames.count {
            mergeTypes.append(catalog.policy(ofType: UInt16(mergeTypes.count)).role == .merge)
        }
    }

    // MARK: - Resolving

    /// Uses `claims`, whose owner claims the ids of the events it sends before this writer
    /// gets them (``add(_:claimed:)``, ``add(_:claims:)``), instead of claiming them itself.
    /// Call before adding anything; `claims` is this writer's again once nothing more comes.
    func claimKeys(with claims: EventKeyClaims) {
        keyClaims = claims
        claimsByProducer = true
    }

    /// Takes one event or link, exactly as the incremental writer would apply it; throws
    /// ``BulkLoadError/unsupportedOperation`` for the others (they may split entities).
    public func add(_ op: PreparedOperation) throws {
        try add(op, claimed: nil)
    }

    /// ``add(_:)``; `claimed`: what claiming an event's id did, when its sender claimed it.
    func add(_ op: PreparedOperation, claimed: EventKeyClaims.Outcome?) throws {
        switch op {
        case .event(let event): try add(event, claimed: claimed)
        case .link(let a, let b): try addLink(a, b)
        case .unlink, .forget, .retract: throw BulkLoadError.unsupportedOperation
        }
    }

    /// Whether the bulk path takes this operation (events and links).
    public static func accepts(_ op: PreparedOperation) -> Bool {
        switch op {
        case .event, .link: return true
        case .unlink, .forget, .retract: return false
        }
    }

    /// A `link` record: one piece of evidence, as `GraphWriter.applyLink` (no tombstones here).
    private func addLink(_ a: Identifier?, _ b: Identifier?) throws {
        guard let a, let b else { report.linksIgnored += 1; return }
        let u = nodeIndex(of: a)
        let v = nodeIndex(of: b)
        guard u != v else { report.linksIgnored += 1; return }
        var appends = try EventAppends(events: appender(db.event), history: appender(db.history))
        try addEvidence(u, v, cause: .link, sequence: 0, appends: &appends)
        report.linksAsserted += 1
    }

    /// Takes one event, exactly as the incremental writer would apply it.
    private func add(_ event: PreparedEvent, claimed: EventKeyClaims.Outcome?) throws {
        let input = event.input
        event.countBlocked(in: &blockedCounts, report: &report)
        let id = event.storageKey == nil ? [] : input.eventID ?? []
        let outcome = claimed ?? keyClaims.claim(event)
        let keyed = outcome == .first
        if outcome == .duplicate {
            report.duplicateEvents += 1
            return
        }
        guard !event.identifiers.isEmpty else { report.eventsWithoutIdentifiers += 1; return }
        nodes.removeAll(keepingCapacity: true)
        for identifier in event.identifiers { nodes.append(nodeIndex(of: identifier)) }
        let typeID = input.type.withUnsafeBytes { eventTypeID($0) }
        let sourceID = input.source.withUnsafeBytes { self.sourceID($0) }
        try id.withUnsafeBytes { eventID in
            try input.props.withUnsafeBytes { props in
                try input.attributes.bytes.withUnsafeBytes { attributes in
                    try nodes.withUnsafeBufferPointer { nodes in
                        var appends = try EventAppends(events: appender(db.event), history: appender(db.history))
                        try store(
                            nodes: nodes, timestamp: input.timestamp, typeID: typeID, sourceID: sourceID, amountMicros: input.amountMicros,
                            keyed: keyed, eventID: eventID, props: props, attributes: attributes, attributeCount: input.attributes.count,
                            appends: &appends)
                    }
                }
            }
        }
    }

    /// The events of a batch, in order, exactly as ``add(_:)`` takes each as a ``PreparedOperation``.
    public func add(_ batch: EventBatch) throws {
        try add(batch, claims: nil)
    }

    /// ``add(_:)``; `claims`: what claiming each event's id did, when the sender claimed them.
    func add(_ batch: EventBatch, claims: [EventKeyClaims.Outcome]?) throws {
        if claims == nil { keyClaims.claim(batch, into: &ownClaims) }
        for patterns in batch.blocked.values {
            for pattern in patterns { blockedCounts[pattern, default: 0] += 1 }
            report.blockedValues += patterns.count
        }
        // The batch's type names, mapped to catalog ids on first use (a name the batch learnt
        // but no stored identifier uses must not enter the catalog).
        batchTypeIDs.removeAll(keepingCapacity: true)
        batchTypeIDs.append(contentsOf: repeatElement(-1, count: batch.typeNames.count))
        try batch.arena.withUnsafeBytes { arena in
            // Every identifier key of the events kept (their ids are claimed in order:
            // duplicates are skipped), with its hash; then the identifiers are resolved with
            // their hash slots and entries asked for a few keys ahead (at 10M events the writer
            // spent half its resolving time waiting for those cache misses), and the events stored.
            let events = batch.events
            let outcomes = claims ?? ownClaims
            kept.removeAll(keepingCapacity: true)
            keyBytes.removeAll(keepingCapacity: true)
            keyEnds.removeAll(keepingCapacity: true)
            keyHashes.removeAll(keepingCapacity: true)
            keyMembers.removeAll(keepingCapacity: true)
            for (i, e) in events.enumerated() {
                let outcome = outcomes[i]
                if outcome == .duplicate { report.duplicateEvents += 1; continue }
                let keyed = outcome == .first
                guard e.memberCount > 0 else { report.eventsWithoutIdentifiers += 1; continue }
                kept.append((Int32(i), keyed, Int32(keyEnds.count)))
                for m in Int(e.firstMember)..<(Int(e.firstMember) + Int(e.memberCount)) {
                    let member = batch.members[m]
                    var type = batchTypeIDs[Int(member.type)]
                    if type < 0 {
                        type = Int32(typeID(batch.typeNames[Int(member.type)]))
                        batchTypeIDs[Int(member.type)] = type
                    }
                    let start = keyBytes.count
                    Keys.appendIdent(type: UInt16(type), value: UnsafeRawBufferPointer(rebasing: arena[member.value.range]), to: &keyBytes)
                    keyEnds.append(keyBytes.count)
                    keyMembers.append(Int32(m))
                    keyHashes.append(keyBytes.withUnsafeBytes { ByteKeyTable.hash(UnsafeRawBufferPointer(rebasing: $0[start...])) })
                }
            }
            // The nodes, in member order (new identifiers are numbered in first-seen order).
            resolved.removeAll(keepingCapacity: true)
            let total = keyEnds.count
            let ahead = 12, entryAhead = 6
            for j in 0..<min(ahead, total) { ident.prefetch(hash: keyHashes[j]) }
            // The keys' bytes through one buffer for the whole batch: borrowed per key, they
            // were retained and released around every resolution (430,000 times per 200,000
            // events), since resolving could have changed them as far as the compiler knew.
            let keys = keyBytes  // not changed while the keys are resolved
            keys.withUnsafeBytes { bytes in
                for j in 0..<total {
                    if j + ahead < total { ident.prefetch(hash: keyHashes[j + ahead]) }
                    if j + entryAhead < total { ident.prefetchEntry(hash: keyHashes[j + entryAhead]) }
                    let start = j == 0 ? 0 : keyEnds[j - 1]
                    let (node, inserted) = resolveNode(key: UnsafeRawBufferPointer(rebasing: bytes[start..<keyEnds[j]]), hash: keyHashes[j])
                    if inserted, case let value = batch.members[Int(keyMembers[j])].value, value.count > Keys.inlineValueLimit {
                        keepLongValue(UnsafeRawBufferPointer(rebasing: arena[value.range]), of: node)
                    }
                    resolved.append(node)
                }
            }
            // The events, in order; the union-find parents and types of an event's nodes are
            // asked for a few events ahead (each was a cache miss at 10M identifiers).
            // (`resolved` and `kept` through buffer pointers taken once: a slice or a buffer
            // per event cost a retain and a release each.)
            let unionAhead = 4
            let resolvedNodes = resolved, keptEvents = kept  // not changed while events are stored
            let unionFind = UnionFindAddresses(parent: parent, nodeType: nodeType)
            var appends = try EventAppends(events: appender(db.event), history: appender(db.history))
            try resolvedNodes.withUnsafeBufferPointer { resolved in
                try keptEvents.withUnsafeBufferPointer { kept in
                    for (k, entry) in kept.enumerated() {
                        if k + unionAhead < kept.count {
                            let next = kept[k + unionAhead]
                            let first = Int(next.firstKey)
                            unionFind.prefetch(UnsafeBufferPointer(rebasing: resolved[first..<(first + Int(events[Int(next.event)].memberCount))]))
                        }
                        let e = events[Int(entry.event)]
                        let firstKey = Int(entry.firstKey)
                        let typeID = eventTypeID(UnsafeRawBufferPointer(rebasing: arena[e.type.range]))
                        let sourceID = sourceID(UnsafeRawBufferPointer(rebasing: arena[e.source.range]))
                        try store(
                            nodes: UnsafeBufferPointer(rebasing: resolved[firstKey..<(firstKey + Int(e.memberCount))]),
                            timestamp: e.hasTimestamp ? e.timestamp : nil, typeID: typeID, sourceID: sourceID,
                            amountMicros: e.hasAmount ? e.amountMicros : nil, keyed: entry.keyed,
                            eventID: e.eventID.map { UnsafeRawBufferPointer(rebasing: arena[$0.range]) } ?? UnsafeRawBufferPointer(start: nil, count: 0),
                            props: UnsafeRawBufferPointer(rebasing: arena[e.props.range]),
                            attributes: UnsafeRawBufferPointer(rebasing: arena[e.attributes.range]), attributeCount: Int(e.attributeCount),
                            appends: &appends)
                    }
                }
            }
        }
    }

    /// Events of the batch being added that are stored: index, whether its key was claimed,
    /// and the index of its first identifier key.
    private var kept: [(event: Int32, keyed: Bool, firstKey: Int32)] = []
    /// The identifier keys of the batch being added, back to back, with their ends and hashes.
    private var keyBytes: [UInt8] = []
    private var keyEnds: [Int] = []
    private var keyHashes: [UInt64] = []
    /// The batch member each key is of.
    private var keyMembers: [Int32] = []
    /// Their nodes.
    private var resolved: [UInt32] = []

    /// What claiming the ids of the batch being added did, when this writer claims them.
    private var ownClaims: [EventKeyClaims.Outcome] = []

    /// Catalog ids of the batch's type names (-1: not looked up yet).
    private var batchTypeIDs: [Int32] = []
    /// The resolved nodes of the event being added one by one (``add(_:)`` of an operation), reused.
    private var nodes: [UInt32] = []
    /// Event types and sources seen, with their ids: a few short names compared directly, so
    /// looking one up needs no array.
    private var recentEventTypes: [(name: [UInt8], id: UInt32)] = []
    private var recentSources: [(name: [UInt8], id: UInt32)] = []

    private func eventTypeID(_ name: UnsafeRawBufferPointer) -> UInt32 {
        for entry in recentEventTypes where entry.name.count == name.count && entry.name.elementsEqual(name) { return entry.id }
        let id = catalog.internEventType(Array(name))
        if recentEventTypes.count < 64 { recentEventTypes.append((Array(name), id)) }
        return id
    }

    private func sourceID(_ name: UnsafeRawBufferPointer) -> UInt32 {
        for entry in recentSources where entry.name.count == name.count && entry.name.elementsEqual(name) { return entry.id }
        let id = catalog.internSource(Array(name))
        if recentSources.count < 64 { recentSources.append((Array(name), id)) }
        return id
    }

    /// Stores an event whose identifiers are resolved into `nodes`: its record, timeline
    /// entries, summary inputs and the evidence between every pair of its nodes. Its anchor is
    /// its first node of a merge type (else its first node). `keyed`: its id was just claimed
    /// by this event (its sequence goes with the id).
    private func store(
        nodes: UnsafeBufferPointer<UInt32>, timestamp: Int64?, typeID: UInt32, sourceID: UInt32, amountMicros: Int64?,
        keyed: Bool, eventID: UnsafeRawBufferPointer,
        props: UnsafeRawBufferPointer, attributes: UnsafeRawBufferPointer, attributeCount: Int, appends: inout EventAppends
    ) throws {
        let sequence = counters.nextSequence
        guard sequence < UInt64(UInt32.max) else { throw BulkLoadError.tooManyEvents }  // events are numbered in 32 bits here
        counters.nextSequence += 1
        let timestamp = timestamp ?? now
        let anchorNode = nodes.first { mergeTypes[Int(nodeType[Int($0)])] } ?? nodes[0]
        appends.record.bytes.removeAll(keepingCapacity: true)
        EventRecord.encode(
            into: &appends.record, timestamp: timestamp, typeID: typeID, sourceID: sourceID,
            anchor: UInt64(anchorNode) + 1, amountMicros: amountMicros, nodes: nodes.lazy.map { UInt64($0) + 1 },
            eventID: keyed ? eventID : UnsafeRawBufferPointer(start: nil, count: 0), props: props, attributes: attributes, attributeCount: attributeCount)
        try appends.events.put(key: sequence, value: appends.record.bytes, flags: .append)
        if keyed { eventKeySequence.append(UInt32(sequence)) }
        let time = sortableTimestamp(timestamp)
        for node in nodes {
            timelineNode.append(node == anchorNode ? node | Self.anchorBit : node)
            timelineEvent.append(UInt32(sequence - 1))
        }
        var tallyIndex: Int32 = -1
        if attributeCount > 0 && catalog.rules.hasTallies(type: typeID, attributes: attributes, count: attributeCount) {
            tallyIndex = Int32(tallyCount.count)
            tallyArena.append(contentsOf: attributes)
            tallyStart.append(tallyArena.count)
            tallyCount.append(UInt16(attributeCount))
        }
        eventTallyIndex.append(tallyIndex)
        eventTime.append(time)
        eventType.append(typeID)
        eventSource.append(sourceID)
        eventAmount.append(amountMicros ?? 0)
        counters.events += 1
        report.eventsStored += 1
        for i in nodes.indices {
            for j in (i + 1)..<nodes.count { try addEvidence(nodes[i], nodes[j], cause: .event, sequence: sequence, appends: &appends) }
        }
    }

    private func nodeIndex(of id: Identifier) -> UInt32 {
        scratch.removeAll(keepingCapacity: true)
        Keys.appendIdent(type: typeID(id.type), value: id.value, to: &scratch)
        let (node, inserted) = scratch.withUnsafeBytes { resolveNode(key: $0, hash: ByteKeyTable.hash($0)) }
        if inserted && id.value.count > Keys.inlineValueLimit { id.value.withUnsafeBytes { keepLongValue($0, of: node) } }
        return node
    }

    /// Keeps the value of a new node whose `ident` key holds a hash (see ``finish()``).
    private func keepLongValue(_ value: UnsafeRawBufferPointer, of node: UInt32) {
        longValues[node] = Array(value)
        longValueBytes += value.count + 64
    }

    /// The node of the identifier whose `ident` key is `key` (its ``ByteKeyTable/hash(_:)`` given),
    /// and whether it is new.
    private func resolveNode(key: UnsafeRawBufferPointer, hash: UInt64) -> (node: UInt32, inserted: Bool) {
        let (index, inserted) = ident.insert(key, hash: hash)
        if !inserted { return (UInt32(index), false) }
        let node = UInt32(nodeType.count)
        assert(index == Int(node))
        let type = UInt16(key[0]) << 8 | UInt16(key[1])
        nodeType.append(type)
        if mergeTypes[Int(type)] {
            parent.append(node)
            counters.entities += 1
        } else {
            parent.append(Self.none)
        }
        entitySize.append(1)
        redirect.append(Self.none)
        counters.nextID += 1
        counters.identifiers += 1
        report.identifiersCreated += 1
        return (node, true)
    }

    /// Type names seen, with their ids: a few short strings compared directly, cheaper than
    /// hashing each name into the catalog's dictionary (measured: 1M events, 7.5 → 7.0 s).
    private var recentTypes: [(name: String, id: UInt16)] = []

    private func typeID(_ name: String) -> UInt16 {
        for entry in recentTypes where entry.name == name { return entry.id }
        // A type the catalog lacks means a new node, which registers it first (as GraphWriter).
        let id = catalog.typeID(name) ?? catalog.internType(name)
        refreshMergeTypes()
        if recentTypes.count < 32 { recentTypes.append((name, id)) }
        return id
    }

    private func find(_ node: UInt32) -> UInt32 {
        // Through a buffer pointer: indexing the class's array directly retains and releases
        // it around every step.
        parent.withUnsafeMutableBufferPointer { parent in
            var root = node
            while parent[Int(root)] != root { root = parent[Int(root)] }
            var x = node
            while parent[Int(x)] != root {
                let next = parent[Int(x)]
                parent[Int(x)] = root
                x = next
            }
            return root
        }
    }

    private func addEvidence(_ u: UInt32, _ v: UInt32, cause: HistoryRecord.Cause, sequence: UInt64, appends: inout EventAppends) throws {
        // A link seen again finds both ends in one entity already (nothing splits in a bulk
        // run), so only a new link can merge, as in GraphWriter.addEvidence.
        links.append(u, v)
        guard mergeTypes[Int(nodeType[Int(u)])] && mergeTypes[Int(nodeType[Int(v)])] else { return }
        let a = find(u), b = find(v)
        guard a != b else { return }
        // Union by size; on a tie the lower id stays (as GraphWriter.merge).
        let keepA = entitySize[Int(a)] > entitySize[Int(b)] || (entitySize[Int(a)] == entitySize[Int(b)] && a < b)
        let (keep, gone) = keepA ? (a, b) : (b, a)
        parent[Int(gone)] = keep
        redirect[Int(gone)] = keep
        entitySize[Int(keep)] += entitySize[Int(gone)]
        counters.entities -= 1
        report.merges += 1
        appends.merge.bytes.removeAll(keepingCapacity: true)
        HistoryRecord.encodeMerge(into: &appends.merge, time: now, cause: cause, causeSequence: sequence, keep: UInt64(keep) + 1, gone: UInt64(gone) + 1)
        try appends.history.put(key: counters.nextHistory, value: appends.merge.bytes, flags: .append)
        counters.nextHistory += 1
    }

    // MARK: - Writing

    /// One cursor per table for its appends: LMDB skips the descent from the root when a
    /// cursor already sits at the end (`mdb_put` opens a new cursor and descends every time;
    /// measured on 1M events: writing the tables 3.5 s → see the commit). Kept by
    /// `Database.index`: the event and history puts look theirs up once per event and per merge,
    /// and by name that was a `String` hash each time.
    private var appenders: [Cursor?] = []

    private func appender(_ database: Database) throws -> Cursor {
        let i = database.index
        if i < appenders.count, let cursor = appenders[i] { return cursor }
        let cursor = try txn.cursor(database)
        if i >= appenders.count { appenders += repeatElement(nil, count: i + 1 - appenders.count) }
        appenders[i] = cursor
        return cursor
    }

    /// Writes every table in key order, then counters, catalog and metadata.
    func finish() throws {
        let count = nodeType.count
        guard count < Int(Self.anchorBit) else { throw BulkLoadError.tooManyIdentifiers }

        // Each node's entity (path compression mutates `parent`: done here, before other
        // threads read).
        var entityOf = [UInt32](repeating: Self.none, count: count)
        for i in 0..<count where parent[i] != Self.none { entityOf[i] = find(UInt32(i)) }

        // Three threads from here. The sorter orders the keyed tables; the encoder builds every
        // node, summary, timeline, member, entity and adjacency value in key order, in chunks;
        // this thread only puts them (only it touches the transaction). Writing the tables took
        // 3.0 s on 1M events with the encoding on this thread (1.6 s of it the node loop).
        let sorted = SortedOutputs()
        // What the sorter reads, in a box it empties as it goes: a thread's closure keeps what
        // it captures until the thread object goes, and these tables are the largest part of
        // the run's memory (the writer and the encoder drop their own references when done).
        var eventKeys = keyClaims.takeTable()
        let inputs = SortInputs(ident: ident, eventKeys: eventKeys, links: links, entityOf: entityOf, nodeType: nodeType, mergeTypes: mergeTypes)
        links = LinkLog()
        let regrouped = DispatchSemaphore(value: 0)
        let sorter = Thread {
            ThreadControl.name("idgraph-sorter")
            // The links first: the encoder's node records need the degrees.
            var tally = inputs.links.tally()
            let (nodeType, mergeTypes) = (inputs.nodeType, inputs.mergeTypes)
            inputs.nodeType = []
            sorted.degree = tally.degrees(nodes: nodeType.count) { mergeTypes[Int(nodeType[$0])] }
            sorted.linkCount = tally.forward.count
            sorted.linksReady.signal()
            sorted.ident = inputs.ident.sortedEntries()
            inputs.ident = ByteKeyTable()
            sorted.identReady.signal()
            regrouped.wait()
            var membership: [UInt64] = []
            membership.reserveCapacity(inputs.entityOf.count)
            for (i, e) in inputs.entityOf.enumerated() where e != BulkWriter.none { membership.append(UInt64(e) << 32 | UInt64(i)) }
            inputs.entityOf = []
            RadixSort.sort(&membership)
            sorted.membership = membership
            tally.addBackward(nodes: count)
            sorted.links = tally
            sorted.done.signal()
            // Event keys last: only the writer needs them, and it can put them at the very end,
            // while the encoder needs the membership as soon as its node pass is over (it sat
            // idle for ~3 s at 10M events waiting for this sort).
            sorted.eventKeys = inputs.eventKeys.sortedEntries()
            inputs.eventKeys = ByteKeyTable()
            sorted.keysReady.signal()
            sorted.finished.signal()
        }
        sorter.stackSize = 8 << 20
        sorter.start()

        let pipe = ChunkPipe()
        let encoder = TableEncoder(
            count: count, now: now, rules: catalog.rules, entityOf: entityOf, parent: parent, redirect: redirect, entitySize: entitySize,
            nodeType: nodeType, identKeys: ident, longValues: longValues,
            timelineNode: timelineNode, timelineEvent: timelineEvent, eventTime: eventTime, eventType: eventType,
            eventSource: eventSource, eventAmount: eventAmount, eventTallyIndex: eventTallyIndex, tallyArena: tallyArena,
            tallyStart: tallyStart, tallyCount: tallyCount, progress: progress, regrouped: regrouped)
        // The encoder holds the only references to the per-event arrays now: it frees them as
        // soon as it has regrouped them by node, and the node arrays after the node pass.
        timelineNode = []; timelineEvent = []; eventTime = []; eventType = []; eventSource = []; eventAmount = []; eventTallyIndex = []
        tallyArena = []; tallyStart = []; tallyCount = []; longValues = [:]
        nodeType = []; parent = []; redirect = []; entitySize = []; entityOf = []
        let encoderThread = Thread {
            ThreadControl.name("idgraph-encoder")
            encoder.run(into: pipe, sorted: sorted)
        }
        encoderThread.stackSize = 8 << 20
        encoderThread.start()
        defer {
            // On every way out: the encoder stops at its next chunk, and both threads are done
            // before this returns (they read this writer's arrays).
            pipe.cancel()
            pipe.finished.wait()
            sorted.finished.wait()
            sorted.finished.signal()
        }

        let node = try appender(db.node), summary = try appender(db.nodeSummary), timeline = try appender(db.nodeEvent)
        let member = try appender(db.member), entity = try appender(db.entity), adjacency = try appender(db.adjacency)
        func put(_ entries: EncodedEntries, _ cursor: Cursor) throws {
            try entries.bytes.withUnsafeBytes { bytes in
                var start = 0
                for (i, key) in entries.keys.enumerated() {
                    let end = entries.ends[i]
                    let value = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                    if entries.elementSize > 0 {
                        try cursor.putMultiple(key: key, values: value, elementSize: entries.elementSize, flags: [.append, .appendDup])
                    } else {
                        try cursor.put(key: key, value: value, flags: .append)
                    }
                    start = end
                }
            }
        }
        // ident and event_key, by key bytes, as soon as the sorter has them, a slice of keys
        // at a time between the encoder's chunks: at 10M events sorting the identifiers takes
        // ~5 s and putting them ~4 s, and a writer that did either in one go left the encoder
        // stalled on a full pipe all that time. A chunk that is ready always goes first.
        var identState = KeyedTableState(), eventKeyState = KeyedTableState()
        func writeIdentSlice() throws {
            let cursor = try appender(db.ident)
            try identState.writeSlice(of: ident, in: sorted.ident) { index, key in try cursor.put(key: key, value: UInt64(index) + 1, flags: .append) }
            if identState.done { ident = ByteKeyTable(); sorted.ident = [] }
        }
        func writeEventKeySlice() throws {
            let cursor = try appender(db.eventKey)
            try eventKeySequence.withUnsafeBufferPointer { sequence in
                try eventKeyState.writeSlice(of: eventKeys, in: sorted.eventKeys, ahead: { idgraph_prefetch(sequence.baseAddress! + $0) }) { index, key in
                    try cursor.put(key: key, value: UInt64(sequence[index]), flags: .append)
                }
            }
            if eventKeyState.done { eventKeys = ByteKeyTable(); sorted.eventKeys = [] }
        }

        var pipeDone = false
        while !(pipeDone && identState.done && eventKeyState.done) {
            if !identState.ready { identState.ready = sorted.identReady.wait(timeout: .now()) == .success }
            if !eventKeyState.ready { eventKeyState.ready = sorted.keysReady.wait(timeout: .now()) == .success }
            let keyedWork = (!identState.done && identState.ready) || (identState.done && !eventKeyState.done && eventKeyState.ready)
            if !pipeDone {
                // Wait for a chunk only when there is nothing else to do (and then briefly while
                // the sorter still owes keys).
                let deadline: Date? = keyedWork ? Date() : (identState.done && eventKeyState.done ? nil : Date(timeIntervalSinceNow: 0.005))
                switch pipe.take(waitingUntil: deadline) {
                case nil:
                    pipeDone = true
                case .chunk(let chunk)?:
                    switch chunk {
                    case .nodes(let records, let summaries, let timelines):
                        try put(records, node)
                        try put(summaries, summary)
                        try put(timelines, timeline)
                    case .entities(let members, let records):
                        try put(members, member)
                        try put(records, entity)
                    case .adjacency(let runs):
                        try put(runs, adjacency)
                    }
                    continue
                case .timedOut?:
                    break
                }
            }
            if keyedWork {
                if !identState.done { try writeIdentSlice() } else { try writeEventKeySlice() }
            } else if pipeDone {
                // Only the sorter is left to wait for.
                if !identState.done {
                    sorted.identReady.wait()
                    identState.ready = true
                } else if !eventKeyState.done {
                    sorted.keysReady.wait()
                    eventKeyState.ready = true
                }
            }
        }
        assert(pipe.completed, "the encoder stops early only when cancelled")
        sorted.done.wait()
        sorted.done.signal()
        counters.links += UInt64(sorted.linkCount)

        for case let cursor? in appenders { cursor.close() }
        appenders = []
        try MetaKey.addBlockedCounts(blockedCounts, in: txn, meta: db.meta)
        try txn.put(db.meta, key: MetaKey.counters, value: counters.bytes)
        if catalog.version != storedCatalogVersion { try catalog.store(in: txn, meta: db.meta) }
        for (key, value) in metadata { try txn.put(db.meta, key: IdentityGraph.userMetaPrefix + key, value: value) }
    }
}

/// What storing events appends to, held by the caller for a whole batch and passed down:
/// read from the writer's properties at every put, the cursors and the encoding buffers were
/// retained and released around each (about 8% of the resolving thread at 10M events).
private struct EventAppends {
    /// The appending cursors of `event` and `history`.
    let events: Cursor
    let history: Cursor
    /// The event record and merge record encodings, reused.
    var record = ByteWriter(capacity: 512)
    var merge = ByteWriter(capacity: 48)

    init(events: Cursor, history: Cursor) {
        self.events = events
        self.history = history
    }
}

/// Where the union-find parents and node types start, taken once per batch for prefetch
/// hints: reading the arrays through the writer's properties retained and released both for
/// every event. The addresses are only ever handed to `idgraph_prefetch`, which never faults
/// and never changes a result, so they need not stay valid (they do: nothing is appended to
/// either array while a batch's events are stored).
private struct UnionFindAddresses {
    let parent: UnsafeRawPointer?
    let nodeType: UnsafeRawPointer?

    init(parent: [UInt32], nodeType: [UInt16]) {
        self.parent = parent.withUnsafeBytes { $0.baseAddress }
        self.nodeType = nodeType.withUnsafeBytes { $0.baseAddress }
    }

    /// Asks the CPU for the parent and the type of each node.
    func prefetch(_ nodes: UnsafeBufferPointer<UInt32>) {
        guard let parent, let nodeType else { return }
        for node in nodes {
            idgraph_prefetch(parent + Int(node) * MemoryLayout<UInt32>.stride)
            idgraph_prefetch(nodeType + Int(node) * MemoryLayout<UInt16>.stride)
        }
    }
}

/// How far the writer is with a table it writes from the sorter's order (`ident`, `event_key`).
private struct KeyedTableState {
    /// The sorter has the order.
    var ready = false
    /// The next position in the order.
    var next = 0
    /// Every key is written.
    var done = false
    /// Keys put per slice.
    static let slice = 32_768

    /// Puts the next slice of `table`'s keys in `order` (entry offsets) through `put`.
    mutating func writeSlice(of table: ByteKeyTable, in order: [Int], ahead: (Int) -> Void = { _ in }, _ put: (Int, UnsafeRawBufferPointer) throws -> Void) rethrows {
        let upper = min(next + Self.slice, order.count)
        try table.forEachKey(inEntries: order, range: next..<upper, ahead: ahead, put)
        next = upper
        done = upper == order.count
    }
}

/// What the sorting thread of ``BulkWriter/finish()`` reads; it empties each field when done with it.
final class SortInputs: @unchecked Sendable {
    var ident: ByteKeyTable
    var eventKeys: ByteKeyTable
    var links: LinkLog
    var entityOf: [UInt32]
    var nodeType: [UInt16]
    let mergeTypes: [Bool]
    init(ident: ByteKeyTable, eventKeys: ByteKeyTable, links: LinkLog, entityOf: [UInt32], nodeType: [UInt16], mergeTypes: [Bool]) {
        self.ident = ident
        self.eventKeys = eventKeys
        self.links = links
        self.entityOf = entityOf
        self.nodeType = nodeType
        self.mergeTypes = mergeTypes
    }
}

/// What the sorting thread of ``BulkWriter/finish()`` hands back (read after `done`).
final class SortedOutputs: @unchecked Sendable {
    /// Entry offsets of the identifier keys and of the event keys, in key order.
    var ident: [Int] = []
    var eventKeys: [Int] = []
    var membership: [UInt64] = []
    /// Per node index, its degree (read after `linksReady`).
    var degree: [UInt32] = []
    /// Distinct links (read after `linksReady`).
    var linkCount = 0
    /// Every link both ways (read after `done`).
    var links = LinkTally(forward: [], evidence: [])
    /// Signalled once the links are counted (`degree`, `linkCount`).
    let linksReady = DispatchSemaphore(value: 0)
    /// Signalled once `ident` is sorted, then once `eventKeys` is.
    let identReady = DispatchSemaphore(value: 0), keysReady = DispatchSemaphore(value: 0)
    /// Signalled when what the encoder needs is sorted: `membership` and `links` (waiters
    /// signal it again for the next).
    let done = DispatchSemaphore(value: 0)
    /// Signalled when the sorter is done with everything (waiters signal it again).
    let finished = DispatchSemaphore(value: 0)
}
