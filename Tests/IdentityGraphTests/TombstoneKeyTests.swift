import Foundation
import Testing

@testable import IdentityGraph

/// ``IdentityGraph/addTombstoneKeys(to:)``: the keyed hashes of identifiers computed where
/// operations are prepared are the ones the writer computes, so erased identifiers stay
/// erased and nothing else that is written changes.
struct TombstoneKeyTests {
    private static let history: [GraphOperation] = [
        event("email:a@x.com", "cookie:c-1", id: "h1", ts: 1),
        event("email:b@x.com", "cookie:c-2", id: "h2", ts: 2),
        forget("email:a@x.com"),
        forget("cookie:never-seen"),
    ]

    /// Events naming erased identifiers (each left out), known ones and new ones.
    private static let later: [GraphOperation] = [
        event("email:a@x.com", "cookie:c-3", id: "l1", ts: 10),
        event("cookie:never-seen", "email:b@x.com", "cookie:c-4", id: "l2", ts: 11),
        event("email:new@x.com", id: "l3", ts: 12),
        event("email:a@x.com", id: "l4", ts: 13),
        link("email:new@x.com", "cookie:c-3"),
    ]

    @Test func precomputedKeysStoreWhatTheWriterWouldHave() throws {
        let plain = try TemporaryDatabase()
        let keyed = try TemporaryDatabase()
        for db in [plain, keyed] { try db.graph.apply(Self.history, now: 1_000) }

        let plainReport = try plain.graph.apply(prepared: plain.graph.prepare(Self.later), now: 2_000)

        var operations = try keyed.graph.prepare(Self.later)
        try keyed.graph.addTombstoneKeys(to: &operations)
        let expected = Keys.Tombstones(key: keyed.graph.tombstoneKey)
        for op in operations {
            guard case .event(let e) = op else { continue }
            #expect(e.tombstoneKeys == e.identifiers.flatMap { expected.key($0) })
        }
        let keyedReport = try keyed.graph.apply(prepared: operations, now: 2_000)

        #expect(plainReport.erasedIdentifiersSkipped == 3)
        #expect(keyedReport == plainReport)
        #expect(try keyed.graph.tableDigests() == plain.graph.tableDigests())
        #expect(try keyed.graph.check().isEmpty)
        #expect(try keyed.graph.partition() == [["cookie:c-2", "cookie:c-4", "email:b@x.com"], ["cookie:c-3", "email:new@x.com"], ["cookie:c-1"]])
    }

    /// Without tombstones nothing is computed; a `forget` applied through the same graph makes
    /// it compute them from then on, before its transaction commits.
    @Test func keysOnlyOnceTheDatabaseHasTombstones() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", id: "h1")], now: 1_000)
        var before = try db.graph.prepare(Self.later)
        try db.graph.addTombstoneKeys(to: &before)
        #expect(before.allSatisfy { if case .event(let e) = $0 { e.tombstoneKeys.isEmpty } else { true } })

        var during: [PreparedOperation] = []
        try db.graph.withWriter(now: 1_500) { writer, _ in
            try writer.apply(PreparedOperation(forget("email:a@x.com"), schema: db.graph.schema))
            during = try db.graph.prepare(Self.later)
            try db.graph.addTombstoneKeys(to: &during)
        }
        #expect(during.allSatisfy { if case .event(let e) = $0 { e.tombstoneKeys.count == 32 * e.identifiers.count } else { true } })
    }

    /// A key that is not the identifier's is used as given: the test above would see a wrong
    /// one (here the erased email comes back), so it checks the writer's own keys are the ones.
    @Test func theWriterUsesTheKeysItIsGiven() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply(Self.history, now: 1_000)
        var operations = try db.graph.prepare([event("email:a@x.com", "cookie:c-9", id: "x1", ts: 20)])
        guard case .event(var e) = operations[0] else { Issue.record("not an event"); return }
        e.tombstoneKeys = [UInt8](repeating: 7, count: 32 * e.identifiers.count)
        operations[0] = .event(e)
        let report = try db.graph.apply(prepared: operations, now: 2_000)
        #expect(report.erasedIdentifiersSkipped == 0)
        #expect(try db.graph.partition().contains(["cookie:c-9", "email:a@x.com"]))
    }
}
