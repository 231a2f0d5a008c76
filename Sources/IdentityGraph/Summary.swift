import LMDB

/// What a tally counts.
public enum TallyKind: UInt8, Sendable, Comparable {
    /// A golden-record attribute value (`name`, `country`…), per source.
    case attribute = 1
    /// A product viewed.
    case product = 2
    /// A campaign (`utm_campaign`).
    case campaign = 3
    /// A subscribe event to a list.
    case subscribed = 4
    /// An unsubscribe event from a list.
    case unsubscribed = 5

    public static func < (a: TallyKind, b: TallyKind) -> Bool { a.rawValue < b.rawValue }
}

/// What one tally counts: an attribute's value from one source, a product, a campaign or a list.
public struct TallyKey: Hashable, Sendable, Comparable {
    /// What is counted.
    public var kind: TallyKind
    /// The attribute name (empty for products, campaigns and lists).
    public var name: [UInt8]
    /// The interned source that gave the value (attributes only; 0 otherwise).
    public var source: UInt32
    /// The value.
    public var value: [UInt8]

    /// Creates a key.
    public init(kind: TallyKind, name: [UInt8] = [], source: UInt32 = 0, value: [UInt8]) {
        self.kind = kind
        self.name = name
        self.source = source
        self.value = value
    }

    public static func < (a: TallyKey, b: TallyKey) -> Bool {
        if a.kind != b.kind { return a.kind < b.kind }
        if a.name != b.name { return a.name.lexicographicallyPrecedes(b.name) }
        if a.source != b.source { return a.source < b.source }
        return a.value.lexicographicallyPrecedes(b.value)
    }
}

/// How often a tally's value was seen, and when last.
public struct Tally: Equatable, Sendable {
    /// Events that gave it.
    public var count: UInt64
    /// The latest of their times (ms since 1970).
    public var last: Int64
}

/// What one event adds to (or, removed, takes from) a summary.
public struct SummaryContribution: Sendable, Equatable {
    /// Event time (ms since 1970).
    public var timestamp: Int64
    /// Interned event type.
    public var type: UInt32
    /// Interned source.
    public var source: UInt32
    /// `props.amount` in millionths (0 when absent).
    public var amountMicros: Int64
    /// Whether its type is an order type of the profile schema.
    public var isOrder: Bool
    /// The tallies it counts toward.
    public var tallies: [TallyKey] = []
}

/// A mergeable summary of events: counts, revenue, first and last seen, orders, counts per event
/// type and source, and tallies of attribute values, products, campaigns and lists.
///
/// Each stored event counts toward exactly one node, its *anchor* (the first identifier of a
/// `merge` type it names), and an entity's summary is the fold of its members' summaries, so
/// revenue is never counted twice, and a merge or split only adds or subtracts summaries.
/// Revenue is kept in millionths (an `Int64`), so folding in any order gives the same result.
/// Maxima (last seen, last order, a tally's last time) cannot be subtracted: when a removal
/// takes one away, the owner recomputes them (``refreshMaxima(from:)``).
public struct Summary: Sendable, Equatable {
    /// Number of events.
    public var events: UInt64 = 0
    /// Sum of `props.amount`, in millionths.
    public var revenueMicros: Int64 = 0
    /// Earliest event time (ms since 1970), `nil` when there is no event.
    public var firstSeen: Int64?
    /// Latest event time (ms since 1970), `nil` when there is no event.
    public var lastSeen: Int64?
    /// Number of order events.
    public var orders: UInt64 = 0
    /// Latest order time, `nil` when there is no order.
    public var lastOrder: Int64?
    /// Events per interned event-type id.
    public var eventsByType: [UInt32: UInt64] = [:]
    /// Events per interned source id.
    public var eventsBySource: [UInt32: UInt64] = [:]
    /// Attribute values, products, campaigns and lists, counted.
    public var tallies: [TallyKey: Tally] = [:]

    /// An empty summary.
    public init() {}

    /// Whether nothing has been counted.
    public var isEmpty: Bool { events == 0 }

    /// Counts one event.
    public mutating func add(_ c: SummaryContribution) {
        events += 1
        revenueMicros &+= c.amountMicros
        firstSeen = Swift.min(firstSeen ?? c.timestamp, c.timestamp)
        lastSeen = Swift.max(lastSeen ?? c.timestamp, c.timestamp)
        eventsByType[c.type, default: 0] += 1
        eventsBySource[c.source, default: 0] += 1
        if c.isOrder {
            orders += 1
            lastOrder = Swift.max(lastOrder ?? c.timestamp, c.timestamp)
        }
        for key in c.tallies {
            if var t = tallies[key] {
                t.count += 1
                t.last = Swift.max(t.last, c.timestamp)
                tallies[key] = t
            } else {
                tallies[key] = Tally(count: 1, last: c.timestamp)
            }
        }
    }

