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

    /// Orders kinds by their stored number.
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

    /// The stored order: kind, name, source, value.
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

/// A map kept as one array sorted by key: summaries hold a handful of entries, for which this
/// is several times cheaper to build, fold and encode than a `Dictionary` (one allocation, no
/// hashing, already in the stored order).
struct SortedMap<Key: Comparable & Sendable, Value: Equatable & Sendable>: Equatable, Sendable {
    struct Entry: Equatable, Sendable {
        var key: Key
        var value: Value
    }
    private(set) var entries: [Entry] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Removes every entry, keeping the storage for reuse.
    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    /// Where `key` is, or where it would go.
    private func position(of key: Key) -> (index: Int, found: Bool) {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].key < key { low = mid + 1 } else { high = mid }
        }
        return (low, low < entries.count && entries[low].key == key)
    }

    subscript(key: Key) -> Value? {
        let p = position(of: key)
        return p.found ? entries[p.index].value : nil
    }

    /// Changes the value of `key` (starting from `initial` when absent); a `nil` result removes it.
    mutating func update(_ key: Key, initial: Value, _ change: (Value) -> Value?) {
        let p = position(of: key)
        if p.found {
            if let v = change(entries[p.index].value) { entries[p.index].value = v } else { entries.remove(at: p.index) }
        } else if let v = change(initial) {
            entries.insert(Entry(key: key, value: v), at: p.index)
        }
    }

    /// Appends an entry whose key is larger than every key so far (decoding stored, sorted data).
    mutating func appendInOrder(_ key: Key, _ value: Value) throws(RecordError) {
        if let last = entries.last, !(last.key < key) { throw RecordError.corrupt("summary keys out of order") }
        entries.append(Entry(key: key, value: value))
    }

    /// Folds `other` in: `combine` for keys in both, `other`'s entry for keys only there.
    mutating func merge(_ other: SortedMap, _ combine: (Value, Value) -> Value) {
        if other.entries.isEmpty { return }
        if entries.isEmpty { self = other; return }
        var merged: [Entry] = []
        merged.reserveCapacity(entries.count + other.entries.count)
        var i = 0, j = 0
        while i < entries.count && j < other.entries.count {
            let a = entries[i], b = other.entries[j]
            if a.key < b.key { merged.append(a); i += 1 }
            else if b.key < a.key { merged.append(b); j += 1 }
            else { merged.append(Entry(key: a.key, value: combine(a.value, b.value))); i += 1; j += 1 }
        }
        merged += entries[i...]
        merged += other.entries[j...]
        entries = merged
    }

    /// Changes every entry present in `other` (`nil` removes it); keys only in `other` are ignored.
    mutating func subtract(_ other: SortedMap, _ change: (Value, Value) -> Value?) {
        for e in other.entries {
            let p = position(of: e.key)
            guard p.found else { continue }
            if let v = change(entries[p.index].value, e.value) { entries[p.index].value = v } else { entries.remove(at: p.index) }
        }
    }

    mutating func setValue(at index: Int, _ value: Value) { entries[index].value = value }

}

extension SortedMap where Key: Hashable {
    var dictionary: [Key: Value] { Dictionary(uniqueKeysWithValues: entries.map { ($0.key, $0.value) }) }
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
public struct Summary: Sendable {
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
    var typeCounts = SortedMap<UInt32, UInt64>()
    var sourceCounts = SortedMap<UInt32, UInt64>()
    /// The tallies, decoded; while `rawTallies` is set they are still in their stored form there
    /// (and this is empty): most writes change no tally, so a summary read from the store and
    /// written back copies its tallies as bytes instead of decoding and re-encoding each.
    var tallyMap = SortedMap<TallyKey, Tally>()
    private(set) var rawTallies: RawTallies?

    /// Tallies as stored: their count and encoded bytes.
    struct RawTallies: Equatable, Sendable {
        var count: UInt32
        var bytes: [UInt8]
    }

    /// Events per interned event-type id.
    public var eventsByType: [UInt32: UInt64] { typeCounts.dictionary }
    /// Events per interned source id.
    public var eventsBySource: [UInt32: UInt64] { sourceCounts.dictionary }
    /// Attribute values, products, campaigns and lists, counted.
    public var tallies: [TallyKey: Tally] { decodedTallies.dictionary }

    /// The tallies decoded (decoding them now if they are still raw).
    var decodedTallies: SortedMap<TallyKey, Tally> {
        guard let raw = rawTallies else { return tallyMap }
        return (try? Self.decodeTallies(raw)) ?? SortedMap()
    }

