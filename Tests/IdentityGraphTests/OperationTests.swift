import Foundation
import IdentityGraph
import Testing

@Suite struct OperationTests {
    @Test func anEventLinksEveryPairOfItsIdentifiers() throws {
        let db = try TemporaryDatabase()
        let report = try db.graph.apply([event("email:a@x.com", "cookie:c-1", "device:d-1", id: "e1")])
        #expect(report.eventsStored == 1)
        #expect(report.identifiersCreated == 3)
        #expect(report.merges == 2)
        #expect(try db.graph.partition() == [["email:a@x.com", "cookie:c-1", "device:d-1"]])
        let stats = try db.graph.read { try $0.stats() }
        #expect(stats.links == 3)
        #expect(stats.entities == 1)
    }

    @Test func anEventWithOneIdentifierCreatesItAlone() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("cookie:c-1", id: "e1", ts: 5, amount: 2.5)])
        #expect(try db.graph.partition() == [["cookie:c-1"]])
        let info = try #require(try db.graph.entityInfo(of: "cookie:c-1"))
        #expect(info.summary.events == 1)
        #expect(info.summary.revenueMicros == 2_500_000)
        #expect(info.summary.firstSeen == 5)
    }

    @Test func mergeKeepsTheLargerEntityAndRedirectsTheOther() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "cookie:c-1"), event("email:a@x.com", "cookie:c-2"), event("crm:9")])
        let big = try #require(try db.graph.entity(of: "email:a@x.com"))
        let small = try #require(try db.graph.entity(of: "crm:9"))
        let report = try db.graph.apply([link("crm:9", "cookie:c-2")])
        #expect(report.merges == 1)
        #expect(try db.graph.entity(of: "crm:9") == big)
        try db.graph.read { reader throws in
            #expect(try reader.entityState(small) == .mergedInto(big))
            #expect(try reader.resolve(small)?.id == big)
            let merges = try reader.history(of: small).filter { $0.record.kind == .merge }
            #expect(merges.count == 1)
            #expect(merges.first?.record.entities == [big, small])
            #expect(merges.first?.record.cause == .link)
        }
    }

    @Test func selfLinkCreatesTheIdentifierOnlyOnce() throws {
        let db = try TemporaryDatabase()
        let report = try db.graph.apply([link("email:a@x.com", "EMAIL:A@X.COM")])
        #expect(report.identifiersCreated == 1)
        #expect(report.linksIgnored == 1)
        #expect(try db.graph.partition() == [["email:a@x.com"]])
        #expect(try db.graph.check().isEmpty)
    }

    @Test func unlinkSplitsAndLaterEvidenceLinksAgain() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "cookie:c-1", id: "e1"), event("cookie:c-1", "device:d-1", id: "e2")])
        let report = try db.graph.apply([unlink("cookie:c-1", "email:a@x.com")])
        #expect(report.unlinks == 1)
        #expect(report.splits == 1)
        #expect(try db.graph.partition() == [["email:a@x.com"], ["cookie:c-1", "device:d-1"]])
        try db.graph.apply([link("email:a@x.com", "cookie:c-1")])
        #expect(try db.graph.partition() == [["email:a@x.com", "cookie:c-1", "device:d-1"]])
        // Retracting e1 must not remove the new link's evidence: e1's evidence was already unlinked.
        try db.graph.apply([retract("e1")])
        #expect(try db.graph.partition() == [["email:a@x.com", "cookie:c-1", "device:d-1"]])
        #expect(try db.graph.check().isEmpty)
    }

    @Test func unlinkOfAnAbsentLinkIsCountedNotAnError() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com"), event("cookie:c-1")])
        let report = try db.graph.apply([unlink("email:a@x.com", "cookie:c-1"), unlink("email:nobody@x.com", "cookie:zz")])
        #expect(report.unknownUnlinks == 2)
        #expect(try db.graph.read { try $0.stats() }.identifiers == 2)  // unlink creates nothing
    }

    @Test func retractOfAnUnknownEventChangesNothing() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "cookie:c-1", id: "e1")])
        let report = try db.graph.apply([retract("never-seen"), retract("e1"), retract("e1")])
        #expect(report.unknownRetracts == 2)
        #expect(report.retracted == 1)
        // Identifiers stay; the event id stays recorded, so a replay does not bring it back.
        #expect(try db.graph.partition() == [["email:a@x.com"], ["cookie:c-1"]])
        let replay = try db.graph.apply([event("email:a@x.com", "cookie:c-1", id: "e1")])
        #expect(replay.duplicateEvents == 1)
        #expect(try db.graph.partition() == [["email:a@x.com"], ["cookie:c-1"]])
    }

    @Test func forgetOfAnUnknownIdentifierLeavesATombstone() throws {
        let db = try TemporaryDatabase()
        let first = try db.graph.apply([forget("email:nobody@x.com")])
        #expect(first.unknownForgets == 1)
        let later = try db.graph.apply([event("email:NOBODY@x.com", "cookie:c-1"), link("email:nobody@x.com", "crm:1")])
        #expect(later.erasedIdentifiersSkipped == 2)
        #expect(later.linksIgnored == 1)
        // The event loads without the erased identifier; the link creates neither end.
        #expect(try db.graph.partition() == [["cookie:c-1"]])
        #expect(try db.graph.read { try $0.stats() }.tombstones == 1)
    }

    @Test func forgetErasesEventsThatNamedOnlyItAndSplitsTheRest() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            event("email:a@x.com", "cookie:c-1", id: "e1", ts: 10, amount: 5),
            event("cookie:c-1", "phone:+15550001", id: "e2", ts: 20),
            event("cookie:c-1", id: "e3", ts: 30, amount: 7),
        ])
        let report = try db.graph.apply([forget("cookie:c-1")])
        #expect(report.forgotten == 1)
        #expect(report.eventsErased == 1)  // e3 named only the cookie
        #expect(report.splits == 1)
        #expect(try db.graph.partition() == [["email:a@x.com"], ["phone:+15550001"]])
        try db.graph.read { reader throws in
            #expect(try reader.stats().events == 2)
            let node = try #require(try reader.node(of: Identifier(type: "email", value: Array("a@x.com".utf8))))
            // e1 now names only the email, which became its anchor with its revenue.
            let events = try reader.timeline(of: node).compactMap { try reader.event($0.sequence) }
            #expect(events.map(\.eventID) == ["e1"])
            #expect(events.first?.nodes == [node])
        }
        let email = try #require(try db.graph.entityInfo(of: "email:a@x.com"))
        #expect(email.summary.revenueMicros == 5_000_000)
        #expect(try db.graph.check().isEmpty)
    }

    @Test func forgettingTheLastIdentifierErasesTheEntity() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com")])
        let entity = try #require(try db.graph.entity(of: "email:a@x.com"))
        try db.graph.apply([forget("email:a@x.com")])
        try db.graph.read { reader throws in
            #expect(try reader.entityState(entity) == .erased)
            #expect(try reader.stats().entities == 0)
        }
        #expect(try db.graph.check().isEmpty)
    }

    @Test func relateTypesBelongToNoEntityAndNeverMerge() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "ip:1.2.3.4"), event("email:b@x.com", "ip:1.2.3.4", "address:1 Main St")])
        #expect(try db.graph.partition() == [["email:a@x.com"], ["email:b@x.com"]])
        #expect(try db.graph.entity(of: "ip:1.2.3.4") == nil)
        try db.graph.read { reader throws in
            let ip = try #require(try reader.node(of: Identifier(type: "ip", value: Array("1.2.3.4".utf8))))
            #expect(try reader.links(of: ip).count == 3)  // a, b and the address
            #expect(try reader.nodeInfo(ip)?.role == .relate)
        }
    }

    @Test func ignoredTypesAreDroppedFromEventsAndLinks() throws {
        let db = try TemporaryDatabase(schema: Schema(types: ["session": TypePolicy(role: .ignore)]))
        let report = try db.graph.apply([
            event("email:a@x.com", "session:s-1", "cookie:c-1"),
            event("session:s-2"),
            link("session:s-1", "crm:1"),
        ])
        #expect(report.identifiersCreated == 2)
        #expect(report.eventsStored == 1)
        #expect(report.eventsWithoutIdentifiers == 1)
        #expect(report.linksIgnored == 1)
        #expect(try db.graph.partition() == [["email:a@x.com", "cookie:c-1"]])
        #expect(try db.graph.check().isEmpty)
    }

    @Test func anEventNamingOnlyRelateIdentifiersCountsTowardNoEntity() throws {
        let db = try TemporaryDatabase()
        let report = try db.graph.apply([event("ip:1.2.3.4", "address:1 Main St", id: "e1", amount: 3)])
        #expect(report.eventsStored == 1)
        #expect(try db.graph.partition().isEmpty)
        try db.graph.read { reader throws in
            #expect(try reader.stats().identifiersWithoutEntity == 2)
            let ip = try #require(try reader.node(of: Identifier(type: "ip", value: Array("1.2.3.4".utf8))))
            #expect(try reader.nodeSummary(ip).revenueMicros == 3_000_000)
        }
        #expect(try db.graph.check().isEmpty)
    }

    @Test func unicodeValuesRoundTrip() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:名前@例え.jp", "user_id:ユーザー1", "cookie:🍪")])
        #expect(try db.graph.partition() == [["email:名前@例え.jp", "user_id:ユーザー1", "cookie:🍪"]])
    }

    @Test func longValuesAreHashedInTheIndexButKeptWhole() throws {
        let db = try TemporaryDatabase()
        let long = String(repeating: "v", count: 1000)
        let longToo = String(repeating: "v", count: 999) + "w"
        try db.graph.apply([event("cookie:" + long, "email:a@x.com"), event("cookie:" + longToo)])
        #expect(try db.graph.partition() == [["cookie:" + long, "email:a@x.com"], ["cookie:" + longToo]])
        #expect(try db.graph.entity(of: "cookie:" + long) == db.graph.entity(of: "email:a@x.com"))
        #expect(try db.graph.check().isEmpty)
    }

    @Test func anInvalidOperationRejectsTheWholeBatch() throws {
        let db = try TemporaryDatabase()
        #expect(throws: GraphError.self) {
            try db.graph.apply([event("email:a@x.com"), event("phone:call me"), event("email:b@x.com")])
        }
        #expect(try db.graph.partition().isEmpty)
        do {
            try db.graph.apply([event("email:a@x.com"), event("email:   ")])
        } catch let GraphError.invalidOperation(index, reason) {
            #expect(index == 1)
            #expect(reason == .emptyValue(type: "email"))
        }
    }

    @Test func anEmptyEventIDIsNoEventID() throws {
        let db = try TemporaryDatabase()
        let report = try db.graph.apply([event("email:a@x.com", id: ""), event("email:a@x.com", id: ""), retract("")])
        #expect(report.eventsStored == 2)  // not deduplicated: an empty id names nothing
        #expect(report.unknownRetracts == 1)
        #expect(try db.graph.check().isEmpty)
    }

    @Test func duplicateEventIDsInOneBatchAreSkipped() throws {
        let db = try TemporaryDatabase()
        let report = try db.graph.apply([event("email:a@x.com", "cookie:c-1", id: "e1"), event("email:b@x.com", "cookie:c-1", id: "e1")])
        #expect(report.duplicateEvents == 1)
        #expect(try db.graph.partition() == [["email:a@x.com", "cookie:c-1"]])
    }

    @Test func summariesFollowMergesAndSplits() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            event("email:a@x.com", id: "o1", ts: 100, type: "order", amount: 10),
            event("cookie:c-1", id: "p1", ts: 50, type: "page_view"),
            event("email:a@x.com", "cookie:c-1", id: "l1", ts: 200, type: "login"),
        ])
        var info = try #require(try db.graph.entityInfo(of: "cookie:c-1"))
        #expect(info.summary.events == 3)
        #expect(info.summary.revenueMicros == 10_000_000)
        #expect(info.summary.firstSeen == 50)
        #expect(info.summary.lastSeen == 200)
        try db.graph.apply([retract("l1")])
        info = try #require(try db.graph.entityInfo(of: "cookie:c-1"))
        #expect(info.summary.events == 1)
        #expect(info.summary.firstSeen == 50)
        #expect(info.summary.lastSeen == 50)
        let email = try #require(try db.graph.entityInfo(of: "email:a@x.com"))
        #expect(email.summary.events == 1)
        #expect(email.summary.lastSeen == 100)
        #expect(try db.graph.check().isEmpty)
    }

    /// An entity's `updated` is the time of the last write that changed it (an event counted
    /// toward it, a merge), its `created` the earliest of what it was made from; counted per
    /// batch at its end, as the writer does, events and a merge in one batch included.
    @Test func anEntityKeepsWhenItWasCreatedAndLastChanged() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", "cookie:c-1", id: "e1"), event("email:b@x.com", id: "e2")], now: 1_000)
        try db.graph.apply([event("email:a@x.com", id: "e3", type: "order", amount: 5)], now: 2_000)
        var a = try #require(try db.graph.entityInfo(of: "email:a@x.com"))
        var b = try #require(try db.graph.entityInfo(of: "email:b@x.com"))
        #expect(a.created == 1_000 && a.updated == 2_000)
        #expect(a.summary.events == 2 && a.summary.orders == 1 && a.summary.revenueMicros == 5_000_000)
        #expect(b.created == 1_000 && b.updated == 1_000)
        #expect(b.summary.events == 1)
        // Both entities get an event, then merge, in one batch.
        try db.graph.apply([event("email:b@x.com", "phone:+15551234567", id: "e4"), event("cookie:c-1", id: "e5"), event("cookie:c-1", "phone:+15551234567", id: "e6")], now: 3_000)
        a = try #require(try db.graph.entityInfo(of: "email:a@x.com"))
        b = try #require(try db.graph.entityInfo(of: "email:b@x.com"))
        #expect(a == b)
        #expect(a.size == 4 && a.created == 1_000 && a.updated == 3_000)
        #expect(a.summary.events == 6 && a.summary.orders == 1)
        #expect(try db.graph.check().isEmpty)
    }

    @Test func theMapGrowsInsteadOfFailing() throws {
        let db = try TemporaryDatabase(mapSize: 64 * 1024)
        let events = (0..<3000).map { i in event("email:user\(i)@x.com", "cookie:c\(i)", id: "e\(i)") }
        try db.graph.apply(events)
        #expect(try db.graph.read { try $0.stats() }.entities == 3000)
        #expect(db.graph.storageUsage.mapSize > 64 * 1024)
        #expect(try db.graph.check().isEmpty)
    }

    @Test func aReaderKeepsItsSnapshotWhileABatchCommits() async throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com"), event("cookie:c-1")])
        let graph = db.graph!
        // The reader holds its snapshot on this thread while another thread commits a merge.
        try graph.read { reader throws in
            let before = try reader.entity(of: .id("cookie:c-1"))
            let done = DispatchSemaphore(value: 0)
            let writer = Thread {
                _ = try? graph.apply([link("email:a@x.com", "cookie:c-1")])
                done.signal()
            }
            writer.start()
            #expect(done.wait(timeout: .now() + 10) == .success)  // the writer was not blocked by the reader
            #expect(try reader.entity(of: .id("cookie:c-1")) == before)
            #expect(try reader.entity(of: .id("email:a@x.com")) != before)
            #expect(try reader.stats().links == 0)
        }
        // A new snapshot sees the merge.
        #expect(try graph.entity(of: "cookie:c-1") == graph.entity(of: "email:a@x.com"))
    }
}
