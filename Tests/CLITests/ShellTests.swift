import Foundation
import Testing

/// The shell as users meet it: through a pseudo-terminal (util-linux `script` gives it one, so
/// libedit's prompt, editing and history run), and as a script runner.
@Suite(.serialized) struct ShellTests {
    func sampleDatabase(_ s: Scratch) throws -> String {
        let db = s.path + "/db"
        let archive = s.write("a.ndjson", """
            {"event_id":"e1","ts":"2024-01-01T10:00:00Z","ids":{"cookie":"c-1","email":"Alice@Example.com"}}
            {"event_id":"e2","ts":"2024-01-02T10:00:00Z","type":"order","ids":{"email":"alice@example.com","crm":"42"},"props":{"amount":19.5}}
            {"event_id":"e3","ts":"2024-01-03T10:00:00Z","ids":{"email":"bob@example.com","ip":"10.0.0.1"}}
            """)
        #expect(try CLI.run(["load", "-q", "--db", db, archive]).status == 0)
        return db
    }

    @Test func theInteractiveShellRunsInAPseudoTerminal() throws {
        let s = Scratch()
        let db = try sampleDatabase(s)
        let input = "RESOLVE email:ALICE@example.com\nENTITY OF 42\n.mode csv\nIDENTIFIERS OF crm:42\n.quit\n"
        let result = try CLI.run(["-qfec", "\(CLI.binary) shell --db \(db)", "/dev/null"], stdin: input,
                                 environment: ["HOME": s.path], executable: "/usr/bin/script")
        let screen = result.stdout.replacingOccurrences(of: "\r", with: "")
        #expect(screen.contains("idgraph> RESOLVE email:ALICE@example.com"))
        #expect(screen.contains("email:alice@example.com       1     3"))
        #expect(screen.contains("            ^^\nerror: expected an identifier type:value"))
        #expect(screen.contains("identifier,type,links,events\ncookie:c-1,cookie,1,1\ncrm:42,crm,1,1\nemail:alice@example.com,email,2,2"))
        // The history file now holds what was typed (libedit escapes spaces as \040).
        let history = try String(contentsOfFile: s.path + "/.idgraph_history", encoding: .utf8)
        #expect(history.replacingOccurrences(of: "\\040", with: " ").contains("IDENTIFIERS OF crm:42"))
    }

    @Test func scriptsRunEveryLineAndBailStopsAtTheFirstError() throws {
        let s = Scratch()
        let db = try sampleDatabase(s)
        let script = "-- a comment\nCOUNT ENTITIES\nRESOLV oops\nRESOLVE crm:42\n"
        let lenient = try CLI.run(["shell", "--db", db], stdin: script)
        #expect(lenient.status == 0)
        #expect(lenient.stdout.contains("crm:42"))
        #expect(lenient.stderr.contains("unknown statement"))
        let strict = try CLI.run(["shell", "--db", db, "--bail"], stdin: script)
        #expect(strict.status == 1)
        #expect(!strict.stdout.contains("crm:42"))
    }

    @Test func dotCommandsRedirectReadAndDraw() throws {
        let s = Scratch()
        let db = try sampleDatabase(s)
        let inner = s.write("inner.idg", "RESOLVE crm:42\n")
        let script = ".once \(s.path)/once.txt\nSTATS\n.read \(inner)\n.dot email:alice@example.com \(s.path)/g.dot\n.mode markdown\n.maxrows 1\nEVENTS OF crm:42\n.nonsense\n"
        let result = try CLI.run(["shell", "--db", db], stdin: script)
        let once = try String(contentsOfFile: s.path + "/once.txt", encoding: .utf8)
        #expect(once.contains("identifiers"))
        #expect(!result.stdout.contains("tombstones"))  // STATS went to the file only
        #expect(result.stdout.contains("crm:42"))       // .read ran the inner script
        let dot = try String(contentsOfFile: s.path + "/g.dot", encoding: .utf8)
        #expect(dot.hasPrefix("graph entity_"))
        #expect(dot.contains("\"cookie:c-1\" -- \"email:alice@example.com\" [label=\"1\"]"))
        #expect(result.stdout.contains("| ts | event_id |"))
        #expect(result.stdout.contains("2 rows (1 shown"))
        #expect(result.stderr.contains("unknown command .nonsense"))
    }

    @Test func queryRunsOneStatementInAnyFormat() throws {
        let s = Scratch()
        let db = try sampleDatabase(s)
        let json = try CLI.run(["query", "--db", db, "EVENTS OF email:alice@example.com", "--format", "json"])
        #expect(json.status == 0)
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.map { $0["event_id"] as? String } == ["e2", "e1"])
        let bad = try CLI.run(["query", "--db", db, "FIND ENTITIES WHERE"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("^"))
        let unknown = try CLI.run(["query", "--db", db, "ENTITY 999"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown entity 999"))
    }

    @Test func queriesRunWhileALoadIsWritingInAnotherProcess() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let archive = s.path + "/a.ndjson"
        #expect(try CLI.run(["generate", "--events", "40000", "--output", archive]).status == 0)
        let load = Process()
        load.executableURL = URL(fileURLWithPath: CLI.binary)
        load.arguments = ["load", "-q", "--no-bulk", "--db", db, "--batch-size", "500", archive]
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        try load.run()
        func events() throws -> Int? {
            let r = try CLI.run(["query", "--db", db, "STATS", "--format", "csv"])
            guard r.status == 0 else {
                if !r.stderr.contains("not an idgraph database") { Issue.record("a query failed during the load: \(r.stderr)") }
                return nil
            }
            return r.stdout.split(separator: "\n").first { $0.hasPrefix("events,") }.flatMap { Int($0.dropFirst(7)) }
        }
        var seen: [Int] = []
        while load.isRunning {
            if let n = try events() { seen.append(n) } else { usleep(20_000) }
        }
        load.waitUntilExit()
        #expect(load.terminationStatus == 0)
        #expect(seen.count >= 2, "the load finished before a second query could run")
        // Readers see whole batches only (500 events each, the archive has no duplicates), never
        // going back, and never more than the final state.
        let final = try events() ?? -1
        #expect(final == 40_000)
        #expect(seen.allSatisfy { $0 % 500 == 0 && $0 <= final }, "\(seen)")
        #expect(seen == seen.sorted())
        #expect(try CLI.run(["check", "--db", db]).status == 0)
    }
}
