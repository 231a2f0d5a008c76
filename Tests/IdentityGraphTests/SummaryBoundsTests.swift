import Foundation
@testable import IdentityGraph
import Testing

/// ``SummaryBounds`` (bounds gathered from stored bytes, tallies found by binary search) against
/// the obvious way: fold every part with ``Summary/merge(_:)`` and read the fold's bounds.
@Suite struct SummaryBoundsTests {
    /// Tally keys whose names and values share prefixes and differ in length, source and kind,
    /// so every step of the key order is exercised.
    static func key(_ rng: inout SplitMix) -> TallyKey {
        let kinds: [TallyKind] = [.attribute, .product, .campaign, .subscribed, .unsubscribed]
        let names: [[UInt8]] = [[], Array("a".utf8), Array("ab".utf8), Array("b".utf8)]
        let values: [[UInt8]] = [[], [0], [0, 0], Array("x".utf8), Array("xy".utf8), [255], Array("é".utf8)]
        return TallyKey(
            kind: kinds[Int(rng.next() % UInt64(kinds.count))], name: names[Int(rng.next() % UInt64(names.count))],
            source: UInt32(rng.next() % 3), value: values[Int(rng.next() % UInt64(values.count))])
    }

    static func part(_ rng: inout SplitMix, events: Int, at offset: Int64 = 0) -> Summary {
        var s = Summary()
        for _ in 0..<events {
            let tallies = (0..<Int(rng.next() % 4)).map { _ in key(&rng) }
            s.add(SummaryContribution(
                timestamp: Int64(rng.next() % 1_000) - 500 + offset, type: UInt32(rng.next() % 3), source: UInt32(rng.next() % 2),
                amountMicros: Int64(rng.next() % 5_000), isOrder: rng.next() % 3 == 0, tallies: Array(Set(tallies))))
        }
        return s
    }

