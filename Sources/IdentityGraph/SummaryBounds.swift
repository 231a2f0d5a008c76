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

    /// Takes the bounds of one part.
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
}
