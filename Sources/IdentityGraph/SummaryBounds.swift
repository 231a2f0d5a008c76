import Foundation

/// The minima and maxima of a fold of summaries (first and last seen, last order, the latest
/// time of each of a given set of tallies), gathered from the summaries' stored bytes without
/// decoding them: what ``Summary/refreshMaxima(from:)`` needs after a subtraction took one away.
///
/// An entity's bounds are refreshed from all its members' summaries after a retract, a forget
/// or a split hit one; in an entity of thousands of members (a device shared by strangers)
/// folding the members' whole summaries, tallies and all, took 62% of a load's writer time.
/// Here each member costs a scan of its bytes, and each of its tallies a binary search among
/// the tallies the entity has (only those can need a new time).
struct SummaryBounds {
    /// Earliest event time seen, if any.
    private(set) var firstSeen: Int64?
    /// Latest event time seen, if any.
    private(set) var lastSeen: Int64?
    /// Latest order time seen, if any.
    private(set) var lastOrder: Int64?
    /// The tallies whose latest time is gathered, sorted (the summary's own).
    private let keys: [TallyKey]
    /// Per key, the latest time seen (`Int64.min`: none).
    private var latest: [Int64]

    /// Gathers bounds for a summary with these tallies (sorted, as ``Summary`` keeps them).
    init(tallies keys: [TallyKey]) {
        self.keys = keys
        latest = [Int64](repeating: Int64.min, count: keys.count)
    }

    /// The latest time seen of the `index`-th key, if any.
    func latestTime(ofTally index: Int) -> Int64? { latest[index] == Int64.min ? nil : latest[index] }

    /// Folds in a summary held in memory.
    mutating func add(_ summary: Summary) {
        guard !summary.isEmpty else { return }
        addBounds(first: summary.firstSeen, last: summary.lastSeen, lastOrder: summary.lastOrder)
        guard !keys.isEmpty else { return }
        summary.forEachTally { kind, name, source, value, last in note(kind: kind, name: name, source: source, value: value, last: last) }
    }

    /// Folds in a stored summary (``Summary/encode(into:)``'s bytes).
    mutating func add(encoded bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var reader = ByteReader(bytes)
        let header = try SummaryHeader(decoding: &reader)
        guard header.events > 0 else { return }
        addBounds(first: header.firstSeen, last: header.lastSeen, lastOrder: header.lastOrder)
        guard !keys.isEmpty, header.version == 2 else { return }
        try reader.skip(Int(try reader.uint32()) * 12)  // counts per event type
        try reader.skip(Int(try reader.uint32()) * 12)  // counts per source
        try Summary.scanTallies(&reader, count: try reader.uint32()) { kind, name, source, value, last in
            note(kind: kind, name: name, source: source, value: value, last: last)
        }
    }

    private mutating func addBounds(first: Int64?, last: Int64?, lastOrder order: Int64?) {
        if let first { firstSeen = Swift.min(firstSeen ?? first, first) }
        if let last { lastSeen = Swift.max(lastSeen ?? last, last) }
        if let order { lastOrder = Swift.max(lastOrder ?? order, order) }
    }

