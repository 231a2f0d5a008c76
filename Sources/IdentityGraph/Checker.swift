import LMDB

/// A broken invariant found by ``IdentityGraph/check()``.
public struct InvariantViolation: Sendable, Equatable, CustomStringConvertible {
    /// Which invariant of DESIGN.md (1–6; 7 for counters and lineage).
    public var invariant: Int
    /// What is wrong, naming the records.
    public var message: String

    public var description: String { "invariant \(invariant): \(message)" }
}

/// Verifies every invariant of the store by full scans (DESIGN.md, "Invariants"):
/// 1. every `ident` entry points to a live node whose type and value match it;
/// 2. every merge-type node has exactly one entity, and `member` holds exactly those nodes;
/// 3. `adj` is symmetric with the same evidence both ways, every link has evidence > 0;
/// 4. every entity's active members are connected by active links, and no active link joins two entities;
/// 5. every entity summary equals the fold of its members' summaries, and every node summary
///    equals the fold of the events anchored at it;
/// 6. every `node_event` entry points to a stored event that names that node, and back.
/// Plus (7) the counters match the tables and redirects point at entities.
///
/// Memory stays at some 30 bytes per node id (arrays indexed by id, not dictionaries of
/// records: a 30M-event database took 24 GB that way and was killed), and the tables are read
/// in key order. Where two tables must hold the same pairs (`ident` and `node`, the two
/// directions of `adj`, `node_event` and the events' nodes), each side is summed into a
/// fingerprint (a sum of hashes: equal multisets give equal sums whatever the order); only
/// when the sums differ is a table read again, entry by entry, to name what is wrong.
final class Checker {
    let reader: GraphReader
    private var violations: [InvariantViolation] = []
    private let limit = 1000

    init(reader: GraphReader) { self.reader = reader }

    private func fail(_ invariant: Int, _ message: @autoclosure () -> String) {
        if violations.count < limit { violations.append(InvariantViolation(invariant: invariant, message: message())) }
    }

    private func found(_ invariant: Int) -> Bool { violations.contains { $0.invariant == invariant } }

    /// A hash of `words` and `bytes` for fingerprints (Swift's per-process seed is fine: both
    /// sides of a comparison are hashed in the same run).
    private static func hash(_ words: UInt64..., bytes: UnsafeRawBufferPointer? = nil) -> UInt64 {
        var h = Hasher()
        for w in words { h.combine(w) }
        if let bytes { h.combine(bytes: bytes) }
        return UInt64(bitPattern: Int64(h.finalize()))
    }

    // Per node id (node ids and entity ids share one counter).
    private static let absent = UInt16.max
    private var type: [UInt16] = []
    private var flags: [UInt8] = []
    private var entity: [UInt32] = []
    private var degree: [UInt32] = []
    private var memberships: [UInt8] = []
    // Per entity id.
    private var memberCount: [UInt32] = []
    private var entityKind: [UInt8] = []  // 0 none, 1 live, 2 redirect, 3 erased; +8 once reported disconnected
    private var isMergeType: [Bool] = []
    private var genericAfter: [Int?] = []

    @inline(__always) private func present(_ n: UInt64) -> Bool { n < UInt64(type.count) && type[Int(n)] != Self.absent }
    @inline(__always) private func active(_ n: Int) -> Bool { isMergeType[Int(type[n])] && flags[n] & NodeRecord.genericFlag == 0 }

