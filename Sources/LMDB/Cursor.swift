import CLMDB

/// A position in a database, inside one transaction. Closed by ``close()`` or when released.
///
/// Moves return `false` at the end instead of throwing. The current entry is read through
/// ``withCurrent(_:)`` (borrowed bytes) or ``current()`` (copies).
public final class Cursor {
    private var handle: OpaquePointer?
    /// The database it walks.
    public let database: Database
    private let transaction: ReadTransaction

    init(handle: OpaquePointer, database: Database, transaction: ReadTransaction) {
        self.handle = handle
        self.database = database
        self.transaction = transaction
    }

    deinit { close() }

    /// Releases the cursor; later moves throw ``LMDBError/transactionFinished``.
    ///
    /// LMDB frees a write transaction's cursors when the transaction ends, so a cursor that
    /// outlived its write transaction is only forgotten here: closing it again would free it twice.
    public func close() {
        if let handle, !(transaction is WriteTransaction && transaction.isFinished) { mdb_cursor_close(handle) }
        handle = nil
    }

    @usableFromInline var key = MDB_val()
    @usableFromInline var value = MDB_val()

    private func move(_ op: MDB_cursor_op, _ what: @autoclosure () -> String) throws(LMDBError) -> Bool {
        guard let handle else { throw LMDBError.transactionFinished }
        _ = try transaction.handle  // the transaction must still be live
        let rc = mdb_cursor_get(handle, &key, &value, op)
        if rc == MDB_NOTFOUND { return false }
        try check(rc, "\(what()) in '\(database.name)'")
        return true
    }

