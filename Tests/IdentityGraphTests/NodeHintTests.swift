import Foundation
import Testing

@testable import IdentityGraph

/// ``NodeHints``: node ids looked up in a snapshot before a batch is applied change nothing in
/// what the batch writes, and are not used once a `forget` may have removed what they name.
struct NodeHintTests {
    /// The first day: people with an email, a cookie and a phone each, some sharing a cookie.
    private static let firstDay: [GraphOperation] = (0..<40).map { (i: Int) -> GraphOperation in
        let order = i % 3 == 0
        let amount: Double? = order ? 10 : nil
        let phone = "phone:+1555000\(1000 + i)"
        return event("email:p\(i)@x.com", "cookie:c\(i / 2)", phone, id: "d1-\(i)", ts: Int64(i), type: order ? "order" : "page_view", amount: amount)
    }

    /// A second day on the same people, with new identifiers, links between people, a replayed
    /// event and one `forget` in the middle (after which the hints must not be used).
    private static let secondDay: [GraphOperation] = (0..<40).flatMap { (i: Int) -> [GraphOperation] in
        var ops: [GraphOperation] = [event("email:p\(i)@x.com", "device:d\(i)", id: "d2-\(i)", ts: 100 + Int64(i), type: "order", amount: 5)]
        if i % 7 == 0 {
            let phone = "phone:+1555000\(1000 + i)", email = "email:p\((i + 5) % 40)@x.com"
            ops.append(event(phone, email, id: "d2-link-\(i)", ts: 200))
        }
        // A replayed event id (skipped: its identifiers' hints must be stepped over all the same).
        if i == 10 { ops.append(event("email:p4@x.com", "cookie:c30", "phone:+15550001001", id: "d2-3")) }
        if i == 20 { ops.append(forget("email:p23@x.com")) }
        if i == 25 { ops.append(event("email:p23@x.com", "cookie:c11", id: "d2-after-forget", ts: 300)) }
        return ops
    }

    private func prepared(_ ops: [GraphOperation], _ graph: IdentityGraph) throws -> [PreparedOperation] {
        try ops.map { try PreparedOperation($0, schema: graph.schema) }
    }

    /// Loads the first day, then the second with or without hints taken after the first.
    private func load(hinted: Bool, forgetBetween: Bool = false) throws -> (TemporaryDatabase, NodeHints) {
        let db = try TemporaryDatabase()
        try db.graph.apply(Self.firstDay, now: 1_000)
        let second = try prepared(Self.secondDay, db.graph)
        let hints = try db.graph.nodeHints(for: second)
        if forgetBetween { try db.graph.apply([forget("email:p3@x.com")], now: 1_500) }
        try db.graph.apply(prepared: second, now: 2_000, hints: hinted ? hints : nil)
        return (db, hints)
    }

    @Test func hintsChangeNothingThatIsWritten() throws {
        let (plain, _) = try load(hinted: false)
        let (hinted, hints) = try load(hinted: true)
        // Hints cover the events before the forget (the writer stops using them there): 25
        // events, 51 identifiers; the snapshot knew the first day's (21 emails, 3 phones and 3
        // emails of the links, the replayed event's email and phone), not the devices or c30.
        #expect(hints.nodes.count == 51)
        #expect(hints.nodes.filter { $0 != 0 }.count == 29)
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
        // The event after the forget did not bring the erased email back.
        #expect(try hinted.graph.entity(of: "email:p23@x.com") == nil)
    }

    /// A `forget` committed between the snapshot and the batch: the hints are not used (the
    /// erased identifier's node would be written into the second day's events otherwise).
    @Test func hintsFromBeforeAForgetAreNotUsed() throws {
        let (plain, _) = try load(hinted: false, forgetBetween: true)
        let (hinted, _) = try load(hinted: true, forgetBetween: true)
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
        #expect(try hinted.graph.entity(of: "email:p3@x.com") == nil)
    }
}