    func run() throws -> [InvariantViolation] {
        let txn = reader.txn, db = reader.db
        let catalog = reader.catalog
        isMergeType = catalog.typeNames.map { catalog.schema.policy(for: $0).role == .merge }
        genericAfter = catalog.typeNames.map { catalog.schema.policy(for: $0).genericAfter }
        let stats = try reader.stats()

        // How many ids: the counter, unless it is far beyond what is stored (a damaged counter
        // must not make the check allocate without bound).
        let counters = try Counters.stored(in: txn, meta: db.meta)
        let stored = try txn.entryCount(db.node) + txn.entryCount(db.entity)
        var ids = max(1, Int(clamping: counters.nextID))
        if ids > 4 * stored + 1024 {
            fail(7, "the id counter says \(counters.nextID), far beyond the \(stored) nodes and entities stored")
            ids = 4 * stored + 1024
        }
        guard ids < Int(UInt32.max) else {
            fail(7, "\(ids) ids: check supports up to \(UInt32.max - 1)")
            return violations
        }
        type = Array(repeating: Self.absent, count: ids)
        flags = Array(repeating: 0, count: ids)
        entity = Array(repeating: 0, count: ids)
        degree = Array(repeating: 0, count: ids)
        memberships = Array(repeating: 0, count: ids)
        memberCount = Array(repeating: 0, count: ids)
        entityKind = Array(repeating: 0, count: ids)

        // Nodes, and the generic flag: a value is generic exactly while its degree exceeds its
        // type's generic_after.
        var nodeCount = 0, genericCount = 0
        var nodeFingerprint: UInt64 = 0
        var key: [UInt8] = []
        try txn.forEach(db.node) { k, value in
            let n = k.loadBigEndianUInt64(at: 0)
            let record = try NodeRecord(bytes: value)
            nodeCount += 1
            guard n > 0, n < UInt64(ids), Int(record.typeID) < isMergeType.count else {
                fail(1, "node \(n) is beyond the id counter or of an unknown type \(record.typeID)")
                return true
            }
            let i = Int(n)
            type[i] = record.typeID
            flags[i] = record.flags
            degree[i] = record.degree
            if record.entity >= UInt64(ids) {
                fail(2, "node \(n) names entity \(record.entity), beyond the id counter")
            } else {
                entity[i] = UInt32(record.entity)
            }
            if record.isGeneric { genericCount += 1 }
            let shouldBeGeneric = isMergeType[Int(record.typeID)] && genericAfter[Int(record.typeID)].map { Int(record.degree) > $0 } == true
            if record.isGeneric != shouldBeGeneric {
                fail(2, "node \(n) is \(record.isGeneric ? "" : "not ")generic with degree \(record.degree) and generic_after \(genericAfter[Int(record.typeID)].map(String.init) ?? "unset")")
            }
            key.removeAll(keepingCapacity: true)
            Keys.appendIdent(type: record.typeID, value: record.value, to: &key)
            nodeFingerprint &+= key.withUnsafeBytes { Self.hash(n, bytes: $0) }
            return true
        }

        // 1. ident ↔ node.
        var identCount = 0
        var identFingerprint: UInt64 = 0
        try txn.forEach(db.ident) { k, value in
            identCount += 1
            let n = value.loadBigEndianUInt64(at: 0)
            identFingerprint &+= Self.hash(n, bytes: k)
            if !present(n) {
                fail(1, "ident entry points to missing node \(n)")
            } else if k.count < 2 || UInt16(k[0]) << 8 | UInt16(k[1]) != type[Int(n)] {
                fail(1, "ident entry for node \(n) does not match its type")
            }
            return true
        }
        if identCount != nodeCount { fail(1, "\(identCount) ident entries for \(nodeCount) nodes") }
        if identFingerprint != nodeFingerprint && !found(1) { try locateIdentMismatches() }

        // 2. Membership.
        try txn.forEach(db.member) { k, value in
            let e = k.loadBigEndianUInt64(at: 0), n = value.loadBigEndianUInt64(at: 0)
            guard present(n) else { fail(2, "member table names missing node \(n)"); return true }
            guard e > 0, e < UInt64(ids) else { fail(2, "member table names entity \(e), beyond the id counter"); return true }
            let i = Int(n)
            if memberships[i] > 0 { fail(2, "node \(n) is a member of more than one entity (\(e) among them)") }
            memberships[i] = memberships[i] &+ (memberships[i] == .max ? 0 : 1)
            if UInt64(entity[i]) != e { fail(2, "node \(n) says entity \(entity[i]), member table says \(e)") }
            memberCount[Int(e)] += 1
            return true
        }
        for i in 1..<ids where type[i] != Self.absent {
            if active(i) {
                if entity[i] == 0 { fail(2, "merge-type node \(i) has no entity") }
                else if memberships[i] == 0 { fail(2, "node \(i) says entity \(entity[i]), member table says none") }
            } else {
                if entity[i] != 0 { fail(2, "node \(i) (relate or generic) has entity \(entity[i])") }
                if memberships[i] > 0 { fail(2, "node \(i) (relate or generic) is a member of an entity") }
            }
        }

        // Entities: sizes, then redirects (a second scan: a redirect may point ahead).
        var liveCount = 0
        try txn.forEach(db.entity) { k, value in
            let e = k.loadBigEndianUInt64(at: 0)
            guard e < UInt64(ids) else { fail(7, "entity \(e) is beyond the id counter"); return true }
            let kind = value.first ?? 0xFF
            entityKind[Int(e)] = kind == 0 ? 1 : kind == 1 ? 2 : 3
            if let (size, _) = try EntityRecord.liveHeader(value) {
                liveCount += 1
                let count = Int(memberCount[Int(e)])
                if count == 0 { fail(2, "live entity \(e) has no members") }
                if count != size { fail(2, "entity \(e) records size \(size) but has \(count) members") }
            }
            return true
        }
        for e in 1..<ids where memberCount[e] > 0 && entityKind[e] != 1 {
            fail(2, "member table names entity \(e), which is not live")
        }
        try txn.forEach(db.entity) { k, value in
            if case .redirect(let to, _) = try EntityRecord(bytes: value), !(to < UInt64(ids) && entityKind[Int(to)] != 0) {
                fail(7, "entity \(k.loadBigEndianUInt64(at: 0)) redirects to \(to), which was never an entity")
            }
            return true
        }

        // 3. Adjacency, and 4. links against entities.
        var parent = (0..<UInt32(ids)).map { $0 }
        func find(_ x: UInt32) -> UInt32 {
            var x = x
            while parent[Int(x)] != x {
                parent[Int(x)] = parent[Int(parent[Int(x)])]
                x = parent[Int(x)]
            }
            return x
        }
        var edgeEntries = 0, refusedEntries = 0
        var forward: UInt64 = 0, backward: UInt64 = 0, forwardCount = 0, backwardCount = 0
        var linked = [UInt64](repeating: 0, count: ids / 64 + 1)
        var current: UInt64 = 0, mergeNeighbours: UInt32 = 0
        func closeGroup() {
            guard current != 0, present(current) else { return }
            if degree[Int(current)] != mergeNeighbours {
                fail(3, "node \(current) records degree \(degree[Int(current)]) but has \(mergeNeighbours) merge-type neighbours")
            }
        }
        try txn.forEach(db.adjacency) { k, value in
            let u = k.loadBigEndianUInt64(at: 0)
            let e = EdgeEntry(bytes: value)
            let v = e.neighbour
            if u != current {
                closeGroup()
                current = u
                mergeNeighbours = 0
                if !present(u) { fail(3, "adjacency of missing node \(u)") }
                else { linked[Int(u) / 64] |= 1 << (u % 64) }
            }
            edgeEntries += 1
            let refused = e.flags & EdgeEntry.refusedFlag != 0
            if refused { refusedEntries += 1 }
            if e.evidence == 0 { fail(3, "link \(u)–\(v) has no evidence") }
            if v == u { fail(3, "node \(u) is linked to itself") }
            let h = Self.hash(min(u, v), max(u, v), UInt64(e.evidence), UInt64(e.flags))
            if u < v { forward &+= h; forwardCount += 1 } else { backward &+= h; backwardCount += 1 }
            guard present(u), present(v) else {
                if present(u) { fail(3, "link \(u)→\(v) names a missing node") }
                return true
            }
            if isMergeType[Int(type[Int(v)])] { mergeNeighbours += 1 }
            let eu = entity[Int(u)], ev = entity[Int(v)]
            if !refused && eu != 0 && ev != 0 {
                if eu != ev {
                    fail(4, "active link \(u)–\(v) joins entities \(eu) and \(ev)")
                } else {
                    let a = find(UInt32(u)), b = find(UInt32(v))
                    if a != b { parent[Int(a)] = b }
                }
            }
            return true
        }
        closeGroup()
        if forwardCount != backwardCount || forward != backward { try locateOneWayLinks() }
        for i in 1..<ids where type[i] != Self.absent && degree[i] != 0 && linked[i / 64] & (1 << (UInt64(i) % 64)) == 0 {
            fail(3, "node \(i) records degree \(degree[i]) but has no links")
        }
        // 4a. Each entity's members are one connected part.
        var rootOf = [UInt32](repeating: 0, count: ids)  // root + 1, per entity
        for i in 1..<ids where type[i] != Self.absent && entity[i] != 0 {
            let e = Int(entity[i]), root = find(UInt32(i)) + 1
            if rootOf[e] == 0 {
                rootOf[e] = root
            } else if rootOf[e] != root && entityKind[e] & 8 == 0 {
                entityKind[e] |= 8
                fail(4, "entity \(e) is not connected: its members fall into more than one part")
            }
        }
        rootOf = []
        parent = []

        // Events: 6 (timeline ↔ events) and the anchors for 5.
        var eventCount = 0, expectedTimelineEntries = 0
        var eventsFingerprint: UInt64 = 0
        var anchored: [UInt64] = []  // anchor << 32 | sequence
        anchored.reserveCapacity(stats.events)
        var sequencesFit = counters.nextSequence <= UInt64(UInt32.max)
        try txn.forEach(db.event) { k, value in
            let sequence = k.loadBigEndianUInt64(at: 0)
            let event = try EventRecord(bytes: value)
            eventCount += 1
            if !event.nodes.contains(event.anchor) { fail(5, "event \(sequence) is anchored at node \(event.anchor), which it does not name") }
            let time = sortableTimestamp(event.timestamp)
            var seen: [NodeID] = []
            for n in event.nodes where !seen.contains(n) {
                seen.append(n)
                if !present(n) { fail(6, "event \(sequence) names missing node \(n)") }
                eventsFingerprint &+= Self.hash(n, sequence, time)
            }
            expectedTimelineEntries += seen.count
            if sequence > UInt64(UInt32.max) { sequencesFit = false }
            if sequencesFit, event.anchor < UInt64(ids) { anchored.append(event.anchor << 32 | sequence) }
            return true
        }
        var timelineEntries = 0
        var timelineFingerprint: UInt64 = 0
        try txn.forEach(db.nodeEvent) { k, value in
            let pair = UInt64Pair(bytes: value)
            timelineEntries += 1
            timelineFingerprint &+= Self.hash(k.loadBigEndianUInt64(at: 0), pair.second, pair.first)
            return true
        }
        if timelineEntries != expectedTimelineEntries { fail(6, "\(timelineEntries) timeline entries for \(expectedTimelineEntries) event–identifier pairs") }
        if timelineFingerprint != eventsFingerprint { try locateTimelineMismatches() }

        // 5. Node summaries: each node's anchored events (sorted by node) folded, against the
        // stored summaries read in the same order.
        if sequencesFit {
            try checkNodeSummaries(anchored: &anchored)
        } else {
            fail(7, "more than \(UInt32.max) events: check does not compare node summaries")
        }
        anchored = []
        try checkEntitySummaries()

        // 7. Counters.
        if stats.identifiers != nodeCount { fail(7, "counter says \(stats.identifiers) identifiers, store has \(nodeCount)") }
        if stats.entities != liveCount { fail(7, "counter says \(stats.entities) entities, store has \(liveCount)") }
        if stats.links * 2 != edgeEntries { fail(7, "counter says \(stats.links) links, store has \(edgeEntries / 2)") }
        if stats.refusedLinks * 2 != refusedEntries { fail(7, "counter says \(stats.refusedLinks) refused links, store has \(refusedEntries / 2)") }
        if stats.events != eventCount { fail(7, "counter says \(stats.events) events, store has \(eventCount)") }
        if stats.genericIdentifiers != genericCount { fail(7, "counter says \(stats.genericIdentifiers) generic identifiers, store has \(genericCount)") }
        return violations
    }

