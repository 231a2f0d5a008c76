// swift-tools-version: 6.1
import PackageDescription

/// Release builds skip Swift's run-time exclusivity checks in the library targets: the bulk
/// path spent 4.5% of its time in them (`swift_beginAccess`, `AccessSet::insert`) on the
/// writer's and encoder's class-held tables. 1M-event load 3.80 → 3.38 s, dry run 1.17 → 1.06 s.
/// Debug builds (the tests) keep the checks, so a real overlapping access still traps there.
let uncheckedExclusivity: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "idgraph",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "idgraph", targets: ["idgraph"]),
        .library(name: "IdentityGraph", targets: ["IdentityGraph"]),
        .library(name: "IdentityIngest", targets: ["IdentityIngest"]),
        .library(name: "IdentityQuery", targets: ["IdentityQuery"]),
        .library(name: "LMDB", targets: ["LMDB"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
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
        // Debian's libedit: line editing, history and completion for `idgraph shell`.
        .systemLibrary(
            name: "CEditLine",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),
        // A cache prefetch hint (one inline C function) for the bulk writer's hash tables.
        .systemLibrary(name: "CPrefetch"),
        // glibc allocator settings (mallopt) the Glibc module does not export: AllocatorTuning.
        .systemLibrary(name: "CMalloc"),
        // Naming threads (prctl, variadic in C) so that top -H and perf tell them apart.
        .systemLibrary(name: "CThreads"),
        // The only place that touches LMDB's C API: a small safe wrapper.
        .target(name: "LMDB", dependencies: ["CLMDB"], swiftSettings: uncheckedExclusivity),
        // The identity graph: schema, store, merge/split, event log, summaries, checker.
        .target(
            name: "IdentityGraph",
            dependencies: [
                "LMDB", "CPrefetch", "CThreads", "CMalloc", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: uncheckedExclusivity
        ),
        // Archive formats: NDJSON scanning and parsing into graph operations.
        .target(
            name: "IdentityIngest",
            dependencies: [
                "IdentityGraph", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: uncheckedExclusivity
        ),
        // The query language: lexer → parser → AST → executor over a read transaction.
        .target(name: "IdentityQuery", dependencies: ["IdentityGraph"], swiftSettings: uncheckedExclusivity),
        .executableTarget(
            name: "idgraph",
            dependencies: [
                "IdentityGraph", "IdentityIngest", "IdentityQuery", "CEditLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"]),
        .testTarget(
            name: "IdentityGraphTests",
            dependencies: [
                "IdentityGraph", "IdentityIngest", "LMDB",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "IdentityIngestTests", dependencies: ["IdentityIngest"]),
        .testTarget(
            name: "IdentityQueryTests",
            dependencies: [
                "IdentityQuery", "IdentityIngest",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["golden"]
        ),
        .testTarget(name: "CLITests", dependencies: ["idgraph"]),
    ]
)
