import LMDB

/// What opening a database recovered from a real-time writer's journal.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// Submissions applied again (acknowledged, not yet in a commit the database had).
    public var submissions = 0
    /// Write transactions they were applied in (as the writer had grouped them).
    public var transactions = 0
    /// Whether the database went back to the last snapshot the journal recorded as synced:
    /// the journal came from another boot of the machine (a system crash or a restart), so
    /// the commits after that snapshot may not all have reached the disk; their submissions
    /// were applied again from the journal.
    public var restoredSyncedSnapshot = false
}

/// Bringing a database up to its journal when it is opened (``RealtimeWriter/journaled(graph:options:)``
/// acknowledges submissions once they are committed without a sync and journaled).
///
/// Before the environment opens: if the journal was written under another boot of the
/// machine (a system crash or a restart since), the commits after the last snapshot the
/// journal recorded as synced (`S`) may have lost pages, so that snapshot's meta record is
/// written into both meta pages (``MetaPages/restore(dataFile:record:)``): its pages were
/// pinned and so untouched. After it opens: every batch the journal holds beyond the batch
/// number the database stored is applied again, each in a transaction of its own with its
/// own `now`, in order, and synced; then the segments are deleted. Applying the same
/// operations to the same state gives the same result, so a submitter's acknowledged
/// resolution holds after recovery.
enum JournalRecovery {
    static func directory(of path: String) -> String { path + "/journal" }

    /// Before the environment opens: takes the journal's lock and, after a system crash, goes
    /// back to the last recorded snapshot. `nil` when there is nothing to recover or a live
    /// writer holds the journal (that writer's batches are its own).
    static func prepare(path: String) throws -> (fd: Int32, restored: Bool)? {
        let dir = directory(of: path)
        let segments = Journal.segments(in: dir)
        guard !segments.isEmpty else { return nil }
        let lock: Int32
        do { lock = try Journal.lock(dir) } catch JournalError.inUse { return nil }
        do {
            var restarted = false
            var snapshot: (txnID: UInt64, record: [UInt8])?
            let boot = Journal.currentBootID()
            for n in segments {
                for record in try Journal.records(ofSegment: n, in: dir) {
                    switch record.kind {
                    case .header: if String(decoding: record.body, as: UTF8.self) != boot { restarted = true }
                    case .synced:
                        guard record.body.count == 16 + MetaPages.recordLength else { continue }
                        snapshot = (try uint64(Array(record.body.prefix(8))), Array(record.body.suffix(MetaPages.recordLength)))
                    default: break
                    }
                }
            }
            let dataFile = path + "/data.mdb"
            var restored = false
            if restarted, let snapshot, let (a, b) = MetaPages.transactionIDs(dataFile: dataFile), max(a, b) != snapshot.txnID {
                guard MetaPages.isUnused(directory: path) else { throw JournalError.inUse(path: dir) }
                try MetaPages.restore(dataFile: dataFile, record: snapshot.record)
                restored = true
            }
            return (lock, restored)
        } catch {
            Journal.unlock(lock)
            throw error
        }
    }

    static func uint64(_ body: [UInt8]) throws -> UInt64 {
        try body.withUnsafeBytes { raw throws(RecordError) in var r = ByteReader(raw); return try r.uint64() }
    }
}

extension IdentityGraph {
    /// The number of the last journaled batch the database holds (0: none).
    func storedJournalBatch() throws -> UInt64 {
        try environment.read { txn in
            try txn.value(databases.meta, key: MetaKey.journalBatch).map { try JournalRecovery.uint64($0) }
        } ?? 0
    }

    /// After the environment opened: applies the journal's batches beyond the stored batch
    /// number, syncs, deletes the segments and releases the lock.
    func replayJournal(lock: (fd: Int32, restored: Bool)) throws -> JournalRecoveryReport {
        defer { Journal.unlock(lock.fd) }
        let dir = JournalRecovery.directory(of: path)
        let stored = try storedJournalBatch()
        var batches: [(number: UInt64, now: Int64, groups: [[GraphOperation]])] = []
        var inBatch = false
        for n in Journal.segments(in: dir) {
            for record in try Journal.records(ofSegment: n, in: dir) {
                switch record.kind {
                case .transaction:
                    guard record.body.count == 16 else { throw JournalError.unreadable(path: Journal.path(of: n, in: dir), detail: "a batch header of \(record.body.count) bytes") }
                    let number = try JournalRecovery.uint64(Array(record.body.prefix(8)))
                    inBatch = number > stored
                    if inBatch { batches.append((number, Int64(bitPattern: try JournalRecovery.uint64(Array(record.body.suffix(8)))), [])) }
                case .group where inBatch:
                    do {
                        let ops = try record.body.withUnsafeBytes { raw throws(RecordError) in
                            var reader = ByteReader(raw)
                            var ops: [GraphOperation] = []
                            while reader.remaining > 0 { ops.append(try GraphOperation.decode(from: &reader)) }
                            return ops
                        }
                        batches[batches.count - 1].groups.append(ops)
                    } catch {
                        throw JournalError.unreadable(path: Journal.path(of: n, in: dir), detail: "\(error)")
                    }
                default: break
                }
            }
        }
        var report = JournalRecoveryReport(restoredSyncedSnapshot: lock.restored)
        for batch in batches where !batch.groups.isEmpty {
            let prepared = try batch.groups.map { try prepare($0) }
            _ = try apply(groups: prepared, now: batch.now, journalBatch: batch.number)
            report.submissions += batch.groups.count
            report.transactions += 1
        }
        try environment.sync(force: true)
        Journal.removeSegments(in: dir)
        return report
    }
}
