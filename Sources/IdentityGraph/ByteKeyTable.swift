import CPrefetch

/// A set of byte strings, each numbered in insertion order, kept in one arena: what the bulk
/// writer uses instead of `[[UInt8]: Int]` (measured on 1M events: hashing byte arrays through
/// `Hasher` one byte at a time and one heap array per key made that dictionary the top cost).
///
/// Open addressing with linear probing over a power-of-two table of 64-bit slots, each holding
/// where the key's entry starts in the arena and 24 bits of its hash, so a probe touches the
/// key only when the hashes agree, and then in one place: the entry holds the key's length,
/// number and bytes. At 10M keys every touch is a cache miss; callers that know their keys
/// ahead ``prefetch(hash:)`` them. A 64-bit hash read 8 bytes at a time. Per key: its bytes,
/// a 6-byte header, an 8-byte offset and about 11 bytes of table.
struct ByteKeyTable {
    /// Entries back to back: `[length u16][number u32][key]`.
    private var arena: [UInt8] = []
    /// Key number → offset of its entry.
    private var offsets: [Int] = []
    /// Slot → (entry offset + 1) << 24 | hash tag; 0 = empty.
    private var slots: [UInt64] = Array(repeating: 0, count: 1024)
    private var mask = 1023
    private static let header = 6

    /// Number of keys.
    var count: Int { offsets.count }

    /// Bytes held (arena, offsets and slots).
    var memoryBytes: Int { arena.capacity + offsets.capacity * 8 + slots.count * 8 }

    /// Makes room for `keys` keys of `bytes` bytes in all, so that inserting them neither
    /// rehashes nor moves the arena again (the keys already in are rehashed once).
    mutating func reserve(keys: Int, bytes: Int) {
        guard keys > offsets.count else { return }
        var size = slots.count
        while keys * 4 > size * 3 { size *= 2 }
        if size > slots.count { rehash(into: size) }
        arena.reserveCapacity(bytes + keys * Self.header)
        offsets.reserveCapacity(keys)
    }

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt64 { hash >> 40 }

    /// The number of `key`, inserting it when new; `inserted` tells which.
    mutating func insert(_ key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        insert(key, hash: Self.hash(key))
    }

