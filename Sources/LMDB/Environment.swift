import CLMDB
#if canImport(Glibc)
import Glibc
#endif

/// How commits reach the disk.
public enum Durability: String, Sendable, CaseIterable {
    /// `fsync` on every commit: a committed transaction survives a power cut.
    case durable
    /// `MDB_NOSYNC`: commits are not flushed; call ``Environment/sync(force:)`` periodically.
    /// A process crash loses nothing; an operating-system crash loses what was not yet synced
    /// and, on a file system that does not keep the order of writes (ext4), can damage the file.
    case fast
    /// `MDB_WRITEMAP | MDB_NOSYNC | MDB_MAPASYNC` for loading a fresh database: fastest, and a
    /// system crash can corrupt it, so the load must end with a forced sync and be rerun after a crash.
    case bulk
}

/// Options for opening an ``Environment``.
public struct EnvironmentOptions: Sendable {
    /// How many named databases the environment may hold.
    public var maxDatabases: UInt32 = 32
    /// The first map size in bytes; the map doubles (at least) whenever a write finds it full.
    public var initialMapSize: Int = 1 << 30
    /// Most concurrent read transactions.
    public var maxReaders: UInt32 = 256
    /// How commits reach the disk.
    public var durability: Durability = .durable
    /// Open without write access.
    public var readOnly = false

    /// Options with the defaults: 1 GiB first map, 32 databases, durable commits.
    public init() {}
}

/// One LMDB environment: a directory holding `data.mdb` and `lock.mdb`.
///
/// Thread model: opened with `MDB_NOTLS`, so read transactions are not tied to threads; a write
/// transaction must stay on the thread that began it, which the closure-scoped API guarantees
/// (the closure is synchronous). Map growth takes an exclusive lock against this process's
/// other transactions, since `mdb_env_set_mapsize` needs none to be active.
public final class Environment: @unchecked Sendable {
    let handle: OpaquePointer
    /// The directory of the environment.
    public let path: String
    /// How commits reach the disk.
    public let durability: Durability
    /// Opened with `MDB_RDONLY`: no write transaction can begin.
    public let isReadOnly: Bool
    private let resizeLock: UnsafeMutablePointer<pthread_rwlock_t>
    private var databases: [String: Database] = [:]
    private let databasesLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// Opens (creating if needed) the environment in directory `path`.
    ///
    /// The directory is created when missing. Errors carry LMDB's code: `ENOENT`, `EACCES`,
    /// or `MDB_VERSION_MISMATCH` / `MDB_INVALID` when the files are not an LMDB environment.
    public init(path: String, options: EnvironmentOptions = EnvironmentOptions()) throws(LMDBError) {
        if !options.readOnly { mkdir(path, 0o755) }
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create") }
        var flags = UInt32(MDB_NOTLS)
        switch options.durability {
        case .durable: break
        case .fast: flags |= UInt32(MDB_NOSYNC)
        case .bulk: flags |= UInt32(MDB_WRITEMAP | MDB_NOSYNC | MDB_MAPASYNC)
        }
        if options.readOnly { flags |= UInt32(MDB_RDONLY) }
        do {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs")
            try check(mdb_env_set_maxreaders(env, options.maxReaders), "mdb_env_set_maxreaders")
            try check(mdb_env_set_mapsize(env, options.initialMapSize), "mdb_env_set_mapsize")
            try check(mdb_env_open(env, path, flags, 0o644), "opening LMDB environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        // Adopt a larger map size that the file (or another process) already uses.
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        if info.me_mapsize < options.initialMapSize {
            mdb_env_set_mapsize(env, options.initialMapSize)
        }
        self.handle = env
        self.path = path
        self.durability = options.durability
        self.isReadOnly = options.readOnly
        resizeLock = .allocate(capacity: 1)
        pthread_rwlock_init(resizeLock, nil)
        pthread_mutex_init(databasesLock, nil)
    }

    deinit {
        mdb_env_close(handle)
        pthread_rwlock_destroy(resizeLock)
        resizeLock.deallocate()
        pthread_mutex_destroy(databasesLock)
        databasesLock.deallocate()
    }

    /// The current map size in bytes.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Bytes of the data file in use (last used page × page size).
    public var usedBytes: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        var stat = MDB_stat()
        mdb_env_stat(handle, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    /// Runs `body` in a read transaction: a consistent snapshot that never blocks the writer.
    ///
    /// The transaction ends when `body` returns; using it afterwards throws
    /// ``LMDBError/transactionFinished``.
    public func read<T>(_ body: (ReadTransaction) throws -> T) throws -> T {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin (read)")
        let transaction = ReadTransaction(handle: txn!, environment: self)
        defer { transaction.finish(commit: false) }
        return try body(transaction)
    }

    /// Runs `body` while the map cannot be resized (as a read transaction does).
    func withMapReadLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        return try body()
    }

    /// Runs `body` in a write transaction and commits it when `body` returns.
    ///
    /// If `body` throws, nothing it wrote is kept. When the map is full, the transaction is
    /// aborted, the map grows, and `body` runs again from the start: `body` must not keep
    /// state across attempts that the retry would duplicate (`onRetry` lets the caller reset it).
    public func write<T>(onRetry: () -> Void = {}, _ body: (WriteTransaction) throws -> T) throws -> T {
        while true {
            do {
                return try attemptWrite(body)
            } catch let error as LMDBError where error == .mapFull {
                try grow()
                onRetry()
            } catch let error as LMDBError where error == .mapResized {
                try adoptResizedMap()
                onRetry()
            }
        }
    }

    /// Runs `body` in one write transaction with no retry: when the map is full, the map grows,
    /// nothing is kept, and ``LMDBError/mapFull`` is thrown. For bodies that consume input as
    /// they go (a bulk load reading a file) and so cannot simply run again.
    public func writeOnce<T>(_ body: (WriteTransaction) throws -> T) throws -> T {
        do {
            return try attemptWrite(body)
        } catch let error as LMDBError where error == .mapFull {
            try grow()
            throw error
        } catch let error as LMDBError where error == .mapResized {
            try adoptResizedMap()
            throw error
        }
    }

    /// Grows the map to at least `bytes` (never shrinks it), so that a long transaction does not
    /// run out of room. The data file grows only as pages are used.
    public func reserveMapSize(_ bytes: Int) throws(LMDBError) {
        pthread_rwlock_wrlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        let current = mapSize
        guard bytes > current else { return }
        try check(mdb_env_set_mapsize(handle, bytes), "growing the map from \(current) to \(bytes) bytes")
    }

    private func attemptWrite<T>(_ body: (WriteTransaction) throws -> T) throws -> T {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, 0, &txn), "mdb_txn_begin (write)")
        let transaction = WriteTransaction(handle: txn!, environment: self)
        do {
            let result = try body(transaction)
            try transaction.commit()
            return result
        } catch {
            transaction.finish(commit: false)
            throw error
        }
    }

