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
    /// The most attributes one event keeps (the first ones; stored counts are 16-bit).
    public static let maxCount = 4096
}

/// An event's attributes in one buffer (one allocation however many there are): per
/// attribute `[key length u8][value length u16, big-endian][key][value]`, the form events store.
public struct AttributeList: Sendable, Hashable, Sequence {
    /// The encoded attributes.
    public private(set) var bytes: [UInt8] = []
    /// How many attributes.
    public private(set) var count = 0

    /// No attributes.
    public init() {}

    /// These attributes (keys over 255 bytes or values over 1,024 are left out).
    public init(_ attributes: [EventAttribute]) {
        for a in attributes { append(key: a.key, value: a.value) }
    }

    /// Decodes stored attributes, checking every length.
    init(count: Int, stored: UnsafeRawBufferPointer) throws(RecordError) {
        var offset = 0
        for _ in 0..<count {
            guard offset + 3 <= stored.count else { throw RecordError.corrupt("attribute header") }
            let k = Int(stored[offset]), v = Int(stored[offset + 1]) << 8 | Int(stored[offset + 2])
            offset += 3 + k + v
            guard offset <= stored.count else { throw RecordError.corrupt("attribute length") }
        }
        self.count = count
        bytes = Array(UnsafeRawBufferPointer(rebasing: stored[0..<offset]))
    }

    /// Whether there is none.
    public var isEmpty: Bool { count == 0 }

    /// Removes every attribute, keeping the storage (a parser reuses one list per line).
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        count = 0
    }

    /// Appends an attribute (ignored when the key or value is too long).
    ///
    /// The parsers' overload: the generic one below runs unspecialized when called from another
    /// module (metadata lookups per call).
    public mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard count < EventAttribute.maxCount, key.count <= EventAttribute.maxKeyLength, value.count <= EventAttribute.maxValueLength else { return }
        bytes.append(UInt8(key.count))
        bytes.append(UInt8(value.count >> 8))
        bytes.append(UInt8(value.count & 0xFF))
        bytes.append(contentsOf: key)
        bytes.append(contentsOf: value)
        count += 1
    }

    /// Appends an attribute (ignored when the key or value is too long).
    public mutating func append(key: some Collection<UInt8>, value: some Collection<UInt8>) {
        Array(key).withUnsafeBytes { key in Array(value).withUnsafeBytes { value in append(key: key, value: value) } }
    }

    /// Appends an attribute whose value `writeValue` appends to the buffer it is given (parsers
    /// copy a string straight from the line). The attribute is dropped when the value is empty
    /// or too long, or when `writeValue` throws (and the error is passed on).
    public mutating func append(key: UnsafeRawBufferPointer, writeValue: (inout [UInt8]) throws -> Void) rethrows {
        guard count < EventAttribute.maxCount, key.count <= EventAttribute.maxKeyLength else {
            // Not kept, but the value must still be consumed (and validated) by the parser.
            var discard: [UInt8] = []
            try writeValue(&discard)
            return
        }
        let start = bytes.count
        bytes.append(UInt8(key.count))
        bytes.append(0)
        bytes.append(0)
        bytes.append(contentsOf: key)
        let valueStart = bytes.count
        do {
            try writeValue(&bytes)
        } catch {
            bytes.removeSubrange(start...)
            throw error
        }
        let length = bytes.count - valueStart
        guard length > 0 && length <= EventAttribute.maxValueLength else {
            bytes.removeSubrange(start...)
            return
        }
        bytes[start + 1] = UInt8(length >> 8)
        bytes[start + 2] = UInt8(length & 0xFF)
        count += 1
    }

    /// Calls `body` with each key and value, in order, without copying them.
    public func forEachRaw(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { try Self.forEach(in: $0, count: count, body) }
    }

    /// Calls `body` with each key and value of `count` attributes encoded in `buffer`
    /// (lengths already checked when the list was built).
    static func forEach(in buffer: UnsafeRawBufferPointer, count: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        var offset = 0
        for _ in 0..<count {
            let k = Int(buffer[offset]), v = Int(buffer[offset + 1]) << 8 | Int(buffer[offset + 2])
            let key = UnsafeRawBufferPointer(rebasing: buffer[(offset + 3)..<(offset + 3 + k)])
            let value = UnsafeRawBufferPointer(rebasing: buffer[(offset + 3 + k)..<(offset + 3 + k + v)])
            try body(key, value)
            offset += 3 + k + v
        }
    }

    /// The attributes as values (copies).
    public var elements: [EventAttribute] {
        var out: [EventAttribute] = []
        out.reserveCapacity(count)
        forEachRaw { k, v in out.append(EventAttribute(key: Array(k), value: Array(v))) }
        return out
    }

    /// Iterates copies of the attributes.
    public func makeIterator() -> IndexingIterator<[EventAttribute]> { elements.makeIterator() }
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
    public var attributes: AttributeList

    /// Creates an event.
    public init(
        eventID: [UInt8]? = nil, timestamp: Int64? = nil, type: [UInt8] = Array("event".utf8),
        source: [UInt8] = Array("default".utf8), identifiers: [RawIdentifier], props: [UInt8] = [],
        amountMicros: Int64? = nil, attributes: [EventAttribute] = []
    ) {
        self.attributes = AttributeList(attributes)
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
