import Foundation
import LMDB

/// A read-only, consistent view of the graph (one LMDB read transaction).
/// Only valid inside ``IdentityGraph/read(_:)``.
public final class GraphReader {
    let txn: ReadTransaction
    let db: Databases
    /// The catalog of this snapshot, shared with the graph (see ``CatalogSnapshot``). Read its
    /// fields through it (`catalogSnapshot.catalog.typeIndex[…]`): calling a method on the
    /// catalog, or taking it whole, copies it.
    let catalogSnapshot: CatalogSnapshot
    /// A copy of the catalog of this snapshot (for callers that keep it).
    var catalog: Catalog { catalogSnapshot.catalog }

    init(transaction: ReadTransaction, databases: Databases, catalog: CatalogSnapshot) throws {
        self.txn = transaction
        self.db = databases
        self.catalogSnapshot = try Catalog.current(catalog, in: transaction, meta: databases.meta)
    }

    /// The schema of this snapshot.
    public var schema: Schema { catalogSnapshot.catalog.schema }

    /// Normalizes `raw` as ingest would (throws for an invalid identifier; `nil` for an ignored type).
    public func normalize(_ raw: RawIdentifier) throws(IdentifierError) -> Identifier? {
        try Normalizer.identifier(raw, schema: catalogSnapshot.catalog.schema)
    }

    // MARK: identifiers

    /// The node of an identifier, when the database has it.
    public func node(of id: Identifier) throws -> NodeID? {
        guard let type = catalogSnapshot.catalog.typeIndex[id.type] else { return nil }
        return try txn.withValue(db.ident, key: Keys.ident(type: type, value: id.value)) { $0.map { $0.loadBigEndianUInt64(at: 0) } }
    }

    /// The entity of a raw identifier (normalized first); `nil` when unknown or in no entity.
    public func entity(of raw: RawIdentifier) throws -> EntityID? {
        guard let id = try normalize(raw), let node = try node(of: id) else { return nil }
        return try nodeInfo(node)?.entity
    }

    /// What the database knows of a node.
    public struct NodeInfo: Sendable, Equatable {
        /// The identifier.
        public var identifier: Identifier
        /// Its entity, or `nil` for `relate` types and generic values.
        public var entity: EntityID?
        /// Distinct `merge`-type identifiers it is linked to.
        public var degree: Int
        /// Whether it is generic (links only relate).
        public var isGeneric: Bool
        /// Its role under the schema.
        public var role: Role
    }

    /// The node's identifier, entity and degree; `nil` when the node does not exist.
    public func nodeInfo(_ node: NodeID) throws -> NodeInfo? {
        guard let record = try txn.withValue(db.node, key: node, { try $0.map { try NodeRecord(bytes: $0) } }) else { return nil }
        let type = catalogSnapshot.catalog.typeNames[Int(record.typeID)]
        return NodeInfo(
            identifier: Identifier(type: type, value: record.value), entity: record.entity == 0 ? nil : record.entity,
            degree: Int(record.degree), isGeneric: record.isGeneric, role: catalogSnapshot.catalog.schema.policy(for: type).role)
    }

    /// A link as seen from one end.
    public struct Link: Sendable, Equatable {
        /// The other end.
        public var neighbour: NodeID
        /// Pieces of evidence (events and `link` records) behind it.
        public var evidence: Int
        /// Refused by a `limit` policy: relates, never merges.
        public var refused: Bool
    }

    /// The links of a node, by neighbour id.
    public func links(of node: NodeID) throws -> [Link] {
        var result: [Link] = []
        try txn.forEachDuplicate(db.adjacency, key: node) { value in
            let e = EdgeEntry(bytes: value)
            result.append(Link(neighbour: e.neighbour, evidence: Int(e.evidence), refused: e.flags & EdgeEntry.refusedFlag != 0))
            return true
        }
        return result
    }

    /// The summary of events anchored at a node.
    public func nodeSummary(_ node: NodeID) throws -> Summary {
        try txn.withValue(db.nodeSummary, key: node) { try $0.map { try Summary(bytes: $0) } ?? Summary() }
    }

