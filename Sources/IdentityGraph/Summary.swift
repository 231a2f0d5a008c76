import LMDB

/// A mergeable summary of events: counts, revenue, first and last seen, counts per event type.
///
/// Each stored event counts toward exactly one node, its *anchor* (the first identifier of a
/// `merge` type it names), and an entity's summary is the fold of its members' summaries, so
/// revenue is never counted twice, and a merge or split only adds or subtracts summaries.
/// Revenue is kept in millionths (an `Int64`), so folding in any order gives the same result.
public struct Summary: Sendable, Equatable {
    /// Number of events.
    public var events: UInt64 = 0
    /// Sum of `props.amount`, in millionths.
    public var revenueMicros: Int64 = 0
    /// Earliest event time (ms since 1970), `nil` when there is no event.
    public var firstSeen: Int64?
    /// Latest event time (ms since 1970), `nil` when there is no event.
    public var lastSeen: Int64?
    /// Events per interned event-type id.
    public var eventsByType: [UInt32: UInt64] = [:]

    /// An empty summary.
    public init() {}

    /// Whether nothing has been counted.
    public var isEmpty: Bool { events == 0 }

    /// Counts one event.
    public mutating func add(timestamp: Int64, type: UInt32, amountMicros: Int64) {
        events += 1
        revenueMicros &+= amountMicros
        firstSeen = Swift.min(firstSeen ?? timestamp, timestamp)
        lastSeen = Swift.max(lastSeen ?? timestamp, timestamp)
        eventsByType[type, default: 0] += 1
    }

    /// Uncounts one event. Returns `true` when first or last seen may have changed and must be
    /// recomputed from what is left (a minimum cannot be subtracted).
    public mutating func remove(timestamp: Int64, type: UInt32, amountMicros: Int64) -> Bool {
        events -= 1
        revenueMicros &-= amountMicros
        if let n = eventsByType[type] { eventsByType[type] = n > 1 ? n - 1 : nil }
        if events == 0 { firstSeen = nil; lastSeen = nil; return false }
        return timestamp == firstSeen || timestamp == lastSeen
    }

    /// Folds another summary into this one.
    public mutating func merge(_ other: Summary) {
        guard !other.isEmpty else { return }
        events += other.events
        revenueMicros &+= other.revenueMicros
        if let f = other.firstSeen { firstSeen = Swift.min(firstSeen ?? f, f) }
        if let l = other.lastSeen { lastSeen = Swift.max(lastSeen ?? l, l) }
        for (type, n) in other.eventsByType { eventsByType[type, default: 0] += n }
    }

    /// Takes a folded-in summary back out. Returns `true` when first or last seen may have
    /// changed and must be recomputed.
    public mutating func subtract(_ other: Summary) -> Bool {
        guard !other.isEmpty else { return false }
        events -= other.events
        revenueMicros &-= other.revenueMicros
        for (type, n) in other.eventsByType {
            let left = (eventsByType[type] ?? 0) - n
            eventsByType[type] = left > 0 ? left : nil
        }
        if events == 0 { firstSeen = nil; lastSeen = nil; return false }
        return other.firstSeen == firstSeen || other.lastSeen == lastSeen
    }

    /// Sets first and last seen to the bounds of `summaries` (after a subtraction hit a bound).
    public mutating func recomputeBounds(from summaries: some Sequence<Summary>) {
        firstSeen = nil
        lastSeen = nil
        for s in summaries {
            if let f = s.firstSeen { firstSeen = Swift.min(firstSeen ?? f, f) }
            if let l = s.lastSeen { lastSeen = Swift.max(lastSeen ?? l, l) }
        }
    }

    /// Revenue as a decimal number.
    public var revenue: Double { Double(revenueMicros) / 1_000_000 }

    // MARK: encoding: version, events, revenue, first, last, n, n × (type, count); big-endian.

    func encode(into out: inout ByteWriter) {
        out.append(UInt8(1))
        out.append(events)
        out.append(UInt64(bitPattern: revenueMicros))
        out.append(UInt64(bitPattern: firstSeen ?? Int64.max))
        out.append(UInt64(bitPattern: lastSeen ?? Int64.min))
        out.append(UInt32(eventsByType.count))
        for (type, n) in eventsByType.sorted(by: { $0.key < $1.key }) {
            out.append(type)
            out.append(n)
        }
    }

    init(decoding reader: inout ByteReader) throws(RecordError) {
        guard try reader.uint8() == 1 else { throw RecordError.corrupt("summary version") }
        events = try reader.uint64()
        revenueMicros = Int64(bitPattern: try reader.uint64())
        let f = Int64(bitPattern: try reader.uint64())
        let l = Int64(bitPattern: try reader.uint64())
        firstSeen = f == Int64.max ? nil : f
        lastSeen = l == Int64.min ? nil : l
        let n = try reader.uint32()
        for _ in 0..<n {
            let type = try reader.uint32()
            eventsByType[type] = try reader.uint64()
        }
    }

    /// The encoded bytes.
    var bytes: [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }

    /// Decodes a stored summary.
    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var r = ByteReader(bytes)
        try self.init(decoding: &r)
    }
}
