/// Where a field's bytes are in an ``EventBatch``'s arena.
public struct ByteSpan: Sendable, Equatable {
    /// Offset of the first byte.
    public var start: UInt32
    /// Number of bytes.
    public var count: UInt32

    /// The span of `count` bytes from `start`.
    @inlinable
    public init(start: Int, count: Int) {
        self.start = UInt32(truncatingIfNeeded: start)
        self.count = UInt32(truncatingIfNeeded: count)
    }

    /// No bytes.
    public static let empty = ByteSpan(start: 0, count: 0)

    /// The offsets it covers.
    @inlinable
    public var range: Range<Int> { Int(start)..<(Int(start) + Int(count)) }
}

/// Events parsed and prepared (identifiers validated, normalized and deduplicated, exactly as
/// ``PreparedOperation`` does) into a few flat arrays: what the loader hands the bulk writer.
///
/// One ``PreparedOperation`` holds about twenty heap arrays (identifiers, values, type names,
/// props, attributes…); allocating, reference counting and freeing them took most of the
/// parser's time (measured on 1M events: parsing to operations 1.2 s, preparing, batching and
/// freeing them 1.7 s more). A batch keeps every event's bytes in one arena and its fields as
/// offsets, and is reused: in steady state a parsed event allocates nothing.
///
/// Building (what a parser does, per line): append the field bytes to ``arena``, name each raw
/// identifier with ``addRawIdentifier(type:value:)``, then ``finishEvent(eventID:timestamp:type:source:props:amountMicros:attributes:)``.
/// A line that turns out bad is undone with ``rollback(to:)`` to the ``mark()`` taken before it.
public struct EventBatch: Sendable {
    /// One event's fields.
    struct Event: Sendable {
        var timestamp: Int64
        var amountMicros: Int64
        var hasTimestamp: Bool
        var hasAmount: Bool
        /// Absent when the line had none (or an empty one).
        var eventID: ByteSpan?
        var type: ByteSpan
        var source: ByteSpan
        var props: ByteSpan
        /// ``AttributeList``'s encoding.
        var attributes: ByteSpan
        var attributeCount: UInt16
        /// Its identifiers: `members[firstMember..<firstMember + memberCount]`.
        var firstMember: UInt32
        var memberCount: UInt16
        /// Its raw identifiers, as given: `raw[firstRaw..<firstRaw + rawCount]`.
        var firstRaw: UInt32
        var rawCount: UInt16
    }

    /// A normalized identifier: an index into ``typeNames`` and its value's bytes.
    struct Member: Sendable {
        var type: UInt16
        var value: ByteSpan
    }

    /// A raw identifier as given: its type name and value bytes.
    struct RawMember: Sendable {
        var type: ByteSpan
        var value: ByteSpan
    }

    /// A raw type name seen before, folded and looked up once.
    private struct KnownType: Sendable {
        var raw: [UInt8]
        /// Index into ``typeNames``; -1 for a type whose role is `ignore`.
        var index: Int32
    }

    /// The bytes of every field, back to back. Parsers append to it directly.
    public var arena: [UInt8] = []
    private(set) var events: [Event] = []
    private(set) var members: [Member] = []
    private(set) var raws: [RawMember] = []
    /// Normalized type names the members use (kept across ``removeAll()``).
    private(set) var typeNames: [String] = []
    /// Per type (as ``typeNames``), what its policy says of values: its normalization, whether
    /// it blocks any, and its blocked patterns. The first two are read for every identifier, as
    /// plain values: a copy of the policy retained and released its pattern list and the type's
    /// name (~3% of the parser), and even testing the pattern list for emptiness cost ~3%.
    private var normalizations: [Normalization] = []
    private var blocksValues: [Bool] = []
    private var blockedPatterns: [[String]] = []
    private var knownTypes: [KnownType] = []
    /// The patterns that dropped values, by event index (rare).
    private(set) var blocked: [Int: [String]] = [:]
    /// Raw identifiers of the event being built.
    private var pending: [RawMember] = []
    /// The schema identifiers are prepared under.
    public let schema: Schema

