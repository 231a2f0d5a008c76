import Foundation
import IdentityGraph
@testable import IdentityIngest
import Testing

/// A load that goes batch by batch says why, so that a slow load says what would make it fast.
@Suite struct BatchReasonTests {
    func events(_ range: Range<Int>) -> [String] {
        range.map { #"{"event_id":"e\#($0)","ids":{"email":"u\#($0)@x.com","cookie":"c\#($0 % 9)"}}"# }
    }

    func load(_ graph: IdentityGraph, _ paths: [String], bulk: Bool = true, memoryLimit: Int = 4 << 30) throws -> LoadSummary {
        var options = LoadOptions()
        options.bulk = bulk
        options.memoryLimit = memoryLimit
        options.now = 1_750_000_000_000
        return try Loader(graph: graph, options: options).load(paths)
    }

    @Test func aControlRecordNamesItsKindFileAndLine() throws {
        let w = Workspace()
        let lines = events(0..<20) + [#"{"op":"forget","id":"email:u3@x.com"}"#] + events(20..<30)
        let path = w.file("a.ndjson", lines)
        let summary = try load(try w.graph(), [path])
        #expect(summary.bulkRecords == 20)
        #expect(summary.batchRecords == 11)
        #expect(summary.batchReason == .controlRecord(kind: "forget", file: path, line: 21))
        #expect(summary.batchReason?.description.contains("\(path):21") == true)
        #expect(summary.batchReason?.description.hasSuffix("a forget") == true)
        #expect(summary.batchReason?.advice != nil)
        #expect(summary.batchReason?.code == "control_record")
    }

    @Test func anArchiveOfEventsAloneHasNoReason() throws {
        let w = Workspace()
        let summary = try load(try w.graph(), [w.file("a.ndjson", events(0..<30))])
        #expect(summary.bulkRecords == 30)
        #expect(summary.batchRecords == 0)
        #expect(summary.batchReason == nil)
    }

    @Test func aDatabaseWithDataAndNoBulkAreReasons() throws {
        let w = Workspace()
        let graph = try w.graph()
        _ = try load(graph, [w.file("a.ndjson", events(0..<10))])
        let second = try load(graph, [w.file("b.ndjson", events(10..<20))])
        #expect(second.batchRecords == 10)
        #expect(second.batchReason == .databaseNotEmpty)
        #expect(second.batchReason?.advice?.contains("one load into a new database") == true)
        let off = try load(try w.graph("other"), [w.file("c.ndjson", events(0..<10))], bulk: false)
        #expect(off.batchRecords == 10)
        #expect(off.batchReason == .bulkDisabled)
    }

    @Test func theMemoryLimitNamesWhereTheBulkPartEnded() throws {
        let w = Workspace()
        // The event ids of each chunk of 2,048 events are claimed as it is sent, and the table
        // holding them counts at once (the writer's own memory comes in after each chunk it has
        // resolved): 64 KiB are passed within the first few chunks whatever the timing, and the
        // first chunk is sent before the table holds anything.
        let path = w.file("a.ndjson", events(0..<30_000))
        let summary = try load(try w.graph(), [path], memoryLimit: 64 << 10)
        #expect(summary.bulkRecords > 0)
        #expect(summary.batchRecords > 0)
        #expect(summary.bulkRecords + summary.batchRecords == 30_000)
        guard case .memoryLimit(_, let file, let line)? = summary.batchReason else {
            Issue.record("expected the memory limit, got \(String(describing: summary.batchReason))")
            return
        }
        #expect(file == path)
        #expect(line == summary.bulkRecords + 1)
    }
}
