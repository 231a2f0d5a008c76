import Foundation
import Testing

/// Runs the real `idgraph` binary (built next to the test bundle) as a user would.
struct CLI {
    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["IDGRAPH_BIN"] { return explicit }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // Swift Testing on Linux runs the .xctest bundle from the build directory.
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("idgraph").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/idgraph").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], executable: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        // Feed standard input while draining both outputs: a child that writes more than a pipe
        // holds before it has read all its input would otherwise deadlock with us.
        let group = DispatchGroup()
        let writer = input.fileHandleForWriting
        let payload = Data((stdin ?? "").utf8)
        DispatchQueue.global().async(group: group) {
            writer.write(payload)
            try? writer.close()
        }
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        DispatchQueue.global().async(group: group) { outBox.data = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        group.wait()
        let outData = outBox.data, errData = errBox.data
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }
}

extension CLI {
    /// Runs the command three times killed with SIGKILL after a random delay, then again until it
    /// exits with 0 (each run resumes what the killed ones left).
    static func runKilledThenToCompletion(_ arguments: [String], killAfterMicroseconds delay: ClosedRange<UInt32>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        while true {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            if kills < 3 {
                usleep(UInt32.random(in: delay, using: &rng))
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            if process.terminationReason == .exit && process.terminationStatus == 0 { return }
            kills += 1
            if kills >= 50 {
                Issue.record("the command never finished", sourceLocation: sourceLocation)
                return
            }
        }
    }
}

final class Scratch {
    let path = NSTemporaryDirectory() + "idgraph-cli-" + UUID().uuidString
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }
}

/// The partition in an export CSV, ignoring entity ids.
func partition(csv: String) -> Set<Set<String>> {
    var groups: [String: Set<String>] = [:]
    for line in csv.split(separator: "\n").dropFirst() {
        guard let comma = line.lastIndex(of: ",") else { continue }
        groups[String(line[line.index(after: comma)...]), default: []].insert(String(line[..<comma]))
    }
    return Set(groups.values)
}