    private func grow() throws(LMDBError) {
        pthread_rwlock_wrlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        let current = mapSize
        let next = current < (1 << 34) ? current * 2 : current + (1 << 34)
        try check(mdb_env_set_mapsize(handle, next), "growing the map from \(current) to \(next) bytes")
    }

    private func adoptResizedMap() throws(LMDBError) {
        pthread_rwlock_wrlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        try check(mdb_env_set_mapsize(handle, 0), "adopting the map size set by another process")
    }

    /// Opens (creating when `flags` contains `.create`) the named database, once per environment.
    public func database(_ name: String, flags: DatabaseFlags = [.create]) throws -> Database {
        // Held while opening: LMDB allows one transaction at a time to open databases.
        pthread_mutex_lock(databasesLock)
        defer { pthread_mutex_unlock(databasesLock) }
        if let known = databases[name] { return known }
        let db: Database
        if isReadOnly || !flags.contains(.create) {
            // An existing database opens in a read transaction (never waiting for a writer),
            // which must be committed, not aborted, for the handle to outlive it.
            var txn: OpaquePointer?
            try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin (read, opening '\(name)')")
            var dbi = MDB_dbi()
            let opened = mdb_dbi_open(txn, name, flags.subtracting(.create).rawValue, &dbi)
            guard opened == MDB_SUCCESS else {
                mdb_txn_abort(txn)
                try check(opened, "mdb_dbi_open '\(name)'")
                preconditionFailure("check throws on failure")
            }
            Self.useFastComparators(txn, dbi, flags)
            try check(mdb_txn_commit(txn), "mdb_txn_commit (opening '\(name)')")
            db = Database(dbi: dbi, name: name, flags: flags)
        } else {
            db = try write { txn in
                var dbi = MDB_dbi()
                try check(mdb_dbi_open(txn.handle, name, flags.rawValue, &dbi), "mdb_dbi_open '\(name)'")
                Self.useFastComparators(try txn.handle, dbi, flags)
                return Database(dbi: dbi, name: name, flags: flags)
            }
        }
        databases[name] = db
        return db
    }