    @usableFromInline
    func move(_ op: MDB_cursor_op, key k: UnsafeRawBufferPointer, value v: UnsafeRawBufferPointer?) throws(LMDBError) -> Bool {
        key = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
        if let v { value = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress)) }
        return try move(op, "mdb_cursor_get")
    }

    /// Moves to the first entry.
    public func first() throws(LMDBError) -> Bool { try move(MDB_FIRST, "MDB_FIRST") }
    /// Moves to the last entry.
    public func last() throws(LMDBError) -> Bool { try move(MDB_LAST, "MDB_LAST") }
    /// Moves to the next entry (the next duplicate, then the next key).
    public func next() throws(LMDBError) -> Bool { try move(MDB_NEXT, "MDB_NEXT") }
    /// Moves to the previous entry.
    public func previous() throws(LMDBError) -> Bool { try move(MDB_PREV, "MDB_PREV") }
    /// Moves to the next duplicate of the current key; `false` after the last one.
    public func nextDuplicate() throws(LMDBError) -> Bool { try move(MDB_NEXT_DUP, "MDB_NEXT_DUP") }
    /// Moves to the previous duplicate of the current key; `false` before the first one.
    public func previousDuplicate() throws(LMDBError) -> Bool { try move(MDB_PREV_DUP, "MDB_PREV_DUP") }
    /// Moves to the first entry of the next key.
    public func nextKey() throws(LMDBError) -> Bool { try move(MDB_NEXT_NODUP, "MDB_NEXT_NODUP") }
    /// Moves to the last duplicate of the current key.
    public func lastDuplicate() throws(LMDBError) -> Bool { try move(MDB_LAST_DUP, "MDB_LAST_DUP") }

    /// Moves to exactly `key` (its first duplicate).
    @inlinable
    public func seek<K: LMDBBytes>(key k: K) throws -> Bool {
        try k.withLMDBBytes { try move(MDB_SET_KEY, key: $0, value: nil) }
    }
    /// Moves to the first key at or after `key`.
    @inlinable
    public func seek<K: LMDBBytes>(atOrAfter k: K) throws -> Bool {
        try k.withLMDBBytes { try move(MDB_SET_RANGE, key: $0, value: nil) }
    }
    /// Moves to the first duplicate of `key` at or after `value` (dupSort); `false` if none.
    @inlinable
    public func seek<K: LMDBBytes, V: LMDBBytes>(key k: K, valueAtOrAfter v: V) throws -> Bool {
        try k.withLMDBBytes { kb in try v.withLMDBBytes { vb in try move(MDB_GET_BOTH_RANGE, key: kb, value: vb) } }
    }
    /// Moves to exactly the pair `key`/`value` (dupSort); `false` if absent.
    @inlinable
    public func seek<K: LMDBBytes, V: LMDBBytes>(key k: K, value v: V) throws -> Bool {
        try k.withLMDBBytes { kb in try v.withLMDBBytes { vb in try move(MDB_GET_BOTH, key: kb, value: vb) } }
    }

    /// Calls `body` with the current key and value (LMDB's memory, valid only during the call).
    @inlinable
    public func withCurrent<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size),
                 UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }

    /// The current key and value, copied.
    public func current() -> (key: [UInt8], value: [UInt8]) {
        withCurrent { (Array($0), Array($1)) }
    }

    /// How many duplicates the current key has (dupSort).
    public func duplicateCount() throws(LMDBError) -> Int {
        guard let handle else { throw LMDBError.transactionFinished }
        var count = 0
        try check(mdb_cursor_count(handle, &count), "mdb_cursor_count in '\(database.name)'")
        return count
    }

    /// Replaces or inserts through the cursor (for `.current`: same size, same sort position).
    ///
    /// Inlinable, so that callers get it specialized for their key and value types: called
    /// generically across the module boundary, each put went through witness tables (the bulk
    /// writer makes one per record, 100M at 10M events).
    @inlinable
    public func put<K: LMDBBytes, V: LMDBBytes>(key k: K, value v: V, flags: PutFlags = []) throws {
        try k.withLMDBBytes { kb in
            try v.withLMDBBytes { vb in try rawPut(key: kb, value: vb, flags: flags) }
        }
    }

    @usableFromInline
    func rawPut(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: PutFlags) throws(LMDBError) {
        guard let handle else { throw LMDBError.transactionFinished }
        _ = try transaction.handle
        var kv = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var vv = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_cursor_put(handle, &kv, &vv, flags.rawValue), "mdb_cursor_put in '\(database.name)'")
    }

    /// Stores several fixed-size duplicates under `key` in one call (`MDB_MULTIPLE`; the database
    /// must be `dupFixed`). `values` holds them back to back, `elementSize` bytes each, in order.
    /// Throws ``LMDBError`` if LMDB stored fewer than all of them.
    @inlinable
    public func putMultiple<K: LMDBBytes>(key k: K, values: UnsafeRawBufferPointer, elementSize: Int, flags: PutFlags = []) throws {
        precondition(elementSize > 0 && values.count % elementSize == 0, "values must be whole elements")
        guard values.count > 0 else { return }
        try k.withLMDBBytes { kb in try rawPutMultiple(key: kb, values: values, elementSize: elementSize, flags: flags) }
    }

    @usableFromInline
    func rawPutMultiple(key: UnsafeRawBufferPointer, values: UnsafeRawBufferPointer, elementSize: Int, flags: PutFlags) throws(LMDBError) {
        guard let handle else { throw LMDBError.transactionFinished }
        _ = try transaction.handle
        let count = values.count / elementSize
        var kv = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        // LMDB takes an array of two MDB_vals: the first element's size and address, then the
        // count (which it sets to the number stored). A tuple on the stack: an array literal
        // here was a heap allocation per key (tens of millions in a large bulk load).
        var pair = (MDB_val(mv_size: elementSize, mv_data: UnsafeMutableRawPointer(mutating: values.baseAddress)), MDB_val(mv_size: count, mv_data: nil))
        let rc = withUnsafeMutablePointer(to: &pair) { tuple in
            tuple.withMemoryRebound(to: MDB_val.self, capacity: 2) { mdb_cursor_put(handle, &kv, $0, flags.rawValue | UInt32(MDB_MULTIPLE)) }
        }
        try check(rc, "mdb_cursor_put (multiple) in '\(database.name)'")
        if pair.1.mv_size != count { throw LMDBError(code: LMDBError.incompleteWriteCode, operation: "mdb_cursor_put (multiple) stored \(pair.1.mv_size) of \(count) values in '\(database.name)'") }
    }

    /// Deletes the current entry (or, with `allDuplicates`, every duplicate of the current key).
    public func deleteCurrent(allDuplicates: Bool = false) throws(LMDBError) {
        guard let handle else { throw LMDBError.transactionFinished }
        _ = try transaction.handle
        try check(mdb_cursor_del(handle, allDuplicates ? UInt32(MDB_NODUPDATA) : 0), "mdb_cursor_del in '\(database.name)'")
    }
}