    // MARK: - Naming what a fingerprint found

    /// `ident` and `node` hold different pairs: name them, entry by entry.
    private func locateIdentMismatches() throws {
        let txn = reader.txn, db = reader.db
        let before = violations.count
        try txn.forEach(db.ident) { k, value in
            let n = value.loadBigEndianUInt64(at: 0)
            let matches = try txn.withValue(db.node, key: n) { bytes -> Bool in
                guard let bytes else { return false }
                let record = try NodeRecord(bytes: bytes)
                return Keys.ident(type: record.typeID, value: record.value).elementsEqual(k)
            }
            if !matches { fail(1, "ident entry for node \(n) does not match its type and value") }
            return true
        }
        if violations.count > before { return }
        try txn.forEach(db.node) { k, value in
            let n = k.loadBigEndianUInt64(at: 0)
            let record = try NodeRecord(bytes: value)
            let indexed = try txn.withValue(db.ident, key: Keys.ident(type: record.typeID, value: record.value)) { $0?.loadBigEndianUInt64(at: 0) }
            if indexed != n { fail(1, "node \(n) has no ident entry pointing at it") }
            return true
        }
    }

    /// The two directions of `adj` differ: name the entries without a matching reverse.
    private func locateOneWayLinks() throws {
        let txn = reader.txn, db = reader.db
        let reverse = try txn.cursor(db.adjacency)
        defer { reverse.close() }
        try txn.forEach(db.adjacency) { k, value in
            let u = k.loadBigEndianUInt64(at: 0)
            let e = EdgeEntry(bytes: value)
            guard let other = try reverse.seekEdge(e.neighbour, to: u) else {
                fail(3, "link \(u)→\(e.neighbour) has no reverse entry")
                return true
            }
            if other.evidence != e.evidence || other.flags != e.flags {
                fail(3, "link \(u)–\(e.neighbour) has evidence \(e.evidence) one way and \(other.evidence) the other")
            }
            return true
        }
    }

