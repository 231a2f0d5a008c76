/// One top-level string field of an event's `props` or Segment `traits` (key and value as
/// UTF-8), which profiles read: golden-record attributes, products, campaigns, lists.
public struct EventAttribute: Sendable, Hashable {
    /// The field name (at most 255 bytes).
    public var key: [UInt8]
    /// The field's string value (at most 1,024 bytes).
    public var value: [UInt8]

    /// Creates an attribute.
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    /// Creates an attribute from text.
    public init(_ key: String, _ value: String) {
        self.init(key: Array(key.utf8), value: Array(value.utf8))
    }

    /// The longest key and value kept; longer fields are not attributes.
    public static let maxKeyLength = 255, maxValueLength = 1024
}

/// One event as the graph receives it: identifiers plus the few fields the graph needs.
/// The graph knows no file format; `props` stays opaque JSON bytes.
public struct EventInput: Sendable, Equatable {
    /// The caller's id; an event whose id is already stored is skipped.
    public var eventID: [UInt8]?
    /// Milliseconds since 1970 (UTC); `nil` means the time of the write.
    public var timestamp: Int64?
    /// Event type (`order`, `page_view`…); default `event`.
    public var type: [UInt8]
    /// Source (`web`, `app`…); default `default`.
    public var source: [UInt8]
    /// The identifiers the event names, in the order given.
    public var identifiers: [RawIdentifier]
    /// `props` as raw JSON object text, kept verbatim (empty when absent).
    public var props: [UInt8]
    /// `props.amount` in millionths, when it was a number.
    public var amountMicros: Int64?
    /// Top-level string fields of `props` (and Segment `traits`), which profiles read.
    public var attributes: [EventAttribute]

    /// Creates an event.
    public init(
        eventID: [UInt8]? = nil, timestamp: Int64? = nil, type: [UInt8] = Array("event".utf8),
        source: [UInt8] = Array("default".utf8), identifiers: [RawIdentifier], props: [UInt8] = [],
        amountMicros: Int64? = nil, attributes: [EventAttribute] = []
    ) {
        self.attributes = attributes
        self.eventID = eventID
        self.timestamp = timestamp
        self.type = type
        self.source = source
        self.identifiers = identifiers
        self.props = props
        self.amountMicros = amountMicros
    }
}

/// A change to the graph (SPEC.md: an event or a control record).
public enum GraphOperation: Sendable, Equatable {
    /// Store an event; every pair of its identifiers gains one piece of evidence.
    case event(EventInput)
    /// Assert a link without an event (one piece of evidence).
    case link(RawIdentifier, RawIdentifier)
    /// Remove a link and all of its evidence; the entity splits if it is no longer connected.
    case unlink(RawIdentifier, RawIdentifier)
    /// Erase an identifier, its links and the events anchored only to it; leave a tombstone.
    case forget(RawIdentifier)
    /// Remove one event and the evidence it gave.
    case retract(eventID: [UInt8])
}

/// What a batch did, counted.
public struct ApplyReport: Sendable, Equatable {
    /// Events stored.
    public var eventsStored = 0
    /// Events skipped because their `event_id` was already stored.
    public var duplicateEvents = 0
    /// Events skipped because every identifier they named was erased or ignored.
    public var eventsWithoutIdentifiers = 0
    /// Identifiers created.
    public var identifiersCreated = 0
    /// Identifiers left out of events or links because they were erased (tombstoned).
    public var erasedIdentifiersSkipped = 0
    /// `link` records applied.
    public var linksAsserted = 0
    /// `link` records ignored because an end was erased, ignored, or the same as the other.
    public var linksIgnored = 0
    /// Links removed by `unlink`.
    public var unlinks = 0
    /// `unlink` records that found no link.
    public var unknownUnlinks = 0
    /// Identifiers erased by `forget` (unknown ones leave a tombstone only).
    public var forgotten = 0
    /// `forget` records of identifiers never seen (a tombstone is still written).
    public var unknownForgets = 0
    /// Events removed by `retract`.
    public var retracted = 0
    /// `retract` records of unknown or already removed events.
    public var unknownRetracts = 0
    /// Events removed by `forget` because they named no other identifier.
    public var eventsErased = 0
    /// Entity merges.
    public var merges = 0
    /// Entities split off.
    public var splits = 0
    /// Values dropped because they matched a blocked pattern of their type.
    public var blockedValues = 0
    /// Values that turned generic (their degree passed `generic_after`).
    public var demotions = 0
    /// Generic values whose degree fell back (they merge again).
    public var promotions = 0
    /// Links refused by a `limit` policy (kept as conflicts that relate two entities).
    public var refusedLinks = 0

    /// An empty report.
    public init() {}

    /// This report's counts minus `other`'s (what happened between two snapshots).
    public func subtracting(_ other: ApplyReport) -> ApplyReport {
        var r = ApplyReport()
        r.eventsStored = eventsStored - other.eventsStored
        r.duplicateEvents = duplicateEvents - other.duplicateEvents
        r.eventsWithoutIdentifiers = eventsWithoutIdentifiers - other.eventsWithoutIdentifiers
        r.identifiersCreated = identifiersCreated - other.identifiersCreated
        r.erasedIdentifiersSkipped = erasedIdentifiersSkipped - other.erasedIdentifiersSkipped
        r.linksAsserted = linksAsserted - other.linksAsserted
        r.linksIgnored = linksIgnored - other.linksIgnored
        r.unlinks = unlinks - other.unlinks
        r.unknownUnlinks = unknownUnlinks - other.unknownUnlinks
        r.forgotten = forgotten - other.forgotten
        r.unknownForgets = unknownForgets - other.unknownForgets
        r.retracted = retracted - other.retracted
        r.unknownRetracts = unknownRetracts - other.unknownRetracts
        r.eventsErased = eventsErased - other.eventsErased
        r.merges = merges - other.merges
        r.splits = splits - other.splits
        r.blockedValues = blockedValues - other.blockedValues
        r.demotions = demotions - other.demotions
        r.promotions = promotions - other.promotions
        r.refusedLinks = refusedLinks - other.refusedLinks
        return r
    }

    /// Adds another report's counts to this one.
    public mutating func add(_ other: ApplyReport) {
        eventsStored += other.eventsStored
        duplicateEvents += other.duplicateEvents
        eventsWithoutIdentifiers += other.eventsWithoutIdentifiers
        identifiersCreated += other.identifiersCreated
        erasedIdentifiersSkipped += other.erasedIdentifiersSkipped
        linksAsserted += other.linksAsserted
        linksIgnored += other.linksIgnored
        unlinks += other.unlinks
        unknownUnlinks += other.unknownUnlinks
        forgotten += other.forgotten
        unknownForgets += other.unknownForgets
        retracted += other.retracted
        unknownRetracts += other.unknownRetracts
        eventsErased += other.eventsErased
        merges += other.merges
        splits += other.splits
        demotions += other.demotions
        promotions += other.promotions
        refusedLinks += other.refusedLinks
        blockedValues += other.blockedValues
    }
}
