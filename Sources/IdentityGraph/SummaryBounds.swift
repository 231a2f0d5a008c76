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
        summary.bytes.withUnsafeBytes { try? add(encoded: $0) }  // its own encoding reads back
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
        let count = try reader.uint32()
        var tallies = RawTallyCursor(UnsafeRawBufferPointer(rebasing: bytes[reader.offset...]), count: count)
        while let tally = try tallies.next() { note(tally) }
    }

    /// Takes the bounds of one part.
    private mutating func addBounds(first: Int64?, last: Int64?, lastOrder order: Int64?) {
        if let first { firstSeen = Swift.min(firstSeen ?? first, first) }
        if let last { lastSeen = Swift.max(lastSeen ?? last, last) }
        if let order { lastOrder = Swift.max(lastOrder ?? order, order) }
    }

    /// Takes the tally's latest time when its key is one of ``keys``.
    private mutating func note(_ tally: RawTally) {
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            let order = Self.compare(keys[mid], tally)
            if order == 0 {
                if tally.last > latest[mid] { latest[mid] = tally.last }
                return
            }
            if order < 0 { low = mid + 1 } else { high = mid }
        }
    }

    /// The order of `key` against the tally's (negative: `key` comes first).
    private static func compare(_ key: TallyKey, _ tally: RawTally) -> Int {
        key.name.withUnsafeBytes { name in
            key.value.withUnsafeBytes { value in
                RawTally.compare(kind: key.kind.rawValue, name: name, source: key.source, value: value, with: tally)
            }
        }
    }
}

extension Summary {
    /// The keys of the tallies, in their order.
    var tallyKeys: [TallyKey] { decodedTallies.entries.map(\.key) }
}
