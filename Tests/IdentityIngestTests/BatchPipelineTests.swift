import Foundation
import IdentityGraph
@testable import IdentityIngest
import Synchronization
import Testing

/// Several batches to one transaction (`IdentityGraph.applyBatches`, the loader's
/// `BatchPipeline`): the same database as one transaction of everything, commits of whole
/// batches with the last one's checkpoint, nothing kept of a transaction that fails.
@Suite struct BatchPipelineTests {
    struct Refused: Error, Equatable {}

    static let now: Int64 = 1_750_000_000_000

    static func id(_ text: String) throws -> RawIdentifier { try RawIdentifier(text: text) }

    /// Events, links, unlinks and forgets over a few shared cookies: merges, splits, erasures.
    static func operations(_ schema: Schema, count: Int = 240) throws -> [PreparedOperation] {
        try (0..<count).map { i -> PreparedOperation in
            let op: GraphOperation
            switch i % 40 {
            case 13: op = .unlink(try id("email:u\(i - 10)@x.com"), try id("cookie:c\((i - 10) % 13)"))
            case 27: op = .forget(try id("cookie:c\(i % 13)"))
            case 33: op = .link(try id("email:u\(i)@x.com"), try id("phone:+1555\(1_000_000 + i % 7)"))
            default:
                op = .event(EventInput(eventID: Array("e\(i)".utf8), timestamp: Int64(i), identifiers: [
                    RawIdentifier(type: "email", value: "u\(i % 97)@x.com"), RawIdentifier(type: "cookie", value: "c\(i % 13)")]))
            }
            return try PreparedOperation(op, schema: schema)
        }
    }

    /// Hands `operations` to `applyBatches` in batches of `batchSize`, each with hints from a
    /// snapshot taken as it is handed over (without what the open transaction wrote, as in a
    /// load), the metadata `"at" = its end`; returns the batches of each commit.
    static func applyInBatches(
        _ graph: IdentityGraph, _ operations: [PreparedOperation], batchSize: Int, perTransaction: Int, failAt: Int? = nil
    ) throws -> (commits: [[Int]], applied: [Int], commitsNext: [Bool]) {
        var next = 0
        var calls = 0
        var commits: [[Int]] = []
        var applied: [Int] = []
        var commitsNext: [Bool] = []
        try graph.applyBatches(
            now: now, operationsPerTransaction: perTransaction,
            next: {
                calls += 1
                if calls == failAt { throw Refused() }
                guard next < operations.count else { return nil }
                let slice = Array(operations[next..<min(next + batchSize, operations.count)])
                next += slice.count
                return QueuedBatch(operations: slice, hints: try graph.nodeHints(for: slice), metadata: [("at", Array("\(next)".utf8))], endsTransaction: false)
            },
            applied: { batch, commits in
                applied.append(batch.operations.count)
                commitsNext.append(commits)
            },
            committed: { batches, _ in commits.append(batches.map(\.operations.count)) })
        return (commits, applied, commitsNext)
    }

    @Test(arguments: [(1, 1), (7, 20), (7, 21), (50, 1_000)])
    func transactionsOfSeveralBatchesEqualOneOfEverything(batchSize: Int, perTransaction: Int) throws {
        let w = Workspace()
        let graph = try w.graph("batches"), reference = try w.graph("reference")
        let operations = try Self.operations(graph.schema)
        let (commits, applied, commitsNext) = try Self.applyInBatches(graph, operations, batchSize: batchSize, perTransaction: perTransaction)
        try reference.apply(prepared: operations, now: Self.now, metadata: [("at", Array("\(operations.count)".utf8))])

        // Whole batches, a commit after the batch that reaches the size, announced with it.
        #expect(applied.reduce(0, +) == operations.count)
        #expect(commits.flatMap { $0 } == applied)
        #expect(commitsNext == commits.flatMap { commit in commit.indices.map { $0 == commit.count - 1 && commit.reduce(0, +) >= perTransaction } })
        for commit in commits.dropLast() {
            #expect(commit.reduce(0, +) >= perTransaction)
            #expect(commit.dropLast().reduce(0, +) < perTransaction)
        }
        #expect(try graph.tableDigests() == reference.tableDigests())
        #expect(try graph.check().isEmpty)
        #expect(try graph.metadata("at") == Array("\(operations.count)".utf8))
    }

