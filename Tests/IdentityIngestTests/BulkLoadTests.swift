import Foundation
import IdentityGraph
@testable import IdentityIngest
import Testing

/// The bulk path must leave exactly the database the incremental path leaves: every table is
/// compared through ``IdentityGraph/tableDigests(includeLoadCheckpoints:)``.
/// Expects equal tables, naming each one that differs.
func expectSameTables(_ a: IdentityGraph, _ b: IdentityGraph, includeLoadCheckpoints: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let da = try a.tableDigests(includeLoadCheckpoints: includeLoadCheckpoints)
    let db = try b.tableDigests(includeLoadCheckpoints: includeLoadCheckpoints)
    #expect(da.keys.sorted() == db.keys.sorted(), sourceLocation: sourceLocation)
    for name in da.keys.sorted() where da[name] != db[name] {
        Issue.record("table \(name) differs: \(da[name] ?? "-") vs \(db[name] ?? "-")", sourceLocation: sourceLocation)
    }
}

@Suite struct BulkLoadTests {
    static let clock: Int64 = 1_750_000_000_000

    func load(_ w: Workspace, _ name: String, _ paths: [String], bulk: Bool, batchSize: Int = 50_000, memoryLimit: Int = 4 << 30) throws -> (IdentityGraph, LoadSummary) {
        let graph = try w.graph(name)
        var options = LoadOptions()
        options.bulk = bulk
        options.batchSize = batchSize
        options.memoryLimit = memoryLimit
        options.now = Self.clock
        let summary = try Loader(graph: graph, options: options).load(paths)
        return (graph, summary)
    }

