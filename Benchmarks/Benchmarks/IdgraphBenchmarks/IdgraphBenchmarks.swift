import Benchmark
import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery

let benchmarks: @Sendable () -> Void = {
    // Allocation counts are stable on a shared machine, so they carry the committed thresholds
    // (Benchmarks/Thresholds/; `swift package benchmark thresholds check --metric mallocCountTotal`):
    // 5% or 10 allocations more than recorded is a regression.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .microseconds,
        maxDuration: .seconds(5),
        maxIterations: 100_000,
        thresholds: [.mallocCountTotal: .init(relative: [.p50: 5.0, .p90: 5.0], absolute: [.p50: 10, .p90: 10])]
    )

    // MARK: queries (issue targets: RESOLVE p99 ≤ 20 µs, ENTITY of 100 ids ≤ 1 ms,
    // EVENTS LIMIT 50 of a 10,000-event entity ≤ 1 ms, PATH 6 links apart ≤ 2 ms)

    Benchmark("RESOLVE a random identifier") { benchmark in
        let executor = Executor(graph: Fixtures.graph)
        let ids = Fixtures.sampleIdentifiers
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            i = (i &+ 7919) % ids.count
            blackHole(try executor.run("RESOLVE " + ids[i]))
        }
    }

    Benchmark("ENTITY of a 100-identifier entity") { benchmark in
        let executor = Executor(graph: Fixtures.graph)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try executor.run("ENTITY OF crm:bench-hub100")) }
    }

    // MARK: Customer 360 (issue targets: ENTITY with the full profile p99 ≤ 1 ms; FIND over 1M
    // entities ≤ 500 ms; RFM over 1M entities ≤ 2 s — run with IDGRAPH_BENCH_DB on a database
    // of a million entities for those two, see docs/benchmarks.md)

    Benchmark("ENTITY with the full profile of a random entity") { benchmark in
        let executor = Executor(graph: Fixtures.graph, now: 1_735_603_200_000)
        let ids = Fixtures.sampleEntities
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            i = (i &+ 7919) % ids.count
            blackHole(try executor.run("ENTITY \(ids[i])"))
        }
    }

    Benchmark("FIND lifecycle = 'hero' ORDER BY revenue DESC LIMIT 10 (every entity)", configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds, maxDuration: .seconds(10), maxIterations: 20)) { benchmark in
        let executor = Executor(graph: Fixtures.graph, now: 1_735_603_200_000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try executor.run("FIND ENTITIES WHERE lifecycle = 'hero' ORDER BY revenue DESC LIMIT 10")) }
    }

    Benchmark("COMPUTE RFM (every entity, durable commit)", configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds, maxDuration: .seconds(10), maxIterations: 10)) { benchmark in
        let graph = Fixtures.graph
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try graph.computeRFM(now: 1_735_603_200_000)) }
    }

    Benchmark("EVENTS LIMIT 50 of a 10,000-event entity") { benchmark in
        let executor = Executor(graph: Fixtures.graph)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try executor.run("EVENTS OF email:busy@bench.example LIMIT 50")) }
    }

    Benchmark("PATH between identifiers 6 links apart") { benchmark in
        let executor = Executor(graph: Fixtures.graph)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try executor.run("PATH chain:0 TO chain:6")) }
    }

    // MARK: writes (durable: each includes a commit with fsync)

    Benchmark("merge two new identifiers (one event, durable commit)", configuration: .init(maxDuration: .seconds(3), maxIterations: 2_000)) { benchmark in
        let graph = Fixtures.graph
        let run = UUID().uuidString.prefix(8)
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            i += 1
            try graph.apply([.event(EventInput(identifiers: [RawIdentifier(type: "email", value: "m\(run)-\(i)@bench.example"), RawIdentifier(type: "cookie", value: "m\(run)-\(i)")]))])
        }
    }

    Benchmark("split + re-merge of a 1,000-identifier entity (two durable commits)", configuration: .init(maxDuration: .seconds(3), maxIterations: 500)) { benchmark in
        let graph = Fixtures.graph
        let a = RawIdentifier(type: "barbell", value: "a"), b = RawIdentifier(type: "barbell", value: "b")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try graph.apply([.unlink(a, b)])  // splits 1,000 into 500 + 500
            try graph.apply([.link(a, b)])    // merges them back (relabels 500)
        }
    }

    Benchmark("split of a 1,000-identifier entity (durable commit)", configuration: .init(maxDuration: .seconds(3), maxIterations: 500)) { benchmark in
        let graph = Fixtures.graph
        let a = RawIdentifier(type: "barbell", value: "a"), b = RawIdentifier(type: "barbell", value: "b")
        try graph.apply([.link(a, b)])  // setup, not measured: the two halves are one entity
        benchmark.startMeasurement()
        try graph.apply([.unlink(a, b)])  // splits 1,000 into 500 + 500
        benchmark.stopMeasurement()
    }

    // MARK: governance (targets: erasure p99 ≤ 2 ms; a demotion dissolving a 10,000-identifier
    // blob ≤ 100 ms; all durable)

    Benchmark("erase one identifier (forget, durable commit)", configuration: .init(maxDuration: .seconds(3), maxIterations: 2_000)) { benchmark in
        let graph = Fixtures.graph
        let run = UUID().uuidString.prefix(8)
        let n = 2_000
        // Each iteration erases an email that is linked to a cookie and named by two events.
        var setup: [GraphOperation] = []
        for i in 0..<n {
            let ids = [RawIdentifier(type: "email", value: "erase-\(run)-\(i)@bench.example"), RawIdentifier(type: "cookie", value: "erase-\(run)-\(i)")]
            setup.append(.event(EventInput(identifiers: ids)))
            setup.append(.event(EventInput(identifiers: [ids[0]])))
        }
        try graph.apply(setup)
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try graph.apply([.forget(RawIdentifier(type: "email", value: "erase-\(run)-\(i % n)@bench.example"))])
            i += 1
        }
    }

    Benchmark("generic demotion dissolving a 10,000-identifier blob (durable commit)", configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, maxDuration: .seconds(20), maxIterations: 5)) { benchmark in
        // A fresh database whose schema makes a shared device generic past 10,000 links.
        let path = NSTemporaryDirectory() + "idgraph-bench-blob-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        let graph = try IdentityGraph.open(at: path, createIfMissing: true, schema: Schema(types: ["device": TypePolicy(genericAfter: 10_000)]))
        for iteration in benchmark.scaledIterations {
            let kiosk = RawIdentifier(type: "device", value: "kiosk-\(iteration)")
            // 10,000 strangers' emails welded by one kiosk: one entity of 10,001 identifiers.
            try graph.apply((0..<10_000).map { i in
                .event(EventInput(identifiers: [kiosk, RawIdentifier(type: "email", value: "p\(iteration)-\(i)@blob.example")]))
            })
            benchmark.startMeasurement()
            // One more stranger: degree 10,001 > 10,000, the kiosk turns generic, the blob dissolves.
            try graph.apply([.event(EventInput(identifiers: [kiosk, RawIdentifier(type: "email", value: "last-\(iteration)@blob.example")]))])
            benchmark.stopMeasurement()
        }
    }

    // MARK: micro

    Benchmark("normalize email and phone", configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds)) { benchmark in
        let email = RawIdentifier(type: "email", value: "  Alice.Smith@Example.COM ")
        let phone = RawIdentifier(type: "phone", value: "+1 (415) 555-0123")
        for _ in benchmark.scaledIterations {
            blackHole(try Normalizer.identifier(email, schema: .builtIn))
            blackHole(try Normalizer.identifier(phone, schema: .builtIn))
        }
    }

    let nativeLine = Array(#"{"event_id":"e-1","ts":"2024-05-01T12:00:00Z","source":"web","type":"order","ids":{"email":"Alice@Example.com","cookie":["c-1","c-2"]},"props":{"amount":19.99,"sku":"A-42"}}"#.utf8)
    Benchmark("parse a native event line", configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], timeUnits: .nanoseconds)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try RecordParser.parse(nativeLine)) }
    }

    // What the loader does: parse and prepare into a reused batch (no allocation once warm).
    let batchBox = BatchBox()
    Benchmark("parse and prepare a native event line into an event batch", configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], timeUnits: .nanoseconds)) { benchmark in
        for _ in benchmark.scaledIterations {
            if batchBox.batch.count == 2048 { batchBox.batch.removeAll() }
            let control = try nativeLine.withUnsafeBytes { try RecordParser.parse($0, format: .auto, into: &batchBox.batch) }
            blackHole(control)
        }
    }
}

/// The batch the batch-parsing benchmark fills across its iterations (reused, as the loader does).
final class BatchBox: @unchecked Sendable {
    var batch = EventBatch(schema: .builtIn)
}