    // MARK: entities

    /// What an entity id refers to.
    public enum EntityState: Sendable, Equatable {
        /// A live entity.
        case live(EntityInfo)
        /// Merged into another entity (follow with ``resolve(_:)``).
        case mergedInto(EntityID)
        /// Its last identifier was erased.
        case erased
    }

    /// A live entity's record.
    public struct EntityInfo: Sendable, Equatable {
        /// The entity id.
        public var id: EntityID
        /// Number of identifiers.
        public var size: Int
        /// When it was created (ms since 1970, write time).
        public var created: Int64
        /// When it last changed (ms since 1970, write time).
        public var updated: Int64
        /// Fold of its members' summaries.
        public var summary: Summary
    }

    /// The state of an entity id; `nil` when the id was never an entity.
    public func entityState(_ id: EntityID) throws -> EntityState? {
        try txn.withValue(db.entity, key: id) { bytes -> EntityState? in
            guard let bytes else { return nil }
            switch try EntityRecord(bytes: bytes) {
            case .live(let size, let created, let updated, let summary):
                return .live(EntityInfo(id: id, size: Int(size), created: created, updated: updated, summary: summary))
            case .redirect(let to, _): return .mergedInto(to)
            case .erased: return .erased
            }
        }
    }

    /// Follows redirects to the live entity an id stands for today; `nil` if never an entity or erased.
    public func resolve(_ id: EntityID) throws -> EntityInfo? {
        var current = id
        for _ in 0..<10_000 {
            switch try entityState(current) {
            case .live(let info)?: return info
            case .mergedInto(let next)?: current = next
            case .erased?, nil: return nil
            }
        }
        return nil
    }

    /// Like ``resolve(_:)``, but reads only the live entity's id and size (no summary decode).
    public func resolveSize(_ id: EntityID) throws -> (id: EntityID, size: Int)? {
        var current = id
        for _ in 0..<10_000 {
            let step: (next: EntityID?, size: Int?)? = try txn.withValue(db.entity, key: current) { bytes in
                guard let bytes else { return nil }
                if let (size, _) = try EntityRecord.liveHeader(bytes) { return (nil, size) }
                guard case .redirect(let to, _) = try EntityRecord(bytes: bytes) else { return nil }
                return (to, nil)
            }
            guard let step else { return nil }
            if let size = step.size { return (current, size) }
            current = step.next!
        }
        return nil
    }

    /// The member nodes of an entity, in node-id order.
    public func members(of entity: EntityID) throws -> [NodeID] {
        var nodes: [NodeID] = []
        try txn.forEachDuplicate(db.member, key: entity) { value in
            nodes.append(value.loadBigEndianUInt64(at: 0))
            return true
        }
        return nodes
    }

    /// The identifiers of an entity, sorted.
    public func identifiers(of entity: EntityID) throws -> [Identifier] {
        try members(of: entity).compactMap { try nodeInfo($0)?.identifier }.sorted()
    }

    /// Calls `body` with every identifier that belongs to an entity, grouped by entity.
    public func forEachMembership(_ body: (Identifier, EntityID) throws -> Void) throws {
        let cursor = try txn.cursor(db.member)
        defer { cursor.close() }
        var more = try cursor.first()
        while more {
            let (entity, node) = cursor.withCurrent { ($0.loadBigEndianUInt64(at: 0), $1.loadBigEndianUInt64(at: 0)) }
            guard let info = try nodeInfo(node) else { throw GraphError.damaged(.corrupt("member \(node) of \(entity) has no node")) }
            try body(info.identifier, entity)
            more = try cursor.next()
        }
    }

    /// Calls `body` with every live entity, in id order.
    public func forEachEntity(_ body: (EntityInfo) throws -> Void) throws {
        try txn.forEach(db.entity) { key, value in
            if case .live(let size, let created, let updated, let summary) = try EntityRecord(bytes: value) {
                try body(EntityInfo(id: key.loadBigEndianUInt64(at: 0), size: Int(size), created: created, updated: updated, summary: summary))
            }
            return true
        }
    }

