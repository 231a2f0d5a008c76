import Foundation
import Testing

@testable import IdentityGraph

/// ``NodeHints``: node ids and links looked up in a snapshot before a batch is applied change
/// nothing in what the batch writes, and are not used once a `forget` (nodes), an `unlink`, a
/// `retract` or a `forget` (links) may have removed what they name.
struct NodeHintTests {
    /// The first day: people with an email, a cookie and a phone each, some sharing a cookie;
    /// the last person's email is then forgotten.
    private static let firstDay: [GraphOperation] = (0..<40).map { (i: Int) -> GraphOperation in
        let order = i % 3 == 0
        let amount: Double? = order ? 10 : nil
        let phone = "phone:+1555000\(1000 + i)"
        return event("email:p\(i)@x.com", "cookie:c\(i / 2)", phone, id: "d1-\(i)", ts: Int64(i), type: order ? "order" : "page_view", amount: amount)
    } + [forget("email:p39@x.com")]

    /// A second day on the same people, with new identifiers, links between people, evidence
    /// for links that exist, a replayed event, a retract (after which link hints must not be
    /// used) and a forget (after which no hint must be). `controls: false` leaves the retract
    /// and the forget out (the events are the same).
    private static func secondDay(controls: Bool = true) -> [GraphOperation] {
        (0..<40).flatMap { (i: Int) -> [GraphOperation] in
            var ops: [GraphOperation] = [event("email:p\(i)@x.com", "device:d\(i)", id: "d2-\(i)", ts: 100 + Int64(i), type: "order", amount: 5)]
            if i % 7 == 0 {
                let phone = "phone:+1555000\(1000 + i)", email = "email:p\((i + 5) % 40)@x.com"
                ops.append(event(phone, email, id: "d2-link-\(i)", ts: 200))
            }
            // Evidence for a link of the first day.
            if i % 4 == 1 { ops.append(event("email:p\(i)@x.com", "cookie:c\(i / 2)", id: "d2-again-\(i)", ts: 150)) }
            // An erased identifier among linked ones: the writer leaves it out, so the event's
            // pairs are not the hints' (c0–p2 no, c0–p39 no, c0–p1 yes; the writer's p2–p1 is no).
            if i == 3 { ops.append(event("cookie:c0", "email:p2@x.com", "email:p39@x.com", "email:p1@x.com", id: "d2-tomb", ts: 120)) }
            // A replayed event id (skipped: its identifiers' hints must be stepped over all the same).
            if i == 10 { ops.append(event("email:p4@x.com", "cookie:c30", "phone:+15550001001", id: "d2-3")) }
            // The only evidence of p12–c6 goes, and comes back.
            if i == 15 && controls { ops.append(retract("d1-12")) }
            if i == 17 { ops.append(event("email:p12@x.com", "cookie:c6", id: "d2-relink", ts: 250)) }
            if i == 20 && controls { ops.append(forget("email:p23@x.com")) }
            if i == 25 { ops.append(event("email:p23@x.com", "cookie:c11", id: "d2-after-forget", ts: 300)) }
            return ops
        }
    }

    private func prepared(_ ops: [GraphOperation], _ graph: IdentityGraph) throws -> [PreparedOperation] {
        try ops.map { try PreparedOperation($0, schema: graph.schema) }
    }

    /// Loads the first day, then the second with or without hints taken after the first (over
    /// the second day with or without its controls), with `between` applied in between.
    private func load(hinted: Bool, hintsWithoutControls: Bool = false, between: [GraphOperation] = []) throws -> (TemporaryDatabase, NodeHints) {
        let db = try TemporaryDatabase()
        try db.graph.apply(Self.firstDay, now: 1_000)
        let second = try prepared(Self.secondDay(), db.graph)
        let hints = try db.graph.nodeHints(for: hintsWithoutControls ? prepared(Self.secondDay(controls: false), db.graph) : second)
        if !between.isEmpty { try db.graph.apply(between, now: 1_500) }
        try db.graph.apply(prepared: second, now: 2_000, hints: hinted ? hints : nil)
        return (db, hints)
    }

    @Test func hintsChangeNothingThatIsWritten() throws {
        let (plain, _) = try load(hinted: false)
        let (hinted, hints) = try load(hinted: true)
        // Node hints cover the events before the forget, link hints those before the retract;
        // the snapshot knew the first day's identifiers and links, not the devices or c30.
        let events = Self.secondDay().prefix { if case .forget = $0 { false } else { true } }.compactMap { op -> Int? in
            if case .event(let e) = op { e.identifiers.count } else { nil }
        }
        #expect(hints.nodes.count == events.reduce(0, +))
        #expect(hints.nodes.contains(0) && hints.nodes.filter { $0 != 0 }.count > hints.nodes.count / 2)
        let pairsBeforeRetract = Self.secondDay().prefix { if case .retract = $0 { false } else { true } }.reduce(0) { total, op in
            if case .event(let e) = op { total + e.identifiers.count * (e.identifiers.count - 1) / 2 } else { total }
        }
        #expect(hints.links.count == pairsBeforeRetract)
        #expect(hints.links.filter { $0 }.count == 5)  // d2-tomb's c0–p1, d2-again-1, -5, -9, -13
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
        // The event after the forget did not bring the erased email back; the link the retract
        // took came back with the event after it.
        #expect(try hinted.graph.entity(of: "email:p23@x.com") == nil)
        #expect(try hinted.graph.entity(of: "email:p12@x.com") == hinted.graph.entity(of: "cookie:c6"))
    }

    /// Hints taken over the batch without its retract and forget (so they go on past them):
    /// the writer stops using link hints at the retract and all hints at the forget.
    @Test func theBatchsOwnRetractAndForgetEndTheHints() throws {
        let (plain, _) = try load(hinted: false)
        let (hinted, hints) = try load(hinted: true, hintsWithoutControls: true)
        #expect(hints.links.filter { $0 }.count > 5)  // d2-relink's pair too
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
    }

    /// A `forget` committed between the snapshot and the batch: the hints are not used (the
    /// erased identifier's node would be written into the second day's events otherwise).
    @Test func hintsFromBeforeAForgetAreNotUsed() throws {
        let (plain, _) = try load(hinted: false, between: [forget("email:p3@x.com")])
        let (hinted, _) = try load(hinted: true, between: [forget("email:p3@x.com")])
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
        #expect(try hinted.graph.entity(of: "email:p3@x.com") == nil)
    }

    /// A retract committed between the snapshot and the batch takes a link the hints name:
    /// the link hints are not used (evidence would be counted for a link that is gone).
    @Test func linkHintsFromBeforeARetractAreNotUsed() throws {
        let (plain, _) = try load(hinted: false, between: [retract("d1-9")])
        let (hinted, _) = try load(hinted: true, between: [retract("d1-9")])
        #expect(try plain.graph.tableDigests() == hinted.graph.tableDigests())
        #expect(try hinted.graph.check().isEmpty)
    }
}
