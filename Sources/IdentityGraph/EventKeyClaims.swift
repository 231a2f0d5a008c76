/// The event ids (`event_key` keys) of a bulk run, each claimed by the first event that names
/// it: a later event with the same id is a duplicate and is skipped, as the incremental writer
/// skips an event whose id it has stored.
///
/// A bulk load's feed claims each batch's ids on the parsing thread, before handing the batch
/// over, so the resolving thread does not: the claims are a hash-table probe per event, and
/// at 10M events their cache misses were about a sixth of the resolving thread, which bounds a
/// bulk load's first phase while the parsing thread had time to spare. One thread at a time
/// uses a claim table: the producer while it sends, the writer once the producer is done
/// (or the writer alone, when it is used without a feed).
final class EventKeyClaims {
    /// The keys claimed (``Keys/withEventKey(_:_:)`` of each id), numbered in claim order.
    private(set) var table = ByteKeyTable()

    /// What claiming did for one event.
    enum Outcome: UInt8 {
        /// The event has no id.
        case unkeyed
        /// The id was not claimed before: the event is no duplicate. An event with identifiers
        /// took the id (the next number); one without only looked (it is not stored).
        case first
        /// The id was claimed by an earlier event: skip this one.
        case duplicate
    }

    /// Bytes held.
    var memoryBytes: Int { table.memoryBytes }

    /// Sizes the table for about `events` events in all.
    func reserve(events: Int) {
        table.reserve(keys: events, bytes: events * 10)
    }

    /// Claims the id of one event (an event whose id is not stored, or empty, has none).
    func claim(_ event: PreparedEvent) -> Outcome {
        guard event.storageKey != nil, let id = event.input.eventID, !id.isEmpty else { return .unkeyed }
        return id.withUnsafeBytes { Keys.withEventKey($0) { claim(key: $0, hash: ByteKeyTable.hash($0), keep: !event.identifiers.isEmpty) } }
    }

    /// Claims the ids of a batch's events, in order, into `outcomes` (one per event). The slots
    /// and entries of ids a few events ahead are asked for before each claim (each claim was two
    /// cache misses at 10M events).
    func claim(_ batch: EventBatch, into outcomes: inout [Outcome]) {
        outcomes.removeAll(keepingCapacity: true)
        let events = batch.events
        batch.arena.withUnsafeBytes { arena in
            // The keys' hashes first, so that slots and entries can be asked for ahead. An id
            // over 400 bytes has its key hashed again at its claim: such ids are rare, copying
            // every short one aside would cost more.
            hashes.removeAll(keepingCapacity: true)
            for e in events {
                hashes.append(e.eventID.map { span in Keys.withEventKey(UnsafeRawBufferPointer(rebasing: arena[span.range])) { ByteKeyTable.hash($0) } } ?? 0)
            }
            let slotAhead = 12, entryAhead = 6
            for j in 0..<min(slotAhead, events.count) where events[j].eventID != nil { table.prefetch(hash: hashes[j]) }
            for (i, e) in events.enumerated() {
                if i + slotAhead < events.count, events[i + slotAhead].eventID != nil { table.prefetch(hash: hashes[i + slotAhead]) }
                if i + entryAhead < events.count, events[i + entryAhead].eventID != nil { table.prefetchEntry(hash: hashes[i + entryAhead]) }
                guard let span = e.eventID else { outcomes.append(.unkeyed); continue }
                let id = UnsafeRawBufferPointer(rebasing: arena[span.range])
                outcomes.append(Keys.withEventKey(id) { claim(key: $0, hash: hashes[i], keep: e.memberCount > 0) })
            }
        }
    }

    /// The hashes of the batch being claimed (0 for an event without an id), reused.
    private var hashes: [UInt64] = []

    private func claim(key: UnsafeRawBufferPointer, hash: UInt64, keep: Bool) -> Outcome {
        if !keep { return table.find(key, hash: hash) == nil ? .first : .duplicate }
        return table.insert(key, hash: hash).inserted ? .first : .duplicate
    }

    /// Hands the table over (to the sorter) and starts an empty one.
    func takeTable() -> ByteKeyTable {
        defer { table = ByteKeyTable() }
        return table
    }
}
