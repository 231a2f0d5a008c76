import Foundation
@testable import IdentityGraph
import LMDB
import Testing

/// The journaled real-time writer: its record format, its files, and recovery after a crash
/// of the process or of the system.
@Suite struct JournalTests {
    /// Random operations of every kind, with and without their optional fields.
    static func randomOperation(_ rng: inout SplitMix) -> GraphOperation {
        func bytes(_ n: Int) -> [UInt8] { (0..<Int.random(in: 0...n, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        func id() -> RawIdentifier { RawIdentifier(type: bytes(8), value: bytes(40)) }
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            var attributes: [EventAttribute] = []
            for _ in 0..<Int.random(in: 0...3, using: &rng) { attributes.append(EventAttribute(key: bytes(10) + [0x61], value: bytes(20) + [0x62])) }
            return .event(EventInput(
                eventID: Bool.random(using: &rng) ? bytes(30) : nil, timestamp: Bool.random(using: &rng) ? Int64.random(in: .min ... .max, using: &rng) : nil,
                type: bytes(12), source: bytes(12), identifiers: (0..<Int.random(in: 0...5, using: &rng)).map { _ in id() },
                props: bytes(100), amountMicros: Bool.random(using: &rng) ? Int64.random(in: .min ... .max, using: &rng) : nil, attributes: attributes))
        case 1: return .link(id(), id())
        case 2: return .unlink(id(), id())
        case 3: return .forget(id())
        default: return .retract(eventID: bytes(30))
        }
    }

    @Test func operationsReadBackAsWritten() throws {
        var rng = SplitMix(seed: 17)
        for _ in 0..<2000 {
            let ops = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Self.randomOperation(&rng) }
            var out = ByteWriter()
            for op in ops { op.encode(into: &out) }
            let decoded = try out.bytes.withUnsafeBytes { raw throws(RecordError) in
                var reader = ByteReader(raw)
                var all: [GraphOperation] = []
                while reader.remaining > 0 { all.append(try GraphOperation.decode(from: &reader)) }
                return all
            }
            #expect(decoded == ops)
            // Any prefix cut short fails to decode instead of reading past the end.
            if out.bytes.count > 1 {
                let cut = Array(out.bytes.prefix(Int.random(in: 1..<out.bytes.count, using: &rng)))
                let complete = cut.withUnsafeBytes { raw -> Bool in
                    var reader = ByteReader(raw)
                    while reader.remaining > 0 { guard (try? GraphOperation.decode(from: &reader)) != nil else { return false } }
                    return true
                }
                if complete { #expect(ops.count > 1) }  // only a cut between two operations decodes
            }
        }
    }

    /// A crash in the middle of an append leaves a partial frame; a damaged byte fails its
    /// checksum. Reading stops before either, never past.
    @Test func readingStopsAtATornOrDamagedRecord() throws {
        let dir = NSTemporaryDirectory() + "idgraph-journal-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try Journal(directory: dir)
        for i in 0..<3 { journal.append(.group, body: Array("record \(i)".utf8)) }
        try journal.flush()
        let segment = journal.position.segment
        journal.close()
        #expect(try Journal(directory: dir).position.segment == segment + 1)  // a new segment after the old
        let path = Journal.path(of: segment, in: dir)
        var records = try Journal.records(ofSegment: segment, in: dir)
        #expect(records.map(\.kind) == [.header, .group, .group, .group])
        #expect(records.last.map { String(decoding: $0.body, as: UTF8.self) } == "record 2")

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let whole = bytes.count
        var torn = ByteWriter()
        Journal.frame(.group, body: Array("not finished".utf8), into: &torn)
        try Data(bytes + torn.bytes.dropLast(3)).write(to: URL(fileURLWithPath: path))
        records = try Journal.records(ofSegment: segment, in: dir)
        #expect(records.count == 4)
        #expect(records.last?.end.offset == UInt64(whole))

        bytes[Int(records[2].end.offset) + 10] ^= 0xFF  // inside the third group's body
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try Journal.records(ofSegment: segment, in: dir).count == 3)
    }

    @Test func oneWriterPerJournal() throws {
        let dir = NSTemporaryDirectory() + "idgraph-journal-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try Journal(directory: dir)
        #expect(throws: JournalError.self) { _ = try Journal(directory: dir) }
        first.close()
        _ = try Journal(directory: dir)
    }

    /// Every acknowledged submission is in the database once the writer closes, the racing
    /// producers end as sequential application in the writer's order, and a clean close
    /// leaves no journal to recover.
    @Test(arguments: [1 << 24, 1 << 16])  // the second grows the map while snapshots are pinned
    func journaledWriterEqualsSequentialApplicationAndClosesClean(mapSize: Int) async throws {
        let db = try TemporaryDatabase(mapSize: mapSize)
        let writer = try RealtimeWriter.journaled(graph: db.graph)
        var operations: [GraphOperation] = []
        for seed in 3000..<3012 { operations += MergeSplitPropertyTests.scenario(seed: UInt64(seed)).operations }
        let applied = try await withThrowingTaskGroup(of: (UInt64, GraphOperation).self) { group in
            for op in operations { group.addTask { (try await writer.submit([op]).order, op) } }
            var all: [(UInt64, GraphOperation)] = []
            for try await result in group { all.append(result) }
            return all
        }
        writer.close()
        #expect(writer.statistics.commits < UInt64(operations.count))  // commits were shared
        let fileSize = try FileManager.default.attributesOfItem(atPath: db.path + "/data.mdb")[.size] as? Int ?? 0
        #expect(fileSize > mapSize || mapSize > 1 << 20)  // the small map had to grow
        #expect(Journal.segments(in: db.path + "/journal").isEmpty)

        let sequential = try TemporaryDatabase()
        for (_, op) in applied.sorted(by: { $0.0 < $1.0 }) { try sequential.graph.apply([op]) }
        #expect(try db.graph.partition() == sequential.graph.partition())
        #expect(try db.graph.read { try $0.stats() }.events == sequential.graph.read { try $0.stats() }.events)
        #expect(try db.graph.check().isEmpty)
        try db.reopen()
        #expect(db.graph.journalRecovery == nil)
    }

    static let now: Int64 = 1_700_000_000_000
    static let first: [GraphOperation] = [event("email:a@x.com", "cookie:c1", id: "e1", ts: 1000, amount: 5), event("email:b@x.com", id: "e2", ts: 2000)]
    static let second: [[GraphOperation]] = [
        [event("cookie:c1", "email:b@x.com", id: "e3", ts: 3000)], [.unlink(.id("email:a@x.com"), .id("cookie:c1"))], [event("phone:+1 555 0100", "email:a@x.com", id: "e4", ts: 4000, amount: 2)],
    ]

    /// What a journaled writer leaves when it dies after committing and journaling the batches
    /// of `second` (each in a transaction of its own, not synced) with only the snapshot
    /// before them recorded as synced (`S`).
    static func crashedState(bootID: String) throws -> TemporaryDatabase {
        let db = try TemporaryDatabase()
        try db.graph.apply(first, now: now)
        let journal = try Journal(directory: db.path + "/journal", bootID: bootID)
        let flusher = JournalFlusher(journal: journal)
        let pin = try JournalSnapshots.record(graph: db.graph, flusher: flusher)
        for (i, group) in second.enumerated() {
            _ = try db.graph.apply(groups: [try db.graph.prepare(group)], now: now + Int64(i), journalBatch: UInt64(i + 1))
            var records = ByteWriter()
            var header = ByteWriter()
            header.append(UInt64(i + 1))
            header.append(now + Int64(i))
            Journal.frame(.transaction, body: header.bytes, into: &records)
            var body = ByteWriter()
            for op in group { op.encode(into: &body) }
            Journal.frame(.group, body: body.bytes, into: &records)
            _ = try flusher.waitDurable(flusher.submit(records.bytes))
        }
        flusher.stop()
        pin.close()
        return db
    }

    /// Tables that differ, but for `meta` (the journaled run also stores its journal position).
    static func differing(_ a: IdentityGraph, _ b: IdentityGraph) throws -> [String] {
        let (x, y) = (try a.tableDigests(), try b.tableDigests())
        return Set(x.keys).union(y.keys).filter { $0 != "meta" && x[$0] != y[$0] }.sorted()
    }

    static func reference() throws -> TemporaryDatabase {
        let db = try TemporaryDatabase()
        try db.graph.apply(first, now: now)
        for (i, group) in second.enumerated() { try db.graph.apply(group, now: now + Int64(i)) }
        return db
    }

    /// After a system crash (another boot id) the database goes back to the recorded snapshot
    /// and the journal's batches since are applied again: the same tables as an uninterrupted run.
    @Test func afterASystemCrashTheRecordedSnapshotIsBroughtForwardFromTheJournal() throws {
        let db = try Self.crashedState(bootID: "a-boot-before-the-crash")
        try db.reopen()
        let report = try #require(db.graph.journalRecovery)
        #expect(report.restoredSyncedSnapshot)
        #expect(report.submissions == 3)
        #expect(report.transactions == 3)
        #expect(Journal.segments(in: db.path + "/journal").isEmpty)
        let reference = try Self.reference()
        #expect(try Self.differing(db.graph, reference.graph) == [])
        #expect(try db.graph.check().isEmpty)
        try db.reopen()
        #expect(db.graph.journalRecovery == nil)
    }

    /// A crash in the middle of an append leaves a torn record at the journal's end: recovery
    /// applies the whole batches before it (the torn one was never acknowledged).
    @Test func recoveryStopsAtATornTail() throws {
        let db = try Self.crashedState(bootID: "a-boot-before-the-crash")
        let segment = try #require(Journal.segments(in: db.path + "/journal").last)
        let path = Journal.path(of: segment, in: db.path + "/journal")
        var torn = ByteWriter()
        Journal.frame(.transaction, body: ByteWriter.bigEndian(99) + ByteWriter.bigEndian(0), into: &torn)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(torn.bytes.dropLast(5)))
        try handle.close()
        try db.reopen()
        let report = try #require(db.graph.journalRecovery)
        #expect(report.submissions == 3)
        let reference = try Self.reference()
        #expect(try Self.differing(db.graph, reference.graph) == [])
    }

