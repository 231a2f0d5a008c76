/// The links of a bulk run as their evidence comes: one pair key `(low << 32) | high` of node
/// indexes per event (or `link` record) that names both, appended without looking anything up.
///
/// Sorted once at the end (``tally()``), equal keys are one link and their number its evidence.
/// This replaced a hash table counting evidence as it came: 12 bytes per slot at most 75% full
/// (400 MB at 10M events, at the moment memory peaks) and a cache miss per pair, where the log
/// takes 8 bytes per piece of evidence and only appends. Nothing during the run needs the count:
/// merges are decided by union-find, which is idempotent for a pair seen again (entities never
/// split in a bulk run), and degrees are counted from the distinct links at the end.
struct LinkLog {
    private var keys: [UInt64] = []

    /// Pieces of evidence logged.
    var count: Int { keys.count }

    /// Bytes held.
    var memoryBytes: Int { keys.capacity * 8 }

    /// Makes room for `pairs` pieces of evidence.
    mutating func reserve(_ pairs: Int) { keys.reserveCapacity(pairs) }

    /// Logs one piece of evidence for the link between node indexes `u` and `v` (`u != v`).
    @inline(__always)
    mutating func append(_ u: UInt32, _ v: UInt32) {
        keys.append(u < v ? UInt64(u) << 32 | UInt64(v) : UInt64(v) << 32 | UInt64(u))
    }

    /// The distinct links with their evidence, in key order; the log is left empty.
    mutating func tally() -> LinkTally {
        var keys = self.keys
        self.keys = []
        RadixSort.sort(&keys)
        var evidence: [UInt32] = []
        var distinct = 0
        var k = 0
        while k < keys.count {
            let key = keys[k]
            var n: UInt32 = 0
            while k < keys.count && keys[k] == key { n += 1; k += 1 }
            keys[distinct] = key
            distinct += 1
            evidence.append(n)
        }
        keys.removeLast(keys.count - distinct)
        return LinkTally(forward: keys, evidence: evidence)
    }
}

/// The distinct links of a bulk run, `(low << 32) | high` in ascending order, with the evidence
/// of each; ``addBackward()`` adds the same links seen from their high end, so that
/// ``DirectedLinks`` can walk every adjacency entry in the table's key order.
struct LinkTally {
    /// Distinct pair keys, low end first, ascending.
    private(set) var forward: [UInt64]
    /// The evidence of `forward[i]`.
    private(set) var evidence: [UInt32]
    /// `(high << 32) | low` with the evidence, ascending (empty until ``addBackward()``).
    private(set) var backward: [DirectedLink] = []

    init(forward: [UInt64], evidence: [UInt32]) {
        self.forward = forward
        self.evidence = evidence
    }

    /// Builds the high-end view of every link, in order, for node indexes below `nodes`.
    ///
    /// A counting sort by high end: ``forward`` is in (low, high) order, so the links of one high
    /// end come in ascending low order, and placing each at the next slot of its high end's run
    /// leaves every run sorted. A comparison sort of the 13M links of 10M events took the sorter
    /// thread ~0.8 s of CPU (and a buffer of half the array) while the encoder and it held both
    /// cores and the writer waited.
    mutating func addBackward(nodes: Int) {
        precondition(forward.count < Int(UInt32.max), "links are counted in 32 bits here")
        var next = [UInt32](repeating: 0, count: nodes + 1)
        for key in forward { next[Int(key & 0xFFFF_FFFF) + 1] += 1 }
        for i in 0..<nodes { next[i + 1] += next[i] }
        var backward = [DirectedLink](repeating: DirectedLink(key: 0, evidence: 0), count: forward.count)
        for (i, key) in forward.enumerated() {
            let high = Int(key & 0xFFFF_FFFF)
            backward[Int(next[high])] = DirectedLink(key: (key & 0xFFFF_FFFF) << 32 | key >> 32, evidence: evidence[i])
            next[high] += 1
        }
        self.backward = backward
    }

    /// Per node index: its distinct neighbours of a type that merges (what `NodeRecord.degree`
    /// counts; `merges(i)` tells whether node `i`'s type merges).
    func degrees(nodes: Int, merges: (Int) -> Bool) -> [UInt32] {
        var degree = [UInt32](repeating: 0, count: nodes)
        for key in forward {
            let low = Int(key >> 32), high = Int(key & 0xFFFF_FFFF)
            if merges(high) { degree[low] += 1 }
            if merges(low) { degree[high] += 1 }
        }
        return degree
    }
}

/// One adjacency entry: `(from << 32) | to` and the link's evidence.
struct DirectedLink {
    var key: UInt64
    var evidence: UInt32
}

/// Every adjacency entry of a ``LinkTally`` (both directions of each link, after
/// ``LinkTally/addBackward()``) in ascending `(from, to)` order: the two sorted views merged as
/// they are walked (a link's two directions never have the same key).
struct DirectedLinks: IteratorProtocol {
    private let tally: LinkTally
    private var f = 0, b = 0

    init(_ tally: LinkTally) { self.tally = tally }

    /// Entries in all.
    var count: Int { tally.forward.count + tally.backward.count }
    /// Entries handed out so far.
    var taken: Int { f + b }

    mutating func next() -> DirectedLink? {
        let forwardKey = f < tally.forward.count ? tally.forward[f] : nil
        let backward = b < tally.backward.count ? tally.backward[b] : nil
        switch (forwardKey, backward) {
        case (nil, nil):
            return nil
        case (let key?, let other) where other == nil || key < other!.key:
            defer { f += 1 }
            return DirectedLink(key: key, evidence: tally.evidence[f])
        default:
            b += 1
            return backward
        }
    }
}