    /// ``insert(_:)`` with the key's ``hash(_:)`` computed beforehand.
    mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> (index: Int, inserted: Bool) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        let tag = Self.tag(hash)
        while true {
            let entry = slots[slot]
            if entry == 0 { break }
            if entry & 0xFF_FFFF == tag, let index = match(at: Int(entry >> 24) - 1, key) { return (index, false) }
            slot = (slot + 1) & mask
        }
        precondition(key.count <= Int(UInt16.max), "ByteKeyTable keys are at most 65,535 bytes")
        let index = offsets.count
        let offset = arena.count
        offsets.append(offset)
        arena.append(UInt8(truncatingIfNeeded: key.count >> 8)); arena.append(UInt8(truncatingIfNeeded: key.count))
        withUnsafeBytes(of: UInt32(index).littleEndian) { arena.append(contentsOf: $0) }
        arena.append(contentsOf: key)
        slots[slot] = UInt64(offset + 1) << 24 | tag
        if offsets.count * 4 > slots.count * 3 { grow() }
        return (index, true)
    }

    /// The number of `key`, or nil.
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        find(key, hash: Self.hash(key))
    }

    /// ``find(_:)`` with the key's ``hash(_:)`` computed beforehand.
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        var slot = Int(truncatingIfNeeded: hash) & mask
        let tag = Self.tag(hash)
        while true {
            let entry = slots[slot]
            if entry == 0 { return nil }
            if entry & 0xFF_FFFF == tag, let index = match(at: Int(entry >> 24) - 1, key) { return index }
            slot = (slot + 1) & mask
        }
    }

    /// Asks the CPU for the slot a key with this hash starts probing at.
    ///
    /// `mutating` though it changes nothing: called on a table held by a class, a non-mutating
    /// call copies the struct out first (three retains and three releases per call, 6% of the
    /// bulk writer's resolving time at 10M events); a mutating one works in place.
    mutating func prefetch(hash: UInt64) {
        slots.withUnsafeBufferPointer { idgraph_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: hash) & mask)) }
    }

    /// Asks the CPU for the entry the first slot of this hash points to, when its tag matches
    /// (call after ``prefetch(hash:)`` had time to bring the slot in).
    mutating func prefetchEntry(hash: UInt64) {
        let entry = slots[Int(truncatingIfNeeded: hash) & mask]
        guard entry != 0, entry & 0xFF_FFFF == Self.tag(hash) else { return }
        arena.withUnsafeBytes { idgraph_prefetch($0.baseAddress! + Int(entry >> 24) - 1) }
    }

    /// Calls `body` with the bytes of key `index`.
    func withKey<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try arena.withUnsafeBytes { bytes in
            let offset = offsets[index]
            let length = Self.length(of: offset, bytes)
            return try body(UnsafeRawBufferPointer(rebasing: bytes[(offset + Self.header)..<(offset + Self.header + length)]))
        }
    }

    /// Calls `body` with the number and the bytes of each key whose entry starts at the offsets
    /// in `order[range]` (default: all of it), in that order, asking the CPU for entries a few
    /// places ahead: in key order the entries are scattered over the arena, and the writer of
    /// the `ident` table spent most of its time waiting for them. `ahead` is called with the
    /// number of each key as it comes into view (for the caller's own arrays by key number).
    func forEachKey(inEntries order: [Int], range: Range<Int>? = nil, ahead: (Int) -> Void = { _ in }, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) rethrows {
        let entryDistance = 16, numberDistance = 8
        let range = range ?? order.indices
        try arena.withUnsafeBytes { bytes in
            try order.withUnsafeBufferPointer { order in
                guard !range.isEmpty else { return }
                let base = bytes.baseAddress!
                let end = range.upperBound
                for j in range.lowerBound..<min(range.lowerBound + entryDistance, end) { idgraph_prefetch(base + order[j]) }
                for j in range.lowerBound..<min(range.lowerBound + numberDistance, end) { ahead(Self.number(at: order[j], in: bytes)) }
                for j in range {
                    if j + entryDistance < end { idgraph_prefetch(base + order[j + entryDistance]) }
                    if j + numberDistance < end { ahead(Self.number(at: order[j + numberDistance], in: bytes)) }
                    let offset = order[j]
                    let length = Self.length(of: offset, bytes)
                    try body(Self.number(at: offset, in: bytes), UnsafeRawBufferPointer(rebasing: bytes[(offset + Self.header)..<(offset + Self.header + length)]))
                }
            }
        }
    }

    /// The length of the key whose entry starts at `offset` (the entry's first two bytes).
    @inline(__always)
    private static func length(of offset: Int, _ bytes: UnsafeRawBufferPointer) -> Int {
        Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
    }

    @inline(__always)
    private static func number(at offset: Int, in bytes: UnsafeRawBufferPointer) -> Int {
        Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt32.self)))
    }

    /// The offsets of the entries, in the byte order of their keys (LMDB's default key order:
    /// bytes compared as unsigned, a key before every longer key it starts).
    ///
    /// Sorted four key bytes at a time, in place: each entry's offset is packed with its key's
    /// bytes `0..<4` (big-endian, zero-padded) into one integer, the integers are sorted, and
    /// only runs of keys that share those bytes are packed with their next four and sorted
    /// again (keys of one type share their first bytes: `email` + "pe"). Each pass reads every
    /// key of a run once, the next ones fetched ahead. A comparison sort of the offsets read two
    /// entries per comparison at random places in the arena: 10M events' identifiers and event
    /// keys took the sorter ~2.9 s of CPU that way (`perf`). An arena past 4 GiB (offsets beyond
    /// 32 bits) is sorted by comparisons.
    func sortedEntries() -> [Int] {
        var order = offsets
        arena.withUnsafeBytes { bytes in
            guard bytes.count <= Int(UInt32.max) else {
                let base = bytes.baseAddress!
                order.sort { oa, ob in
                    let la = Self.length(of: oa, bytes), lb = Self.length(of: ob, bytes)
                    let c = memcmp(base + oa + Self.header, base + ob + Self.header, min(la, lb))
                    return c != 0 ? c < 0 : la < lb
                }
                return
            }
            order.withUnsafeMutableBufferPointer { order in Self.sort(order, 0..<order.count, from: 0, bytes) }
        }
        return order
    }

    /// Sorts `order[range]` (entry offsets), entries whose keys agree before byte `depth`, by
    /// their bytes from `depth` on (see ``sortedEntries()``).
    private static func sort(_ order: UnsafeMutableBufferPointer<Int>, _ range: Range<Int>, from depth: Int, _ bytes: UnsafeRawBufferPointer) {
        if range.count < 2 { return }
        let base = bytes.baseAddress!
        // Packed: the word above the offset, sorted by the word's four bytes (a radix sort:
        // the comparison sort of these integers was most of the sorter's time for 9.4M
        // identifiers and 10M event ids, while it and the encoder held both cores).
        for i in range {
            if i + 8 < range.upperBound { idgraph_prefetch(base + order[i + 8]) }
            let offset = order[i]
            order[i] = Int(bitPattern: UInt(word(of: offset, at: depth, bytes)) << 32 | UInt(offset))
        }
        UnsafeMutableBufferPointer(rebasing: order[range]).withMemoryRebound(to: UInt64.self) { RadixSort.sort($0, byTopBytes: 4) }
        // Runs of equal words, then every entry back to its offset.
        var runs: [Range<Int>] = []
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start + 1
            while end < range.upperBound && order[end] >> 32 == order[start] >> 32 { end += 1 }
            if end - start > 1 { runs.append(start..<end) }
            start = end
        }
        for i in range { order[i] &= 0xFFFF_FFFF }
        for run in runs {
            // Keys that end within these four bytes come first (each starts the longer keys of
            // its run), by length among themselves (no two are equal); the rest are sorted by
            // their next four bytes.
            var ended: [(length: Int, offset: Int)] = []
            var longer = run.lowerBound
            for i in run {
                let offset = order[i]
                let length = Self.length(of: offset, bytes)
                if length <= depth + 4 {
                    ended.append((length, offset))
                } else {
                    order[longer] = offset
                    longer += 1
                }
            }
            if !ended.isEmpty {
                for i in stride(from: longer - 1, through: run.lowerBound, by: -1) { order[i + ended.count] = order[i] }
                ended.sort { $0.length < $1.length }
                for (k, entry) in ended.enumerated() { order[run.lowerBound + k] = entry.offset }
            }
            sort(order, (run.lowerBound + ended.count)..<run.upperBound, from: depth + 4, bytes)
        }
    }

    /// Bytes `depth..<depth + 4` of the key whose entry starts at `offset`, big-endian, zero
    /// past its end.
    @inline(__always)
    private static func word(of offset: Int, at depth: Int, _ bytes: UnsafeRawBufferPointer) -> UInt {
        let length = Self.length(of: offset, bytes)
        let start = offset + header + depth
        if length >= depth + 4 { return UInt(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self))) }
        var word: UInt = 0
        for i in 0..<4 { word = word << 8 | (depth + i < length ? UInt(bytes[start + i]) : 0) }
        return word
    }

    /// The number of the key whose entry starts at `offset`, if that key is `key`.
    @inline(__always)
    private func match(at offset: Int, _ key: UnsafeRawBufferPointer) -> Int? {
        arena.withUnsafeBytes { bytes in
            let length = Self.length(of: offset, bytes)
            guard length == key.count else { return nil }
            if length > 0 && memcmp(bytes.baseAddress! + offset + Self.header, key.baseAddress!, length) != 0 { return nil }
            return Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt32.self)))
        }
    }

    private mutating func grow() { rehash(into: slots.count * 2) }

    private mutating func rehash(into size: Int) {
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        arena.withUnsafeBytes { bytes in
            for offset in offsets {
                // The slot position needs the hash's low bits, which the tag (high bits) lacks.
                let length = Self.length(of: offset, bytes)
                let hash = Self.hash(UnsafeRawBufferPointer(rebasing: bytes[(offset + Self.header)..<(offset + Self.header + length)]))
                var slot = Int(truncatingIfNeeded: hash) & mask
                while slots[slot] != 0 { slot = (slot + 1) & mask }
                slots[slot] = UInt64(offset + 1) << 24 | Self.tag(hash)
            }
        }
    }

    /// A 64-bit hash: 8 bytes at a time, multiply and fold (not for untrusted adversarial keys;
    /// a bad distribution costs time, never correctness).
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = mix(h ^ w)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        h = mix(h ^ tail)
        return h ^ (h >> 29)
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        let product = x.multipliedFullWidth(by: 0xBF58_476D_1CE4_E5B9)
        return product.high ^ product.low
    }
}

#if canImport(Glibc)
import Glibc
#endif
