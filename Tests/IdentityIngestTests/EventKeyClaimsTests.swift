@testable import IdentityGraph
import IdentityIngest
import Testing

/// A bulk load claims event ids on the parsing thread, a batch at a time, or in the writer one
/// operation at a time; both must say what the incremental writer would do with each event.
@Suite struct EventKeyClaimsTests {
    /// Lines with first ids, repeats, an id whose first event names no identifier (`tracker` is
    /// ignored: the event only looks, and the next event with that id is no duplicate), events
    /// without an id, and an empty id.
    static let lines = [
        #"{"event_id":"e1","ids":{"email":"a@x.com"}}"#,
        #"{"event_id":"e2","ids":{"cookie":"c-1"}}"#,
        #"{"event_id":"e1","ids":{"email":"b@x.com"}}"#,
        #"{"ids":{"cookie":"c-2"}}"#,
        #"{"event_id":"e3","ids":{"tracker":"t"}}"#,
        #"{"event_id":"e3","ids":{"cookie":"c-3"}}"#,
        #"{"event_id":"e3","ids":{"cookie":"c-4"}}"#,
        #"{"event_id":"","ids":{"cookie":"c-5"}}"#,
        #"{"event_id":"e2","ids":{"tracker":"t"}}"#,
        #"{"event_id":"e4","ids":{"tracker":"t"}}"#,
        #"{"event_id":"e4","ids":{"tracker":"t"}}"#,
    ]
    static let schema: Schema = {
        var s = Schema.builtIn
        s.types["tracker"] = TypePolicy(role: .ignore)
        return s
    }()
    static let expected: [EventKeyClaims.Outcome] = [.first, .first, .duplicate, .unkeyed, .first, .first, .duplicate, .unkeyed, .duplicate, .first, .first]

    @Test func aBatchAndOneOperationAtATimeClaimAlike() throws {
        var batch = EventBatch(schema: Self.schema)
        for line in Self.lines {
            let control = try Array(line.utf8).withUnsafeBytes { try RecordParser.parse($0, into: &batch) }
            #expect(control == nil)
        }
        var outcomes: [EventKeyClaims.Outcome] = []
        EventKeyClaims().claim(batch, into: &outcomes)
        #expect(outcomes == Self.expected)
        #expect(batch.count == Self.lines.count)

        let single = EventKeyClaims()
        let one = try (0..<batch.count).map { i -> EventKeyClaims.Outcome in
            guard case .event(let event) = batch.preparedOperation(at: i) else { throw ClaimTestError.notAnEvent }
            return single.claim(event)
        }
        #expect(one == Self.expected)
        // Only events with identifiers take their id: e1, e2, e3 (at its second event).
        #expect(single.table.count == 3)
    }

    /// Many batches over one table: an id claimed in an earlier batch is a duplicate in a later one.
    @Test func claimsCarryAcrossBatches() throws {
        let claims = EventKeyClaims()
        var outcomes: [EventKeyClaims.Outcome] = []
        for (k, line) in Self.lines.enumerated() {
            var batch = EventBatch(schema: Self.schema)
            try Array(line.utf8).withUnsafeBytes { _ = try RecordParser.parse($0, into: &batch) }
            claims.claim(batch, into: &outcomes)
            #expect(outcomes == [Self.expected[k]], "line \(k + 1)")
        }
    }

    enum ClaimTestError: Error { case notAnEvent }
}