    /// Sets the comparators of a database just opened (before any access, as LMDB requires):
    /// LMDB's own byte order, computed a word at a time (`idgraph_compare_bytes` in the CLMDB
    /// shim). The order is the same as LMDB's default, so other programs (`mdb_dump`,
    /// `mdb_load`, an older idgraph) read and write the database correctly without it.
    /// Real-time saturation rose some 10% with it (docs/benchmarks.md, session 16).
    private static func useFastComparators(_ txn: OpaquePointer?, _ dbi: MDB_dbi, _ flags: DatabaseFlags) {
        mdb_set_compare(txn, dbi, idgraph_bytes_comparator())
        if flags.contains(.dupSort) { mdb_set_dupsort(txn, dbi, idgraph_bytes_comparator()) }
    }

    /// Lets the operating system drop the data file's pages from its page cache once they are
    /// on disk (`posix_fadvise(POSIX_FADV_DONTNEED)`: clean pages go now, dirty ones are left and
    /// their writeback starts). Reads of a dropped page go to the disk again. For a large write
    /// whose pages will not be read soon: the pages it wrote become free memory the next
    /// writes reuse, instead of the cache taking ever more memory the system had not touched
    /// (on a virtual machine whose host reclaims free memory, the first touch of such a page
    /// costs microseconds). Returns `false` when the system refused.
    @discardableResult
    public func releaseCachedPages() -> Bool {
        var fd: mdb_filehandle_t = -1
        guard mdb_env_get_fd(handle, &fd) == 0, fd >= 0 else { return false }
        return posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0
    }

    /// Flushes the data to disk; with `force`, even in ``Durability/fast`` and ``Durability/bulk``.
    public func sync(force: Bool = true) throws(LMDBError) {
        try check(mdb_env_sync(handle, force ? 1 : 0), "mdb_env_sync")
    }

    /// Copies the environment to the directory `path` (which must exist and be empty), like
    /// `mdb_copy`; with `compact`, free pages are left out and erased values do not survive.
    public func copy(to path: String, compact: Bool) throws(LMDBError) {
        try check(mdb_env_copy2(handle, path, compact ? UInt32(MDB_CP_COMPACT) : 0), "mdb_env_copy2 to \(path)")
    }

    /// Clears stale entries of dead processes from the reader table; returns how many.
    @discardableResult
    public func clearStaleReaders() -> Int {
        var dead: Int32 = 0
        mdb_reader_check(handle, &dead)
        return Int(dead)
    }
}

/// Flags for opening a named database.
public struct DatabaseFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates flags from LMDB's bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Create the database when missing.
    public static let create = DatabaseFlags(rawValue: UInt32(MDB_CREATE))
    /// Several sorted values per key.
    public static let dupSort = DatabaseFlags(rawValue: UInt32(MDB_DUPSORT))
    /// With `dupSort`: all values of a key have the same size (enables `MDB_GET_MULTIPLE`).
    public static let dupFixed = DatabaseFlags(rawValue: UInt32(MDB_DUPFIXED))
}

/// A named database inside an ``Environment``; a cheap handle valid for the environment's life.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    /// A small number, unique among the environment's databases (LMDB's handle): callers may
    /// keep per-database things in an array indexed by it instead of hashing the name.
    public var index: Int { Int(dbi) }
    /// The database's name.
    public let name: String
    /// The flags it was opened with.
    public let flags: DatabaseFlags
}

/// Flags for a put.
public struct PutFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    /// Creates flags from LMDB's bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Fail with ``LMDBError/keyExists`` when the key is present.
    public static let noOverwrite = PutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    /// Fail with ``LMDBError/keyExists`` when the key/value pair is present (dupSort).
    public static let noDupData = PutFlags(rawValue: UInt32(MDB_NODUPDATA))
    /// The key sorts after every present key: append without searching.
    public static let append = PutFlags(rawValue: UInt32(MDB_APPEND))
    /// The value sorts after every present value of the key (dupSort).
    public static let appendDup = PutFlags(rawValue: UInt32(MDB_APPENDDUP))
    /// Replace the item at the cursor (same size, same sort position).
    public static let current = PutFlags(rawValue: UInt32(MDB_CURRENT))
}
