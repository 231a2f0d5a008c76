// swift-tools-version: 6.1
// idgraph's benchmarks: a package of its own so that users and CI never build the harness.
//   cd Benchmarks && swift package benchmark                       (small generated database)
//   IDGRAPH_BENCH_DB=/path/to/db swift package benchmark            (a database you loaded)
import PackageDescription

let package = Package(
    name: "idgraph-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "idgraph", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "IdgraphBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "IdentityGraph", package: "idgraph"),
                .product(name: "IdentityIngest", package: "idgraph"),
                .product(name: "IdentityQuery", package: "idgraph"),
            ],
            path: "Benchmarks/IdgraphBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