    /// Decodes raw tallies in place before a change to them.
    private mutating func materializeTallies() {
        guard let raw = rawTallies else { return }
        tallyMap = (try? Self.decodeTallies(raw)) ?? SortedMap()  // validated when read
        rawTallies = nil
    }

    var hasTallies: Bool { rawTallies != nil || !tallyMap.isEmpty }

    /// An empty summary.
    public init() {}

    /// Whether nothing has been counted.
    public var isEmpty: Bool { events == 0 }

    /// Empties the summary, keeping its storage: a summary reused for many nodes in turn
    /// allocates once (the bulk encoder builds one per node and per entity).
    mutating func removeAll() {
        events = 0
        revenueMicros = 0
        firstSeen = nil
        lastSeen = nil
        orders = 0
        lastOrder = nil
        typeCounts.removeAll()
        sourceCounts.removeAll()
        tallyMap.removeAll()
        rawTallies = nil
    }


    /// Counts one event.
    public mutating func add(_ c: SummaryContribution) {
        events += 1
        revenueMicros &+= c.amountMicros
        firstSeen = Swift.min(firstSeen ?? c.timestamp, c.timestamp)
        lastSeen = Swift.max(lastSeen ?? c.timestamp, c.timestamp)
        typeCounts.update(c.type, initial: 0) { $0 + 1 }
        sourceCounts.update(c.source, initial: 0) { $0 + 1 }
        if c.isOrder {
            orders += 1
            lastOrder = Swift.max(lastOrder ?? c.timestamp, c.timestamp)
        }
        if !c.tallies.isEmpty { materializeTallies() }
        for key in c.tallies {
            tallyMap.update(key, initial: Tally(count: 0, last: c.timestamp)) { Tally(count: $0.count + 1, last: Swift.max($0.last, c.timestamp)) }
        }
    }

    /// Uncounts one event. Returns `true` when a maximum or minimum may have changed and must be
    /// recomputed from what is left.
    public mutating func remove(_ c: SummaryContribution) -> Bool {
        events -= 1
        revenueMicros &-= c.amountMicros
        typeCounts.update(c.type, initial: 1) { $0 > 1 ? $0 - 1 : nil }
        sourceCounts.update(c.source, initial: 1) { $0 > 1 ? $0 - 1 : nil }
        var stale = false
        if c.isOrder {
            orders -= 1
            if orders == 0 { lastOrder = nil } else if c.timestamp == lastOrder { stale = true }
        }
        if !c.tallies.isEmpty { materializeTallies() }
        for key in c.tallies {
            guard let t = tallyMap[key] else { continue }
            if t.count > 1 && t.last == c.timestamp { stale = true }
            tallyMap.update(key, initial: t) { $0.count > 1 ? Tally(count: $0.count - 1, last: $0.last) : nil }
        }
        if events == 0 { self = Summary(); return false }
        return stale || c.timestamp == firstSeen || c.timestamp == lastSeen
    }

    /// The fixed fields, as a ``SummaryHeader`` holds them (the header's fold is the one place
    /// counts are summed and times kept earliest and latest, for decoded and stored summaries).
    var header: SummaryHeader {
        get { SummaryHeader(self) }
        set {
            events = newValue.events
            revenueMicros = newValue.revenueMicros
            firstSeen = newValue.firstSeen
            lastSeen = newValue.lastSeen
            orders = newValue.orders
            lastOrder = newValue.lastOrder
        }
    }

    /// Folds another summary into this one.
    public mutating func merge(_ other: Summary) {
        guard !other.isEmpty else { return }
        if isEmpty {
            self = other  // shares storage until either changes
            return
        }
        header = header.folding(other)
        typeCounts.merge(other.typeCounts, +)
        sourceCounts.merge(other.sourceCounts, +)
        if other.hasTallies {
            if let raw = rawTallies {
                // Still as stored (an entity record just read): merged as bytes, no key built.
                rawTallies = Self.mergeEncoded(raw, other.encodedTallies)
            } else if tallyMap.isEmpty {
                rawTallies = other.encodedTallies
            } else {
                tallyMap.merge(other.decodedTallies) { Tally(count: $0.count + $1.count, last: Swift.max($0.last, $1.last)) }
            }
        }
    }

