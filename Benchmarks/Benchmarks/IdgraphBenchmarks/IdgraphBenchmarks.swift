import Benchmark
import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .microseconds,
        maxDuration: .seconds(5),
        maxIterations: 100_000
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

    // MARK: micro

    Benchmark("normalize email and phone", configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds)) { benchmark in
        let email = RawIdentifier(type: "email", value: "  Alice.Smith@Example.COM ")
        let phone = RawIdentifier(type: "phone", value: "+1 (415) 555-0123")
        for _ in benchmark.scaledIterations {
            blackHole(try Normalizer.identifier(email, schema: .builtIn))
            blackHole(try Normalizer.identifier(phone, schema: .builtIn))
        }
    }

    Benchmark("parse a native event line", configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], timeUnits: .nanoseconds)) { benchmark in
        let line = Array(#"{"event_id":"e-1","ts":"2024-05-01T12:00:00Z","source":"web","type":"order","ids":{"email":"Alice@Example.com","cookie":["c-1","c-2"]},"props":{"amount":19.99,"sku":"A-42"}}"#.utf8)
        for _ in benchmark.scaledIterations { blackHole(try RecordParser.parse(line)) }
    }
}