    /// What a stored summary reads back as (its tallies raw, as the writer sees them).
    static func stored(_ s: Summary) throws -> Summary {
        try s.bytes.withUnsafeBytes { try Summary(bytes: $0) }
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func boundsEqualThoseOfTheFold(seed: UInt64) throws {
        var rng = SplitMix(seed: seed)
        for _ in 0..<200 {
            // Some parts empty, some of one event, some of many.
            let parts = try (0..<Int(1 + rng.next() % 12)).map { _ in try Self.stored(Self.part(&rng, events: Int(rng.next() % 6))) }
            var whole = Summary()
            for p in parts { whole.merge(p) }
            // The target as a subtraction leaves it: the fold of the parts and of a part since
            // gone, whose events were the earliest or the latest (so its bounds and its
            // tallies' times stay behind), stored (raw tallies) or in memory.
            let gone = Self.part(&rng, events: Int(1 + rng.next() % 3), at: rng.next() % 2 == 0 ? 2_000 : -2_000)
            var damaged = whole
            damaged.merge(gone)
            _ = damaged.subtract(gone)
            let target = rng.next() % 2 == 0 ? try Self.stored(damaged) : damaged

            var fromMemory = target
            fromMemory.refreshMaxima(from: parts)
            var fromBytes = target
            var bounds = SummaryBounds(tallies: target.tallyKeys)
            for p in parts { try p.bytes.withUnsafeBytes { try bounds.add(encoded: $0) } }
            fromBytes.refreshBounds(from: bounds)

            #expect(fromMemory == whole)
            #expect(fromBytes == whole)
            #expect(fromMemory.decodedTallies == whole.decodedTallies)
        }
    }

    /// Summaries folded as stored bytes (``Summary/mergeEncoded(_:_:)``, what a merge into an
    /// entity just read does) equal the fold of the same summaries decoded, byte for byte.
    @Test(arguments: [6, 7, 8] as [UInt64])
    func foldingStoredTalliesEqualsFoldingDecodedOnes(seed: UInt64) throws {
        var rng = SplitMix(seed: seed)
        for _ in 0..<200 {
            let parts = (0..<Int(1 + rng.next() % 8)).map { _ in Self.part(&rng, events: Int(rng.next() % 7)) }
            var decoded = Summary()
            for p in parts { decoded.merge(p) }  // built by `add`: the decoded form throughout
            var stored = Summary()
            for p in parts { stored.merge(try Self.stored(p)) }  // starts raw: merged as bytes
            var mixed = try Self.stored(parts[0])
            for p in parts.dropFirst() { mixed.merge(rng.next() % 2 == 0 ? p : try Self.stored(p)) }
            #expect(stored == decoded)
            #expect(stored.bytes == decoded.bytes)
            #expect(mixed.bytes == decoded.bytes)
            #expect(stored.decodedTallies == decoded.decodedTallies)
        }
    }

    /// A batch's events counted toward a stored summary in place (``Summary/appendMerging(stored:added:into:)``,
    /// what the writer does for node summaries and entity records) give the bytes of the
    /// obvious way: decode the stored summary, add each event, encode.
    @Test(arguments: [9, 10, 11] as [UInt64])
    func countingIntoStoredBytesEqualsAddingToTheDecodedSummary(seed: UInt64) throws {
        var rng = SplitMix(seed: seed)
        for _ in 0..<300 {
            // Stored summaries of none, one or many events (an empty one as a live entity
            // without events has it), with tallies or not.
            let stored = Self.part(&rng, events: Int(rng.next() % 6))
            let batch = (0..<Int(1 + rng.next() % 5)).map { _ in Self.part(&rng, events: 1) }
            var obvious = try Self.stored(stored)
            for event in batch { obvious.merge(event) }
            var added = Summary()
            for event in batch { added.merge(event) }
            var out = ByteWriter()
            try stored.bytes.withUnsafeBytes { try Summary.appendMerging(stored: $0, added: added, into: &out) }
            #expect(out.bytes == obvious.bytes)

            // The same inside a live entity record, whose update time it sets.
            let record = EntityRecord.live(size: 3, created: 5, updated: 6, summary: stored).bytes
            var entity = ByteWriter()
            let live = try record.withUnsafeBytes { try EntityRecord.appendLiveMerging(stored: $0, added: added, updated: 99, into: &entity) }
            #expect(live)
            #expect(entity.bytes == EntityRecord.live(size: 3, created: 5, updated: 99, summary: obvious).bytes)
        }
        // A summary stored before profiles (version 1: no orders, sources or tallies) is read
        // the old way and written as version 2.
        var v1 = ByteWriter()
        v1.append(UInt8(1)); v1.append(UInt64(2)); v1.append(Int64(5_000_000)); v1.append(Int64(-20)); v1.append(Int64(30))
        v1.append(UInt32(2)); v1.append(UInt32(0)); v1.append(UInt64(1)); v1.append(UInt32(2)); v1.append(UInt64(1))
        let batch = Self.part(&rng, events: 3)
        var old = try v1.bytes.withUnsafeBytes { try Summary(bytes: $0) }
        #expect(old.events == 2 && old.eventsByType == [0: 1, 2: 1])
        old.merge(batch)
        var merged = ByteWriter()
        try v1.bytes.withUnsafeBytes { try Summary.appendMerging(stored: $0, added: batch, into: &merged) }
        #expect(merged.bytes == old.bytes)
        #expect(merged.bytes.first == 2)
        // Not a live entity: nothing appended.
        var out = ByteWriter()
        let redirect = EntityRecord.redirect(to: 7, at: 8).bytes
        #expect(try redirect.withUnsafeBytes { try EntityRecord.appendLiveMerging(stored: $0, added: Self.part(&rng, events: 1), updated: 9, into: &out) } == false)
        #expect(out.bytes.isEmpty)
    }

    /// A tally the parts no longer have keeps its time; one they have takes their latest.
    @Test func onlyTalliesThePartsHaveChange() throws {
        let kept = TallyKey(kind: .product, value: Array("gone".utf8))
        let moved = TallyKey(kind: .product, value: Array("kept".utf8))
        var target = Summary()
        target.add(SummaryContribution(timestamp: 90, type: 0, source: 0, amountMicros: 0, isOrder: false, tallies: [kept, moved]))
        var part = Summary()
        part.add(SummaryContribution(timestamp: 40, type: 0, source: 0, amountMicros: 0, isOrder: false, tallies: [moved]))
        target.refreshMaxima(from: [part])
        #expect(target.decodedTallies[kept]?.last == 90)
        #expect(target.decodedTallies[moved]?.last == 40)
        #expect(target.firstSeen == 40 && target.lastSeen == 40)
    }
}
