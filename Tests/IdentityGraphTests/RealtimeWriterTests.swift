import Foundation
import IdentityGraph
import Testing

@Suite struct RealtimeWriterTests {
    /// Many producers race events, links, unlinks, forgets and retracts over a small set of
    /// identifiers; the result must equal applying the same submissions one by one in the order
    /// the writer applied them, and `check` must be clean.
    @Test func racingProducersEqualSequentialApplicationInCommitOrder() async throws {
        let db = try TemporaryDatabase()
        let writer = RealtimeWriter(graph: db.graph)
        let scenario = MergeSplitPropertyTests.scenario(seed: 2024)
        var operations = scenario.operations
        for seed in 2025..<2040 { operations += MergeSplitPropertyTests.scenario(seed: UInt64(seed)).operations }

        let applied = try await withThrowingTaskGroup(of: (UInt64, GraphOperation).self) { group in
            for op in operations {
                group.addTask { (try await writer.submit([op]).order, op) }
            }
            var all: [(UInt64, GraphOperation)] = []
            for try await result in group { all.append(result) }
            return all
        }
        writer.close()
        #expect(applied.count == operations.count)
        #expect(Set(applied.map(\.0)).count == operations.count)  // every submission has its own place
        #expect(writer.statistics.commits < UInt64(operations.count))  // and commits were shared

        let sequential = try TemporaryDatabase()
        for (_, op) in applied.sorted(by: { $0.0 < $1.0 }) { try sequential.graph.apply([op]) }
        #expect(try db.graph.partition() == sequential.graph.partition())
        #expect(try db.graph.read { try $0.stats() }.events == sequential.graph.read { try $0.stats() }.events)
        #expect(try db.graph.check().isEmpty)
    }

    @Test func eachSubmitterLearnsItsResolution() async throws {
        let db = try TemporaryDatabase()
        let writer = RealtimeWriter(graph: db.graph)
        let first = try await writer.submit([event("email:a@x.com", "cookie:c-1", id: "e1")])
        #expect(first.report.eventsStored == 1)
        #expect(first.report.merges == 1)
        let entity = try #require(first.entity)
        let second = try await writer.submit([event("cookie:c-1", "device:d-1", id: "e2")])
        #expect(second.entity == entity)
        #expect(second.report.merges == 1)
        let split = try await writer.submit([unlink("cookie:c-1", "device:d-1")])
        #expect(split.report.splits == 1)
        let replay = try await writer.submit([event("email:a@x.com", id: "e1")])
        #expect(replay.report.duplicateEvents == 1)
        writer.close()
    }

    @Test func anInvalidSubmissionFailsAloneAndNothingElse() async throws {
        let db = try TemporaryDatabase()
        let writer = RealtimeWriter(graph: db.graph)
        async let good = writer.submit([event("email:a@x.com", id: "ok")])
        await #expect(throws: GraphError.self) { try await writer.submit([event("phone:no digits")]) }
        #expect(try await good.report.eventsStored == 1)
        writer.close()
        await #expect(throws: RealtimeWriterError.self) { try await writer.submit([event("email:b@x.com")]) }
    }
}
