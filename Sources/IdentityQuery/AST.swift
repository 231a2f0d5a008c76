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
    /// Order events.
    case orders
    /// Revenue per order (`aov`).
    case averageOrderValue
    /// Time of the last order (ms).
    case lastOrder
    /// Lifecycle stage (text: lead, first_order, active, hero, waiting, lost).
    case lifecycle
    /// RFM scores as one number (`543`), and each score (1–5).
    case rfm, rfmRecency, rfmFrequency, rfmMonetary
    /// The source with the most events (text).
    case preferredChannel
    /// The `device` identifier with the most events (text).
    case mostUsedDevice
    /// A golden-record attribute (`profile.country`; text).
    case attribute(String)
    /// The most viewed product (text).
    case topProduct
    /// Products viewed, campaigns, subscribed lists: sets compared with `=` (contains) and `!=`.
    case product, campaign, list

    /// Whether values are sets (`product = 'A-1'`: the entity viewed it).
    public var isSet: Bool { self == .product || self == .campaign || self == .list }

    /// Whether values of the field are text (compared and sorted as strings).
    public var isText: Bool {
        switch self {
        case .lifecycle, .preferredChannel, .mostUsedDevice, .attribute, .topProduct, .product, .campaign, .list: return true
        default: return false
        }
    }

    /// Whether values of the field are times (compared with '2024-05-01').
    public var isTime: Bool { self == .firstSeen || self == .lastSeen || self == .lastOrder }

    /// Whether the field needs more than an entity's stored totals (identifiers, the full
    /// summary, RFM scores): scans read more per entity.
    var needsFullProfile: Bool {
        switch self {
        case .id, .size, .events, .revenue, .firstSeen, .lastSeen, .orders, .averageOrderValue, .lastOrder, .lifecycle: return false
        default: return true
        }
    }

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
        case .orders: return "orders"
        case .averageOrderValue: return "aov"
        case .lastOrder: return "last_order"
        case .lifecycle: return "lifecycle"
        case .rfm: return "rfm"
        case .rfmRecency: return "rfm_r"
        case .rfmFrequency: return "rfm_f"
        case .rfmMonetary: return "rfm_m"
        case .preferredChannel: return "preferred_channel"
        case .mostUsedDevice: return "most_used_device"
        case .attribute(let name): return "profile." + name
        case .topProduct: return "top_product"
        case .product: return "product"
        case .campaign: return "campaign"
        case .list: return "list"
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
    /// `field op 'text'` for text fields (lifecycle, golden attributes…).
    case compareText(Field, Comparison, String)
    /// `HAS type`: at least one identifier of the type.
    case has(String)
    /// `IN SEGMENT name`: the segment's condition holds.
    case inSegment(String)
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
    /// Every lineage record that shaped the entity: its own and, back through each merge, those
    /// of the entities merged into it (and of the one it split off from).
    case lineage(Target)
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
    /// `CREATE SEGMENT name AS FIND ENTITIES WHERE condition` (`definition`: the condition's text).
    case createSegment(String, Condition, definition: String)
    case dropSegment(String)
    case segments
    case household(Target)
    case computeRFM

    /// Whether the statement writes.
    public var writes: Bool {
        switch self {
        case .link, .unlink, .forget, .retract, .createSegment, .dropSegment, .computeRFM: return true
        case .explain(let inner): return inner.writes
        default: return false
        }
    }
}
