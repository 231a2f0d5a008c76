import IdentityGraph

/// Something a statement is about: an entity id or an identifier.
public enum Target: Equatable, Sendable {
    /// An entity id (merged-away ids are followed).
    case entity(EntityID)
    /// An identifier (normalized as on ingest).
    case identifier(RawIdentifier)
}

/// A field of an entity that conditions and ordering can use.
public enum Field: Equatable, Sendable, CustomStringConvertible {
    /// The entity id.
    case id
    /// Number of identifiers.
    case size
    /// Number of events counted toward it.
    case events
    /// Revenue (sum of `props.amount`).
    case revenue
    /// First event time (ms).
    case firstSeen
    /// Last event time (ms).
    case lastSeen
    /// Events of one type (`events.order`).
    case eventsOfType(String)
    /// Identifiers of one type (`email`, `cookie`).
    case identifiersOfType(String)

    public var description: String {
        switch self {
        case .id: return "id"
        case .size: return "size"
        case .events: return "events"
        case .revenue: return "revenue"
        case .firstSeen: return "first_seen"
        case .lastSeen: return "last_seen"
        case .eventsOfType(let t): return "events.\(t)"
        case .identifiersOfType(let t): return t
        }
    }
}

/// A comparison operator.
public enum Comparison: String, Equatable, Sendable {
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// A condition of `FIND`/`COUNT … WHERE`.
public indirect enum Condition: Equatable, Sendable {
    /// `field op number`.
    case compare(Field, Comparison, Double)
    /// `HAS type`: at least one identifier of the type.
    case has(String)
    /// Both.
    case and(Condition, Condition)
    /// Either.
    case or(Condition, Condition)
    /// Not.
    case not(Condition)
}

/// A parsed statement.
public indirect enum Statement: Equatable, Sendable {
    case resolve(RawIdentifier)
    case entity(Target)
    case identifiers(Target, type: String?)
    case events(Target, type: String?, since: Int64?, until: Int64?, limit: Int?)
    case event(String)
    case preview(String)
    case neighbors(RawIdentifier, depth: Int)
    case path(RawIdentifier, RawIdentifier)
    case history(Target)
    case related(Target)
    case find(Condition?, orderBy: Field?, descending: Bool, limit: Int?)
    case count(Condition?)
    case link(RawIdentifier, RawIdentifier)
    case unlink(RawIdentifier, RawIdentifier)
    case forget(RawIdentifier)
    case retract(String)
    case stats
    case schema
    case explain(Statement)

    /// Whether the statement writes.
    public var writes: Bool {
        switch self {
        case .link, .unlink, .forget, .retract: return true
        case .explain(let inner): return inner.writes
        default: return false
        }
    }
}
