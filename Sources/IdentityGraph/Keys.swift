import Foundation
import Crypto
import LMDB

/// Key encodings shared by the writer, the reader and the checker.
enum Keys {
    /// Values longer than this are hashed in `ident` keys (LMDB keys stop at 511 bytes).
    static let inlineValueLimit = 400
    /// Marks a hashed `ident` key; never a byte of valid UTF-8, so it cannot start a real value.
    static let hashedMarker: UInt8 = 0xFF

    /// `ident` key: `[type u16][value]`, or `[type u16][0xFF][SHA-256 of value]` for long values.
    static func ident(type: UInt16, value: [UInt8]) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(2 + min(value.count, 33))
        appendIdent(type: type, value: value, to: &key)
        return key
    }

    /// Appends the `ident` key of `value` to `key`.
    static func appendIdent(type: UInt16, value: some DataProtocol, to key: inout [UInt8]) {
        key.append(UInt8(type >> 8))
        key.append(UInt8(type & 0xFF))
        if value.count <= inlineValueLimit {
            key.append(contentsOf: value)
        } else {
            key.append(hashedMarker)
            key.append(contentsOf: SHA256.hash(data: value))
        }
    }

    /// `event_key` key: the caller's event id, or `0xFF` + SHA-256 of it when long.
    static func eventKey(_ id: [UInt8]) -> [UInt8] {
        if id.count <= inlineValueLimit && id.first != hashedMarker { return id }
        return [hashedMarker] + Array(SHA256.hash(data: id))
    }

    /// Calls `body` with the `event_key` key of `id`: the id's own bytes when it is short (no
    /// copy), else the hashed form.
    static func withEventKey<R>(_ id: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if id.count <= inlineValueLimit && id.first != hashedMarker { return try body(id) }
        return try eventKey(Array(id)).withUnsafeBytes(body)
    }

    /// `tombstone` keys: a keyed hash (HMAC-SHA-256) of `type:value`; the value is never stored.
    /// The key's schedule (padding and the first block of each hash) is done once, and each
    /// identifier hashed from a copy of it: done per identifier, it was 3% of the real-time
    /// writer's samples once a database held a tombstone.
    struct Tombstones {
        private let keyed: HMAC<SHA256>
        /// Bytes of a key (HMAC-SHA256).
        static let keyBytes = 32

        /// Tombstone keys under the database's secret `key`.
        init(key: [UInt8]) { keyed = HMAC<SHA256>(key: SymmetricKey(data: key)) }

        /// The `tombstone` key of `identifier`: `type:value` hashed in one update (three, each
        /// from an array of its own, were 2.8% of the real-time writer's samples).
        func key(_ identifier: Identifier) -> [UInt8] {
            var message: [UInt8] = []
            message.reserveCapacity(identifier.type.utf8.count + 1 + identifier.value.count)
            message.append(contentsOf: identifier.type.utf8)
            message.append(0x3A)
            message.append(contentsOf: identifier.value)
            var mac = keyed
            mac.update(data: message)
            return mac.finalize().withUnsafeBytes { Array($0) }
        }
    }

    /// `unlinked` key: the two node ids, smaller first.
    static func pair(_ a: NodeID, _ b: NodeID) -> UInt64Pair { a < b ? UInt64Pair(a, b) : UInt64Pair(b, a) }

    /// `node_event` dup value: `[sortable ts u64][sequence u64]`.
    static func timelineEntry(timestamp: Int64, sequence: UInt64) -> UInt64Pair {
        UInt64Pair(sortableTimestamp(timestamp), sequence)
    }
}

/// The named LMDB databases of one store (DESIGN.md, "Storage layout").
struct Databases: Sendable {
    let meta: Database
    let ident: Database
    let node: Database
    let nodeSummary: Database
    let adjacency: Database
    let member: Database
    let entity: Database
    let event: Database
    let nodeEvent: Database
    let eventKey: Database
    let unlinked: Database
    let history: Database
    let tombstone: Database
    /// Cached RFM scores (entity id → r, f, m); absent in a database opened read-only that
    /// was written before profiles.
    let rfm: Database?

    init(environment env: Environment, create: Bool) throws {
        let base: DatabaseFlags = create ? [.create] : []
        let dups: DatabaseFlags = base.union([.dupSort, .dupFixed])
        meta = try env.database("meta", flags: base)
        ident = try env.database("ident", flags: base)
        node = try env.database("node", flags: base)
        nodeSummary = try env.database("node_summary", flags: base)
        adjacency = try env.database("adj", flags: dups)
        member = try env.database("member", flags: dups)
        entity = try env.database("entity", flags: base)
        event = try env.database("event", flags: base)
        nodeEvent = try env.database("node_event", flags: dups)
        eventKey = try env.database("event_key", flags: base)
        unlinked = try env.database("unlinked", flags: base)
        history = try env.database("history", flags: base)
        tombstone = try env.database("tombstone", flags: base)
        rfm = create ? try env.database("rfm", flags: base) : try? env.database("rfm", flags: base)
    }
}

/// Keys of the `meta` database.
enum MetaKey {
    static let formatVersion = "format_version"
    static let catalog = "catalog"
    static let catalogVersion = "catalog_version"
    static let blockedCounts = "blocked_counts"
    static let counters = "counters"
    static let tombstoneKey = "tombstone_key"
    static let created = "created"
    static let rfmComputedAt = "rfm_computed_at"
    static let segments = "segments"
    /// The number of the last batch of a journaled real-time writer this commit includes.
    static let journalBatch = "journal_batch"

    /// Adds this transaction's blocked-value counts to the stored ones (JSON, keys sorted).
    static func addBlockedCounts(_ counts: [String: Int], in txn: WriteTransaction, meta: Database) throws {
        guard !counts.isEmpty else { return }
        var stored = try txn.value(meta, key: blockedCounts)
            .flatMap { try? JSONDecoder().decode([String: Int].self, from: Data($0)) } ?? [:]
        for (pattern, n) in counts { stored[pattern, default: 0] += n }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try txn.put(meta, key: blockedCounts, value: Array(try encoder.encode(stored)))
    }
}
