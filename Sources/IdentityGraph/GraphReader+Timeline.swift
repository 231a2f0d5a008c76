import HeapModule
import LMDB

extension GraphReader {
    /// Filters for ``events(of:type:since:until:limit:_:)``.
    private struct Head: Comparable {
        var timestamp: UInt64  // sortable form
        var sequence: UInt64
        var cursor: Int
        static func < (a: Head, b: Head) -> Bool { (a.timestamp, a.sequence) < (b.timestamp, b.sequence) }
    }

    /// Calls `body` with the events naming any of `nodes`, newest first (a k-way merge of their
    /// timelines, each event once), within `since...until` (ms, inclusive) and of `type` when
    /// given, at most `limit` of them. Returns how many timeline entries it read.
    @discardableResult
    public func events(
        of nodes: [NodeID], type: String? = nil, since: Int64? = nil, until: Int64? = nil, limit: Int? = nil,
        _ body: (StoredEvent) throws -> Void
    ) throws -> Int {
        if limit == 0 || nodes.isEmpty { return 0 }
        let typeID: UInt32? = type.flatMap { name in catalogSnapshot.catalog.eventTypes.firstIndex(of: name).map { UInt32($0) } }
        if type != nil && typeID == nil { return 0 }  // no event has ever had this type
        var cursors: [Cursor] = []
        var heap = Heap<Head>()
        let upper = until.map { sortableTimestampValue($0) }
        for node in nodes {
            let cursor = try txn.cursor(db.nodeEvent)
            var positioned: Bool
            if let upper, upper < UInt64.max {
                // The last entry at or before `until`: step back from the first one after it.
                if try cursor.seek(key: node, valueAtOrAfter: UInt64Pair(upper + 1, 0)) {
                    positioned = try cursor.previousDuplicate()
                } else if try cursor.seek(key: node) {
                    positioned = try cursor.lastDuplicate()
                } else {
                    positioned = false
                }
            } else {
                positioned = try cursor.seek(key: node)
                if positioned { positioned = try cursor.lastDuplicate() }
            }
            if positioned {
                let entry = cursor.withCurrent { UInt64Pair(bytes: $1) }
                heap.insert(Head(timestamp: entry.first, sequence: entry.second, cursor: cursors.count))
            }
            cursors.append(cursor)
        }
        defer { for c in cursors { c.close() } }
        let lower = since.map { sortableTimestampValue($0) }
        var emitted = 0
        var read = 0
        var last: UInt64?
        while let head = heap.popMax() {
            read += 1
            if let lower, head.timestamp < lower { break }
            let cursor = cursors[head.cursor]
            if try cursor.previousDuplicate() {
                let entry = cursor.withCurrent { UInt64Pair(bytes: $1) }
                heap.insert(Head(timestamp: entry.first, sequence: entry.second, cursor: head.cursor))
            }
            if head.sequence == last { continue }
            last = head.sequence
            guard let event = try event(head.sequence) else { continue }
            if let typeID, catalogSnapshot.catalog.eventTypeName(typeID) != event.type { continue }
            try body(event)
            emitted += 1
            if let limit, emitted >= limit { break }
        }
        return read
    }

    /// The events that name both `a` and `b` and still count as evidence for their link
    /// (none from before an unlink of the pair), oldest first.
    public func eventsBehindLink(_ a: NodeID, _ b: NodeID) throws -> [StoredEvent] {
        let mark = try unlinkMark(a, b) ?? 0
        let (small, other) = try timeline(of: a).count <= timeline(of: b).count ? (a, b) : (b, a)
        var result: [StoredEvent] = []
        for entry in try timeline(of: small) where entry.sequence >= mark {
            if let e = try event(entry.sequence), e.nodes.contains(other) { result.append(e) }
        }
        return result
    }

    /// The event sequence number at which the pair was last unlinked (events before it no longer
    /// count as evidence), or `nil`.
    public func unlinkMark(_ a: NodeID, _ b: NodeID) throws -> UInt64? {
        try txn.withValue(db.unlinked, key: Keys.pair(a, b)) { $0.map { $0.loadBigEndianUInt64(at: 0) } }
    }

    /// The stored event with the caller's `event_id`; `nil` when unknown, or retracted or erased
    /// (then ``eventIDIsKnown(_:)`` still says the id was seen).
    public func event(withID id: [UInt8]) throws -> StoredEvent? {
        guard !id.isEmpty, let sequence = try txn.withValue(db.eventKey, key: Keys.eventKey(id), { $0.map { $0.loadBigEndianUInt64(at: 0) } }) else { return nil }
        return try event(sequence)
    }

    /// Whether an event with this `event_id` was ever stored (replays of it are skipped).
    public func eventIDIsKnown(_ id: [UInt8]) throws -> Bool {
        guard !id.isEmpty else { return false }
        return try txn.contains(db.eventKey, key: Keys.eventKey(id))
    }

    /// Number of events naming a node.
    public func timelineCount(of node: NodeID) throws -> Int {
        let cursor = try txn.cursor(db.nodeEvent)
        defer { cursor.close() }
        guard try cursor.seek(key: node) else { return 0 }
        return try cursor.duplicateCount()
    }

    /// Known event type names.
    public var eventTypes: [String] { catalogSnapshot.catalog.eventTypes }

    /// Known identifier type names.
    public var identifierTypes: [String] { catalogSnapshot.catalog.typeNames }
}

/// The sortable big-endian form of a timestamp (sign bit flipped), as stored in timelines.
func sortableTimestampValue(_ ms: Int64) -> UInt64 { UInt64(bitPattern: ms) ^ (1 << 63) }
