import IdentityGraph
import IdentityQuery
import Testing

@Suite struct ExecutorTests {
    func cells(_ result: QueryResult, _ column: String) -> [String] {
        guard let i = result.columns.firstIndex(of: column) else { return [] }
        return result.rows.map { $0[i].description }
    }

    @Test func aMergedAwayIDFollowsItsRedirect() throws {
        let db = try SampleDatabase()
        let bob = try #require(try db.graph.read { try $0.entity(of: RawIdentifier(type: "email", value: "bob@example.com")) })
        _ = try db.executor.run("LINK email:bob@example.com TO crm:42")
        let result = try db.executor.run("ENTITY \(bob)")
        let alice = try #require(try db.graph.read { try $0.entity(of: RawIdentifier(type: "crm", value: "42")) })
        if alice != bob {
            #expect(result.notes.first?.contains("was merged into") == true)
        }
        #expect(result.rows.first?[1] == .int(Int64(alice)))
    }

    @Test func eventsAreNewestFirstAndFiltered() throws {
        let db = try SampleDatabase()
        let all = try db.executor.run("EVENTS OF email:alice@example.com")
        #expect(cells(all, "event_id") == ["e6", "e4", "e3", "e2", "e1"])
        #expect(cells(try db.executor.run("EVENTS OF email:alice@example.com TYPE app_open"), "event_id") == ["e6", "e4"])
        #expect(cells(try db.executor.run("EVENTS OF email:alice@example.com SINCE '2024-01-02' UNTIL '2024-01-03T10:00:00Z'"), "event_id") == ["e3", "e2"])
        #expect(cells(try db.executor.run("EVENTS OF email:alice@example.com LIMIT 2"), "event_id") == ["e6", "e4"])
        #expect(cells(try db.executor.run("EVENTS OF email:alice@example.com TYPE nothing"), "event_id") == [])
        // An identifier in no entity has its own timeline.
        #expect(cells(try db.executor.run("EVENTS OF ip:203.0.113.7"), "event_id") == ["e5", "e1"])
    }

    @Test func pathExplainsWithEventsAndLinkRecords() throws {
        let db = try SampleDatabase()
        _ = try db.executor.run("LINK crm:42 TO loyalty:L-7")
        let path = try db.executor.run("PATH cookie:c-1 TO loyalty:L-7")
        #expect(cells(path, "to") == ["email:alice@example.com", "crm:42", "loyalty:L-7"])
        #expect(cells(path, "events") == ["e2@2024-01-02T10:00:00.000Z", "e3@2024-01-03T10:00:00.000Z", "1 link record"])
        let across = try db.executor.run("PATH email:alice@example.com TO email:bob@example.com")
        #expect(across.notes.first?.contains("different entities") == true)
        #expect(cells(across, "to").contains("address:1 Rue Verte, Paris"))  // the shortest relating chain
    }

    @Test func findOrdersAndCountsMatch() throws {
        let db = try SampleDatabase()
        let found = try db.executor.run("FIND ENTITIES ORDER BY revenue DESC")
        #expect(cells(found, "revenue") == ["19.50", "5.00"])  // two entities: the IP only relates them
        #expect(try db.executor.run("COUNT ENTITIES").rows == [[.int(2)]])
        #expect(try db.executor.run("COUNT ENTITIES WHERE HAS device").rows == [[.int(1)]])
        #expect(try db.executor.run("COUNT ENTITIES WHERE NOT HAS device AND events.login >= 1").rows == [[.int(1)]])
        #expect(try db.executor.run("COUNT ENTITIES WHERE first_seen >= '2024-01-05'").rows == [[.int(1)]])
        let limited = try db.executor.run("FIND ENTITIES ORDER BY size LIMIT 1")
        #expect(limited.rows.count == 1)
        #expect(limited.notes == ["2 entities match; LIMIT 1 shown"])
    }

    @Test func writeStatementsChangeTheGraph() throws {
        let db = try SampleDatabase()
        #expect(try db.executor.run("UNLINK cookie:c-1 email:alice@example.com").notes == ["link removed; 1 split"])
        #expect(try db.graph.check().isEmpty)
        #expect(try db.executor.run("UNLINK cookie:c-1 email:alice@example.com").notes == ["no such link"])
        #expect(try db.executor.run("RETRACT 'nope'").notes == ["no such event"])
        #expect(try db.executor.run("FORGET email:nobody@x.com").notes.first?.contains("tombstone") == true)
        #expect(throws: QueryError.self) { try db.executor.run("LINK phone:none TO email:a@x.com") }
    }

    @Test func previewTellsWhatWouldHappenAndWritesNothing() throws {
        let db = try SampleDatabase()
        let before = try db.graph.read { try $0.stats() }
        let merge = try db.executor.run(#"PREVIEW {"ids":{"email":"bob@example.com","crm":"42"}}"#)
        #expect(cells(merge, "change").contains("merge"))
        #expect(merge.notes.first?.contains("cause 1 merge") == true)
        let split = try db.executor.run(#"PREVIEW {"op":"unlink","a":"cookie:c-1","b":"email:alice@example.com"}"#)
        #expect(cells(split, "change").contains("split"))
        let fresh = try db.executor.run(#"PREVIEW {"ids":{"email":"new@x.com"}}"#)
        #expect(cells(fresh, "detail") == ["new → entity \(try #require(fresh.rows.first?[2].description.split(separator: " ").last))"])
        #expect(try db.graph.read { try $0.stats() } == before)  // nothing was written
        #expect(throws: QueryError.self) { try db.executor.run(#"PREVIEW {"ids":{"phone":"nope"}}"#) }
        #expect(throws: QueryError.self) { try Executor(graph: db.graph).run(#"PREVIEW {"ids":{"email":"a@x.com"}}"#) }
    }

    @Test func unknownThingsSaySoPlainly() throws {
        let db = try SampleDatabase()
        #expect(try db.executor.run("RESOLVE email:who@x.com").notes == ["unknown identifier email:who@x.com"])
        #expect(throws: QueryError("unknown entity 999")) { try db.executor.run("ENTITY 999") }
        #expect(throws: QueryError.self) { try db.executor.run("ENTITY OF ip:203.0.113.7") }
        #expect(throws: QueryError("unknown identifier cookie:zz")) { try db.executor.run("NEIGHBORS cookie:zz") }
    }

    @Test func explainCountsWhatItRead() throws {
        let db = try SampleDatabase()
        let plan = try db.executor.run("EXPLAIN RESOLVE email:alice@example.com")
        #expect(plan.columns == ["plan", "detail"])
        #expect(cells(plan, "plan").contains("ident lookups"))
        #expect(cells(plan, "plan").last == "time")
    }

    @Test func maxRowsSaysWhatItHid() throws {
        let db = try SampleDatabase()
        let result = try db.executor.run("EVENTS OF email:alice@example.com")
        let text = ResultFormatter(mode: .table, maxRows: 2).render(result)
        #expect(text.hasSuffix("5 rows (2 shown; .maxrows changes it)\n"))
        #expect(ResultFormatter(mode: .line, maxRows: 1).render(result).hasSuffix("5 rows (1 shown; .maxrows changes it)\n"))
    }
}
