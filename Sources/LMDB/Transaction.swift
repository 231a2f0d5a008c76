import CLMDB

/// A read-only snapshot. Only exists inside ``Environment/read(_:)``; afterwards every call
/// throws ``LMDBError/transactionFinished``.
public class ReadTransaction {
    private var _handle: OpaquePointer?
    /// The environment this transaction belongs to.
    public unowned let environment: Environment

    init(handle: OpaquePointer, environment: Environment) {
        self._handle = handle
        self.environment = environment
    }

    @inline(__always)
    var handle: OpaquePointer {
        get throws(LMDBError) {
            guard let _handle else { throw LMDBError.transactionFinished }
            return _handle
        }
    }

    /// Whether the transaction has committed or aborted.
    var isFinished: Bool { _handle == nil }

    /// LMDB's id of the snapshot this transaction reads (for a write transaction, the id its
    /// commit gives the new snapshot); it grows by one with every commit.
    public var transactionID: UInt64 {
        get throws(LMDBError) { UInt64(mdb_txn_id(try handle)) }
    }

    func finish(commit: Bool) {
        guard let txn = _handle else { return }
        _handle = nil
        if commit { _ = mdb_txn_commit(txn) } else { mdb_txn_abort(txn) }
    }

    func takeHandleForCommit() throws(LMDBError) -> OpaquePointer {
        let txn = try handle
        _handle = nil
        return txn
    }

    /// Calls `body` with the value stored under `key`, or `nil` when there is none.
    /// The buffer is LMDB's own memory: valid only during the call, never to be kept.
    @inlinable
    public func withValue<K: LMDBBytes, R>(
        _ db: Database, key: K, _ body: (UnsafeRawBufferPointer?) throws -> R
    ) throws -> R {
        let found = try key.withLMDBBytes { keyBytes -> UnsafeRawBufferPointer? in
            try rawGet(db, keyBytes)
        }
        return try body(found)
    }

    /// The value stored under `key`, copied; `nil` when there is none.
    @inlinable
    public func value<K: LMDBBytes>(_ db: Database, key: K) throws -> [UInt8]? {
        try withValue(db, key: key) { $0.map { Array($0) } }
    }

    /// Whether `key` is present.
    @inlinable
    public func contains<K: LMDBBytes>(_ db: Database, key: K) throws -> Bool {
        try withValue(db, key: key) { $0 != nil }
    }

    @usableFromInline
    func rawGet(_ db: Database, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(try handle, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "mdb_get in '\(db.name)'")
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    /// A cursor over `db`, valid until this transaction ends.
    public func cursor(_ db: Database) throws(LMDBError) -> Cursor {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(try handle, db.dbi, &cursor), "mdb_cursor_open on '\(db.name)'")
        return Cursor(handle: cursor!, database: db, transaction: self)
    }

    /// Number of entries (values, for dupSort) in `db`.
    public func entryCount(_ db: Database) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(try handle, db.dbi, &stat), "mdb_stat on '\(db.name)'")
        return stat.ms_entries
    }

    /// Calls `body` for each value stored under `key` in a dupSort database, in order, until it
    /// returns `false`. Values are LMDB's memory, valid only during the call.
    public func forEachDuplicate<K: LMDBBytes>(
        _ db: Database, key: K, _ body: (UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let cursor = try self.cursor(db)
        defer { cursor.close() }
        guard try cursor.seek(key: key) else { return }
        repeat {
            let keepGoing = try cursor.withCurrent { _, value in try body(value) }
            if !keepGoing { return }
        } while try cursor.nextDuplicate()
    }

    /// Calls `body` for every entry of `db` in key order (all duplicates too) until it returns `false`.
    public func forEach(
        _ db: Database, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let cursor = try self.cursor(db)
        defer { cursor.close() }
        var more = try cursor.first()
        while more {
            let keepGoing = try cursor.withCurrent { key, value in try body(key, value) }
            if !keepGoing { return }
            more = try cursor.next()
        }
    }
}

/// A read-write transaction. Only exists inside ``Environment/write(onRetry:_:)``, which
/// commits it when the closure returns and aborts it when the closure throws.
public final class WriteTransaction: ReadTransaction {
    func commit() throws(LMDBError) {
        let txn = try takeHandleForCommit()
        try check(mdb_txn_commit(txn), "mdb_txn_commit")
    }

    /// Stores `value` under `key`.
    @inlinable
    public func put<K: LMDBBytes, V: LMDBBytes>(_ db: Database, key: K, value: V, flags: PutFlags = []) throws {
        try key.withLMDBBytes { k in
            try value.withLMDBBytes { v in try rawPut(db, k, v, flags) }
        }
    }

    /// Stores `value` under `key`; `false` (and nothing written) when `.noOverwrite` or
    /// `.noDupData` found it already present.
    @inlinable
    public func putIfAbsent<K: LMDBBytes, V: LMDBBytes>(_ db: Database, key: K, value: V, flags: PutFlags = .noOverwrite) throws -> Bool {
        do {
            try put(db, key: key, value: value, flags: flags)
            return true
        } catch let error as LMDBError where error == .keyExists {
            return false
        }
    }

    @usableFromInline
    func rawPut(_ db: Database, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, _ flags: PutFlags) throws(LMDBError) {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_put(try handle, db.dbi, &k, &v, flags.rawValue), "mdb_put in '\(db.name)'")
    }

    /// Deletes `key` (with every duplicate); `false` when it was absent.
    @discardableResult
    public func delete<K: LMDBBytes>(_ db: Database, key: K) throws -> Bool {
        try key.withLMDBBytes { k in
            var kv = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
            let rc = mdb_del(try handle, db.dbi, &kv, nil)
            if rc == MDB_NOTFOUND { return false }
            try check(rc, "mdb_del in '\(db.name)'")
            return true
        }
    }

    /// Deletes one duplicate `value` of `key` (dupSort); `false` when it was absent.
    @discardableResult
    public func delete<K: LMDBBytes, V: LMDBBytes>(_ db: Database, key: K, value: V) throws -> Bool {
        try key.withLMDBBytes { k in
            try value.withLMDBBytes { v in
                var kv = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var vv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                let rc = mdb_del(try handle, db.dbi, &kv, &vv)
                if rc == MDB_NOTFOUND { return false }
                try check(rc, "mdb_del (one value) in '\(db.name)'")
                return true
            }
        }
    }

    /// Removes every entry of `db`, keeping the database.
    public func clear(_ db: Database) throws(LMDBError) {
        try check(mdb_drop(try handle, db.dbi, 0), "mdb_drop (empty) '\(db.name)'")
    }
}