    @Test func aFailureKeepsNothingOfTheOpenTransaction() throws {
        let w = Workspace()
        let graph = try w.graph("failed"), reference = try w.graph("reference")
        let operations = try Self.operations(graph.schema)
        // Batches of 10, three to a transaction: the fifth call fails with batch 4 applied.
        #expect(throws: Refused.self) {
            _ = try Self.applyInBatches(graph, operations, batchSize: 10, perTransaction: 30, failAt: 5)
        }
        try reference.apply(prepared: Array(operations[..<30]), now: Self.now, metadata: [("at", Array("30".utf8))])
        #expect(try graph.tableDigests() == reference.tableDigests())
        #expect(try graph.metadata("at") == Array("30".utf8))
    }

    @Test func aFullMapAppliesTheTransactionsBatchesAgainAndAnnouncesEachOnce() throws {
        let w = Workspace()
        let graph = try w.graph("small", mapSize: 256 * 1024)
        let reference = try w.graph("reference")
        let operations = try Self.operations(graph.schema, count: 4_000)
        let (commits, applied, _) = try Self.applyInBatches(graph, operations, batchSize: 500, perTransaction: 2_000)
        try reference.apply(prepared: operations, now: Self.now, metadata: [("at", Array("\(operations.count)".utf8))])
        #expect(graph.storageUsage.mapSize > 256 * 1024)  // it grew, so a transaction ran again
        #expect(applied == Array(repeating: 500, count: 8))
        #expect(commits == [[500, 500, 500, 500], [500, 500, 500, 500]])
        #expect(try graph.tableDigests() == reference.tableDigests())
    }

    @Test func thePipelineHandsOverOneBatchAtATimeAndReportsEachCommit() throws {
        let w = Workspace()
        let graph = try w.graph()
        let operations = try Self.operations(graph.schema)
        let pipeline = BatchPipeline(graph: graph, now: Self.now, operationsPerTransaction: 50)
        var committed: [Int] = []
        for start in stride(from: 0, to: operations.count, by: 20) {
            let slice = Array(operations[start..<min(start + 20, operations.count)])
            try pipeline.submit(QueuedBatch(operations: slice, hints: nil, metadata: [("at", Array("\(start + slice.count)".utf8))], endsTransaction: false))
            for (batches, _) in pipeline.collect() { committed.append(batches.reduce(0) { $0 + $1.operations.count }) }
        }
        try pipeline.close()
        for (batches, _) in pipeline.collect() { committed.append(batches.reduce(0) { $0 + $1.operations.count }) }
        // 12 batches of 20: commits after 3 (60 >= 50), the last at the close.
        #expect(committed == [60, 60, 60, 60])
        #expect(try graph.metadata("at") == Array("240".utf8))
        #expect(throws: LoadPipelineClosed.self) { try pipeline.submit(QueuedBatch(operations: [], hints: nil, metadata: [], endsTransaction: true)) }
    }

    /// Full batches go to the pipeline's thread while the next is read: the counts, the stored
    /// graph and the checkpoint must be those of committing everything in one transaction.
    @Test(arguments: [(1, nil), (7, nil), (7, 30), (64, 200), (10_000, nil)] as [(Int, Int?)])
    func aPipelinedLoadEqualsOneTransaction(batchSize: Int, transactionSize: Int?) throws {
        let w = Workspace()
        let lines = (0..<300).map { i in
            i % 50 == 49
                ? #"{"op":"unlink","a":"email:u\#(i - 10)@x.com","b":"cookie:c\#((i - 10) % 13)"}"#
                : #"{"event_id":"e\#(i)","ids":{"email":"u\#(i)@x.com","cookie":"c\#(i % 13)"}}"#
        }
        let archive = w.file("a.ndjson", lines)
        var options = LoadOptions()
        options.bulk = false
        options.now = Self.now
        options.batchSize = batchSize
        options.transactionSize = transactionSize
        let graph = try w.graph("pipelined")
        let summary = try Loader(graph: graph, options: options).load([archive])
        options.batchSize = 1_000_000
        options.transactionSize = nil
        let reference = try w.graph("reference")
        let once = try Loader(graph: reference, options: options).load([archive])
        #expect(summary.records == 300)
        #expect(summary.report == once.report)
        #expect(summary.report.unlinks > 0)
        #expect(try graph.tableDigests() == reference.tableDigests())
        #expect(try graph.check().isEmpty)
        // Everything is checkpointed: loading again reads nothing.
        let again = try Loader(graph: graph, options: options).load([archive])
        #expect(again.records == 0)
        #expect(again.resumedLines == 300)
    }

    @Test func theAutomaticTransactionSizeGrowsWithTheDatabase() {
        #expect(LoadOptions.automaticTransactionSize(batchSize: 100_000, databaseBytes: 0) == 100_000)
        #expect(LoadOptions.automaticTransactionSize(batchSize: 100_000, databaseBytes: 600 << 20) == 100_000)
        #expect(LoadOptions.automaticTransactionSize(batchSize: 100_000, databaseBytes: 1_600_000_000) == 200_000)
        #expect(LoadOptions.automaticTransactionSize(batchSize: 100_000, databaseBytes: 5_400_000_000) == 1_000_000)
        #expect(LoadOptions.automaticTransactionSize(batchSize: 7, databaseBytes: 1 << 40) == 70)
    }
}
