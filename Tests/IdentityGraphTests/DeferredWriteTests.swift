import Foundation
import IdentityGraph
import PropertyBased
import Testing

/// Operations applied together in one transaction (where the writer defers timeline entries
/// and summary contributions to the end of the transaction or to the next unlink, forget or
/// retract, and merges fold summaries before their events are counted) store exactly what the
/// same operations store applied one per transaction: every table equal, byte for byte.
@Suite struct DeferredWriteTests {
    static let now: Int64 = 1_700_000_000_000

    /// Operations over a small pool of identifiers, so that forgets often hit the anchor of an
    /// earlier event and retracts often name an event whose anchor changed in the same batch.
    static func operations(seed: UInt64) -> (before: [GraphOperation], batch: [GraphOperation]) {
        var rng = SplitMix(seed: seed)
        let pool = ["email:a@x.com", "email:b@x.com", "email:c@x.com", "cookie:c1", "cookie:c2", "cookie:c3",
                    "device:d1", "device:d2", "phone:+1 555 0101", "crm:7", "ip:10.0.0.1"]
        var eventIDs: [String] = []
        var k = 0
        func anEvent() -> GraphOperation {
            k += 1
            let ids = (0..<Int.random(in: 1...3, using: &rng)).map { _ in pool.randomElement(using: &rng)! }
            let id = "e\(k)"
            eventIDs.append(id)
            var attributes: [EventAttribute] = []
            if Bool.random(using: &rng) { attributes.append(EventAttribute("name", ["Ann", "Bea"].randomElement(using: &rng)!)) }
            return .event(EventInput(
                eventID: Array(id.utf8), timestamp: Int64(Int.random(in: 0..<10, using: &rng)) * 1000,
                type: Array(["order", "page_view"].randomElement(using: &rng)!.utf8), source: Array("web".utf8),
                identifiers: ids.map { RawIdentifier.id($0) },
                amountMicros: Bool.random(using: &rng) ? Int64(Int.random(in: 1...500, using: &rng)) * 10_000 : nil,
                attributes: attributes))
        }
        let before = (0..<Int.random(in: 0...8, using: &rng)).map { _ in anEvent() }
        var batch: [GraphOperation] = []
        for _ in 0..<Int.random(in: 1...30, using: &rng) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4: batch.append(anEvent())
            case 4, 5: batch.append(forget(pool.randomElement(using: &rng)!))
            case 6, 7: batch.append(retract(eventIDs.randomElement(using: &rng) ?? "none"))
            case 8: batch.append(unlink(pool.randomElement(using: &rng)!, pool.randomElement(using: &rng)!))
            default: batch.append(link(pool.randomElement(using: &rng)!, pool.randomElement(using: &rng)!))
            }
        }
        return (before, batch)
    }

    /// The tables after `before` in one transaction, then `batch` either in one more or one
    /// operation per transaction.
    static func digests(_ ops: (before: [GraphOperation], batch: [GraphOperation]), together: Bool) throws -> ([String: String], [String]) {
        let db = try TemporaryDatabase()
        if !ops.before.isEmpty { try db.graph.apply(ops.before, now: now) }
        if together {
            try db.graph.apply(ops.batch, now: now)
        } else {
            for op in ops.batch { try db.graph.apply([op], now: now) }
        }
        return (try db.graph.tableDigests(), try db.graph.check().map { "\($0)" })
    }

    /// `ops` applied together store what they store one by one, and `check` is clean.
    static func expectTogetherEqualsOneByOne(_ ops: (before: [GraphOperation], batch: [GraphOperation])) throws {
        let (together, problems) = try digests(ops, together: true)
        let (alone, _) = try digests(ops, together: false)
        #expect(problems.isEmpty)
        #expect(together == alone)
    }

    /// A database with `ops.before`, then `ops.batch` in one transaction.
    static func together(_ ops: (before: [GraphOperation], batch: [GraphOperation])) throws -> TemporaryDatabase {
        let db = try TemporaryDatabase()
        try db.graph.apply(ops.before, now: now)
        try db.graph.apply(ops.batch, now: now)
        return db
    }

    @Test("one transaction stores what one transaction per operation stores")
    func togetherEqualsOneByOne() async throws {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            let ops = Self.operations(seed: seed)
            let (together, problems) = try Self.digests(ops, together: true)
            let (alone, _) = try Self.digests(ops, together: false)
            #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(3))")
            let differing = together.keys.filter { together[$0] != alone[$0] }.sorted()
            #expect(differing.isEmpty, "seed \(seed): tables differ: \(differing)")
        }
    }

    /// An erasure moves the contribution of an earlier event to another of its identifiers
    /// (deferred), and the event is then retracted in the same transaction: the count taken
    /// away must be the one just added.
    @Test func retractingAnEventWhoseAnchorWasErasedInTheSameBatch() throws {
        let ops: (before: [GraphOperation], batch: [GraphOperation]) = (
            [event("email:a@x.com", "cookie:c1", id: "e1", ts: 1000, amount: 5)],
            [forget("email:a@x.com"), retract("e1")])
        try Self.expectTogetherEqualsOneByOne(ops)
        let db = try Self.together(ops)
        #expect(try db.graph.entityInfo(of: "cookie:c1")?.summary.events == 0)
        #expect(try db.graph.check().isEmpty)
    }

    /// Events of the same transaction, then an erasure of one of their identifiers and a
    /// retraction of one of them: both see the events' timeline entries and counts.
    @Test func erasingAndRetractingWhatTheSameBatchAdded() throws {
        let ops: (before: [GraphOperation], batch: [GraphOperation]) = (
            [event("email:b@x.com", id: "e0", ts: 500)],
            [event("email:a@x.com", "cookie:c1", id: "e1", ts: 1000, amount: 5), event("cookie:c1", "email:b@x.com", id: "e2", ts: 2000),
             forget("email:a@x.com"), retract("e2"), event("email:b@x.com", "cookie:c2", id: "e3", ts: 3000)])
        try Self.expectTogetherEqualsOneByOne(ops)
    }

    /// Unlinks and retracts leave the transaction's pending counts pending: a split whose parts
    /// hold uncounted events, a retraction of an event the same transaction stored (never
    /// counted), and one of an earlier event whose anchor has uncounted events (its bounds
    /// gathered again from the stored timeline) end as one operation per transaction does.
    @Test func splittingAndRetractingAroundPendingCounts() throws {
        let ops: (before: [GraphOperation], batch: [GraphOperation]) = (
            [event("email:a@x.com", "cookie:c1", id: "e0", ts: 9000, amount: 3), event("email:b@x.com", id: "e1", ts: 100)],
            [event("email:a@x.com", id: "e2", ts: 5000, amount: 7), event("cookie:c1", "email:b@x.com", id: "e3", ts: 8000, amount: 2),
             unlink("email:a@x.com", "cookie:c1"), retract("e3"), retract("e0"),
             event("email:b@x.com", "cookie:c2", id: "e4", ts: 7000), unlink("email:b@x.com", "cookie:c2")])
        try Self.expectTogetherEqualsOneByOne(ops)
        let db = try Self.together(ops)
        // a@x.com keeps e2 alone (e0 retracted): one event, 7.00, last seen at 5000.
        let a = try #require(try db.graph.entityInfo(of: "email:a@x.com"))
        #expect(a.summary.events == 1)
        #expect(a.summary.revenueMicros == 7_000_000)
        #expect(a.summary.lastSeen == 5000)
    }
}
