import Foundation
import LMDB

/// The interned names of one database: identifier types (with their policies), event types and
/// sources. Stored as JSON in `meta` under `catalog`; its `version` tells readers when to reload.
struct Catalog: Codable, Equatable {
    /// Identifier type names; the index is the type id stored in keys and node records.
    var typeNames: [String] = []
    /// Event type names; the index is the id stored in events and summaries.
    var eventTypes: [String] = []
    /// Source names; the index is the id stored in events.
    var sources: [String] = []
    /// The schema (policies by type name, and the default).
    var schema: Schema = .builtIn {
        didSet {
            if oldValue.profile != schema.profile {
                rules = ProfileRules(schema.profile)
                rules.cover(eventTypes)
            }
        }
    }
    /// The schema's profile section as lookups, built once per catalog (not per transaction).
    private(set) var rules = ProfileRules(ProfileSchema())
    /// Bumped on every change.
    var version: UInt64 = 0

    private(set) var typeIndex: [String: UInt16] = [:]
    private(set) var eventTypeIndex: [[UInt8]: UInt32] = [:]
    private(set) var sourceIndex: [[UInt8]: UInt32] = [:]

    enum CodingKeys: String, CodingKey { case typeNames, eventTypes, sources, schema, version }

    static func == (lhs: Catalog, rhs: Catalog) -> Bool {
        lhs.typeNames == rhs.typeNames && lhs.eventTypes == rhs.eventTypes && lhs.sources == rhs.sources
            && lhs.schema == rhs.schema && lhs.version == rhs.version
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        typeNames = try c.decode([String].self, forKey: .typeNames)
        eventTypes = try c.decode([String].self, forKey: .eventTypes)
        sources = try c.decode([String].self, forKey: .sources)
        schema = try c.decode(Schema.self, forKey: .schema)
        version = try c.decode(UInt64.self, forKey: .version)
        rules = ProfileRules(schema.profile)
        typeIndex = Dictionary(uniqueKeysWithValues: typeNames.enumerated().map { ($1, UInt16($0)) })
        eventTypeIndex = Dictionary(uniqueKeysWithValues: eventTypes.enumerated().map { (Array($1.utf8), UInt32($0)) })
        sourceIndex = Dictionary(uniqueKeysWithValues: sources.enumerated().map { (Array($1.utf8), UInt32($0)) })
        rules.cover(eventTypes)
    }

    /// A new catalog with the schema's types registered in name order.
    init(schema: Schema) {
        self.schema = schema
        rules = ProfileRules(schema.profile)
        for name in schema.types.keys.sorted() { _ = internType(name) }
        version = 1
    }

    /// The id of an identifier type, registering it (default policy) when new.
    mutating func internType(_ name: String) -> UInt16 {
        if let id = typeIndex[name] { return id }
        let id = UInt16(typeNames.count)
        typeNames.append(name)
        typeIndex[name] = id
        version += 1
        return id
    }

    /// The id of an identifier type, or `nil` when the database has never seen it.
    func typeID(_ name: String) -> UInt16? { typeIndex[name] }

    mutating func internEventType(_ name: [UInt8]) -> UInt32 {
        if let id = eventTypeIndex[name] { return id }
        let id = UInt32(eventTypes.count)
        eventTypes.append(String(decoding: name, as: UTF8.self))
        eventTypeIndex[name] = id
        rules.cover(eventTypes)
        version += 1
        return id
    }

    mutating func internSource(_ name: [UInt8]) -> UInt32 {
        if let id = sourceIndex[name] { return id }
        let id = UInt32(sources.count)
        sources.append(String(decoding: name, as: UTF8.self))
        sourceIndex[name] = id
        version += 1
        return id
    }

    func policy(ofType id: UInt16) -> TypePolicy { schema.policy(for: typeNames[Int(id)]) }

    func eventTypeName(_ id: UInt32) -> String { Int(id) < eventTypes.count ? eventTypes[Int(id)] : "#\(id)" }
    func sourceName(_ id: UInt32) -> String { Int(id) < sources.count ? sources[Int(id)] : "#\(id)" }

