import Foundation
@testable import IdentityGraph
import Testing

/// The bulk writer's hash tables against a `Dictionary`: numbering in insertion order, finding,
/// growing, resizing to a hint while full of keys, and key order.
@Suite struct HashTableTests {
    /// Keys of many lengths (empty, short, long, with a shared prefix), some repeated.
    static func keys(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in
            let length = Int(rng.next() % 48) + (rng.next() % 50 == 0 ? 400 : 0)
            return [0, 7] + (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next() % 5 + 97) }
        }
    }

    @Test(arguments: [0, 1000, 20_000])
    func aByteKeyTableNumbersKeysLikeADictionaryAcrossGrowthAndReserve(reserveAt: Int) {
        let keys = Self.keys(count: 40_000, seed: 7)
        var table = ByteKeyTable()
        var reference: [[UInt8]: Int] = [:]
        for (i, key) in keys.enumerated() {
            if i == reserveAt { table.reserve(keys: 120_000, bytes: 3_000_000) }
            let expected = reference[key]
            let hash = key.withUnsafeBytes { ByteKeyTable.hash($0) }
            if i % 3 == 0 { table.prefetch(hash: hash); table.prefetchEntry(hash: hash) }  // hints only
            let (index, inserted) = key.withUnsafeBytes { i % 2 == 0 ? table.insert($0) : table.insert($0, hash: hash) }
            if let expected {
                #expect(!inserted && index == expected)
            } else {
                #expect(inserted && index == reference.count)
                reference[key] = index
            }
        }
        #expect(table.count == reference.count)
        for (key, index) in reference {
            #expect(key.withUnsafeBytes { table.find($0) } == index)
            #expect(table.withKey(index) { Array($0) } == key)
        }
        #expect([UInt8]([0, 7, 1]).withUnsafeBytes { table.find($0) } == nil)
        var order: [[UInt8]] = []
        table.forEachKey(inEntries: table.sortedEntries()) { index, key in
            #expect(table.withKey(index) { Array($0) } == Array(key))
            order.append(Array(key))
        }
        #expect(order == reference.keys.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func aLinkLogCountsEvidenceDegreesAndBothDirectionsLikeADictionary() {
        var log = LinkLog()
        log.reserve(1_000)
        var evidence: [UInt64: UInt32] = [:]
        var rng = SplitMix(seed: 11)
        let nodes = 3_000
        for _ in 0..<60_000 {
            let u = UInt32(rng.next() % UInt64(nodes)), v = UInt32(rng.next() % UInt64(nodes))
            guard u != v else { continue }
            log.append(u, v)
            evidence[UInt64(min(u, v)) << 32 | UInt64(max(u, v)), default: 0] += 1
        }
        var tally = log.tally()
        #expect(log.count == 0)
        #expect(tally.forward == evidence.keys.sorted())
        #expect(tally.evidence == tally.forward.map { evidence[$0]! })

        // Degrees: distinct neighbours whose type merges (here: even node indexes).
        let merges = { (i: Int) in i % 2 == 0 }
        var expectedDegree = [UInt32](repeating: 0, count: nodes)
        for key in evidence.keys {
            let (a, b) = (Int(key >> 32), Int(key & 0xFFFF_FFFF))
            if merges(b) { expectedDegree[a] += 1 }
            if merges(a) { expectedDegree[b] += 1 }
        }
        #expect(tally.degrees(nodes: nodes, merges: merges) == expectedDegree)

        // The walk: every link from both ends, in (from, to) order, each with its evidence.
        tally.addBackward(nodes: nodes)
        var walk = DirectedLinks(tally)
        var seen: [DirectedLink] = []
        while let link = walk.next() { seen.append(link) }
        let expected = evidence.flatMap { key, n in
            [(key, n), ((key & 0xFFFF_FFFF) << 32 | key >> 32, n)]
        }.sorted { $0.0 < $1.0 }
        #expect(seen.map(\.key) == expected.map(\.0))
        #expect(seen.map(\.evidence) == expected.map(\.1))
        #expect(walk.taken == walk.count && walk.count == 2 * evidence.count)
    }

    /// Keys of bytes 0, 1 and 255 (zero bytes that look like the padding of a shorter key),
    /// many of them prefixes of others, some with long shared beginnings: the order is memcmp's,
    /// a key before every longer key it starts.
    @Test(arguments: [1, 2, 3])
    func sortedEntriesAreInByteOrderWithPrefixesAndZeroBytes(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let alphabet: [UInt8] = [0, 1, 255]
        var table = ByteKeyTable()
        var keys = Set<[UInt8]>()
        for _ in 0..<6_000 {
            let shared = rng.next() % 3 == 0 ? [UInt8](repeating: 255, count: Int(rng.next() % 30)) : []
            let key = shared + (0..<Int(rng.next() % 20)).map { _ in alphabet[Int(rng.next() % 3)] }
            keys.insert(key)
            _ = key.withUnsafeBytes { table.insert($0) }
        }
        var order: [[UInt8]] = []
        table.forEachKey(inEntries: table.sortedEntries()) { _, key in order.append(Array(key)) }
        #expect(order.count == keys.count)
        #expect(order == keys.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func forEachKeyHandsOutTheKeysOfAnOrderWithTheirNumbers() {
        var table = ByteKeyTable()
        let keys = Self.keys(count: 5_000, seed: 3)
        var numbers: [[UInt8]: Int] = [:]
        for key in keys { numbers[key] = key.withUnsafeBytes { table.insert($0) }.index }
        let order = table.sortedEntries()
        let expected = numbers.keys.sorted { $0.lexicographicallyPrecedes($1) }
        // Whole, and in slices as the writer walks it.
        for slices in [[0..<order.count], [0..<1, 1..<1_000, 1_000..<order.count]] {
            var seen: [(Int, [UInt8])] = []
            var ahead: [Int] = []
            for range in slices {
                table.forEachKey(inEntries: order, range: range, ahead: { ahead.append($0) }) { index, key in seen.append((index, Array(key))) }
            }
            #expect(seen.map(\.1) == expected)
            #expect(seen.map(\.0) == expected.map { numbers[$0]! })
            // `ahead` sees every key of each slice once, in the same order.
            #expect(ahead == seen.map(\.0))
        }
    }
}

