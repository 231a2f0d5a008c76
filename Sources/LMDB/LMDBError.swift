import CLMDB
#if canImport(Glibc)
import Glibc
#endif

/// An error reported by LMDB, or by this wrapper when it is misused.
///
/// `code` is LMDB's return code (see `lmdb.h`); `operation` names what was being done, so a
/// message reads like "mdb_put in database 'adj': MDB_MAP_FULL: Environment mapsize limit reached".
/// Match on a code with the static constants: `catch let e as LMDBError where e == .mapFull`.
public struct LMDBError: Error, CustomStringConvertible, Sendable, Equatable {
    /// LMDB's return code (negative for LMDB's own codes, positive for `errno` values).
    public let code: Int32
    /// What the wrapper was doing when LMDB failed.
    public let operation: String

    /// Creates an error for an LMDB return code and the operation that produced it.
    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// LMDB's own text for the code.
    public var message: String {
        if code == LMDBError.transactionFinishedCode { return "the transaction was already committed or aborted" }
        if code == LMDBError.incompleteWriteCode { return "LMDB stored fewer values than it was given" }
        return String(cString: mdb_strerror(code))
    }

    public var description: String { "\(operation): \(message)" + (advice.map { " (\($0))" } ?? "") }

    /// What to do, for the codes a full or failing disk gives (a write that does not reach the
    /// file fails the transaction; what committed before it is intact).
    public var advice: String? {
        switch code {
        case ENOSPC, EDQUOT:
            return "the disk is full: free space on the database's file system (df -h) and run the command again; nothing committed is lost, and a load resumes after its last commit"
        case EIO:
            return "the disk did not take a write: it may be full (df -h) or failing (the system log says which); free space and run the command again, nothing committed is lost and a load resumes after its last commit"
        default:
            return nil
        }
    }

    /// Two errors are equal when their codes are: the operation is context, not identity.
    public static func == (lhs: LMDBError, rhs: LMDBError) -> Bool { lhs.code == rhs.code }

    /// The map is full; the environment grows it and retries the write by itself.
    public static let mapFull = LMDBError(code: MDB_MAP_FULL, operation: "")
    /// Another process grew the map; the environment adopts the new size and retries.
    public static let mapResized = LMDBError(code: MDB_MAP_RESIZED, operation: "")
    /// `MDB_NOOVERWRITE` or `MDB_NODUPDATA` found the key (or key/value pair) present.
    public static let keyExists = LMDBError(code: MDB_KEYEXIST, operation: "")
    /// The key was not found (only thrown where absence is an error).
    public static let notFound = LMDBError(code: MDB_NOTFOUND, operation: "")
    /// Too many named databases for `maxDatabases`.
    public static let databasesFull = LMDBError(code: MDB_DBS_FULL, operation: "")
    /// Too many concurrent readers.
    public static let readersFull = LMDBError(code: MDB_READERS_FULL, operation: "")
    /// The key or value is larger than LMDB allows (keys stop at 511 bytes).
    public static let badValueSize = LMDBError(code: MDB_BAD_VALSIZE, operation: "")

    static let transactionFinishedCode: Int32 = -40_000
    static let incompleteWriteCode: Int32 = -40_001
    /// A transaction was used after it committed or aborted.
    public static let transactionFinished = LMDBError(code: transactionFinishedCode, operation: "")
}

@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if rc != 0 { throw LMDBError(code: rc, operation: operation()) }
}