    /// After a crash of the process alone (same boot) the commits stand: their pages are in
    /// the operating system's cache. Nothing is applied twice.
    @Test func afterAProcessCrashTheCommitsStandAndNothingIsAppliedTwice() throws {
        let db = try Self.crashedState(bootID: Journal.currentBootID())
        try db.reopen()
        let report = try #require(db.graph.journalRecovery)
        #expect(!report.restoredSyncedSnapshot)
        #expect(report.submissions == 0)
        let reference = try Self.reference()
        #expect(try Self.differing(db.graph, reference.graph) == [])
    }

    /// A pinned snapshot's meta record written back makes LMDB open that snapshot, and its
    /// pages were left alone by the commits after it.
    @Test func restoringAPinnedSnapshotsMetaRecordOpensThatSnapshot() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([event("email:a@x.com", id: "e1")], now: Self.now)
        let pin = try PinnedSnapshot(db.graph.environment)
        for i in 0..<50 { try db.graph.apply([event("email:b\(i)@x.com", "email:a@x.com", id: "e-b\(i)")], now: Self.now) }
        let record = pin.metaRecord
        #expect(MetaPages.transactionID(ofRecord: record) == pin.transactionID)
        pin.close()
        let path = db.path
        db.closeForTest()
        #expect(MetaPages.isUnused(directory: path))
        try MetaPages.restore(dataFile: path + "/data.mdb", record: record)
        let after = try #require(MetaPages.transactionIDs(dataFile: path + "/data.mdb"))
        #expect(after.0 == pin.transactionID && after.1 == pin.transactionID)
        try db.reopen()
        #expect(try db.graph.entityInfo(of: "email:a@x.com") != nil)
        #expect(try db.graph.entityInfo(of: "email:b0@x.com") == nil)
        #expect(try db.graph.check().isEmpty)
    }
}
