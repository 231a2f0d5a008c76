import Foundation

/// The tallies of many events, counted without building a ``TallyKey`` per tally: each is kept
/// as a reference to its value in the events' attribute bytes (one arena), and the whole set is
/// sorted into the stored order and its runs of equal keys counted when encoded.
///
/// The bulk encoder folds a node's, then an entity's, events this way: the bytes it writes are
/// the tally part of what ``Summary/encode(into:)`` writes after ``Summary/add(_:)`` of the same
/// events, which allocates two arrays per tally and compares keys holding reference-counted
/// arrays.
struct TallyFold {
    /// One tally, counted `count` times, the latest at `time`.
    private struct Item {
        var time: Int64
        var valueOffset: UInt32
        var valueLength: UInt16
        var kind: UInt8
        /// The attribute's index in ``ProfileRules/attributeNames`` (0 for the other kinds).
        var name: UInt16
        /// The event's source (attributes only, 0 for the other kinds).
        var source: UInt32
        var count: UInt32
    }

    private var items: [Item] = []
    /// Past this many items the fold counts what it holds (sorts and merges equal keys), so a
    /// large entity holds about one item per distinct tally, not one per event.
    private var compactAt = TallyFold.minimumCompaction
    private static let minimumCompaction = 4096

    /// Whether no tally was added.
    var isEmpty: Bool { items.isEmpty }

    /// Forgets every tally, keeping the storage.
    mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
        compactAt = Self.minimumCompaction
    }

    /// Adds the tallies of an event of `type` from `source` at `timestamp` whose `count`
    /// attributes start at `offset` in `arena`.
    mutating func add(timestamp: Int64, type: UInt32, source: UInt32, attributesAt offset: Int, count: Int,
                      in arena: UnsafeRawBufferPointer, rules: ProfileRules) {
        guard let base = arena.baseAddress else { return }
        rules.forEachTally(type: type, attributes: UnsafeRawBufferPointer(rebasing: arena[offset...]), count: count) { kind, name, value in
            let start = value.baseAddress.map { $0 - base } ?? 0
            items.append(Item(time: timestamp, valueOffset: UInt32(start), valueLength: UInt16(value.count), kind: kind.rawValue,
                              name: kind == .attribute ? UInt16(name) : 0, source: kind == .attribute ? source : 0, count: 1))
        }
        if items.count >= compactAt {
            compact(arena: arena)
            compactAt = Swift.max(Self.minimumCompaction, 2 * items.count)
        }
    }

    /// Sorts the items in stored order and merges those with equal keys.
    private mutating func compact(arena: UnsafeRawBufferPointer) {
        guard let base = arena.baseAddress, items.count > 1 else { return }
        /// Orders as ``TallyKey``'s `<` (indices of names compare as the names, which are sorted).
        func compare(_ a: Item, _ b: Item) -> Int {
            if a.kind != b.kind { return a.kind < b.kind ? -1 : 1 }
            if a.name != b.name { return a.name < b.name ? -1 : 1 }
            if a.source != b.source { return a.source < b.source ? -1 : 1 }
            let shorter = Int(Swift.min(a.valueLength, b.valueLength))
            if shorter > 0 {
                let c = memcmp(base + Int(a.valueOffset), base + Int(b.valueOffset), shorter)
                if c != 0 { return c < 0 ? -1 : 1 }
            }
            return a.valueLength == b.valueLength ? 0 : (a.valueLength < b.valueLength ? -1 : 1)
        }
        items.sort { compare($0, $1) < 0 }
        var kept = 0
        for i in 1..<items.count {
            if compare(items[kept], items[i]) == 0 {
                items[kept].count += items[i].count
                items[kept].time = Swift.max(items[kept].time, items[i].time)
            } else {
                kept += 1
                items[kept] = items[i]
            }
        }
        items.removeLast(items.count - kept - 1)
    }

    /// Appends the tallies as ``Summary`` stores them: their number, then each distinct key in
    /// stored order (kind, name, source, value) with how many events gave it and the latest time.
    mutating func encode(into out: inout ByteWriter, arena: UnsafeRawBufferPointer, names: [[UInt8]]) {
        guard let base = arena.baseAddress, !items.isEmpty else {
            out.append(UInt32(0))
            return
        }
        compact(arena: arena)
        out.append(UInt32(items.count))
        for item in items {
            Summary.appendTally(
                kind: item.kind, name: item.kind == TallyKind.attribute.rawValue ? names[Int(item.name)] : [], source: item.source,
                value: UnsafeRawBufferPointer(start: base + Int(item.valueOffset), count: Int(item.valueLength)),
                tally: Tally(count: UInt64(item.count), last: item.time), into: &out)
        }
    }
}