    /// `node_event` and the events' nodes differ: name the entries that do not match.
    private func locateTimelineMismatches() throws {
        let txn = reader.txn, db = reader.db
        let before = violations.count
        try txn.forEach(db.nodeEvent) { k, value in
            let node = k.loadBigEndianUInt64(at: 0)
            let pair = UInt64Pair(bytes: value)
            let event = try txn.withValue(db.event, key: pair.second) { try $0.map { try EventRecord(bytes: $0) } }
            guard let event else {
                fail(6, "timeline of node \(node) names missing event \(pair.second)")
                return true
            }
            if !event.nodes.contains(node) { fail(6, "timeline of node \(node) names event \(pair.second), which does not name it") }
            else if event.timestamp != timestampFromSortable(pair.first) { fail(6, "timeline of node \(node) has the wrong time for event \(pair.second)") }
            return true
        }
        if violations.count > before { return }
        let timeline = try txn.cursor(db.nodeEvent)
        defer { timeline.close() }
        try txn.forEach(db.event) { k, value in
            let sequence = k.loadBigEndianUInt64(at: 0)
            let event = try EventRecord(bytes: value)
            let entry = UInt64Pair(sortableTimestamp(event.timestamp), sequence)
            for n in event.nodes where try !timeline.seek(key: n, value: entry) {
                fail(6, "event \(sequence) names node \(n), whose timeline lacks it")
            }
            return true
        }
    }

