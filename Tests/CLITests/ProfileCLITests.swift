import Foundation
import Testing

/// Customer 360 from the command line: profiles as of a date, segments exported, households.
@Suite struct ProfileCLITests {
    static let archive = """
        {"event_id":"1","ts":"2024-03-01T10:00:00Z","source":"crm","type":"crm_update","ids":{"email":"ann@x.com","crm":"7"},"props":{"name":"Ann Lee","country":"FR"}}
        {"event_id":"2","ts":"2024-11-20T10:00:00Z","source":"shop","type":"order","ids":{"email":"ann@x.com","address":"1 Elm St"},"props":{"amount":1200,"sku":"TV-1"}}
        {"event_id":"3","ts":"2024-02-01T10:00:00Z","source":"web","type":"order","ids":{"email":"bo@x.com","address":"1 Elm St"},"props":{"amount":30}}
        {"event_id":"4","ts":"2024-12-01T10:00:00Z","source":"web","type":"page_view","ids":{"cookie":"c-9"},"props":{"sku":"TV-1","utm_campaign":"xmas"}}
        {"type":"identify","userId":"u-5","traits":{"email":"cy@x.com","name":"Cy","city":"Lyon"},"timestamp":"2024-12-02T10:00:00Z"}
        """

    @Test func profilesSegmentsAndHouseholdsFromTheCommandLine() throws {
        let s = Scratch()
        let db = s.path + "/db"
        #expect(try CLI.run(["load", "--db", db, "-"], stdin: Self.archive).status == 0)
        // As of the end of 2024: Ann ordered 11 days before (1,200: a hero), Bo 11 months before (waiting).
        let ann = try CLI.run(["query", "--db", db, "--as-of", "2024-12-01", "--format", "csv", "ENTITY OF email:ann@x.com"])
        #expect(ann.status == 0)
        #expect(ann.stdout.contains("lifecycle,hero"))
        #expect(ann.stdout.contains("profile.name,\"Ann Lee (crm, 2024-03-01T10:00:00.000Z, 1×, most_recent)\""))
        #expect(ann.stdout.contains("orders,1"))
        let cy = try CLI.run(["query", "--db", db, "--format", "csv", "ENTITY OF user_id:u-5"]).stdout
        #expect(cy.contains("profile.city,\"Lyon (segment"))  // Segment traits feed the golden record
        let heroes = try CLI.run(["query", "--db", db, "--as-of", "2024-12-01", "--format", "csv",
                                  "FIND ENTITIES WHERE lifecycle = 'hero' ORDER BY revenue DESC LIMIT 10"]).stdout
        #expect(heroes.split(separator: "\n").count == 2)  // header + Ann
        // Segments: defined in the shell, exported by name, evaluated as of the given date.
        let script = "CREATE SEGMENT waiting AS FIND ENTITIES WHERE lifecycle = 'waiting'\nSEGMENTS\n"
        let shell = try CLI.run(["shell", "--db", db, "--as-of", "2024-12-01"], stdin: script)
        #expect(shell.status == 0)
        #expect(shell.stdout.contains("segment waiting created: 1 entity matches now"))
        let exported = try CLI.run(["export", "--db", db, "--segment", "waiting", "--as-of", "2024-12-01"]).stdout
        #expect(exported == "identifier,entity\n" + exported.split(separator: "\n").dropFirst().map { $0 + "\n" }.joined())
        #expect(exported.contains("email:bo@x.com,"))
        #expect(!exported.contains("ann@x.com"))
        let missing = try CLI.run(["export", "--db", db, "--segment", "nothing"])
        #expect(missing.status != 0 && missing.stderr.contains("no segment named nothing"))
        let badDate = try CLI.run(["query", "--db", db, "--as-of", "tomorrow", "STATS"])
        #expect(badDate.status == 2 && badDate.stderr.contains("--as-of 'tomorrow' is not a time"))
        // Profiles exported for downstream systems: one JSON object (or CSV row) per entity.
        let lines = try CLI.run(["export", "--db", db, "--profiles", "--format", "ndjson", "--as-of", "2024-12-01"]).stdout.split(separator: "\n")
        let records = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let annRecord = records.first { ($0["identifiers"] as? [String])?.contains("email:ann@x.com") == true }
        #expect(annRecord?["lifecycle"] as? String == "hero")
        #expect(((annRecord?["golden"] as? [String: Any])?["name"] as? [String: Any])?["value"] as? String == "Ann Lee")
        #expect((annRecord?["products"] as? [String: Int]) == [:])  // TV-1 was ordered, not viewed, by Ann
        #expect(records.count == Int(try CLI.run(["query", "--db", db, "--format", "csv", "COUNT ENTITIES"]).stdout.split(separator: "\n")[1]))
        let waitingCSV = try CLI.run(["export", "--db", db, "--profiles", "--segment", "waiting", "--as-of", "2024-12-01"]).stdout
        let rows = waitingCSV.split(separator: "\n")
        #expect(rows.first?.hasPrefix("entity,lifecycle,events,orders,revenue,aov,") == true && rows.first?.contains(",country,") == true)
        #expect(rows.count == 2 && rows[1].contains(",waiting,") && rows[1].hasSuffix("email:bo@x.com"))
        // Households: Ann and Bo share 1 Elm St.
        let household = try CLI.run(["query", "--db", db, "--format", "csv", "HOUSEHOLD OF email:ann@x.com"]).stdout
        #expect(household.contains("email:bo@x.com") && household.contains("address:1 Elm St"))
        #expect(try CLI.run(["check", "--db", db]).status == 0)
    }
}