    /// Takes `last` for the key (kind, name, source, value) when it is one of ``keys``.
    private mutating func note(kind: UInt8, name: UnsafeRawBufferPointer, source: UInt32, value: UnsafeRawBufferPointer, last: Int64) {
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            let order = Self.compare(keys[mid], kind: kind, name: name, source: source, value: value)
            if order == 0 {
                if last > latest[mid] { latest[mid] = last }
                return
            }
            if order < 0 { low = mid + 1 } else { high = mid }
        }
    }

    /// The order of `key` against the key given by its parts (negative: `key` comes first),
    /// the order of ``TallyKey``'s `<`.
    private static func compare(_ key: TallyKey, kind: UInt8, name: UnsafeRawBufferPointer, source: UInt32, value: UnsafeRawBufferPointer) -> Int {
        if key.kind.rawValue != kind { return key.kind.rawValue < kind ? -1 : 1 }
        let byName = compareBytes(key.name, name)
        if byName != 0 { return byName }
        if key.source != source { return key.source < source ? -1 : 1 }
        return compareBytes(key.value, value)
    }

    /// Lexicographic order of two byte strings (a prefix comes first).
    private static func compareBytes(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Int {
        let n = Swift.min(a.count, b.count)
        for i in 0..<n where a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

extension Summary {
    /// The keys of the tallies, in their order.
    var tallyKeys: [TallyKey] { decodedTallies.entries.map(\.key) }

    /// Calls `body` with each tally's key parts and latest time, in key order, without
    /// building ``TallyKey``s.
    func forEachTally(_ body: (UInt8, UnsafeRawBufferPointer, UInt32, UnsafeRawBufferPointer, Int64) -> Void) {
        if let raw = rawTallies {
            raw.bytes.withUnsafeBytes { buffer in
                var reader = ByteReader(buffer)
                try? Self.scanTallies(&reader, count: raw.count, body)  // validated when read
            }
            return
        }
        for entry in tallyMap.entries {
            entry.key.name.withUnsafeBytes { name in
                entry.key.value.withUnsafeBytes { value in
                    body(entry.key.kind.rawValue, name, entry.key.source, value, entry.value.last)
                }
            }
        }
    }

    /// Reads `count` stored tallies from `reader`, calling `body` with each one's key parts
    /// (views into the reader's buffer) and latest time.
    static func scanTallies(
        _ reader: inout ByteReader, count: UInt32, _ body: (UInt8, UnsafeRawBufferPointer, UInt32, UnsafeRawBufferPointer, Int64) -> Void
    ) throws(RecordError) {
        for _ in 0..<count {
            let kind = try reader.uint8()
            let name = try reader.slice(Int(try reader.uint8()))
            let source = try reader.uint32()
            let value = try reader.slice(Int(try reader.uint16()))
            try reader.skip(8)  // count
            let last = Int64(bitPattern: try reader.uint64())
            body(kind, name, source, value, last)
        }
    }
}

extension Summary {
    /// Tallies as stored bytes: this summary's own when they are still raw, else encoded.
    var encodedTallies: RawTallies {
        if let raw = rawTallies { return raw }
        var out = ByteWriter()
        for entry in tallyMap.entries {
            let key = entry.key
            Self.appendTally(kind: key.kind.rawValue, name: key.name, source: key.source, value: key.value, tally: entry.value, into: &out)
        }
        return RawTallies(count: UInt32(tallyMap.count), bytes: out.bytes)
    }

    /// The tallies of `a` and `b` folded (counts added, the later time kept), as stored bytes,
    /// by one merge of the two sorted lists: no ``TallyKey`` is built. A merge into an entity
    /// of thousands of tallies (a device shared by strangers) decoded every one of them into a
    /// key of two arrays, and encoded them again, for each entity it absorbed.
    static func mergeEncoded(_ a: RawTallies, _ b: RawTallies) -> RawTallies {
        var out = ByteWriter()
        out.bytes.reserveCapacity(a.bytes.count + b.bytes.count)
        var count: UInt32 = 0
        a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                var ra = RawTallyCursor(x, count: a.count), rb = RawTallyCursor(y, count: b.count)
                var ea = ra.next(), eb = rb.next()
                while let p = ea, let q = eb {
                    let order = p.compare(q)
                    if order < 0 {
                        out.append(bytes: p.bytes); ea = ra.next()
                    } else if order > 0 {
                        out.append(bytes: q.bytes); eb = rb.next()
                    } else {
                        out.append(bytes: UnsafeRawBufferPointer(rebasing: p.bytes[..<p.keyLength]))
                        out.append(p.count + q.count)
                        out.append(UInt64(bitPattern: Swift.max(p.last, q.last)))
                        ea = ra.next(); eb = rb.next()
                    }
                    count += 1
                }
                while let p = ea { out.append(bytes: p.bytes); count += 1; ea = ra.next() }
                while let q = eb { out.append(bytes: q.bytes); count += 1; eb = rb.next() }
            }
        }
        return RawTallies(count: count, bytes: out.bytes)
    }
}

/// One stored tally, as views into its bytes.
struct RawTally {
    /// The whole entry: key, count, latest time.
    let bytes: UnsafeRawBufferPointer
    /// How many of ``bytes`` are the key (kind, name, source, value).
    let keyLength: Int
    let kind: UInt8
    let name: UnsafeRawBufferPointer
    let source: UInt32
    let value: UnsafeRawBufferPointer
    let count: UInt64
    let last: Int64

    /// The order of ``TallyKey``'s `<` (negative: `self` first).
    func compare(_ other: RawTally) -> Int {
        if kind != other.kind { return kind < other.kind ? -1 : 1 }
        let byName = Self.compareBytes(name, other.name)
        if byName != 0 { return byName }
        if source != other.source { return source < other.source ? -1 : 1 }
        return Self.compareBytes(value, other.value)
    }

    private static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = Swift.min(a.count, b.count)
        if n > 0, let pa = a.baseAddress, let pb = b.baseAddress {
            let c = memcmp(pa, pb, n)
            if c != 0 { return c < 0 ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

/// Walks stored tallies (validated when their summary was read).
struct RawTallyCursor {
    private var reader: ByteReader
    private var left: UInt32

    init(_ buffer: UnsafeRawBufferPointer, count: UInt32) {
        reader = ByteReader(buffer)
        left = count
    }

    /// The next tally, nil after the last (or at bytes that do not hold one).
    mutating func next() -> RawTally? {
        guard left > 0 else { return nil }
        left -= 1
        let start = reader.offset
        do {
            let kind = try reader.uint8()
            let name = try reader.slice(Int(try reader.uint8()))
            let source = try reader.uint32()
            let value = try reader.slice(Int(try reader.uint16()))
            let keyEnd = reader.offset
            let count = try reader.uint64()
            let last = Int64(bitPattern: try reader.uint64())
            return RawTally(
                bytes: UnsafeRawBufferPointer(rebasing: reader.buffer[start..<reader.offset]), keyLength: keyEnd - start,
                kind: kind, name: name, source: source, value: value, count: count, last: last)
        } catch {
            left = 0
            return nil
        }
    }
}
