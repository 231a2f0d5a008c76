// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "idgraph",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "idgraph", targets: ["idgraph"]),
        .library(name: "IdentityGraph", targets: ["IdentityGraph"]),
        .library(name: "IdentityIngest", targets: ["IdentityIngest"]),
        .library(name: "LMDB", targets: ["LMDB"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        // Debian's liblmdb-dev, found through pkg-config.
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // Debian's zlib, for reading .gz archives.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The only place that touches LMDB's C API: a small safe wrapper.
        .target(name: "LMDB", dependencies: ["CLMDB"]),
        // The identity graph: schema, store, merge/split, event log, summaries, checker.
        .target(
            name: "IdentityGraph",
            dependencies: [
                "LMDB",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Archive formats: NDJSON scanning and parsing into graph operations.
        .target(
            name: "IdentityIngest",
            dependencies: [
                "IdentityGraph", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "idgraph",
            dependencies: [
                "IdentityGraph", "IdentityIngest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"]),
        .testTarget(
            name: "IdentityGraphTests",
            dependencies: [
                "IdentityGraph", "IdentityIngest",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "IdentityIngestTests", dependencies: ["IdentityIngest"]),
        .testTarget(name: "CLITests", dependencies: ["idgraph"]),
    ]
)