    /// Uncounts one event. Returns `true` when a maximum or minimum may have changed and must be
    /// recomputed from what is left.
    public mutating func remove(_ c: SummaryContribution) -> Bool {
        events -= 1
        revenueMicros &-= c.amountMicros
        Self.decrement(&eventsByType, c.type, by: 1)
        Self.decrement(&eventsBySource, c.source, by: 1)
        var stale = false
        if c.isOrder {
            orders -= 1
            if orders == 0 { lastOrder = nil } else if c.timestamp == lastOrder { stale = true }
        }
        for key in c.tallies {
            guard var t = tallies[key] else { continue }
            t.count -= 1
            if t.count == 0 { tallies[key] = nil } else {
                if t.last == c.timestamp { stale = true }
                tallies[key] = t
            }
        }
        if events == 0 { self = Summary(); return false }
        return stale || c.timestamp == firstSeen || c.timestamp == lastSeen
    }

    private static func decrement(_ map: inout [UInt32: UInt64], _ key: UInt32, by n: UInt64) {
        guard let v = map[key] else { return }
        map[key] = v > n ? v - n : nil
    }

    /// Folds another summary into this one.
    public mutating func merge(_ other: Summary) {
        guard !other.isEmpty else { return }
        events += other.events
        revenueMicros &+= other.revenueMicros
        if let f = other.firstSeen { firstSeen = Swift.min(firstSeen ?? f, f) }
        if let l = other.lastSeen { lastSeen = Swift.max(lastSeen ?? l, l) }
        orders += other.orders
        if let o = other.lastOrder { lastOrder = Swift.max(lastOrder ?? o, o) }
        for (type, n) in other.eventsByType { eventsByType[type, default: 0] += n }
        for (source, n) in other.eventsBySource { eventsBySource[source, default: 0] += n }
        for (key, t) in other.tallies {
            if var mine = tallies[key] {
                mine.count += t.count
                mine.last = Swift.max(mine.last, t.last)
                tallies[key] = mine
            } else {
                tallies[key] = t
            }
        }
    }

    /// Takes a folded-in summary back out. Returns `true` when a maximum or minimum may have
    /// changed and must be recomputed.
    public mutating func subtract(_ other: Summary) -> Bool {
        guard !other.isEmpty else { return false }
        events -= other.events
        revenueMicros &-= other.revenueMicros
        for (type, n) in other.eventsByType { Self.decrement(&eventsByType, type, by: n) }
        for (source, n) in other.eventsBySource { Self.decrement(&eventsBySource, source, by: n) }
        var stale = false
        orders -= other.orders
        if orders == 0 { lastOrder = nil } else if other.lastOrder != nil && other.lastOrder == lastOrder { stale = true }
        for (key, t) in other.tallies {
            guard var mine = tallies[key] else { continue }
            mine.count -= t.count
            if mine.count == 0 { tallies[key] = nil } else {
                if mine.last == t.last { stale = true }
                tallies[key] = mine
            }
        }
        if events == 0 { self = Summary(); return false }
        return stale || other.firstSeen == firstSeen || other.lastSeen == lastSeen
    }

    /// Recomputes every maximum and minimum (first and last seen, last order, each tally's last
    /// time) from `summaries`, whose fold this summary is (after a subtraction hit one).
    public mutating func refreshMaxima(from summaries: some Sequence<Summary>) {
        var fold = Summary()
        for s in summaries { fold.merge(s) }
        firstSeen = fold.firstSeen
        lastSeen = fold.lastSeen
        lastOrder = orders == 0 ? nil : fold.lastOrder
        for (key, t) in tallies { if let f = fold.tallies[key] { tallies[key] = Tally(count: t.count, last: f.last) } }
    }

    /// Revenue as a decimal number.
    public var revenue: Double { Double(revenueMicros) / 1_000_000 }

    // MARK: encoding (version 2), big-endian: version, events, revenue, first, last, orders,
    // last order, then n × (type, count), n × (source, count), n × tally. The fixed part comes
    // first so scans read it without decoding the maps (``SummaryHeader``).

