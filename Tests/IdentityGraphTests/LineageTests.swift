import Foundation
import IdentityGraph
import Testing

/// LINEAGE: an entity's own lineage records and, back through merges and splits, those of the
/// entities that went into it; HISTORY stays with the records naming the entity itself.
@Suite struct LineageTests {
    @Test func lineageFollowsMergedAndSplitFromEntitiesBackwards() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            event("email:a@x.com", "cookie:a"),   // A = {a, cookie a}
            event("email:b@x.com", "cookie:b"),   // B = {b, cookie b}
            event("email:c@x.com", "cookie:c"),   // C
            event("email:d@x.com", "cookie:d"),   // D
            event("email:c@x.com", "email:d@x.com"),  // D into C (or C into D)
            event("email:a@x.com", "email:b@x.com"),  // B into A
            event("email:a@x.com", "email:c@x.com"),  // CD into AB: one entity of eight
            event("email:z@x.com", "cookie:z"),   // unrelated
            unlink("email:a@x.com", "email:c@x.com"),  // splits CD off again
        ])
        try db.graph.read { reader in
            let all = try reader.history()
            let merges = all.filter { $0.record.kind == .merge }
            let splits = all.filter { $0.record.kind == .split }
            #expect(merges.count == 8 && splits.count == 1, "\(all.map(\.record))")  // the five pairs, CD, AB, ABCD
            let ab = try #require(try reader.entity(of: .id("email:a@x.com")))
            let cd = try #require(try reader.entity(of: .id("email:c@x.com")))
            let z = try #require(try reader.entity(of: .id("email:z@x.com")))
            #expect(ab != cd)

            // The entity that stayed: every merge that built it, the split, nothing of z.
            let abLineage = try reader.lineage(of: ab).map(\.sequence)
            let abHistory = try reader.history(of: ab).map(\.sequence)
            #expect(Set(abHistory).isSubset(of: Set(abLineage)))
            #expect(abLineage.count > abHistory.count, "lineage \(abLineage), history \(abHistory)")
            #expect(abLineage == abLineage.sorted())
            let zRecords = Set(try reader.history(of: z).map(\.sequence))
            #expect(Set(abLineage).isDisjoint(with: zRecords))
            // Oracle: the records whose entities reach ab through merges (absorbed ones, back in time) and the split.
            #expect(Set(abLineage) == Set(merges.map(\.sequence) + splits.map(\.sequence)).subtracting(zRecords))

            // The entity that split off: its split, and before it everything of the entity it left.
            let cdLineage = try reader.lineage(of: cd).map(\.sequence)
            #expect(cdLineage.last == splits[0].sequence)
            #expect(Set(cdLineage) == Set(abLineage).union([splits[0].sequence]))
            #expect(try reader.history(of: cd).map(\.sequence).count < cdLineage.count)
        }
    }

    @Test func anEntityNeverMergedHasItsOwnRecordsOnly() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "cookie:a"), event("email:b@x.com", "cookie:b")])
        try db.graph.read { reader in
            let a = try #require(try reader.entity(of: .id("email:a@x.com")))
            #expect(try reader.lineage(of: a).map(\.sequence) == reader.history(of: a).map(\.sequence))
        }
    }
}