    // MARK: events

    /// A stored event with its names resolved.
    public struct StoredEvent: Sendable, Equatable {
        /// Sequence number (order of arrival).
        public var sequence: UInt64
        /// The caller's event id, if any.
        public var eventID: String?
        /// Milliseconds since 1970.
        public var timestamp: Int64
        /// Event type.
        public var type: String
        /// Source.
        public var source: String
        /// The identifiers it names.
        public var nodes: [NodeID]
        /// The node whose summary counts it.
        public var anchor: NodeID
        /// `props.amount` in millionths.
        public var amountMicros: Int64?
        /// Raw JSON of `props`.
        public var props: [UInt8]
    }

    /// The event with sequence number `sequence`, if stored.
    public func event(_ sequence: UInt64) throws -> StoredEvent? {
        try txn.withValue(db.event, key: sequence) { bytes in
            guard let bytes else { return nil }
            let r = try EventRecord(bytes: bytes)
            return StoredEvent(
                sequence: sequence, eventID: r.eventID.isEmpty ? nil : String(decoding: r.eventID, as: UTF8.self),
                timestamp: r.timestamp, type: catalogSnapshot.catalog.eventTypeName(r.typeID), source: catalogSnapshot.catalog.sourceName(r.sourceID),
                nodes: r.nodes, anchor: r.anchor, amountMicros: r.amountMicros, props: r.props)
        }
    }

    /// The sequence numbers of a node's events, oldest first: `(timestamp, sequence)`.
    public func timeline(of node: NodeID) throws -> [(timestamp: Int64, sequence: UInt64)] {
        var result: [(Int64, UInt64)] = []
        try txn.forEachDuplicate(db.nodeEvent, key: node) { value in
            let pair = UInt64Pair(bytes: value)
            result.append((timestampFromSortable(pair.first), pair.second))
            return true
        }
        return result
    }

    /// The name of an interned event type.
    public func eventTypeName(_ id: UInt32) -> String { catalogSnapshot.catalog.eventTypeName(id) }

    // MARK: history

    /// Calls `body` with every lineage record from sequence number `first` on, oldest first,
    /// until it returns `false` (the change feed).
    public func forEachHistory(from first: UInt64, _ body: (UInt64, HistoryRecord) throws -> Bool) throws {
        try Self.forEachHistory(in: txn, db.history, from: first, body)
    }

    /// ``forEachHistory(from:_:)`` in any transaction (PREVIEW reads what its own write
    /// transaction recorded).
    static func forEachHistory(in txn: ReadTransaction, _ history: Database, from first: UInt64, _ body: (UInt64, HistoryRecord) throws -> Bool) throws {
        let cursor = try txn.cursor(history)
        defer { cursor.close() }
        var more = try cursor.seek(atOrAfter: first)
        while more {
            let (sequence, record) = try cursor.withCurrent { key, value in (key.loadBigEndianUInt64(at: 0), try HistoryRecord(bytes: value)) }
            if try !body(sequence, record) { return }
            more = try cursor.next()
        }
    }

    /// Lineage records, oldest first, optionally only those naming `entity`.
    public func history(of entity: EntityID? = nil) throws -> [(sequence: UInt64, record: HistoryRecord)] {
        var result: [(UInt64, HistoryRecord)] = []
        try txn.forEach(db.history) { key, value in
            if let entity, !HistoryRecord.names(entity, in: value) { return true }
            result.append((key.loadBigEndianUInt64(at: 0), try HistoryRecord(bytes: value)))
            return true
        }
        return result
    }