    func encode(into out: inout ByteWriter) {
        out.append(UInt8(2))
        out.append(events)
        out.append(UInt64(bitPattern: revenueMicros))
        out.append(UInt64(bitPattern: firstSeen ?? Int64.max))
        out.append(UInt64(bitPattern: lastSeen ?? Int64.min))
        out.append(orders)
        out.append(UInt64(bitPattern: lastOrder ?? Int64.min))
        out.append(UInt32(eventsByType.count))
        for (type, n) in eventsByType.sorted(by: { $0.key < $1.key }) {
            out.append(type)
            out.append(n)
        }
        out.append(UInt32(eventsBySource.count))
        for (source, n) in eventsBySource.sorted(by: { $0.key < $1.key }) {
            out.append(source)
            out.append(n)
        }
        out.append(UInt32(tallies.count))
        for (key, t) in tallies.sorted(by: { $0.key < $1.key }) {
            out.append(key.kind.rawValue)
            out.append(UInt8(key.name.count)); out.append(bytes: key.name)
            out.append(key.source)
            out.append(UInt16(key.value.count)); out.append(bytes: key.value)
            out.append(t.count)
            out.append(UInt64(bitPattern: t.last))
        }
    }

    init(decoding reader: inout ByteReader) throws(RecordError) {
        let version = try reader.uint8()
        guard version == 1 || version == 2 else { throw RecordError.corrupt("summary version") }
        events = try reader.uint64()
        revenueMicros = Int64(bitPattern: try reader.uint64())
        let f = Int64(bitPattern: try reader.uint64())
        let l = Int64(bitPattern: try reader.uint64())
        firstSeen = f == Int64.max ? nil : f
        lastSeen = l == Int64.min ? nil : l
        if version == 2 {
            orders = try reader.uint64()
            let o = Int64(bitPattern: try reader.uint64())
            lastOrder = o == Int64.min ? nil : o
        }
        let n = try reader.uint32()
        for _ in 0..<n {
            let type = try reader.uint32()
            eventsByType[type] = try reader.uint64()
        }
        guard version == 2 else { return }  // version 1 (before profiles) ends here
        let sources = try reader.uint32()
        for _ in 0..<sources {
            let source = try reader.uint32()
            eventsBySource[source] = try reader.uint64()
        }
        let count = try reader.uint32()
        for _ in 0..<count {
            guard let kind = TallyKind(rawValue: try reader.uint8()) else { throw RecordError.corrupt("tally kind") }
            let name = try reader.bytes(Int(try reader.uint8()))
            let source = try reader.uint32()
            let value = try reader.bytes(Int(try reader.uint16()))
            let c = try reader.uint64()
            let last = Int64(bitPattern: try reader.uint64())
            tallies[TallyKey(kind: kind, name: name, source: source, value: value)] = Tally(count: c, last: last)
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

/// The fixed part of a stored summary, read without decoding its maps (entity scans: `FIND`, RFM).
public struct SummaryHeader: Sendable, Equatable {
    /// Number of events.
    public var events: UInt64
    /// Revenue in millionths.
    public var revenueMicros: Int64
    /// Earliest event time.
    public var firstSeen: Int64?
    /// Latest event time.
    public var lastSeen: Int64?
    /// Number of orders.
    public var orders: UInt64
    /// Latest order time.
    public var lastOrder: Int64?

    /// The header of `summary`.
    public init(_ summary: Summary) {
        events = summary.events
        revenueMicros = summary.revenueMicros
        firstSeen = summary.firstSeen
        lastSeen = summary.lastSeen
        orders = summary.orders
        lastOrder = summary.lastOrder
    }

    init(decoding reader: inout ByteReader) throws(RecordError) {
        let version = try reader.uint8()
        guard version == 1 || version == 2 else { throw RecordError.corrupt("summary version") }
        events = try reader.uint64()
        revenueMicros = Int64(bitPattern: try reader.uint64())
        let f = Int64(bitPattern: try reader.uint64())
        let l = Int64(bitPattern: try reader.uint64())
        firstSeen = f == Int64.max ? nil : f
        lastSeen = l == Int64.min ? nil : l
        orders = 0
        lastOrder = nil
        if version == 2 {
            orders = try reader.uint64()
            let o = Int64(bitPattern: try reader.uint64())
            lastOrder = o == Int64.min ? nil : o
        }
    }

    /// Revenue as a decimal number.
    public var revenue: Double { Double(revenueMicros) / 1_000_000 }
}
