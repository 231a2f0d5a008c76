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
struct Checker {
    let reader: GraphReader
    private var violations: [InvariantViolation] = []
    private let limit = 1000

    init(reader: GraphReader) { self.reader = reader }

    private mutating func fail(_ invariant: Int, _ message: String) {
        if violations.count < limit { violations.append(InvariantViolation(invariant: invariant, message: message)) }
    }

    mutating func run() throws -> [InvariantViolation] {
        let txn = reader.txn, db = reader.db
        let catalog = reader.catalog
        func isMerge(_ type: UInt16) -> Bool { catalog.schema.policy(for: catalog.typeNames[Int(type)]).role == .merge }

        // Nodes.
        var nodes: [NodeID: NodeRecord] = [:]
        try txn.forEach(db.node) { key, value in
            nodes[key.loadBigEndianUInt64(at: 0)] = try NodeRecord(bytes: value)
            return true
        }
        // 1. ident ↔ node.
        var identCount = 0
        try txn.forEach(db.ident) { key, value in
            identCount += 1
            let node = value.loadBigEndianUInt64(at: 0)
            guard let record = nodes[node] else {
                fail(1, "ident entry points to missing node \(node)")
                return true
            }
            let expected = Keys.ident(type: record.typeID, value: record.value)
            if !expected.elementsEqual(key) { fail(1, "ident entry for node \(node) does not match its type and value") }
            return true
        }
        if identCount != nodes.count { fail(1, "\(identCount) ident entries for \(nodes.count) nodes") }

        // 2. membership.
        var memberOf: [NodeID: EntityID] = [:]
        var membersByEntity: [EntityID: [NodeID]] = [:]
        try txn.forEach(db.member) { key, value in
            let entity = key.loadBigEndianUInt64(at: 0), node = value.loadBigEndianUInt64(at: 0)
            if let other = memberOf[node] { fail(2, "node \(node) is a member of both \(other) and \(entity)") }
            memberOf[node] = entity
            membersByEntity[entity, default: []].append(node)
            return true
        }
        for (id, record) in nodes {
            let active = isMerge(record.typeID) && !record.isGeneric
            if active {
                if record.entity == 0 { fail(2, "merge-type node \(id) has no entity") }
                else if memberOf[id] != record.entity { fail(2, "node \(id) says entity \(record.entity), member table says \(memberOf[id].map(String.init) ?? "none")") }
            } else {
                if record.entity != 0 { fail(2, "node \(id) (relate or generic) has entity \(record.entity)") }
                if let e = memberOf[id] { fail(2, "node \(id) (relate or generic) is a member of \(e)") }
            }
        }
        for node in memberOf.keys where nodes[node] == nil { fail(2, "member table names missing node \(node)") }
        // A value is generic exactly while its degree exceeds its type's generic_after.
        for (id, record) in nodes {
            let policy = catalog.schema.policy(for: catalog.typeNames[Int(record.typeID)])
            let shouldBeGeneric = policy.role == .merge && policy.genericAfter.map { Int(record.degree) > $0 } == true
            if record.isGeneric != shouldBeGeneric {
                fail(2, "node \(id) is \(record.isGeneric ? "" : "not ")generic with degree \(record.degree) and generic_after \(policy.genericAfter.map(String.init) ?? "unset")")
            }
        }

        // Entities.
        var live: [EntityID: (size: UInt64, summary: Summary)] = [:]
        var redirects: [(EntityID, EntityID)] = []
        try txn.forEach(db.entity) { key, value in
            let id = key.loadBigEndianUInt64(at: 0)
            switch try EntityRecord(bytes: value) {
            case .live(let size, _, _, let summary): live[id] = (size, summary)
            case .redirect(let to, _): redirects.append((id, to))
            case .erased: break
            }
            return true
        }
        for (id, e) in live {
            let count = membersByEntity[id]?.count ?? 0
            if count == 0 { fail(2, "live entity \(id) has no members") }
            if UInt64(count) != e.size { fail(2, "entity \(id) records size \(e.size) but has \(count) members") }
        }
        for entity in membersByEntity.keys where live[entity] == nil { fail(2, "member table names entity \(entity), which is not live") }
        for (from, to) in redirects {
            if try reader.entityState(to) == nil { fail(7, "entity \(from) redirects to \(to), which was never an entity") }
        }

        // 3. adjacency.
        var adjacency: [NodeID: [EdgeEntry]] = [:]
        var edgeEntries = 0, refusedEntries = 0
        try txn.forEach(db.adjacency) { key, value in
            let entry = EdgeEntry(bytes: value)
            adjacency[key.loadBigEndianUInt64(at: 0), default: []].append(entry)
            edgeEntries += 1
            if entry.flags & EdgeEntry.refusedFlag != 0 { refusedEntries += 1 }
            return true
        }
        for (u, entries) in adjacency {
            if nodes[u] == nil { fail(3, "adjacency of missing node \(u)") }
            var mergeNeighbours: UInt32 = 0
            for e in entries {
                if e.evidence == 0 { fail(3, "link \(u)–\(e.neighbour) has no evidence") }
                if e.neighbour == u { fail(3, "node \(u) is linked to itself") }
                guard let other = adjacency[e.neighbour]?.first(where: { $0.neighbour == u }) else {
                    fail(3, "link \(u)→\(e.neighbour) has no reverse entry")
                    continue
                }
                if other.evidence != e.evidence || other.flags != e.flags {
                    fail(3, "link \(u)–\(e.neighbour) has evidence \(e.evidence) one way and \(other.evidence) the other")
                }
                if let rw = nodes[e.neighbour], isMerge(rw.typeID) { mergeNeighbours += 1 }
                // 4b. no active link joins two entities.
                if let ru = nodes[u], let rw = nodes[e.neighbour], e.flags & EdgeEntry.refusedFlag == 0,
                   ru.entity != 0, rw.entity != 0, ru.entity != rw.entity {
                    fail(4, "active link \(u)–\(e.neighbour) joins entities \(ru.entity) and \(rw.entity)")
                }
            }
            if let record = nodes[u], record.degree != mergeNeighbours {
                fail(3, "node \(u) records degree \(record.degree) but has \(mergeNeighbours) merge-type neighbours")
            }
        }
        for (id, record) in nodes where adjacency[id] == nil && record.degree != 0 {
            fail(3, "node \(id) records degree \(record.degree) but has no links")
        }

        // 4a. each entity is connected by active links.
        for (entity, members) in membersByEntity where members.count > 1 {
            let memberSet = Set(members)
            var seen: Set<NodeID> = [members[0]]
            var stack = [members[0]]
            while let x = stack.popLast() {
                for e in adjacency[x] ?? [] where e.flags & EdgeEntry.refusedFlag == 0 && memberSet.contains(e.neighbour) {
                    if seen.insert(e.neighbour).inserted { stack.append(e.neighbour) }
                }
            }
            if seen.count != members.count { fail(4, "entity \(entity) is not connected: \(seen.count) of \(members.count) members reachable") }
        }

        // Events: 6 (timeline ↔ events) and 5 (node summaries).
        var expectedNodeSummary: [NodeID: Summary] = [:]
        let rules = catalog.rules
        var eventCount = 0
        var eventNodes: [UInt64: (timestamp: Int64, nodes: Set<NodeID>)] = [:]
        try txn.forEach(db.event) { key, value in
            let sequence = key.loadBigEndianUInt64(at: 0)
            let event = try EventRecord(bytes: value)
            eventCount += 1
            eventNodes[sequence] = (event.timestamp, Set(event.nodes))
            if !event.nodes.contains(event.anchor) { fail(5, "event \(sequence) is anchored at node \(event.anchor), which it does not name") }
            for n in event.nodes where nodes[n] == nil { fail(6, "event \(sequence) names missing node \(n)") }
            expectedNodeSummary[event.anchor, default: Summary()].add(rules.contribution(of: event))
            return true
        }
        var timelineEntries = 0
        try txn.forEach(db.nodeEvent) { key, value in
            let node = key.loadBigEndianUInt64(at: 0)
            let pair = UInt64Pair(bytes: value)
            timelineEntries += 1
            guard let event = eventNodes[pair.second] else {
                fail(6, "timeline of node \(node) names missing event \(pair.second)")
                return true
            }
            if !event.nodes.contains(node) { fail(6, "timeline of node \(node) names event \(pair.second), which does not name it") }
            if event.timestamp != timestampFromSortable(pair.first) { fail(6, "timeline of node \(node) has the wrong time for event \(pair.second)") }
            return true
        }
        let expectedTimelineEntries = eventNodes.values.reduce(0) { $0 + $1.nodes.count }
        if timelineEntries != expectedTimelineEntries { fail(6, "\(timelineEntries) timeline entries for \(expectedTimelineEntries) event–identifier pairs") }

        var storedNodeSummary: [NodeID: Summary] = [:]
        try txn.forEach(db.nodeSummary) { key, value in
            storedNodeSummary[key.loadBigEndianUInt64(at: 0)] = try Summary(bytes: value)
            return true
        }
        for node in Set(storedNodeSummary.keys).union(expectedNodeSummary.keys) {
            let stored = storedNodeSummary[node] ?? Summary(), expected = expectedNodeSummary[node] ?? Summary()
            if stored != expected { fail(5, "summary of node \(node) (\(stored.events) events) differs from its anchored events (\(expected.events))") }
        }
        for (entity, e) in live {
            var fold = Summary()
            for node in membersByEntity[entity] ?? [] { fold.merge(storedNodeSummary[node] ?? Summary()) }
            if fold != e.summary { fail(5, "summary of entity \(entity) (\(e.summary.events) events) differs from the fold of its members (\(fold.events))") }
        }

        // 7. counters.
        let stats = try reader.stats()
        if stats.identifiers != nodes.count { fail(7, "counter says \(stats.identifiers) identifiers, store has \(nodes.count)") }
        if stats.entities != live.count { fail(7, "counter says \(stats.entities) entities, store has \(live.count)") }
        if stats.links * 2 != edgeEntries { fail(7, "counter says \(stats.links) links, store has \(edgeEntries / 2)") }
        if stats.refusedLinks * 2 != refusedEntries { fail(7, "counter says \(stats.refusedLinks) refused links, store has \(refusedEntries / 2)") }
        if stats.events != eventCount { fail(7, "counter says \(stats.events) events, store has \(eventCount)") }
        let genericCount = nodes.values.filter(\.isGeneric).count
        if stats.genericIdentifiers != genericCount { fail(7, "counter says \(stats.genericIdentifiers) generic identifiers, store has \(genericCount)") }
        return violations
    }
}