@Suite(.serialized) struct CLITests {
    @Test func exitCodesFollowSPEC() throws {
        let s = Scratch()
        let db = s.path + "/db"
        #expect(try CLI.run(["load", "--db", db, "--no-such-flag", "x"]).status == 2)
        #expect(try CLI.run(["export", "--db", db, "--format", "xml"]).status == 2)
        let missing = try CLI.run(["stats", "--db", db])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("not an idgraph database"))
        let bad = s.write("bad.ndjson", "{\"ids\":{\"email\":\"a@x.com\"}}\n{\"ids\":{\"email\":42}}\n")
        let load = try CLI.run(["load", "--db", db, bad])
        #expect(load.status == 1)
        #expect(load.stderr.contains("bad.ndjson:2:"))
        #expect(load.stderr.contains("ids.email"))
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        #expect(try CLI.run(["--help"]).status == 0)
    }

    /// `bench realtime --json`: every offered event acknowledged, commits and (fast mode) the
    /// sync thread's syncs counted, percentiles in order, lookups measured.
    @Test func benchRealtimeReportsThroughputLatencyAndSyncs() throws {
        let result = try CLI.run(["bench", "realtime", "--events", "3000", "--rate", "3000", "--producers", "2", "--readers", "1",
                                  "--reader-rate", "1000", "--mode", "fast", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(report["events"] as? Int == 3000)
        #expect(report["failures"] as? Int == 0)
        let commits = report["commits"] as? Int ?? 0, syncs = report["syncs"] as? Int ?? 0
        #expect(commits > 0 && commits <= 3000)
        #expect(syncs >= 1 && syncs <= commits)  // about one per 10 ms with commits in it, one at close
        let ingest = report["ingest_us"] as? [String: Int] ?? [:]
        #expect((ingest["p50"] ?? -1) >= 0 && (ingest["p50"] ?? 0) <= (ingest["p99"] ?? -1) && (ingest["p99"] ?? 0) <= (ingest["max"] ?? -1))
        #expect(((report["lookup_us"] as? [String: Int])?["count"] ?? 0) > 0)

        // A longer sync interval: a second's run syncs once or twice, and once at close.
        let sparse = try CLI.run(["bench", "realtime", "--events", "1000", "--rate", "1000", "--producers", "1", "--readers", "0",
                                  "--mode", "fast", "--sync-interval-ms", "1000", "--json"])
        #expect(sparse.status == 0, "\(sparse.stderr)")
        let sparseReport = try JSONSerialization.jsonObject(with: Data(sparse.stdout.utf8)) as! [String: Any]
        #expect((1...4).contains(sparseReport["syncs"] as? Int ?? 0))
        #expect(try CLI.run(["bench", "realtime", "--sync-interval-ms", "-1"]).status == 2)
    }

    /// A run names its workload seed, and a small --max-batch bounds every commit: 2,000 events
    /// offered at once (far beyond what the writer keeps up with) need at least 2,000 / 50 commits.
    @Test func benchRealtimeTakesASeedAndABatchCap() throws {
        let result = try CLI.run(["bench", "realtime", "--events", "2000", "--rate", "1000000", "--producers", "1", "--readers", "0",
                                  "--mode", "fast", "--seed", "7", "--max-batch", "50", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(report["seed"] as? Int == 7)
        #expect(report["max_batch"] as? Int == 50)
        #expect(report["failures"] as? Int == 0)
        #expect((report["commits"] as? Int ?? 0) >= 40)
        // What explains the latency: every operation in some commit, none over the cap, a
        // writer busy some of the run (how much depends on the machine's load: tests run in
        // parallel), pages written.
        let operations = report["commit_operations"] as? [String: Int] ?? [:]
        #expect(operations["total"] == 2000)
        #expect((operations["max"] ?? 0) > 0 && (operations["max"] ?? 99) <= 50)
        let busy = report["writer_busy"] as? Double ?? -1
        #expect(busy > 0 && busy <= 1)
        let commit = report["commit_us"] as? [String: Int] ?? [:]
        #expect((commit["p50"] ?? -1) > 0 && (commit["p50"] ?? 0) <= (commit["p99"] ?? -1) && (commit["p99"] ?? 0) <= (commit["max"] ?? -1))
        #expect((report["written_bytes_per_event"] as? Int ?? 0) > 100)  // at least the event itself
    }

    /// Finding a rate doubles while runs stay within the bound and halves while they do not,
    /// each run on a fresh database; a bound no run can meet names no rate.
    @Test func benchRealtimeFindsTheHighestRateWithinALatencyBound() throws {
        func search(_ p99Millis: String, from rate: String) throws -> [String: Any] {
            let result = try CLI.run(["bench", "realtime", "--find-rate-p99-ms", p99Millis, "--rate", rate, "--seconds", "0.2", "--max-runs", "3",
                                      "--producers", "1", "--readers", "0", "--mode", "fast", "--seed", "3", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        }
        let generous = try search("600000", from: "100")  // ten minutes: every run is within
        #expect((generous["runs"] as? [[String: Any]])?.map { $0["rate"] as? Int } == [100, 200, 400])
        #expect(generous["rate"] as? Int == 400)
        #expect(generous["first_rate_over"] is NSNull)
        #expect((generous["runs"] as? [[String: Any]])?.allSatisfy { $0["within"] as? Bool == true && ($0["ingest_p99_us"] as? Int ?? -1) >= 0 } == true)
        let impossible = try search("0.001", from: "400")  // one microsecond: no run is within
        #expect((impossible["runs"] as? [[String: Any]])?.map { $0["rate"] as? Int } == [400, 200, 100])
        #expect(impossible["rate"] is NSNull)
        #expect(impossible["first_rate_over"] as? Int == 100)
        // Each run needs a database of its own.
        let refused = try CLI.run(["bench", "realtime", "--find-rate-p99-ms", "2", "--db", "/tmp/x"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("fresh temporary database"))
    }

    /// Shared kiosks in the workload hold large entities together, which its control records
    /// split: every submission still succeeds, into a database that checks clean.
    @Test func benchRealtimeTakesSharedKiosks() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let result = try CLI.run(["bench", "realtime", "--events", "3000", "--rate", "1000000", "--producers", "2", "--readers", "0",
                                  "--mode", "fast", "--seed", "3", "--kiosks", "2", "--control-share", "0.05", "--db", db, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(report["kiosks"] as? Int == 2)
        #expect(report["failures"] as? Int == 0)
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        let stats = try JSONSerialization.jsonObject(with: Data(try CLI.run(["stats", "--db", db, "--json"]).stdout.utf8)) as! [String: Any]
        #expect((stats["largest_entity_size"] as? Int ?? 0) > 100)  // the kiosks' entities
    }

    /// Runs on top of an existing database store new events: each run's event ids are its own.
    @Test func benchRealtimeTwiceOnOneDatabaseStoresBothRuns() throws {
        let s = Scratch()
        let db = s.path + "/db"
        func events() throws -> Int {
            let stats = try CLI.run(["stats", "--db", db, "--json"])
            return (try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as! [String: Any])["events"] as? Int ?? -1
        }
        let arguments = ["bench", "realtime", "--db", db, "--events", "500", "--rate", "1000000", "--producers", "1", "--readers", "0",
                         "--mode", "fast", "--seed", "3", "--control-share", "0"]
        #expect(try CLI.run(arguments).status == 0)
        #expect(try events() == 500)
        #expect(try CLI.run(arguments).status == 0)
        #expect(try events() == 1000)
        // The same prefix twice: the second run's events are replays, skipped.
        #expect(try CLI.run(arguments + ["--id-prefix", "same-"]).status == 0)
        #expect(try CLI.run(arguments + ["--id-prefix", "same-"]).status == 0)
        #expect(try events() == 1500)
        // generate --id-prefix: the same people and journeys under other event ids.
        let a = try CLI.run(["generate", "--events", "20", "--seed", "9"]).stdout
        let b = try CLI.run(["generate", "--events", "20", "--seed", "9", "--id-prefix", "day2-"]).stdout
        #expect(a.contains(#""event_id":"e-0""#))
        #expect(b.contains(#""event_id":"day2-0""#))
        #expect(b == a.replacingOccurrences(of: #""event_id":"e-"#, with: #""event_id":"day2-"#))
        #expect(try CLI.run(["generate", "--events", "5", "--id-prefix", "a\"b"]).status != 0)
    }

    @Test func loadJSONGivesTheMemoryLimitAndTheBulkEstimate() throws {
        let s = Scratch()
        let archive = s.write("a.ndjson", (0..<500).map { #"{"ids":{"email":"u\#($0)@x.com","cookie":"c\#($0 % 7)"}}"# }.joined(separator: "\n") + "\n")
        let result = try CLI.run(["load", "--db", s.path + "/db", "--memory-limit", "300", "--json", archive])
        #expect(result.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(report["memory_limit_mib"] as? Int == 300)
        #expect(report["bulk_records"] as? Int == 500)
        #expect(report["bulk_memory_estimate_mib"] is Int)
        let text = try CLI.run(["load", "--db", s.path + "/db2", "--memory-limit", "300", archive])
        #expect(text.stdout.contains("MiB of --memory-limit 300"))
    }

    @Test func theDatabaseCanComeFromTheEnvironment() throws {
        let s = Scratch()
        let archive = s.write("a.ndjson", "{\"ids\":{\"email\":\"a@x.com\",\"cookie\":\"c-1\"}}\n")
        #expect(try CLI.run(["load", "-q", archive], environment: ["IDGRAPH_DB": s.path + "/envdb"]).status == 0)
        let export = try CLI.run(["export", "--db", s.path + "/envdb"])
        #expect(partition(csv: export.stdout) == [["email:a@x.com", "cookie:c-1"]])
    }

    @Test func standardInputLoadsAndExportsInBothFormats() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let input = """
            {"ids":{"email":"a@x.com","cookie":"c-1"}}
            {"ids":{"email":"weird,\\"quoted\\"@x.com","cookie":"c-1"}}
            {"ids":{"ip":"1.2.3.4","cookie":"c-9"}}
            """
        #expect(try CLI.run(["load", "--db", db, "-"], stdin: input).status == 0)
        let csv = try CLI.run(["export", "--db", db, "--format", "csv"]).stdout
        #expect(csv.hasPrefix("identifier,entity\n"))
        #expect(csv.contains("\"email:weird,\"\"quoted\"\"@x.com\","))
        #expect(!csv.contains("ip:"))  // relate identifiers belong to no entity
        let ndjson = try CLI.run(["export", "--db", db, "--format", "ndjson"]).stdout.split(separator: "\n")
        #expect(ndjson.count == 4)
        let row = try JSONSerialization.jsonObject(with: Data(ndjson[0].utf8)) as! [String: Any]
        #expect(row["identifier"] is String)
        #expect(row["entity"] is Int)
        let stats = try CLI.run(["stats", "--db", db, "--json"])
        let counts = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as! [String: Any]
        #expect(counts["identifiers"] as? Int == 5)
        #expect(counts["entities"] as? Int == 2)
    }

    @Test func aLoadKilledAtAnyMomentResumesWithoutLosingOrDuplicating() throws {
        let s = Scratch()
        // Events without event ids: a duplicated event would show in the counts.
        var lines: [String] = []
        for i in 0..<6000 {
            switch i % 10 {
            case 7: lines.append(#"{"op":"unlink","a":"email:u\#(i % 300)@x.com","b":"cookie:c\#(i % 211)"}"#)
            case 9: lines.append(#"{"op":"forget","id":"cookie:c\#((i * 7) % 211)"}"#)
            default: lines.append(#"{"ts":\#(i),"ids":{"email":"u\#(i % 300)@x.com","cookie":"c\#(i % 211)"},"props":{"amount":1}}"#)
            }
        }
        let archive = s.write("a.ndjson", lines.joined(separator: "\n") + "\n")
        let reference = s.path + "/reference"
        #expect(try CLI.run(["load", "-q", "--db", reference, "--batch-size", "50", archive]).status == 0)
        let expectedExport = try CLI.run(["export", "--db", reference]).stdout
        let expectedStats = try CLI.run(["stats", "--db", reference, "--json"]).stdout

        for round in 0..<6 {
            let db = s.path + "/killed-\(round)"
            // Every other round four batches to a transaction: a kill loses the open one whole.
            let transactions = round % 2 == 1 ? ["--transaction-size", "200"] : []
            try CLI.runKilledThenToCompletion(
                ["load", "-q", "--db", db, "--batch-size", "50", "--durability", "durable"] + transactions + [archive], killAfterMicroseconds: 2_000...150_000)
            #expect(try CLI.run(["check", "--db", db]).status == 0)
            #expect(try CLI.run(["stats", "--db", db, "--json"]).stdout == expectedStats)
            #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout) == partition(csv: expectedExport))
        }
    }

    /// Kills land in the bulk part (one transaction: the next run starts it again) or in the
    /// batches after it (the next run resumes after the last one): the result is always the
    /// uninterrupted load's, entity numbers included.
    @Test func aBulkLoadKilledAtRandomMomentsEqualsAnUninterruptedOne() throws {
        let s = Scratch()
        let first = s.path + "/1.ndjson", second = s.path + "/2.ndjson"
        #expect(try CLI.run(["generate", "--events", "20000", "--duplicate-share", "0.05", "--output", first]).status == 0)
        #expect(try CLI.run(["generate", "--events", "5000", "--seed", "7", "--control-share", "0.05", "--output", second]).status == 0)
        let reference = s.path + "/reference"
        #expect(try CLI.run(["load", "-q", "--db", reference, "--batch-size", "200", first, second]).status == 0)
        let expectedExport = try CLI.run(["export", "--db", reference]).stdout
        let expectedStats = try CLI.run(["stats", "--db", reference, "--json"]).stdout
        #expect(expectedExport.split(separator: "\n").count > 10_000)

        for round in 0..<5 {
            let db = s.path + "/killed-\(round)"
            try CLI.runKilledThenToCompletion(["load", "-q", "--db", db, "--batch-size", "200", first, second], killAfterMicroseconds: 5_000...400_000)
            #expect(try CLI.run(["check", "--db", db]).status == 0)
            #expect(try CLI.run(["stats", "--db", db, "--json"]).stdout == expectedStats)
            #expect(try CLI.run(["export", "--db", db]).stdout == expectedExport)
        }
    }

    /// The bulk part ends at the first unlink, forget or retract, which the batches after it
    /// apply in a transaction of their own. A load killed after the bulk part committed and
    /// before that transaction did must read the record again: its checkpoint once covered the
    /// line, and the resumed load went on without the forget.
    @Test func aLoadKilledRightAfterItsBulkPartKeepsTheRecordThatEndedIt() throws {
        let s = Scratch()
        var lines = (0..<100).map { #"{"ts":\#($0),"ids":{"email":"u\#($0)@x.com"}}"# }
        lines.append(#"{"op":"forget","id":"cookie:gone"}"#)
        lines.append(#"{"ts":500,"ids":{"email":"u1@x.com","cookie":"gone"}}"#)  // the erased cookie is left out
        // Enough lines after it, in one batch, that its commit comes long after the bulk part's.
        lines += (0..<30_000).map { #"{"ts":\#(1_000 + $0),"ids":{"email":"v\#($0 % 3_000)@x.com","cookie":"k\#($0)"}}"# }
        let archive = s.write("a.ndjson", lines.joined(separator: "\n") + "\n")
        let reference = s.path + "/reference"
        #expect(try CLI.run(["load", "-q", "--db", reference, archive]).status == 0)
        let expectedStats = try CLI.run(["stats", "--db", reference, "--json"]).stdout
        #expect(expectedStats.contains("\"tombstones\":1"))

        let db = s.path + "/killed"
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CLI.binary)
        child.arguments = ["load", "-q", "--db", db, "--batch-size", "1000000", archive]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        // Killed as soon as the bulk part (the first 100 events) is committed.
        var sawBulkPart = false
        while child.isRunning {
            let stats = try CLI.run(["stats", "--db", db, "--json"])
            if stats.status == 0 && stats.stdout.contains("\"events\":100,") {
                kill(child.processIdentifier, SIGKILL)
                sawBulkPart = true
                break
            }
            usleep(2_000)
        }
        child.waitUntilExit()
        #expect(sawBulkPart, "the load ended before a check saw its bulk part alone")
        let resumed = try CLI.run(["load", "--db", db, archive])
        #expect(resumed.status == 0)
        #expect(resumed.stderr.contains("resuming after line 100"))
        #expect(try CLI.run(["stats", "--db", db, "--json"]).stdout == expectedStats)
        #expect(try CLI.run(["query", "--db", db, "RESOLVE cookie:gone"]).stdout.contains("0 rows"))
    }

    @Test func skipBadKeepsGoingAndReportsTheRejects() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let archive = s.write("a.ndjson", "{\"ids\":{\"email\":\"a@x.com\"}}\n[1]\n{\"ids\":{\"email\":\"b@x.com\"}}\n")
        let result = try CLI.run(["load", "--db", db, "--skip-bad", archive])
        #expect(result.status == 0)
        #expect(result.stdout.contains("rejected: 1 bad lines"))
        let rejects = try String(contentsOfFile: db + "/rejects.ndjson", encoding: .utf8)
        #expect(rejects.contains("\"line\":2"))
    }

    @Test func initTakesASchemaFile() throws {
        let s = Scratch()
        let db = s.path + "/db"
        let schema = s.write("schema.json", #"{"types":{"handle":{"normalize":"lower"},"device":{"role":"relate"}}}"#)
        #expect(try CLI.run(["init", "--db", db, "--schema", schema]).status == 0)
        #expect(try CLI.run(["init", "--db", db]).status == 1)  // refuses to overwrite
        let archive = s.write("a.ndjson", "{\"ids\":{\"handle\":\"@Bob\",\"device\":\"d-1\"}}\n{\"ids\":{\"handle\":\"@BOB\",\"device\":\"d-1\",\"email\":\"b@x.com\"}}\n")
        #expect(try CLI.run(["load", "-q", "--db", db, archive]).status == 0)
        #expect(partition(csv: try CLI.run(["export", "--db", db]).stdout) == [["handle:@bob", "email:b@x.com"]])
        let badSchema = s.write("bad.json", #"{"types":{"Bad":{}}}"#)
        let refused = try CLI.run(["init", "--db", s.path + "/db2", "--schema", badSchema])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("[a-z][a-z0-9_]*"))
    }

    @Test func generateIsDeterministic() throws {
        let s = Scratch()
        let a = try CLI.run(["generate", "--events", "500", "--seed", "3"]).stdout
        let b = try CLI.run(["generate", "--events", "500", "--seed", "3"]).stdout
        let c = try CLI.run(["generate", "--events", "500", "--seed", "4"]).stdout
        #expect(a == b)
        #expect(a != c)
        #expect(a.split(separator: "\n").count == 500)
        _ = s
    }

    /// In journal mode each run claims another boot of the machine (`IDGRAPH_TEST_BOOT_ID`), so
    /// every opening after a kill takes the path of a system crash: back to the last snapshot
    /// the journal recorded as synced, then the journal's batches since.
    @Test(arguments: ["durable", "journal"])
    func anAcknowledgedEventSurvivesAKillRightAfterwards(mode: String) throws {
        let s = Scratch()
        let db = s.path + "/db"
        let acks = s.path + "/acks.txt"
        for run in 0..<3 {
            let child = Process()
            if mode == "journal" {
                child.environment = ProcessInfo.processInfo.environment.merging(["IDGRAPH_TEST_BOOT_ID": "boot-\(run)"]) { $1 }
            }
            child.executableURL = URL(fileURLWithPath: CLI.binary)
            child.arguments = ["bench", "realtime", "--db", db, "--events", "200000", "--rate", "20000", "--readers", "0", "--control-share", "0", "--ack-log", acks, "--mode", mode]
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Kill it hard once it has acknowledged a few thousand events.
            var acknowledged = 0
            let deadline = Date().addingTimeInterval(60)
            while acknowledged < 3000 && Date() < deadline && child.isRunning {
                usleep(20_000)
                acknowledged = ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").count
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(acknowledged >= 3000, "the child acknowledged only \(acknowledged) events")
        }
        // Every acknowledged event id is in the database.
        let ids = Set(try String(contentsOfFile: acks, encoding: .utf8).split(separator: "\n").map(String.init))
        #expect(try CLI.run(["check", "--db", db]).status == 0)
        let script = ".mode csv\n" + ids.map { "EVENT '\($0)'" }.joined(separator: "\n") + "\n"
        let found = try CLI.run(["shell", "--db", db], stdin: script)
        let rows = found.stdout.split(separator: "\n").filter { !$0.hasPrefix("sequence,") }
        #expect(found.stderr.isEmpty, "\(found.stderr.prefix(500))")
        #expect(rows.count == ids.count, "\(ids.count) acknowledged events, \(rows.count) found")
        if mode == "journal" { #expect(!FileManager.default.fileExists(atPath: db + "/journal/0000000000000001.log")) }
    }
}