    /// The lineage records that shaped `entity`, oldest first: those naming it and, back through
    /// each merge into it, those of the entity merged (for an entity that split off, those of the
    /// one it split from). One walk from the newest record back: an entity joins the set when a
    /// later record of the set shows it went into (or gave rise to) one of the set.
    public func lineage(of entity: EntityID) throws -> [(sequence: UInt64, record: HistoryRecord)] {
        var shaping: Set<EntityID> = [entity]
        var result: [(UInt64, HistoryRecord)] = []
        let cursor = try txn.cursor(db.history)
        defer { cursor.close() }
        var more = try cursor.last()
        while more {
            let found = try cursor.withCurrent { key, value -> (UInt64, HistoryRecord)? in
                guard HistoryRecord.names(in: value, where: shaping.contains) else { return nil }
                return (key.loadBigEndianUInt64(at: 0), try HistoryRecord(bytes: value))
            }
            if let (sequence, record) = found {
                result.append((sequence, record))
                switch record.kind {
                case .merge where shaping.contains(record.entities[0]):
                    shaping.insert(record.entities[1])  // what it absorbed shaped it
                case .split where record.entities.dropFirst().contains(where: shaping.contains):
                    shaping.insert(record.entities[0])  // what it split off from shaped it
                default:
                    break
                }
            }
            more = try cursor.previous()
        }
        return result.reversed()
    }

    // MARK: stats

    /// Counts of the whole store (`idgraph stats`).
    public func stats() throws -> GraphStats {
        let counters = try Counters.stored(in: txn, meta: db.meta)
        var stats = GraphStats()
        stats.identifiers = Int(counters.identifiers)
        stats.entities = Int(counters.entities)
        stats.links = Int(counters.links)
        stats.events = Int(counters.events)
        stats.tombstones = try txn.entryCount(db.tombstone)
        stats.historyRecords = Int(counters.nextHistory - 1)
        // The largest entity, from `member` (entity → its identifiers, one duplicate each; its
        // size is its count, invariant 2): a walk over the keys, counting without decoding. Read
        // from the entity records, which hold every summary, STATS took 1.8 s and touched 870 MB
        // at 10M events. The first of equal sizes wins, as entities come in id order.
        let members = try txn.cursor(db.member)
        defer { members.close() }
        var more = try members.first()
        while more {
            let size = try members.duplicateCount()
            if size > stats.largestEntitySize {
                stats.largestEntitySize = size
                stats.largestEntity = members.withCurrent { key, _ in key.loadBigEndianUInt64(at: 0) }
            }
            more = try members.nextKey()
        }
        stats.genericIdentifiers = Int(counters.generic)
        stats.refusedLinks = Int(counters.refused)
        // Identifiers in no entity: all identifiers minus the members of live entities.
        stats.identifiersWithoutEntity = stats.identifiers - (try txn.entryCount(db.member))
        stats.identifierTypes = catalogSnapshot.catalog.typeNames.count
        stats.blockedValues = try txn.value(db.meta, key: MetaKey.blockedCounts)
            .flatMap { try? JSONDecoder().decode([String: Int].self, from: Data($0)) } ?? [:]
        return stats
    }
}

/// Counts of the whole store.
public struct GraphStats: Sendable, Equatable, Codable {
    /// Live identifiers.
    public var identifiers = 0
    /// Live entities.
    public var entities = 0
    /// Links (each counted once).
    public var links = 0
    /// Stored events.
    public var events = 0
    /// Size of the largest entity.
    public var largestEntitySize = 0
    /// Id of the largest entity (0 when there is none).
    public var largestEntity: EntityID = 0
    /// Identifiers marked generic.
    public var genericIdentifiers = 0
    /// Links refused by a `limit` policy (conflicts that relate two entities).
    public var refusedLinks = 0
    /// Identifiers in no entity (`relate` types, generic values).
    public var identifiersWithoutEntity = 0
    /// Erased identifiers remembered as tombstones.
    public var tombstones = 0
    /// Lineage records (merges, splits, erasures).
    public var historyRecords = 0
    /// Identifier types known.
    public var identifierTypes = 0
    /// Values dropped by blocked patterns, per `type /pattern/`.
    public var blockedValues: [String: Int] = [:]

    /// Empty counts.
    public init() {}
}