    /// Takes a folded-in summary back out. Returns `true` when a maximum or minimum may have
    /// changed and must be recomputed.
    public mutating func subtract(_ other: Summary) -> Bool {
        guard !other.isEmpty else { return false }
        events -= other.events
        revenueMicros &-= other.revenueMicros
        typeCounts.subtract(other.typeCounts) { $0 > $1 ? $0 - $1 : nil }
        sourceCounts.subtract(other.sourceCounts) { $0 > $1 ? $0 - $1 : nil }
        var stale = false
        orders -= other.orders
        if orders == 0 { lastOrder = nil } else if other.lastOrder != nil && other.lastOrder == lastOrder { stale = true }
        if other.hasTallies { materializeTallies() }
        tallyMap.subtract(other.decodedTallies) { mine, theirs in
            guard mine.count > theirs.count else { return nil }
            if mine.last == theirs.last { stale = true }
            return Tally(count: mine.count - theirs.count, last: mine.last)
        }
        if events == 0 { self = Summary(); return false }
        return stale || other.firstSeen == firstSeen || other.lastSeen == lastSeen
    }

    /// Recomputes every maximum and minimum (first and last seen, last order, each tally's last
    /// time) from `summaries`, whose fold this summary is (after a subtraction hit one).
    public mutating func refreshMaxima(from summaries: some Sequence<Summary>) {
        var bounds = SummaryBounds(tallies: tallyKeys)
        for s in summaries { bounds.add(s) }
        refreshBounds(from: bounds)
    }

    /// Takes the minima and maxima `bounds` gathered over the summaries this one is the fold
    /// of (made with this summary's ``tallyKeys``): ``refreshMaxima(from:)`` for parts read
    /// straight from storage.
    mutating func refreshBounds(from bounds: SummaryBounds) {
        firstSeen = bounds.firstSeen
        lastSeen = bounds.lastSeen
        lastOrder = orders == 0 ? nil : bounds.lastOrder
        materializeTallies()
        for i in tallyMap.entries.indices {
            if let last = bounds.latestTime(ofTally: i) { tallyMap.setValue(at: i, Tally(count: tallyMap.entries[i].value.count, last: last)) }
        }
    }

    /// Revenue as a decimal number.
    public var revenue: Double { Double(revenueMicros) / 1_000_000 }

    // MARK: encoding (version 2), big-endian: version, events, revenue, first, last, orders,
    // last order, then n × (type, count), n × (source, count), n × tally. The fixed part comes
    // first so scans read it without decoding the maps (``SummaryHeader``).

    func encode(into out: inout ByteWriter) {
        encodeAllButTallies(into: &out)
        if let raw = rawTallies {
            out.append(raw.count)
            out.append(bytes: raw.bytes)
            return
        }
        out.append(UInt32(tallyMap.count))
        Self.appendTallies(tallyMap, into: &out)
    }

    /// Appends `tallies` as stored, without their count.
    static func appendTallies(_ tallies: SortedMap<TallyKey, Tally>, into out: inout ByteWriter) {
        for entry in tallies.entries {
            let key = entry.key
            appendTally(kind: key.kind.rawValue, name: key.name, source: key.source, value: key.value, tally: entry.value, into: &out)
        }
    }

    /// Appends one stored tally (after their count): kind, name (u8 length), source, value (u16
    /// length), count, latest time. ``TallyFold`` writes its tallies through this too.
    @inline(__always)
    static func appendTally(kind: UInt8, name: some Collection<UInt8>, source: UInt32, value: some Collection<UInt8>, tally: Tally, into out: inout ByteWriter) {
        out.append(kind)
        out.append(UInt8(name.count)); out.append(bytes: name)
        out.append(source)
        out.append(UInt16(value.count)); out.append(bytes: value)
        out.append(tally.count)
        out.append(UInt64(bitPattern: tally.last))
    }

    /// Everything ``encode(into:)`` writes before the tallies, which come last (the bulk encoder
    /// appends them from a ``TallyFold``).
    func encodeAllButTallies(into out: inout ByteWriter) {
        SummaryHeader(self).encode(into: &out)
        Self.encodeCounts(typeCounts, into: &out)
        Self.encodeCounts(sourceCounts, into: &out)
    }

    /// Counts by id, in id order.
    private static func encodeCounts(_ counts: SortedMap<UInt32, UInt64>, into out: inout ByteWriter) {
        out.append(UInt32(counts.count))
        for e in counts.entries {
            out.append(e.key)
            out.append(e.value)
        }
    }