/// Readers never wait for the writer: a query during a bulk load (one long write transaction)
/// answers at once from the last committed snapshot.
@Suite struct ConcurrentReadTests {
    @Test func aQueryDuringABulkLoadDoesNotWaitForIt() throws {
        let s = Scratch()
        let db = s.path + "/db", archive = s.path + "/events.ndjson"
        #expect(try CLI.run(["generate", "--events", "300000", "--output", archive]).status == 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        // The load reads the archive from a pipe that this test feeds: while the second half is
        // held back, the load is inside its bulk transaction, whatever the machine's speed (a
        // load of the file itself could finish before the query started, on a fast machine).
        signal(SIGPIPE, SIG_IGN)  // a load that died makes the writes below throw, not kill us
        let load = Process()
        load.executableURL = URL(fileURLWithPath: CLI.binary)
        load.arguments = ["load", "--json", "--db", db, "-"]
        let input = Pipe(), output = Pipe()  // the summary, a few hundred bytes at the end
        load.standardInput = input
        load.standardOutput = output
        load.standardError = FileHandle.nullDevice
        try load.run()
        defer { if load.isRunning { kill(load.processIdentifier, SIGKILL) }; load.waitUntilExit() }
        let half = bytes[..<(bytes[(bytes.count / 2)...].firstIndex(of: 0x0A)! + 1)]
        // Returns once the load has read all but what the pipe holds (64 KiB): it is parsing and
        // resolving in its one write transaction.
        try input.fileHandleForWriting.write(contentsOf: half)
        let stats = try CLI.run(["stats", "--db", db, "--json"])
        let stillLoading = load.isRunning
        #expect(stats.status == 0)
        let counts = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(counts?["events"] as? Int == 0)  // the snapshot before the bulk transaction commits
        #expect(stillLoading, "the load ended before the rest of its input")
        try input.fileHandleForWriting.write(contentsOf: bytes[half.endIndex...])
        try input.fileHandleForWriting.close()
        load.waitUntilExit()
        #expect(load.terminationStatus == 0)
        let summary = try JSONSerialization.jsonObject(with: output.fileHandleForReading.readDataToEndOfFile()) as? [String: Any]
        #expect(summary?["bulk_records"] as? Int == 300_000)  // one bulk transaction, which the query overlapped
        let after = try JSONSerialization.jsonObject(with: Data(try CLI.run(["stats", "--db", db, "--json"]).stdout.utf8)) as? [String: Any]
        #expect(after?["events"] as? Int == 300_000)
    }
}
