import CLMDB
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The two meta pages at the start of an LMDB data file (`data.mdb`), read and changed
/// without opening the environment: for undoing a commit made with `MDB_NOSYNC` whose pages
/// may not all have reached the disk before a system crash (LMDB 0.9 has no
/// `MDB_PREVSNAPSHOT`).
///
/// Layout (LMDB 0.9, `mdb.c`, little-endian on x86-64 and arm64): meta page `i` starts at
/// `i × page size`; after the 16-byte page header come the magic `0xBEEFC0DE` (u32), the
/// version (u32), the map address and size (2 × u64), the two database records (2 × 48
/// bytes, the first one's `md_pad` holding the page size) and the last page number (u64);
/// then the transaction id (u64) at byte 144. LMDB opens the snapshot of the meta page with
/// the larger transaction id, and a durable commit only ever overwrites pages that the
/// previous snapshot does not use, so the older meta page still describes a whole snapshot.
public enum MetaPages {
    static let magicOffset = 16, pageSizeOffset = 40, txnIDOffset = 144
    static let magic: UInt32 = 0xBEEF_C0DE
    private static let ofdSetLock: Int32 = 37

    /// The transaction ids of meta pages 0 and 1 of the data file at `path`, or `nil` when it
    /// is missing or not an LMDB file.
    public static func transactionIDs(dataFile path: String) -> (UInt64, UInt64)? {
        records(dataFile: path).map { (transactionID(ofRecord: $0.0), transactionID(ofRecord: $0.1)) }
    }

    /// The meta records (``recordLength`` bytes after the page header) of meta pages 0 and 1
    /// of the data file at `path`, read through the page cache (LMDB writes meta pages with
    /// `pwrite`, so they are the newest), or `nil` when it is missing or not an LMDB file.
    static func records(dataFile path: String) -> ([UInt8], [UInt8])? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        func record(at offset: UInt64) -> [UInt8]? {
            guard (try? handle.seek(toOffset: offset + UInt64(magicOffset))) != nil,
                  let data = try? handle.read(upToCount: recordLength), data.count == recordLength else { return nil }
            let record = [UInt8](data)
            return load(UInt32.self, record, 0) == magic ? record : nil
        }
        guard let first = record(at: 0) else { return nil }
        let pageSize = UInt64(load(UInt32.self, first, pageSizeOffset - magicOffset))
        guard pageSize >= 512, let second = record(at: pageSize) else { return nil }
        return (first, second)
    }

    /// Whether no process has the environment in `directory` open: LMDB keeps a shared lock
    /// on the first byte of `lock.mdb` in every process that has it open, and this asks for an
    /// exclusive one (an open-file-description lock, released at once).
    public static func isUnused(directory: String) -> Bool {
        let fd = open(directory + "/lock.mdb", O_RDWR | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT }
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 1
        return fcntl(fd, ofdSetLock, &lock) == 0  // F_OFD_SETLK (Linux), which Glibc's module does not export
    }

    private static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}

extension MetaPages {
    /// Bytes of the meta record after the page header (magic through transaction id).
    public static let recordLength = 136

    /// The transaction id a meta record (``PinnedSnapshot/metaRecord``) describes.
    public static func transactionID(ofRecord record: [UInt8]) -> UInt64 {
        load(UInt64.self, record, txnIDOffset - magicOffset)
    }

    /// Writes `record` (a meta record of a snapshot whose pages are all on the disk) into both
    /// meta pages of the data file at `path` and syncs it: LMDB then opens that snapshot. Only
    /// while no process has the environment open (``isUnused(directory:)``).
    public static func restore(dataFile path: String, record: [UInt8]) throws {
        guard record.count == recordLength, load(UInt32.self, record, 0) == magic else {
            throw LMDBError(code: EINVAL, operation: "restoring a meta page of \(path) (not a meta record)")
        }
        let pageSize = UInt64(load(UInt32.self, record, pageSizeOffset - magicOffset))
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw LMDBError(code: errno, operation: "opening \(path)") }
        defer { try? handle.close() }
        for page: UInt64 in [0, 1] {
            try handle.seek(toOffset: page * pageSize + UInt64(magicOffset))
            try handle.write(contentsOf: Data(record))
        }
        try handle.synchronize()
    }
}

/// A read-only snapshot held open across calls: while it is open, LMDB reuses none of the
/// pages it uses, so that snapshot stays whole in the file whatever later commits write.
///
/// Unlike ``Environment/read(_:)`` it does not hold off a growth of the map for as long as it
/// lives: it reads what it needs (``value``) while it is taken, under the map's lock, and
/// nothing afterwards, so a remapped map does not concern it, and its reader slot keeps
/// protecting its pages.
public final class PinnedSnapshot: @unchecked Sendable {
    private var txn: OpaquePointer?
    /// The transaction id of the snapshot.
    public let transactionID: UInt64
    /// The snapshot's meta record (``MetaPages/recordLength`` bytes), copied from the data file.
    public let metaRecord: [UInt8]
    /// The value of the key asked for when it was taken, in the snapshot.
    public let value: [UInt8]?

    /// Pins the newest snapshot of `environment`, copies its meta record, and reads `key` of
    /// `db` in it (if given).
    public init(_ environment: Environment, reading key: String? = nil, in db: Database? = nil) throws {
        let pinned = try environment.withMapReadLock { () throws -> (OpaquePointer, UInt64, [UInt8], [UInt8]?)? in
            for _ in 0..<1000 {
                var txn: OpaquePointer?
                try check(mdb_txn_begin(environment.handle, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin (pin)")
                let id = UInt64(mdb_txn_id(txn))
                if let record = Self.metaRecord(environment, txnID: id) {
                    do {
                        let value = try key.flatMap { key in try db.flatMap { try Self.get(txn!, $0, key) } }
                        return (txn!, id, record, value)
                    } catch {
                        mdb_txn_abort(txn)
                        throw error
                    }
                }
                // Two commits overwrote both meta pages since it began (rare): take the newest again.
                mdb_txn_abort(txn)
            }
            return nil
        }
        guard let (txn, id, record, value) = pinned else {
            throw LMDBError(code: EAGAIN, operation: "pinning a snapshot of \(environment.path) (its meta page kept changing)")
        }
        self.txn = txn
        transactionID = id
        metaRecord = record
        self.value = value
    }

    deinit { close() }

    private static func get(_ txn: OpaquePointer, _ db: Database, _ key: String) throws -> [UInt8]? {
        var k = MDB_val(), v = MDB_val()
        return try Array(key.utf8).withUnsafeBytes { raw in
            k.mv_size = raw.count
            k.mv_data = UnsafeMutableRawPointer(mutating: raw.baseAddress)
            let rc = mdb_get(txn, db.dbi, &k, &v)
            if rc == MDB_NOTFOUND { return nil }
            try check(rc, "mdb_get (pin)")
            return Array(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
        }
    }

    /// Releases the snapshot.
    public func close() {
        if let txn { mdb_txn_abort(txn) }
        txn = nil
    }

    /// The meta record with transaction id `txnID`, read twice from the data file to be sure
    /// no commit was writing it meanwhile; nil when neither meta page holds it any more.
    private static func metaRecord(_ environment: Environment, txnID: UInt64) -> [UInt8]? {
        let path = environment.path + "/data.mdb"
        guard let (a, b) = MetaPages.records(dataFile: path) else { return nil }
        for (page, first) in [a, b].enumerated() where MetaPages.transactionID(ofRecord: first) == txnID {
            guard let again = MetaPages.records(dataFile: path) else { return nil }
            if (page == 0 ? again.0 : again.1) == first { return first }
        }
        return nil
    }
}
