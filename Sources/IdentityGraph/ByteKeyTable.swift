/// A set of byte strings, each numbered in insertion order, kept in one arena: what the bulk
/// writer uses instead of `[[UInt8]: Int]` (measured on 1M events: hashing byte arrays through
/// `Hasher` one byte at a time and one heap array per key made that dictionary the top cost).
///
/// Open addressing with linear probing over a power-of-two table of 64-bit slots, each holding
/// the key's number and 32 bits of its hash, so a probe touches the key's bytes only when the
/// hashes agree (at 10M keys every other touch is a cache miss). A 64-bit hash read 8 bytes at
/// a time. Per key: its bytes, an 8-byte end offset and about 11 bytes of table.
struct ByteKeyTable {
    private var arena: [UInt8] = []
    private var ends: [Int] = []
    /// Slot → (key number + 1) << 32 | hash tag; 0 = empty.
    private var slots: [UInt64] = Array(repeating: 0, count: 1024)
    private var mask = 1023

    /// Number of keys.
    var count: Int { ends.count }

    /// Bytes held (arena, offsets, hashes and slots).
    var memoryBytes: Int { arena.capacity + ends.capacity * 8 + slots.count * 8 }

    /// Makes room for `keys` keys of `bytes` bytes in all, so that inserting them neither
    /// rehashes nor moves the arena (only when the table is empty).
    mutating func reserve(keys: Int, bytes: Int) {
        guard ends.isEmpty, keys > 0 else { return }
        var size = slots.count
        while keys * 4 > size * 3 { size *= 2 }
        if size > slots.count {
            slots = Array(repeating: 0, count: size)
            mask = size - 1
        }
        arena.reserveCapacity(bytes)
        ends.reserveCapacity(keys)
    }

    /// The number of `key`, inserting it when new; `inserted` tells which.
    mutating func insert(_ key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        let hash = Self.hash(key)
        var slot = Int(truncatingIfNeeded: hash) & mask
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        while true {
            let entry = slots[slot]
            if entry == 0 { break }
            if UInt32(truncatingIfNeeded: entry) == tag {
                let index = Int(entry >> 32) - 1
                if equals(index, key) { return (index, false) }
            }
            slot = (slot + 1) & mask
        }
        let index = ends.count
        arena.append(contentsOf: key)
        ends.append(arena.count)
        slots[slot] = UInt64(index + 1) << 32 | UInt64(tag)
        if ends.count * 4 > slots.count * 3 { grow() }
        return (index, true)
    }

    /// The number of `key`, or nil.
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        let hash = Self.hash(key)
        var slot = Int(truncatingIfNeeded: hash) & mask
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        while true {
            let entry = slots[slot]
            if entry == 0 { return nil }
            if UInt32(truncatingIfNeeded: entry) == tag {
                let index = Int(entry >> 32) - 1
                if equals(index, key) { return index }
            }
            slot = (slot + 1) & mask
        }
    }

    /// Calls `body` with the bytes of key `index`.
    func withKey<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = index == 0 ? 0 : ends[index - 1]
        return try arena.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<ends[index]])) }
    }

    /// Key numbers in the byte order of their keys (LMDB's default key order).
    func sortedIndexes() -> [UInt32] {
        var order = (0..<UInt32(ends.count)).map { $0 }
        arena.withUnsafeBytes { bytes in
            ends.withUnsafeBufferPointer { ends in
                order.sort { a, b in
                    let sa = a == 0 ? 0 : ends[Int(a) - 1], sb = b == 0 ? 0 : ends[Int(b) - 1]
                    let la = ends[Int(a)] - sa, lb = ends[Int(b)] - sb
                    let c = memcmp(bytes.baseAddress! + sa, bytes.baseAddress! + sb, min(la, lb))
                    return c != 0 ? c < 0 : la < lb
                }
            }
        }
        return order
    }

    private func equals(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = index == 0 ? 0 : ends[index - 1]
        guard ends[index] - start == key.count else { return false }
        if key.isEmpty { return true }
        return arena.withUnsafeBytes { memcmp($0.baseAddress! + start, key.baseAddress!, key.count) == 0 }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        for entry in old where entry != 0 {
            // The slot position needs the hash's low bits, which the tag (high bits) lacks.
            let index = Int(entry >> 32) - 1
            let start = index == 0 ? 0 : ends[index - 1]
            let hash = arena.withUnsafeBytes { Self.hash(UnsafeRawBufferPointer(rebasing: $0[start..<ends[index]])) }
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = entry
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

/// A map from non-zero `UInt64` keys to `UInt32` counts, open addressing with linear probing and
/// a multiplicative hash: what the bulk writer counts link evidence in (a `Dictionary` hashes
/// each key with SipHash and stores it with more overhead). 12 bytes per slot, at most 75% full.
struct PairCounts {
    private var keys: [UInt64] = Array(repeating: 0, count: 1024)
    private var values: [UInt32] = Array(repeating: 0, count: 1024)
    private var mask = 1023
    /// Number of keys.
    private(set) var count = 0

    /// Bytes held.
    var memoryBytes: Int { keys.count * 12 }

    /// Makes room for `pairs` keys without rehashing (only when empty).
    mutating func reserve(_ pairs: Int) {
        guard count == 0, pairs > 0 else { return }
        var size = keys.count
        while pairs * 4 > size * 3 { size *= 2 }
        guard size > keys.count else { return }
        keys = Array(repeating: 0, count: size)
        values = Array(repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// Adds one to the count of `key` (non-zero) and returns the count before (0 when new).
    mutating func increment(_ key: UInt64) -> UInt32 {
        precondition(key != 0, "PairCounts keys are non-zero")
        var slot = Self.slot(key, mask)
        while true {
            let k = keys[slot]
            if k == key {
                values[slot] += 1
                return values[slot] - 1
            }
            if k == 0 { break }
            slot = (slot + 1) & mask
        }
        keys[slot] = key
        values[slot] = 1
        count += 1
        if count * 4 > keys.count * 3 { grow() }
        return 0
    }

    /// The count of `key` (0 when absent).
    func count(_ key: UInt64) -> UInt32 {
        var slot = Self.slot(key, mask)
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k == 0 { return 0 }
            slot = (slot + 1) & mask
        }
    }

    /// Calls `body` with every key and its count, in no particular order.
    func forEach(_ body: (UInt64, UInt32) throws -> Void) rethrows {
        for i in keys.indices where keys[i] != 0 { try body(keys[i], values[i]) }
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        for i in oldKeys.indices where oldKeys[i] != 0 {
            var slot = Self.slot(oldKeys[i], mask)
            while keys[slot] != 0 { slot = (slot + 1) & mask }
            keys[slot] = oldKeys[i]
            values[slot] = oldValues[i]
        }
    }
}