    /// An empty batch preparing identifiers under `schema`.
    public init(schema: Schema) {
        self.schema = schema
    }

    /// Empty attribute lists with storage, for a parser to fill for each line and give back
    /// (``AttributeList/removeAll()``): lists made anew for every line were allocated, grown and
    /// freed each time (~10% of the parsing thread at 10M events).
    public var spareAttributes = AttributeList(), spareTraitAttributes = AttributeList()

    /// Number of events.
    public var count: Int { events.count }

    /// Whether it holds no event.
    public var isEmpty: Bool { events.isEmpty }

    /// Reserves room for `bytes` arena bytes and `identifiers` raw identifiers of the event
    /// being built (one allocation each instead of growing step by step).
    public mutating func reserveCapacity(bytes: Int, identifiers: Int) {
        arena.reserveCapacity(bytes)
        pending.reserveCapacity(identifiers)
    }

    /// Empties it, keeping its storage (and what it learnt about type names) for reuse.
    public mutating func removeAll() {
        arena.removeAll(keepingCapacity: true)
        events.removeAll(keepingCapacity: true)
        members.removeAll(keepingCapacity: true)
        raws.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        if !blocked.isEmpty { blocked = [:] }
    }

    /// Where the batch stands, to undo a line that turns out bad.
    public struct Mark: Sendable {
        fileprivate var arena: Int
        fileprivate var events: Int
        fileprivate var members: Int
        fileprivate var raws: Int
    }

    /// The current end of everything.
    public func mark() -> Mark {
        Mark(arena: arena.count, events: events.count, members: members.count, raws: raws.count)
    }

