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
        let order = table.sortedIndexes().map { table.withKey(Int($0)) { Array($0) } }
        #expect(order == reference.keys.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test func pairCountsCountLikeADictionaryAcrossGrowthAndReserve() {
        var counts = PairCounts()
        var reference: [UInt64: UInt32] = [:]
        var rng = SplitMix(seed: 11)
        for i in 0..<60_000 {
            if i == 5_000 { counts.reserve(200_000) }
            let key = (rng.next() % 20_000) << 32 | (rng.next() % 3) + 1
            counts.prefetch(key)
            #expect(counts.increment(key) == reference[key, default: 0])
            reference[key, default: 0] += 1
        }
        #expect(counts.count == reference.count)
        for (key, n) in reference { #expect(counts.count(key) == n) }
        var seen = 0
        counts.forEach { key, n in
            #expect(reference[key] == n)
            seen += 1
        }
        #expect(seen == reference.count)
    }
}
