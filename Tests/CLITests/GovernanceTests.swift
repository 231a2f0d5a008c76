import Foundation
import Testing

@Suite(.serialized) struct GovernanceTests {
    func occurrences(of needle: String, inFilesUnder directory: String) throws -> Int {
        var count = 0
        let bytes = Array(needle.utf8)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let data = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            var i = 0
            while i + bytes.count <= data.count {
                if data[i] == bytes[0] && Array(data[i..<i + bytes.count]) == bytes { count += 1 }
                i += 1
            }
        }
        return count
    }

    @Test func compactLeavesNoByteOfAnErasedValue() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let load = s.write("load.ndjson", """
            {"event_id":"e1","ids":{"email":"secret.person@example.com","cookie":"c-1"}}
            {"event_id":"e2","ids":{"email":"secret.person@example.com","crm":"9"}}
            """)
        let erase = s.write("erase.ndjson", #"{"op":"forget","id":"email:Secret.Person@example.com"}"# + "\n")
        #expect(try CLI.run(["load", "-q", "--db", db, load]).status == 0)
        #expect(try CLI.run(["load", "-q", "--db", db, erase]).status == 0)
        // Freed pages still hold the bytes: this is why compact exists.
        #expect(try occurrences(of: "secret.person", inFilesUnder: db) > 0)
        let compact = try CLI.run(["compact", "--db", db])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(try occurrences(of: "secret.person", inFilesUnder: db) == 0)
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        // The database still works, and the erasure still holds on replay.
        #expect(try CLI.run(["load", "-q", "--restart", "--db", db, load]).status == 0)
        let export = try CLI.run(["export", "--db", db]).stdout
        #expect(!export.contains("secret"))
        #expect(export.contains("cookie:c-1"))
    }

    @Test func changesPrintTheLineageInOrderFromAnySequence() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let archive = s.write("a.ndjson", """
            {"event_id":"e1","ids":{"email":"a@x.com","cookie":"c-1"}}
            {"event_id":"e2","ids":{"cookie":"c-1","device":"d-1"}}
            {"op":"unlink","a":"cookie:c-1","b":"device:d-1"}
            {"op":"forget","id":"email:a@x.com"}
            """)
        #expect(try CLI.run(["load", "-q", "--db", db, archive]).status == 0)
        let all = try CLI.run(["changes", "--db", db]).stdout.split(separator: "\n")
        let records = try all.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.map { $0["kind"] as? String } == ["merge", "merge", "split", "forget"])  // c-1 stays in the entity
        #expect(records.map { $0["seq"] as? Int } == [1, 2, 3, 4])
        #expect(records[2]["cause"] as? String == "unlink")
        #expect(records[0]["cause_event"] as? Int == 1)
        let later = try CLI.run(["changes", "--db", db, "--since", "3"]).stdout.split(separator: "\n")
        #expect(later.count == 2)
        #expect(later.first?.contains("\"seq\":3") == true)
    }

    @Test func schemaSetReevaluatesGenericValuesAndDryRunWritesNothing() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let archive = s.write("k.ndjson", """
            {"ids":{"email":"a@x.com","device":"kiosk"}}
            {"ids":{"email":"b@x.com","device":"kiosk"}}
            {"ids":{"email":"c@x.com","device":"kiosk"}}
            """)
        #expect(try CLI.run(["load", "-q", "--db", db, archive]).status == 0)
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout).count == 1)
        let strict = s.write("strict.json", #"{"types":{"device":{"generic_after":2}}}"#)
        let dry = try CLI.run(["schema", "set", "--db", db, strict, "--dry-run"])
        #expect(dry.stdout.contains("dry run, nothing written: 1 value would turn generic"))
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout).count == 1)
        #expect(try CLI.run(["schema", "set", "--db", db, strict]).status == 0)
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout) == [["email:a@x.com"], ["email:b@x.com"], ["email:c@x.com"]])
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        // Loosen it again: the kiosk merges back.
        let loose = s.write("loose.json", #"{"types":{"device":{"generic_after":5}}}"#)
        #expect(try CLI.run(["schema", "set", "--db", db, loose]).stdout.contains("1 turned back"))
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout).count == 1)
        #expect(try CLI.run(["reapply", "--db", db]).stdout.contains("0 values turned generic, 0 turned back"))
        // What cannot change once values are stored is refused, and nothing changes.
        let role = s.write("role.json", #"{"types":{"device":{"role":"relate"}}}"#)
        let refused = try CLI.run(["schema", "set", "--db", db, role])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("role cannot change"))
        #expect(try CLI.run(["schema", "show", "--db", db]).stdout.contains("\"generic_after\" : 5"))
    }

    @Test func aLimitRefusesTheLinkThatWouldExceedItAndKeepsItAsAConflict() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let schema = s.write("limit.json", #"{"types":{"email":{"normalize":"email","limit":1}}}"#)
        #expect(try CLI.run(["init", "--db", db, "--schema", schema]).status == 0)
        let archive = s.write("a.ndjson", """
            {"event_id":"1","ids":{"email":"a@x.com","cookie":"c1"}}
            {"event_id":"2","ids":{"email":"b@x.com","cookie":"c1"}}
            {"event_id":"3","ids":{"cookie":"c1","device":"d1"}}
            """)
        let load = try CLI.run(["load", "--db", db, archive])
        #expect(load.stdout.contains("1 links refused by limits"))
        // First come, first kept: a@x.com keeps the cookie and the device; b@x.com stays alone.
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout) == [["email:a@x.com", "cookie:c1", "device:d1"], ["email:b@x.com"]])
        let stats = try JSONSerialization.jsonObject(with: Data(try CLI.run(["stats", "--db", db, "--json"]).stdout.utf8)) as? [String: Any]
        #expect(stats?["refused_links"] as? Int == 1)
        #expect(try CLI.run(["query", "--db", db, "RELATED email:b@x.com"]).stdout.contains("refused link"))
        #expect(try CLI.run(["changes", "--db", db]).stdout.contains("\"kind\":\"refused\""))
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        // Lifting the limit lets the refused link merge.
        let open = s.write("open.json", #"{"types":{"email":{"normalize":"email"}}}"#)
        #expect(try CLI.run(["schema", "set", "--db", db, open]).stdout.contains("1 merge"))
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout).count == 1)
        #expect(try CLI.run(["check", "--db", db]).status == 0)
    }
}