    /// Undoes everything added since `mark`.
    public mutating func rollback(to mark: Mark) {
        if arena.count > mark.arena { arena.removeSubrange(mark.arena...) }
        if events.count > mark.events {
            for i in mark.events..<events.count { blocked[i] = nil }
            events.removeSubrange(mark.events...)
        }
        if members.count > mark.members { members.removeSubrange(mark.members...) }
        if raws.count > mark.raws { raws.removeSubrange(mark.raws...) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Appends `bytes` to the arena and returns where they are.
    ///
    /// The parser's own overload: the generic one below runs unspecialized when called from
    /// another module (metadata lookups per call, 2.5% of the parser's time).
    @discardableResult
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> ByteSpan {
        let start = arena.count
        arena.append(contentsOf: bytes)
        return ByteSpan(start: start, count: arena.count - start)
    }

    /// Appends `bytes` to the arena and returns where they are.
    @discardableResult
    public mutating func append(_ bytes: some Collection<UInt8>) -> ByteSpan {
        let start = arena.count
        arena.append(contentsOf: bytes)
        return ByteSpan(start: start, count: arena.count - start)
    }

    /// Names a raw identifier of the event being built (both spans in the arena).
    public mutating func addRawIdentifier(type: ByteSpan, value: ByteSpan) {
        pending.append(RawMember(type: type, value: value))
    }

    /// How many raw identifiers the event being built names so far.
    public var pendingIdentifierCount: Int { pending.count }

    /// The `i`-th raw identifier of the event being built: its type and value spans.
    public func pendingIdentifier(_ i: Int) -> (type: ByteSpan, value: ByteSpan) { (pending[i].type, pending[i].value) }

    /// Forgets the raw identifiers named so far for the event being built.
    public mutating func discardPendingIdentifiers() { pending.removeAll(keepingCapacity: true) }

    /// Ends the event being built: prepares its raw identifiers (in order; the first invalid one
    /// throws, as ``PreparedOperation/init(_:schema:)`` does) and records its fields. `type` and
    /// `source` default to `event` and `default`; `attributes` are appended to the arena.
    /// After a throw the batch holds a partial line: ``rollback(to:)``.
    public mutating func finishEvent(
        eventID: ByteSpan?, timestamp: Int64?, type: ByteSpan?, source: ByteSpan?, props: ByteSpan,
        amountMicros: Int64?, attributes: AttributeList
    ) throws(IdentifierError) {
        let eventIndex = events.count
        let firstMember = members.count, firstRaw = raws.count
        for i in pending.indices {  // by index: iterating the array retained it
            let raw = pending[i]
            raws.append(raw)
            try prepare(raw, event: eventIndex, firstMember: firstMember)
        }
        pending.removeAll(keepingCapacity: true)
        let attributeSpan = attributes.isEmpty ? ByteSpan.empty : append(attributes.bytes)
        events.append(Event(
            timestamp: timestamp ?? 0, amountMicros: amountMicros ?? 0, hasTimestamp: timestamp != nil, hasAmount: amountMicros != nil,
            eventID: eventID.flatMap { $0.count == 0 ? nil : $0 },
            type: type ?? append(Self.defaultType), source: source ?? append(Self.defaultSource), props: props,
            attributes: attributeSpan, attributeCount: UInt16(attributes.count),
            firstMember: UInt32(firstMember), memberCount: UInt16(members.count - firstMember),
            firstRaw: UInt32(firstRaw), rawCount: UInt16(raws.count - firstRaw)))
    }

    private static let defaultType = Array("event".utf8), defaultSource = Array("default".utf8)

    // MARK: - Preparing identifiers (Normalizer's rules, on the arena's bytes)

    /// Validates and normalizes one raw identifier into ``members`` (or drops it: ignored type,
    /// blocked value, or a repeat within its event).
    private mutating func prepare(_ raw: RawMember, event: Int, firstMember: Int) throws(IdentifierError) {
        let typeIndex = try self.typeIndex(of: raw.type)
        guard typeIndex >= 0 else { return }  // role `ignore`
        let t = Int(typeIndex)
        let r = raw.value.range
        guard arenaBytes(r, Normalizer.isValidUTF8) else { throw IdentifierError.invalidUTF8(type: typeNames[t]) }
        let value: ByteSpan
        switch normalizations[t] {
        case .none:
            value = raw.value
        case .trim:
            value = trimmed(r)
        case .email, .lower:
            let t = trimmed(r).range
            if arenaBytes(t, { $0.contains(where: { ($0 >= 0x41 && $0 <= 0x5A) || $0 >= 0x80 }) }) {
                value = normalizedCopy(t) { Normalizer.appendLowercased($0, to: &$1) }
            } else {
                value = ByteSpan(start: t.lowerBound, count: t.count)
            }
        case .phone:
            value = normalizedCopy(r) { Normalizer.appendPhone($0, to: &$1) }
            if value.count == 0 || !arenaBytes(value.range, { $0.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) }) {
                throw IdentifierError.phoneWithoutDigits(String(decoding: arena[r], as: UTF8.self))
            }
        }
        if value.count == 0 { throw IdentifierError.emptyValue(type: typeNames[t]) }
        if value.count > maximumIdentifierValueBytes { throw IdentifierError.valueTooLong(type: typeNames[t], bytes: Int(value.count)) }
        if blocksValues[t] {
            let text = String(decoding: arena[value.range], as: UTF8.self)
            for pattern in blockedPatterns[t] where BlockedPatterns.matches(pattern, text) {
                blocked[event, default: []].append("\(typeNames[t]) /\(pattern)/")
                return
            }
        }
        let member = Member(type: UInt16(typeIndex), value: value)
        for k in firstMember..<members.count where members[k].type == member.type && equal(members[k].value, value) { return }
        members.append(member)
    }

    /// The index of a raw type name's normalized name, learning it on first sight; -1 for an
    /// ignored type. Throws for a name that is not `[a-z][a-z0-9_]*` after case folding.
    private mutating func typeIndex(of raw: ByteSpan) throws(IdentifierError) -> Int32 {
        let r = raw.range
        for known in knownTypes where known.raw.count == r.count && arena[r].elementsEqual(known.raw) { return known.index }
        let rawBytes = Array(arena[r])
        let folded = IdentifierType.fold(rawBytes)
        guard IdentifierType.isValidName(folded) else { throw IdentifierError.badTypeName(String(decoding: rawBytes, as: UTF8.self)) }
        let name = String(decoding: folded, as: UTF8.self)
        let policy = schema.policy(for: name)
        var index: Int32 = -1
        if policy.role != .ignore {
            if let existing = typeNames.firstIndex(of: name) {
                index = Int32(existing)
            } else {
                index = Int32(typeNames.count)
                typeNames.append(name)
                normalizations.append(policy.normalize)
                blockedPatterns.append(policy.blocked ?? [])
                blocksValues.append(!blockedPatterns[blockedPatterns.count - 1].isEmpty)
            }
        }
        knownTypes.append(KnownType(raw: rawBytes, index: index))
        return index
    }

    private func trimmed(_ r: Range<Int>) -> ByteSpan {
        let bounds = arenaBytes(r) { Normalizer.trimmedBounds($0) }
        return ByteSpan(start: r.lowerBound + bounds.lowerBound, count: bounds.count)
    }

    /// `body` of the arena's bytes in `r`, through a buffer: an `ArraySlice` of the arena
    /// retained and released it, for every identifier (~2% of the parsing thread).
    @inline(__always)
    private func arenaBytes<R>(_ r: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[r])) }
    }

    /// Appends what `normalize` makes of the bytes in `r` (``Normalizer/appendLowercased(_:to:)``,
    /// ``Normalizer/appendPhone(_:to:)``), through a reused copy: the arena cannot be read and
    /// appended to at once.
    private mutating func normalizedCopy(_ r: Range<Int>, _ normalize: ([UInt8], inout [UInt8]) -> Void) -> ByteSpan {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: arena[r])
        let start = arena.count
        normalize(scratch, &arena)
        return ByteSpan(start: start, count: arena.count - start)
    }

    /// A value being normalized, copied out of the arena (reused).
    private var scratch: [UInt8] = []

    private func equal(_ a: ByteSpan, _ b: ByteSpan) -> Bool {
        a.count == b.count && arena[a.range].elementsEqual(arena[b.range])
    }

    // MARK: - Reading

    /// Event `i` as a ``PreparedOperation`` (copies of its bytes): what the incremental path
    /// and the tests use.
    public func preparedOperation(at i: Int) -> PreparedOperation {
        let e = events[i]
        func bytes(_ s: ByteSpan) -> [UInt8] { Array(arena[s.range]) }
        var input = EventInput(
            eventID: e.eventID.map(bytes), timestamp: e.hasTimestamp ? e.timestamp : nil, type: bytes(e.type), source: bytes(e.source),
            identifiers: raws[Int(e.firstRaw)..<Int(e.firstRaw) + Int(e.rawCount)].map { RawIdentifier(type: bytes($0.type), value: bytes($0.value)) },
            props: bytes(e.props), amountMicros: e.hasAmount ? e.amountMicros : nil)
        input.attributes = arena.withUnsafeBytes { a in
            // The bytes were encoded by an AttributeList: decoding cannot fail.
            (try? AttributeList(count: Int(e.attributeCount), stored: UnsafeRawBufferPointer(rebasing: a[e.attributes.range]))) ?? AttributeList()
        }
        let identifiers = members[Int(e.firstMember)..<Int(e.firstMember) + Int(e.memberCount)].map {
            Identifier(type: typeNames[Int($0.type)], value: bytes($0.value))
        }
        return .event(PreparedEvent(input: input, identifiers: identifiers, blocked: blocked[i] ?? []))
    }
}