    // MARK: - Summaries

    /// Every node summary equals the fold of the events anchored at it.
    private func checkNodeSummaries(anchored: inout [UInt64]) throws {
        let txn = reader.txn, db = reader.db
        let rules = reader.catalog.rules
        anchored.sort()
        let summaries = try txn.cursor(db.nodeSummary)
        defer { summaries.close() }
        var more = try summaries.first()
        var i = 0
        while more || i < anchored.count {
            let storedNode: UInt64? = more ? summaries.withCurrent { k, _ in k.loadBigEndianUInt64(at: 0) } : nil
            let expectedNode: UInt64? = i < anchored.count ? anchored[i] >> 32 : nil
            let node = min(storedNode ?? .max, expectedNode ?? .max)
            var expected = Summary()
            while i < anchored.count, anchored[i] >> 32 == node {
                let sequence = anchored[i] & 0xFFFF_FFFF
                try txn.withValue(db.event, key: sequence) { bytes in
                    if let bytes { expected.add(rules.contribution(of: try EventRecord(bytes: bytes))) }
                }
                i += 1
            }
            var stored = Summary()
            if storedNode == node {
                stored = try summaries.withCurrent { _, value in try Summary(bytes: value) }
                more = try summaries.next()
            }
            if stored != expected { fail(5, "summary of node \(node) (\(stored.events) events) differs from its anchored events (\(expected.events))") }
        }
    }

    /// Every live entity's summary equals the fold of its members' node summaries.
    private func checkEntitySummaries() throws {
        let txn = reader.txn, db = reader.db
        let members = try txn.cursor(db.member)
        defer { members.close() }
        try txn.forEach(db.entity) { k, value in
            guard case .live(_, _, _, let summary) = try EntityRecord(bytes: value) else { return true }
            let e = k.loadBigEndianUInt64(at: 0)
            var fold = Summary()
            if try members.seek(key: e) {
                repeat {
                    let node = members.withCurrent { _, v in v.loadBigEndianUInt64(at: 0) }
                    try txn.withValue(db.nodeSummary, key: node) { bytes in
                        if let bytes { fold.merge(try Summary(bytes: bytes)) }
                    }
                } while try members.nextDuplicate()
            }
            if fold != summary { fail(5, "summary of entity \(e) (\(summary.events) events) differs from the fold of its members (\(fold.events))") }
            return true
        }
    }
}
