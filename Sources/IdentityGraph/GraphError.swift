import LMDB

/// Errors of the identity graph. Each message says what to do.
public enum GraphError: Error, CustomStringConvertible {
    /// GraphOperation `index` of a batch is invalid; nothing of the batch was written.
    case invalidOperation(index: Int, reason: IdentifierError)
    /// The directory holds no idgraph database.
    case notADatabase(path: String)
    /// The directory already holds a database (`init` refuses to overwrite it).
    case alreadyExists(path: String)
    /// The database was written by an incompatible version of idgraph.
    case incompatibleFormat(path: String, found: UInt64, expected: UInt64)
    /// A stored record could not be decoded.
    case damaged(RecordError)
    /// LMDB failed.
    case storage(LMDBError)

    public var description: String {
        switch self {
        case .invalidOperation(let index, let reason):
            return "operation \(index + 1) of the batch: \(reason)"
        case .notADatabase(let path):
            return "\(path) is not an idgraph database; create one with `idgraph init --db \(path)` or by loading into it"
        case .alreadyExists(let path):
            return "\(path) already holds an idgraph database; choose another --db or remove it first"
        case .incompatibleFormat(let path, let found, let expected):
            if found == 1 && expected == 2 {
                return "\(path) has storage format 1 (before profiles); open it once for writing (any idgraph command but a read-only open) to upgrade it to format 2"
            }
            return "\(path) has storage format \(found), this idgraph reads format \(expected); reload the archives into a new database"
        case .damaged(let error):
            return error.description
        case .storage(let error):
            return "storage error: \(error)"
        }
    }
}