    /// The stored JSON, keys sorted so that equal catalogs are stored as equal bytes.
    var jsonBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// The catalog stored in `txn` when its version is not `version` (another process changed
    /// it since), `nil` when it is: an 8-byte read, so that readers and writers see types another
    /// process added without decoding JSON on every transaction.
    private static func stored(unlessVersion version: UInt64, in txn: ReadTransaction, meta: Database) throws -> Catalog? {
        let storedVersion = try txn.withValue(meta, key: MetaKey.catalogVersion) { $0.map { $0.loadBigEndianUInt64(at: 0) } }
        if storedVersion == version { return nil }
        guard let bytes = try txn.value(meta, key: MetaKey.catalog) else { return nil }
        return try bytes.withUnsafeBytes { try Catalog.decode($0) }
    }

    /// The snapshot of the catalog `txn` sees: `cached` itself when its version is the stored one.
    static func current(_ cached: CatalogSnapshot, in txn: ReadTransaction, meta: Database) throws -> CatalogSnapshot {
        try stored(unlessVersion: cached.catalog.version, in: txn, meta: meta).map(CatalogSnapshot.init) ?? cached
    }

    /// The catalog `txn` sees: `cached` when its version is the stored one.
    static func current(_ cached: Catalog, in txn: ReadTransaction, meta: Database) throws -> Catalog {
        try stored(unlessVersion: cached.version, in: txn, meta: meta) ?? cached
    }

    /// Stores the catalog and its version.
    func store(in txn: WriteTransaction, meta: Database) throws {
        try txn.put(meta, key: MetaKey.catalog, value: jsonBytes)
        try txn.put(meta, key: MetaKey.catalogVersion, value: version)
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> Catalog {
        try JSONDecoder().decode(Catalog.self, from: Data(bytes))
    }
}

/// The store's counters, kept in `meta` under `counters` and rewritten once per write transaction.
struct Counters: Equatable {
    var nextID: UInt64 = 1
    var nextSequence: UInt64 = 1
    var nextHistory: UInt64 = 1
    var identifiers: UInt64 = 0
    var entities: UInt64 = 0
    var links: UInt64 = 0
    var events: UInt64 = 0
    var generic: UInt64 = 0
    /// Links refused by a `limit` policy (conflicts).
    var refused: UInt64 = 0
    /// Links removed so far (by unlink, retract or forget): while it stays the same, a link
    /// seen in a snapshot still exists (``NodeHints``).
    var linkRemovals: UInt64 = 0

    var bytes: [UInt8] {
        var w = ByteWriter(capacity: 64)
        for v in [nextID, nextSequence, nextHistory, identifiers, entities, links, events, generic, refused, linkRemovals] { w.append(v) }
        return w.bytes
    }

    init() {}

    /// Nothing was ever stored: no identifier, no event, no id or sequence handed out.
    var isFresh: Bool { identifiers == 0 && events == 0 && nextID == 1 && nextSequence == 1 }

    /// The counters stored in `meta` (every store has them from its creation on).
    static func stored(in txn: ReadTransaction, meta: Database) throws -> Counters {
        try txn.withValue(meta, key: MetaKey.counters) { bytes -> Counters in
            guard let bytes else { throw GraphError.damaged(.corrupt("meta counters missing")) }
            return try Counters(bytes: bytes)
        }
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var r = ByteReader(bytes)
        nextID = try r.uint64(); nextSequence = try r.uint64(); nextHistory = try r.uint64()
        identifiers = try r.uint64(); entities = try r.uint64(); links = try r.uint64(); events = try r.uint64()
        generic = r.remaining >= 8 ? try r.uint64() : 0  // absent in databases written before generic values
        refused = r.remaining >= 8 ? try r.uint64() : 0  // absent in databases written before limits
        linkRemovals = r.remaining >= 8 ? try r.uint64() : 0  // absent in databases written before node hints
    }
}

/// A catalog shared by reference between the graph and its readers.
///
/// A `Catalog` holds some twenty arrays, dictionaries and strings: copying one retains each, and
/// destroying it releases each again. A lookup (`IdentityGraph.read`) copied it twice, which was
/// about 40% of the time of a one-microsecond lookup, and every retain and release touched
/// counts that the writer's copy shares, from the other core. Readers now take the snapshot with
/// one retain; the graph replaces it (never changes it) when a newer catalog is seen.
final class CatalogSnapshot: Sendable {
    let catalog: Catalog

    init(_ catalog: Catalog) {
        self.catalog = catalog
    }
}
