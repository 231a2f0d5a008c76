import Foundation
import IdentityGraph
@testable import IdentityIngest
import Synchronization
import Testing

@Suite struct BatchCommitterTests {
    struct Refused: Error, Equatable { let batch: Int }

    @Test func batchesRunOneAtATimeInOrderAndReportTheirSize() throws {
        let committer = BatchCommitter()
        #expect(try committer.finish() == nil)
        let log = Mutex<[Int]>([])
        for batch in 0..<20 {
            _ = try committer.finish()
            committer.start(operations: batch + 1) {
                log.withLock { $0.append(batch) }
                var report = ApplyReport()
                report.eventsStored = batch
                return report
            }
            if batch == 19 {
                let last = try #require(try committer.finish())
                #expect(last.operations == 20)
                #expect(last.report.eventsStored == 19)
            }
        }
        #expect(log.withLock { $0 } == Array(0..<20))
        #expect(try committer.finish() == nil)
    }

    @Test func aFailedBatchIsReportedByTheNextFinish() throws {
        let committer = BatchCommitter()
        committer.start(operations: 5) { throw Refused(batch: 1) }
        #expect(throws: Refused(batch: 1)) { try committer.finish() }
        // Collected: the committer takes the next batch.
        #expect(try committer.finish() == nil)
        committer.start(operations: 2) { ApplyReport() }
        #expect(try committer.finish()?.operations == 2)
    }

    /// Full batches commit on the committer's thread while the next is read: the counts, the
    /// stored graph and the checkpoint must be those of committing every batch in line.
    @Test(arguments: [1, 7, 64, 10_000])
    func aPipelinedLoadEqualsOneTransaction(batchSize: Int) throws {
        let w = Workspace()
        let lines = (0..<300).map { i in
            i % 50 == 49
                ? #"{"op":"unlink","a":"email:u\#(i - 10)@x.com","b":"cookie:c\#((i - 10) % 13)"}"#
                : #"{"event_id":"e\#(i)","ids":{"email":"u\#(i)@x.com","cookie":"c\#(i % 13)"}}"#
        }
        let archive = w.file("a.ndjson", lines)
        var options = LoadOptions()
        options.bulk = false
        options.now = 1_750_000_000_000
        options.batchSize = batchSize
        let graph = try w.graph("pipelined")
        let summary = try Loader(graph: graph, options: options).load([archive])
        options.batchSize = 1_000_000
        let reference = try w.graph("reference")
        let once = try Loader(graph: reference, options: options).load([archive])
        #expect(summary.records == 300)
        #expect(summary.report == once.report)
        #expect(summary.report.unlinks > 0)
        #expect(try graph.read { try $0.stats() } == reference.read { try $0.stats() })
        #expect(try graph.check().isEmpty)
        // Everything is checkpointed: loading again reads nothing.
        let again = try Loader(graph: graph, options: options).load([archive])
        #expect(again.records == 0)
        #expect(again.resumedLines == 300)
    }
}
