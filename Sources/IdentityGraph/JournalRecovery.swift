import LMDB

/// Bringing a database up to its journal when it is opened (``RealtimeWriter/journaled(graph:options:)``
/// acknowledges submissions once they are in the journal, and commits the B-trees behind it
/// without waiting for the disk).
///
/// Before the environment opens: if the journal was written under another boot of the
/// machine (a system crash or a restart since) and the data file's newest snapshot is a
/// commit the writer made without a sync and never saw synced (`C` without `S`), some of its
/// pages may be missing: the older meta page is made current (``MetaPages/discardNewest(dataFile:)``),
/// which the writer's protocol keeps whole (it never commits before the previous commit is
/// synced). After it opens: every transaction the journal holds beyond the position the
/// database stored is applied again, with its own `now`, in order, and synced; then the
/// segments are deleted. Applying the same operations to the same state gives the same
/// result, so a submitter's acknowledged resolution holds after recovery.
/// What opening a database recovered from a real-time writer's journal.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// Submissions applied again (acknowledged, not yet in a commit the database had).
    public var submissions = 0
    /// Write transactions they were applied in (as the writer had grouped them).
    public var transactions = 0
    /// Whether the newest commit was set aside: the journal came from another boot of the
    /// machine and that commit had not been seen synced, so its pages may not all have
    /// reached the disk; its submissions were applied again from the journal.
    public var undidUnsyncedCommit = false
}

enum JournalRecovery {
    static func directory(of path: String) -> String { path + "/journal" }

    /// Before the environment opens: takes the journal's lock and undoes an unsynced commit
    /// after a system crash. `nil` when there is nothing to recover or a live writer holds the
    /// journal (it recovers nothing then: that writer's transactions are its own).
    static func prepare(path: String) throws -> (fd: Int32, undid: Bool)? {
        let dir = directory(of: path)
        let segments = Journal.segments(in: dir)
        guard !segments.isEmpty else { return nil }
        let lock: Int32
        do { lock = try Journal.lock(dir) } catch JournalError.inUse { return nil }
        do {
            var committing: Set<UInt64> = [], synced: Set<UInt64> = []
            var restarted = false
            let boot = Journal.currentBootID()
            for n in segments {
                for record in try Journal.records(ofSegment: n, in: dir) {
                    switch record.kind {
                    case .header: if String(decoding: record.body, as: UTF8.self) != boot { restarted = true }
                    case .committing: committing.insert(try uint64(record.body))
                    case .synced: synced.insert(try uint64(record.body))
                    default: break
                    }
                }
            }
            let dataFile = path + "/data.mdb"
            var undid = false
            if restarted, let (a, b) = MetaPages.transactionIDs(dataFile: dataFile) {
                let newest = max(a, b)
                if committing.contains(newest) && !synced.contains(newest) {
                    guard MetaPages.isUnused(directory: path) else { throw JournalError.inUse(path: dir) }
                    try MetaPages.discardNewest(dataFile: dataFile)
                    undid = true
                }
            }
            return (lock, undid)
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
    /// The journal position the database has applied up to (none: the start).
    func storedJournalPosition() throws -> JournalPosition {
        try environment.read { txn in
            try txn.withValue(databases.meta, key: MetaKey.journalPosition) { bytes in
                try bytes.map { try JournalPosition(bytes: $0) }
            }
        } ?? JournalPosition(segment: 0, offset: 0)
    }

    /// After the environment opened: applies the journal's transactions beyond the stored
    /// position, syncs, deletes the segments and releases `lock`. Returns the submissions
    /// applied again.
    func replayJournal(lock: (fd: Int32, undid: Bool)) throws -> JournalRecoveryReport {
        defer { Journal.unlock(lock.fd) }
        let dir = JournalRecovery.directory(of: path)
        let stored = try storedJournalPosition()
        var transactions: [(now: Int64, groups: [[GraphOperation]], end: JournalPosition)] = []
        for n in Journal.segments(in: dir) {
            for record in try Journal.records(ofSegment: n, in: dir) where record.end > stored {
                switch record.kind {
                case .transaction:
                    let now = Int64(bitPattern: try JournalRecovery.uint64(record.body))
                    transactions.append((now, [], record.end))
                case .group:
                    guard !transactions.isEmpty else {
                        throw JournalError.unreadable(path: Journal.path(of: n, in: dir), detail: "a submission before its transaction's start")
                    }
                    let ops: [GraphOperation]
                    do {
                        ops = try record.body.withUnsafeBytes { raw throws(RecordError) in
                            var reader = ByteReader(raw)
                            var ops: [GraphOperation] = []
                            while reader.remaining > 0 { ops.append(try GraphOperation.decode(from: &reader)) }
                            return ops
                        }
                    } catch {
                        throw JournalError.unreadable(path: Journal.path(of: n, in: dir), detail: "\(error)")
                    }
                    transactions[transactions.count - 1].groups.append(ops)
                    transactions[transactions.count - 1].end = record.end
                default: break
                }
            }
        }
        var report = JournalRecoveryReport()
        for t in transactions where !t.groups.isEmpty {
            let prepared = try t.groups.map { try prepare($0) }
            try withWriter(now: t.now) { writer, txn in
                writer.deferWrites()
                for group in prepared { for op in group { try writer.apply(op) } }
                try txn.put(databases.meta, key: MetaKey.journalPosition, value: t.end.bytes)
            }
            report.submissions += t.groups.count
            report.transactions += 1
        }
        try environment.sync(force: true)
        Journal.removeSegments(in: dir)
        return report
    }
}
