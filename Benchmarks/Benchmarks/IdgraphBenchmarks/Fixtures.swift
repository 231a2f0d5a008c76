import Foundation
import IdentityGraph
import IdentityIngest

/// The database the benchmarks read: `IDGRAPH_BENCH_DB` (e.g. one loaded from a 10M-event
/// archive), or a fresh one holding a 200,000-event generated archive. Either way the fixtures
/// the targets name are added once (idempotently, by event id):
/// - `bench:hub100`, an entity of 100 identifiers;
/// - `email:busy@bench.example`, an entity with 10,000 events;
/// - `chain:0` … `chain:6`, identifiers 6 links apart;
/// - `barbell:a` + 499 leaves and `barbell:b` + 499 leaves joined by one link (1,000 identifiers).
enum Fixtures {
    static let path: String = ProcessInfo.processInfo.environment["IDGRAPH_BENCH_DB"]
        ?? (NSTemporaryDirectory() + "idgraph-bench-default-v2")  // v2: archives with profile props

    static let graph: IdentityGraph = {
        do {
            let fresh = !IdentityGraph.exists(at: path)
            let graph = try IdentityGraph.open(at: path, createIfMissing: true)
            if fresh {
                var options = ArchiveGenerator.Options()
                options.events = 200_000
                var generator = ArchiveGenerator(options: options)
                let archive = path + ".ndjson"
                _ = try generator.write(to: archive)
                _ = try Loader(graph: graph).load([archive])
            }
            try addFixtures(graph)
            return graph
        } catch {
            fatalError("benchmark fixtures: \(error)")
        }
    }()

    static func event(_ id: String, _ ids: [(String, String)], ts: Int64 = 1_704_067_200_000) -> GraphOperation {
        .event(EventInput(eventID: Array(id.utf8), timestamp: ts, identifiers: ids.map { RawIdentifier(type: $0.0, value: $0.1) }))
    }

    static func addFixtures(_ graph: IdentityGraph) throws {
        var ops: [GraphOperation] = []
        for i in 0..<99 { ops.append(event("bench-hub-\(i)", [("crm", "bench-hub100"), ("cookie", "bench100-\(i)")])) }
        for i in 0..<10_000 {
            ops.append(event("bench-busy-\(i)", [("email", "busy@bench.example"), ("cookie", "bench-busy-\(i % 5)")], ts: 1_704_067_200_000 + Int64(i) * 60_000))
        }
        for i in 0..<6 { ops.append(.link(RawIdentifier(type: "chain", value: "\(i)"), RawIdentifier(type: "chain", value: "\(i + 1)"))) }
        for side in ["a", "b"] {
            for i in 0..<499 { ops.append(event("bench-barbell-\(side)-\(i)", [("barbell", side), ("cookie", "barbell-\(side)-\(i)")])) }
        }
        ops.append(.link(RawIdentifier(type: "barbell", value: "a"), RawIdentifier(type: "barbell", value: "b")))
        // Links are not idempotent: add them only once.
        let hasChain = try graph.read { try $0.entity(of: RawIdentifier(type: "chain", value: "6")) } != nil
        if hasChain { ops.removeAll { if case .link = $0 { return true } else { return false } } }
        try graph.apply(ops)
    }

    /// Entity ids sampled from the database: every 13th live entity, the first 2,000 (ids from
    /// the generated archive, loaded first; the write benchmarks add entities after them, which
    /// would otherwise change the sample, and the allocation counts, from run to run).
    static let sampleEntities: [EntityID] = {
        var out: [EntityID] = []
        try? graph.read { reader in
            var n = 0
            try reader.forEachEntityHeader { id, _, _ in
                n += 1
                if n % 13 == 0 { out.append(id) }
                if out.count >= 2_000 { throw CancellationError() }
            }
        }
        return out
    }()

    /// Identifiers sampled from the database, for lookups of random existing keys.
    static let sampleIdentifiers: [String] = {
        var out: [String] = []
        try? graph.read { reader in
            var n = 0
            try reader.forEachMembership { id, _ in
                n += 1
                if n % 7 == 0 && !id.valueText.contains(" ") { out.append(id.description) }
                if out.count >= 20_000 { throw CancellationError() }
            }
        }
        return out
    }()
}