/// The bulk writer's radix sort against `Array.sort()`.
@Suite struct RadixSortTests {
    @Test(arguments: [0, 1, 2, 47, 48, 49, 1_000, 100_000])
    func radixSortEqualsTheStandardSort(count: Int) {
        var rng = SplitMix(seed: UInt64(count) + 1)
        // Full 64-bit values, packed pairs of small node numbers (many equal: evidence seen
        // again), values that differ in the low byte only, and all equal.
        let kinds: [() -> UInt64] = [
            { rng.next() },
            { (rng.next() % 300) << 32 | rng.next() % 300 },
            { 0xABCD_0000_0000_0000 | rng.next() % 256 },
            { 7 },
        ]
        for make in kinds {
            var values = (0..<count).map { _ in make() }
            let expected = values.sorted()
            RadixSort.sort(&values)
            #expect(values == expected)
        }
    }

    /// Sorted by their top bytes only: those in order, the same values (a permutation).
    @Test(arguments: [2, 48, 49, 5_000, 100_000])
    func sortingByTopBytesOrdersThemAndKeepsEveryValue(count: Int) {
        var rng = SplitMix(seed: UInt64(count) + 99)
        for bytes in [1, 4, 8] {
            // Few distinct top parts (long runs of equal ones), the rest random.
            var values: [UInt64] = []
            for _ in 0..<count {
                let top: UInt64 = (rng.next() % 200) << 56, middle: UInt64 = (rng.next() % 3) << 40
                values.append(top | middle | rng.next() % (1 << 32))
            }
            let before = values.sorted()
            values.withUnsafeMutableBufferPointer { RadixSort.sort($0, byTopBytes: bytes) }
            let top = values.map { $0 >> UInt64(64 - 8 * bytes) }
            #expect(top == top.sorted())
            #expect(values.sorted() == before)
        }
    }
}
