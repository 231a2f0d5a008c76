import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery

/// The documentation's sample data in a fresh database, loaded with a fixed clock so that
/// every output is reproducible.
final class SampleDatabase {
    let path = NSTemporaryDirectory() + "idgraph-query-" + UUID().uuidString
    let graph: IdentityGraph
    static let now: Int64 = 1_704_499_200_000  // 2024-01-06T00:00:00Z

    init() throws {
        var options = IdentityGraph.Options()
        options.durability = .fast
        graph = try IdentityGraph.open(at: path, options: options, createIfMissing: true)
        let ops = try StatementHelp.sampleArchive.split(separator: "\n").map { try RecordParser.parse(String($0)) }
        try graph.apply(ops, now: Self.now)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    var executor: Executor { Executor(graph: graph, recordParser: { try RecordParser.parse($0) }, now: Self.now) }
}

/// The repository root (for docs and golden files).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Replaces what legitimately changes between runs: EXPLAIN's timings.
func stable(_ text: String) -> String {
    text.replacingOccurrences(of: #"\d+(\.\d+)? µs"#, with: "<time> µs", options: .regularExpression)
}
