import Foundation
@testable import IdentityGraph
import Testing

/// idgraph's threads carry names the kernel shows (`top -H`, `perf`, `/proc/PID/task/*/comm`).
@Suite struct ThreadControlTests {
    /// The kernel's names of this process's threads.
    private func threadNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { tid in
            try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func aNamedThreadShowsItsNameCutTo15Bytes() throws {
        let named = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let thread = Thread {
            ThreadControl.name("idgraph-test-thread-name")
            named.signal()
            release.wait()
        }
        thread.start()
        named.wait()
        defer { release.signal() }
        #expect(try threadNames().contains("idgraph-test-th"))
    }

    @Test func theRealtimeWriterAndItsSyncerAreNamed() throws {
        let db = try TemporaryDatabase()  // `fast` durability: the writer has a syncer
        let writer = RealtimeWriter(graph: db.graph)
        defer { writer.close() }
        // The threads name themselves as they start: wait for it (a second at most).
        var names: [String] = []
        for _ in 0..<100 {
            names = try threadNames()
            if names.contains("idgraph-writer") && names.contains("idgraph-sync") { break }
            usleep(10_000)
        }
        #expect(names.contains("idgraph-writer"))
        #expect(names.contains("idgraph-sync"))
    }
}

/// The allocator setting the `idgraph` command makes at start.
@Suite struct AllocatorTuningTests {
    /// glibc takes `M_MXFAST` 0 (fast bins off), unless the environment set it already, which wins.
    @Test func fastBinsGoOffUnlessTheEnvironmentSetsThem() {
        let setByEnvironment = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"]?.contains("glibc.malloc.mxfast") ?? false
        #expect(AllocatorTuning.apply() == !setByEnvironment)
    }
}
