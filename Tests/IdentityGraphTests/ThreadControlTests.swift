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
    /// glibc takes `M_MXFAST` 0 (fast bins off) and the 64 MiB top pad, each unless the
    /// environment set it already, which wins.
    @Test func settingsApplyUnlessTheEnvironmentSetsThem() {
        let tunables = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] ?? ""
        let expected = (tunables.contains("glibc.malloc.mxfast") ? 0 : 1) + (tunables.contains("glibc.malloc.top_pad") ? 0 : 1)
        #expect(AllocatorTuning.apply() == expected)
    }
}

/// ``ReadMostly``: the catalog's holder, read by every lookup and submission at once.
@Suite struct ReadMostlyTests {
    /// Readers racing a writer that keeps 64 fields equal never see them apart, and each sees
    /// the value only move forward.
    @Test func readersSeeWholeValuesInOrder() {
        let shared = ReadMostly(InlineArray<64, Int>(repeating: 0))
        let torn = ReadMostly(0), backwards = ReadMostly(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker == 0 {
                for i in 1...20_000 { shared.update { value in for k in value.indices { value[k] = i } } }
                return
            }
            var last = 0
            for _ in 0..<50_000 {
                let value = shared.current
                let first = value[0]
                var apart = false
                for k in value.indices where value[k] != first { apart = true }
                if apart { torn.update { $0 += 1 } }
                if first < last { backwards.update { $0 += 1 } }
                last = first
            }
        }
        #expect(torn.current == 0)
        #expect(backwards.current == 0)
        #expect(shared.current[63] == 20_000)
    }
}