    func archive(_ w: Workspace, _ name: String, seed: UInt64, events: Int, kiosks: Int = 0, duplicates: Double = 0, control: Double = 0, format: InputFormat = .native) throws -> String {
        var options = ArchiveGenerator.Options()
        options.events = events
        options.seed = seed
        options.kiosks = kiosks
        options.duplicateShare = duplicates
        options.controlShare = control
        options.format = format
        var generator = ArchiveGenerator(options: options)
        _ = try generator.write(to: w.path + "/" + name)
        return w.path + "/" + name
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func bulkEqualsIncrementalTableByTable(seed: UInt64) throws {
        let w = Workspace()
        // Segment for odd seeds: traits, anonymous ids and the Segment event shapes.
        let path = try archive(w, "a.ndjson", seed: seed, events: 3000, kiosks: Int(seed % 3), duplicates: 0.1, format: seed % 2 == 1 ? .segment : .native)
        let (bulk, bulkSummary) = try load(w, "bulk", [path], bulk: true)
        let (incremental, incrementalSummary) = try load(w, "incremental", [path], bulk: false, batchSize: 97)
        #expect(bulkSummary.report == incrementalSummary.report)
        #expect(bulkSummary.report.merges > 0)
        #expect(bulkSummary.report.duplicateEvents > 0)
        try expectSameTables(bulk, incremental)
        #expect(try bulk.check().isEmpty)
    }

    @Test func longValuesAndUnicodeKeepTheirBytesOnTheBulkPath() throws {
        let w = Workspace()
        // Values over the 400-byte inline limit are keyed by a hash; the node keeps the value.
        let long = String(repeating: "x", count: 500), longer = String(repeating: "é", count: 512)
        let lines = [
            #"{"event_id":"1","ts":1,"ids":{"crm":"\#(long)","email":"A@X.com"},"props":{"name":"Zoë","city":"Zürich"}}"#,
            #"{"event_id":"2","ts":2,"ids":{"crm":"\#(long)","cookie":"\#(longer)"}}"#,
            #"{"event_id":"3","ts":3,"ids":{"cookie":"\#(longer)","device":"📱"}}"#,
        ]
        let path = w.path + "/long.ndjson"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let (bulk, bulkSummary) = try load(w, "bulk", [path], bulk: true)
        let (incremental, _) = try load(w, "incremental", [path], bulk: false, batchSize: 1)
        #expect(bulkSummary.bulkRecords == 3)
        try expectSameTables(bulk, incremental)
        let ids = try bulk.read { r in try r.identifiers(of: r.entity(of: RawIdentifier(type: Array("device".utf8), value: Array("📱".utf8)))!) }
        #expect(Set(ids.map(\.valueText)) == [long, longer, "a@x.com", "📱"])
        #expect(try bulk.check().isEmpty)
    }

    @Test func linkRecordsStayOnTheBulkPath() throws {
        let w = Workspace()
        let path = try archive(w, "a.ndjson", seed: 9, events: 3000, duplicates: 0.05)
        // Every 40th line a link between identifiers of the archive (as Segment aliases give),
        // some naming an identifier not seen yet.
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        var rng = SeededGenerator(seed: 9)
        for i in stride(from: lines.count - 1, to: 0, by: -40) {
            let person = Int.random(in: 0..<300, using: &rng)
            let other = Bool.random(using: &rng) ? "cookie:ck-\(Int.random(in: 0..<300, using: &rng))-0" : "loyalty:new-\(i)"
            lines.insert(#"{"op":"link","a":"email:person\#(person)@example.com","b":"\#(other)"}"#, at: i)
        }
        let linked = w.file("linked.ndjson", lines)
        let (bulk, s1) = try load(w, "bulk", [linked], bulk: true)
        let (incremental, s2) = try load(w, "incremental", [linked], bulk: false, batchSize: 128)
        #expect(s1.bulkRecords == s1.records)
        #expect(s1.report.linksAsserted > 50)
        #expect(s1.report == s2.report)
        try expectSameTables(bulk, incremental)
    }

    @Test func controlRecordsHandTheRestToTheIncrementalPath() throws {
        let w = Workspace()
        let path = try archive(w, "a.ndjson", seed: 7, events: 3000, duplicates: 0.05, control: 0.05)
        let (bulk, s1) = try load(w, "bulk", [path], bulk: true)
        let (incremental, s2) = try load(w, "incremental", [path], bulk: false, batchSize: 500)
        #expect(s1.report == s2.report)
        #expect(s1.report.splits + s1.report.forgotten + s1.report.retracted > 0)
        try expectSameTables(bulk, incremental)
        #expect(try bulk.check().isEmpty)
    }

    @Test func aMemoryLimitCommitsThePartAndGoesOnIncrementally() throws {
        let w = Workspace()
        let path = try archive(w, "a.ndjson", seed: 8, events: 2000)
        // 1 byte: the bulk part ends after the first event.
        let (small, _) = try load(w, "small", [path], bulk: true, memoryLimit: 1)
        let (whole, _) = try load(w, "whole", [path], bulk: true)
        let (incremental, _) = try load(w, "incremental", [path], bulk: false)
        try expectSameTables(small, incremental)
        try expectSameTables(whole, incremental)
    }

    @Test func anIncrementalLoadOnTopOfABulkLoadEqualsOneLoadOfBoth() throws {
        let w = Workspace()
        let first = try archive(w, "1.ndjson", seed: 11, events: 2000)
        let second = try archive(w, "2.ndjson", seed: 12, events: 2000, control: 0.05)
        // Both files in one run: the first goes through the bulk path, the second incrementally.
        let (two, _) = try load(w, "two", [first, second], bulk: true)
        let both = w.path + "/both.ndjson"
        let data = try Data(contentsOf: URL(fileURLWithPath: first)) + Data(contentsOf: URL(fileURLWithPath: second))
        _ = FileManager.default.createFile(atPath: both, contents: data)
        let (one, _) = try load(w, "one", [both], bulk: false, batchSize: 333)
        try expectSameTables(two, one, includeLoadCheckpoints: false)
        #expect(try partition(two) == partition(one))
    }

    @Test func severalArchivesGoThroughOneBulkRunWithACheckpointEach() throws {
        let w = Workspace()
        let paths = try (0..<3).map { try archive(w, "\($0).ndjson", seed: 20 + UInt64($0), events: 1500, duplicates: 0.05) }
        let (bulk, summary) = try load(w, "bulk", paths, bulk: true)
        #expect(summary.files == 3)
        #expect(summary.bulkRecords == 4500)
        let (incremental, _) = try load(w, "incremental", paths, bulk: false, batchSize: 256)
        try expectSameTables(bulk, incremental)
        // Run again: every archive is known to be loaded to its end; nothing changes.
        var options = LoadOptions()
        options.now = Self.clock
        let again = try Loader(graph: bulk, options: options).load(paths)
        #expect(again.resumedLines == 4500)
        #expect(again.records == 0)
        try expectSameTables(bulk, incremental)
    }

    @Test func aBadLineStopsTheBulkPartAfterCommittingEverythingBeforeIt() throws {
        let w = Workspace()
        let path = w.file("a.ndjson", [
            #"{"event_id":"e1","ids":{"email":"a@x.com","cookie":"c-1"}}"#,
            #"{"event_id":"e2","ids":{"cookie":"c-1","device":"d-1"}}"#,
            #"{"event_id":"e3","ids":{"email":"#,
            #"{"event_id":"e4","ids":{"email":"c@x.com"}}"#,
        ])
        let graph = try w.graph()
        var options = LoadOptions()
        options.bulk = true
        #expect(graph.acceptsBulkLoad)
        do {
            _ = try Loader(graph: graph, options: options).load([path])
            Issue.record("the bad line was not reported")
        } catch LoadError.badLine(_, let line, _, _) {
            #expect(line == 3)
        }
        #expect(try partition(graph) == [["email:a@x.com", "cookie:c-1", "device:d-1"]])
        #expect(!graph.acceptsBulkLoad)
    }

    @Test func aFullMapAbandonsTheBulkRunAndKeepsNothing() throws {
        let w = Workspace()
        let graph = try w.graph("small", mapSize: 256 * 1024)
        let schema = graph.schema
        let events = try (0..<3000).map { i -> PreparedOperation in
            let op = GraphOperation.event(EventInput(eventID: Array("e\(i)".utf8), identifiers: [
                RawIdentifier(type: "email", value: "p\(i)@x.com"), RawIdentifier(type: "cookie", value: "c\(i / 2)")]))
            return try PreparedOperation(op, schema: schema)
        }
        #expect(throws: BulkLoadError.mapFull) {
            _ = try graph.bulkLoad(reserveBytes: 0) { feed in
                for chunk in stride(from: 0, to: events.count, by: 500) { try feed.send(Array(events[chunk..<min(chunk + 500, events.count)])) }
                return []
            }
        }
        #expect(graph.acceptsBulkLoad)  // nothing of it was kept
        #expect(try graph.read { try $0.stats() }.events == 0)
        #expect(try graph.check().isEmpty)
    }

    /// Events handed to the feed as prepared operations (the public API, not the loader's
    /// batches) take the bulk writer's other entrance: same tables as applying them one by one.
    @Test func preparedOperationsThroughTheFeedEqualTheIncrementalPath() throws {
        let w = Workspace()
        let path = try archive(w, "a.ndjson", seed: 13, events: 2000, duplicates: 0.1)
        let bulk = try w.graph("bulk"), incremental = try w.graph("incremental")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let operations = try lines.map { try RecordParser.parse($0) }
        let prepared = try operations.map { try PreparedOperation($0, schema: bulk.schema) }
        _ = try bulk.bulkLoad(now: Self.clock, reserveBytes: 1 << 26) { feed in
            for chunk in stride(from: 0, to: prepared.count, by: 300) { try feed.send(Array(prepared[chunk..<min(chunk + 300, prepared.count)])) }
            return []
        }
        for chunk in stride(from: 0, to: operations.count, by: 97) {
            _ = try incremental.apply(Array(operations[chunk..<min(chunk + 97, operations.count)]), now: Self.clock)
        }
        #expect(try bulk.read { try $0.stats() }.events > 1500)
        try expectSameTables(bulk, incremental)
        #expect(try bulk.check().isEmpty)
    }

    @Test func theBulkPathStandsAsideForGenericPolicies() throws {
        let w = Workspace()
        let schema = try Schema.parse(json: Data(#"{"types":{"device":{"generic_after":3}}}"#.utf8))
        var options = IdentityGraph.Options()
        options.durability = .fast
        let graph = try IdentityGraph.open(at: w.path + "/g", options: options, createIfMissing: true, schema: schema)
        #expect(!graph.acceptsBulkLoad)
    }
}
