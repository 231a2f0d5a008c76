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
    private static let magicOffset = 16, pageSizeOffset = 40, txnIDOffset = 144
    private static let magic: UInt32 = 0xBEEF_C0DE
    private static let ofdSetLock: Int32 = 37

    /// The transaction ids of meta pages 0 and 1 of the data file at `path`, or `nil` when it
    /// is missing or not an LMDB file.
    public static func transactionIDs(dataFile path: String) -> (UInt64, UInt64)? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let first = try? handle.read(upToCount: 4096), first.count >= txnIDOffset + 8,
              load(UInt32.self, first, magicOffset) == magic else { return nil }
        let pageSize = Int(load(UInt32.self, first, pageSizeOffset))
        guard pageSize >= 512, (try? handle.seek(toOffset: UInt64(pageSize))) != nil,
              let second = try? handle.read(upToCount: txnIDOffset + 8), second.count == txnIDOffset + 8,
              load(UInt32.self, second, magicOffset) == magic else { return nil }
        return (load(UInt64.self, first, txnIDOffset), load(UInt64.self, second, txnIDOffset))
    }

    /// Makes the next opening of the data file at `path` use the older snapshot: the newer
    /// meta page's transaction id becomes 0, written and synced. Only while no process has the
    /// environment open (``isUnused(directory:)``).
    public static func discardNewest(dataFile path: String) throws {
        guard let (a, b) = transactionIDs(dataFile: path) else {
            throw LMDBError(code: EINVAL, operation: "reading the meta pages of \(path) (not an LMDB data file)")
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw LMDBError(code: errno, operation: "opening \(path)")
        }
        defer { try? handle.close() }
        let first = try handle.read(upToCount: 64) ?? Data()
        let pageSize = UInt64(load(UInt32.self, first, pageSizeOffset))
        let page: UInt64 = a >= b ? 0 : 1
        try handle.seek(toOffset: page * pageSize + UInt64(txnIDOffset))
        try handle.write(contentsOf: Data(count: 8))
        try handle.synchronize()
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

    private static func load<T: FixedWidthInteger>(_: T.Type, _ data: Data, _ offset: Int) -> T {
        data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