    init(decoding reader: inout ByteReader) throws(RecordError) {
        let stored = try SummaryHeader(decoding: &reader)
        let version = stored.version
        header = stored
        let n = try reader.uint32()
        for _ in 0..<n {
            let type = try reader.uint32()
            try typeCounts.appendInOrder(type, try reader.uint64())
        }
        guard version == 2 else { return }  // version 1 (before profiles) ends here
        let sources = try reader.uint32()
        for _ in 0..<sources {
            let source = try reader.uint32()
            try sourceCounts.appendInOrder(source, try reader.uint64())
        }
        // Tallies stay raw: their extent is checked (lengths and kinds), their bytes copied once.
        let (count, tallies) = try Self.storedTallies(&reader)
        guard count > 0 else { return }
        rawTallies = RawTallies(count: count, bytes: Array(tallies))
    }

    /// The stored tallies `reader` is at (their count, then each), checked (lengths and kinds)
    /// and passed over: their count and bytes, in place.
    static func storedTallies(_ reader: inout ByteReader) throws(RecordError) -> (count: UInt32, bytes: UnsafeRawBufferPointer) {
        let count = try reader.uint32()
        let start = reader.offset
        var tallies = RawTallyCursor(UnsafeRawBufferPointer(rebasing: reader.buffer[start...]), count: count)
        while let tally = try tallies.next() {
            guard TallyKind(rawValue: tally.kind) != nil else { throw RecordError.corrupt("tally kind") }
        }
        try reader.skip(tallies.offset)
        return (count, UnsafeRawBufferPointer(rebasing: reader.buffer[start..<reader.offset]))
    }

    static func decodeTallies(_ raw: RawTallies) throws(RecordError) -> SortedMap<TallyKey, Tally> {
        let result: Result<SortedMap<TallyKey, Tally>, RecordError> = raw.bytes.withUnsafeBytes { buffer in
            var map = SortedMap<TallyKey, Tally>()
            var tallies = RawTallyCursor(buffer, count: raw.count)
            do throws(RecordError) {
                while let t = try tallies.next() {
                    guard let kind = TallyKind(rawValue: t.kind) else { throw RecordError.corrupt("tally kind") }
                    try map.appendInOrder(TallyKey(kind: kind, name: Array(t.name), source: t.source, value: Array(t.value)), Tally(count: t.count, last: t.last))
                }
            } catch {
                return .failure(error)
            }
            return .success(map)
        }
        return try result.get()
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

extension Summary: Equatable {
    /// Equal counts, bounds and tallies (raw or decoded alike).
    public static func == (a: Summary, b: Summary) -> Bool {
        guard a.events == b.events, a.revenueMicros == b.revenueMicros, a.firstSeen == b.firstSeen, a.lastSeen == b.lastSeen,
              a.orders == b.orders, a.lastOrder == b.lastOrder, a.typeCounts == b.typeCounts, a.sourceCounts == b.sourceCounts
        else { return false }
        if let x = a.rawTallies, let y = b.rawTallies { return x == y }
        return a.decodedTallies == b.decodedTallies
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
    /// The stored format (1: before profiles, no orders; 2: orders, sources and tallies follow).
    var version: UInt8 = 2

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
        version = try reader.uint8()
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

    /// This header with `other`'s counted in: counts summed, the earliest and latest times kept
    /// (``Summary/merge(_:)`` folds its fields through this too).
    func folding(_ other: Summary) -> SummaryHeader {
        func earlier(_ a: Int64?, _ b: Int64?) -> Int64? { guard let a, let b else { return a ?? b }; return Swift.min(a, b) }
        func later(_ a: Int64?, _ b: Int64?) -> Int64? { guard let a, let b else { return a ?? b }; return Swift.max(a, b) }
        var folded = self
        folded.version = 2
        folded.events += other.events
        folded.revenueMicros &+= other.revenueMicros
        folded.firstSeen = earlier(firstSeen, other.firstSeen)
        folded.lastSeen = later(lastSeen, other.lastSeen)
        folded.orders += other.orders
        folded.lastOrder = later(lastOrder, other.lastOrder)
        return folded
    }

    /// Appends the header as version 2 stores it (what comes before the counts).
    func encode(into out: inout ByteWriter) {
        out.append(UInt8(2))
        out.append(events)
        out.append(UInt64(bitPattern: revenueMicros))
        out.append(UInt64(bitPattern: firstSeen ?? Int64.max))
        out.append(UInt64(bitPattern: lastSeen ?? Int64.min))
        out.append(orders)
        out.append(UInt64(bitPattern: lastOrder ?? Int64.min))
    }

    /// Revenue as a decimal number.
    public var revenue: Double { Double(revenueMicros) / 1_000_000 }
}
