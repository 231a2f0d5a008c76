import LMDB

/// Node ids and entity ids come from one counter, so they never collide; a node that starts
/// alone starts an entity with its own number.
public typealias NodeID = UInt64
/// An entity's number. Merged-away and split-from ids keep resolving (redirects, history).
public typealias EntityID = UInt64

/// The identifier's own record in `node`: `[type u16][flags u8][0][entity u64][degree u32][value]`:
/// the fixed fields (``NodeHeader``, which alone knows their layout and is where `typeID`,
/// `flags`, `entity`, `degree` and `isGeneric` are read and changed), then the identifier's value.
@dynamicMemberLookup
struct NodeRecord: Equatable {
    var header: NodeHeader
    var value: [UInt8]

    static let genericFlag: UInt8 = 1

    subscript<T>(dynamicMember field: WritableKeyPath<NodeHeader, T>) -> T {
        get { header[keyPath: field] }
        set { header[keyPath: field] = newValue }
    }

    subscript<T>(dynamicMember field: KeyPath<NodeHeader, T>) -> T { header[keyPath: field] }

    var bytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(NodeHeader.size + value.count)  // one allocation
        bytes.append(contentsOf: repeatElement(0, count: NodeHeader.size))
        header.write(over: &bytes)
        bytes.append(contentsOf: value)
        return bytes
    }

    init(typeID: UInt16, flags: UInt8 = 0, entity: EntityID, degree: UInt32 = 0, value: [UInt8]) {
        header = NodeHeader(typeID: typeID, flags: flags, entity: entity, degree: degree)
        self.value = value
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        header = try NodeHeader(bytes: bytes)
        value = Array(bytes[NodeHeader.size...])
    }

    /// Reads only the entity field of an encoded node record.
    static func entity(in bytes: UnsafeRawBufferPointer) -> EntityID { bytes.loadBigEndianUInt64(at: 4) }
}

/// The fixed fields at the start of a node record: all the writer reads and changes (the
/// identifier's value after them is written once, when the node is created). Read and
/// rewritten in place, they cost no allocation, where a whole ``NodeRecord`` copied the value
/// out and encoded it again (7.5 of the 21 allocations per event of an incremental load).
struct NodeHeader: Equatable {
    var typeID: UInt16
    var flags: UInt8
    /// 0 when the node belongs to no entity (`relate` types, generic values).
    var entity: EntityID
    /// Distinct neighbours of `merge` types it is linked to.
    var degree: UInt32

    /// Encoded size: type (2), flags (1), a zero byte, entity (8), degree (4).
    static let size = 16

    var isGeneric: Bool { flags & NodeRecord.genericFlag != 0 }

    init(typeID: UInt16, flags: UInt8, entity: EntityID, degree: UInt32) {
        self.typeID = typeID
        self.flags = flags
        self.entity = entity
        self.degree = degree
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        guard bytes.count >= Self.size else { throw RecordError.corrupt("node record of \(bytes.count) bytes, at least \(Self.size) expected") }
        typeID = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        flags = bytes[2]
        entity = bytes.loadBigEndianUInt64(at: 4)
        degree = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
    }

    /// Writes the fields over the first ``size`` bytes of `bytes` (a node record's copy).
    func write(over bytes: inout [UInt8]) {
        precondition(bytes.count >= Self.size, "a node record is at least \(Self.size) bytes")
        bytes[0] = UInt8(typeID >> 8)
        bytes[1] = UInt8(typeID & 0xFF)
        bytes[2] = flags
        bytes[3] = 0
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: entity.bigEndian, toByteOffset: 4, as: UInt64.self)
            raw.storeBytes(of: degree.bigEndian, toByteOffset: 12, as: UInt32.self)
        }
    }
}

/// An entity's record in `entity`: live (size, created, updated, summary), a redirect to the
/// entity it merged into, or erased (its last identifier was forgotten).
enum EntityRecord: Equatable {
    case live(size: UInt64, created: Int64, updated: Int64, summary: Summary)
    case redirect(to: EntityID, at: Int64)
    case erased(at: Int64)

    var bytes: [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch self {
        case .live(let size, let created, let updated, let summary):
            Self.encodeLive(size: size, created: created, updated: updated, summary: summary, into: &w)
        case .redirect(let to, let at):
            w.append(UInt8(1)); w.append(to); w.append(at)
        case .erased(let at):
            w.append(UInt8(2)); w.append(at)
        }
        return w.bytes
    }

    /// Appends the record of a live entity (what `.live(…).bytes` is) without building the case.
    static func encodeLive(size: UInt64, created: Int64, updated: Int64, summary: Summary, into w: inout ByteWriter) {
        encodeLive(size: size, created: created, updated: updated, into: &w) { summary.encode(into: &$0) }
    }

    /// Appends the record of a live entity whose summary `encodeSummary` appends.
    static func encodeLive(size: UInt64, created: Int64, updated: Int64, into w: inout ByteWriter, encodeSummary: (inout ByteWriter) -> Void) {
        w.append(UInt8(0)); w.append(size); w.append(created); w.append(updated)
        encodeSummary(&w)
    }

    /// Appends the live entity record `stored` with `added` folded into its summary
    /// (``Summary/appendMerging(stored:added:into:)``) and `updated` as its update time; `false`
    /// (nothing appended) when `stored` is not a live entity's record.
    static func appendLiveMerging(stored: UnsafeRawBufferPointer, added: Summary, updated: Int64, into w: inout ByteWriter) throws(RecordError) -> Bool {
        var r = ByteReader(stored)
        guard try r.uint8() == 0 else { return false }
        let size = try r.uint64(), created = try r.int64()
        _ = try r.int64()
        w.append(UInt8(0)); w.append(size); w.append(created); w.append(updated)
        try Summary.appendMerging(stored: UnsafeRawBufferPointer(rebasing: stored[r.offset...]), added: added, into: &w)
        return true
    }

    /// Size and summary header of a live entity's record, `nil` for a redirect or an erased one.
    static func liveHeader(_ bytes: UnsafeRawBufferPointer) throws(RecordError) -> (Int, SummaryHeader)? {
        var r = ByteReader(bytes)
        guard try r.uint8() == 0 else { return nil }
        let size = try r.uint64()
        _ = try r.int64(); _ = try r.int64()
        return (Int(size), try SummaryHeader(decoding: &r))
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var r = ByteReader(bytes)
        switch try r.uint8() {
        case 0:
            let size = try r.uint64(), created = try r.int64(), updated = try r.int64()
            self = .live(size: size, created: created, updated: updated, summary: try Summary(decoding: &r))
        case 1:
            let to = try r.uint64()
            self = .redirect(to: to, at: try r.int64())
        case 2:
            self = .erased(at: try r.int64())
        default:
            throw RecordError.corrupt("entity record kind")
        }
    }
}

/// A stored event in `event`, keyed by its sequence number.
/// `[ts i64][type u32][source u32][anchor u64][amount i64][n u16][idlen u16][propslen u32][n × node][event id][props]`
/// then, when the event has attributes, `[count u16]` and per attribute `[keylen u8][valuelen u16][key][value]`
/// (records written before profiles end after `props` and read as having none).
public struct EventRecord: Equatable, Sendable {
    /// Milliseconds since 1970.
    public var timestamp: Int64
    /// Interned event type.
    public var typeID: UInt32
    /// Interned source.
    public var sourceID: UInt32
    /// The node its summary counts toward.
    public var anchor: NodeID
    /// `props.amount` in millionths, or `nil`.
    public var amountMicros: Int64?
    /// The identifiers it names (what it still names after erasures).
    public var nodes: [NodeID]
    /// The caller's event id (empty when none was given).
    public var eventID: [UInt8]
    /// Raw JSON of `props` (empty when none).
    public var props: [UInt8]
    /// The top-level string fields profiles read.
    public var attributes: AttributeList

    var bytes: [UInt8] {
        var w = ByteWriter(capacity: 36 + nodes.count * 8 + eventID.count + props.count)
        Self.encode(into: &w, timestamp: timestamp, typeID: typeID, sourceID: sourceID, anchor: anchor, amountMicros: amountMicros, nodes: nodes, eventID: eventID, props: props, attributes: attributes)
        return w.bytes
    }

    /// Appends the encoding of an event to `w` without building the record (the bulk writer
    /// encodes into one reused buffer).
    static func encode(into w: inout ByteWriter, timestamp: Int64, typeID: UInt32, sourceID: UInt32, anchor: NodeID, amountMicros: Int64?, nodes: some Collection<NodeID>, eventID: [UInt8], props: [UInt8], attributes: AttributeList) {
        eventID.withUnsafeBytes { eventID in
            props.withUnsafeBytes { props in
                attributes.bytes.withUnsafeBytes { attributeBytes in
                    encode(into: &w, timestamp: timestamp, typeID: typeID, sourceID: sourceID, anchor: anchor, amountMicros: amountMicros,
                           nodes: nodes, eventID: eventID, props: props, attributes: attributeBytes, attributeCount: attributes.count)
                }
            }
        }
    }

    /// The same encoding from bytes in place (`attributes`: `attributeCount` attributes in
    /// ``AttributeList``'s form).
    static func encode(
        into w: inout ByteWriter, timestamp: Int64, typeID: UInt32, sourceID: UInt32, anchor: NodeID, amountMicros: Int64?,
        nodes: some Collection<NodeID>, eventID: UnsafeRawBufferPointer, props: UnsafeRawBufferPointer,
        attributes: UnsafeRawBufferPointer, attributeCount: Int
    ) {
        w.append(timestamp); w.append(typeID); w.append(sourceID); w.append(anchor)
        w.append(amountMicros ?? Int64.min)
        w.append(UInt16(nodes.count)); w.append(UInt16(eventID.count)); w.append(UInt32(props.count))
        for n in nodes { w.append(n) }
        w.append(bytes: eventID)
        w.append(bytes: props)
        guard attributeCount > 0 else { return }
        w.append(UInt16(attributeCount))
        w.append(bytes: attributes)
    }

    init(timestamp: Int64, typeID: UInt32, sourceID: UInt32, anchor: NodeID, amountMicros: Int64?, nodes: [NodeID], eventID: [UInt8], props: [UInt8], attributes: AttributeList) {
        self.attributes = attributes
        self.timestamp = timestamp
        self.typeID = typeID
        self.sourceID = sourceID
        self.anchor = anchor
        self.amountMicros = amountMicros
        self.nodes = nodes
        self.eventID = eventID
        self.props = props
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var r = ByteReader(bytes)
        timestamp = try r.int64()
        typeID = try r.uint32()
        sourceID = try r.uint32()
        anchor = try r.uint64()
        let amount = try r.int64()
        amountMicros = amount == Int64.min ? nil : amount
        let n = Int(try r.uint16()), idLength = Int(try r.uint16()), propsLength = Int(try r.uint32())
        nodes = []
        nodes.reserveCapacity(n)
        for _ in 0..<n { nodes.append(try r.uint64()) }
        eventID = try r.bytes(idLength)
        props = try r.bytes(propsLength)
        if r.remaining > 0 {
            let count = Int(try r.uint16())
            attributes = try AttributeList(count: count, stored: UnsafeRawBufferPointer(rebasing: r.buffer[r.offset...]))
        } else {
            attributes = AttributeList()
        }
    }
}

/// One adjacency entry (a 16-byte dup under a node in `adj`): `[neighbour u64][evidence u32][flags u32]`.
struct EdgeEntry: LMDBBytes, Equatable {
    var neighbour: NodeID
    var evidence: UInt32
    var flags: UInt32

    /// The link was refused by a `limit` policy: it relates the two entities and never merges.
    static let refusedFlag: UInt32 = 1

    func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: (neighbour.bigEndian, evidence.bigEndian, flags.bigEndian), body)
    }

    init(neighbour: NodeID, evidence: UInt32, flags: UInt32 = 0) {
        self.neighbour = neighbour
        self.evidence = evidence
        self.flags = flags
    }

    init(bytes: UnsafeRawBufferPointer) {
        neighbour = bytes.loadBigEndianUInt64(at: 0)
        evidence = bytes.loadBigEndianUInt32(at: 8)
        flags = bytes.loadBigEndianUInt32(at: 12)
    }

    /// The smallest entry for `neighbour`: a `MDB_GET_BOTH_RANGE` probe lands on its entry.
    static func probe(_ neighbour: NodeID) -> EdgeEntry { EdgeEntry(neighbour: neighbour, evidence: 0, flags: 0) }
}

/// A lineage record in `history`: what happened to which entities, and why.
public struct HistoryRecord: Equatable, Sendable {
    /// What happened.
    public enum Kind: UInt8, Sendable {
        /// `entities[1]` merged into `entities[0]`.
        case merge = 1
        /// `entities[1...]` split off from `entities[0]`.
        case split = 2
        /// An identifier of `entities[0]` was erased (`entities` may be empty for one in no entity).
        case forget = 3
        /// `entities[0]` lost its last identifier.
        case erased = 4
        /// An identifier of `entities[0]` turned generic and left it.
        case demoted = 5
        /// A generic identifier turned back and started `entities[0]` (then merged as linked).
        case promoted = 6
        /// A link between `entities[0]` and `entities[1]` was refused by a `limit` policy: it
        /// relates them (a conflict) and does not merge them.
        case refused = 7
    }
    /// What caused it.
    public enum Cause: UInt8, Sendable {
        /// An event (its sequence number in `causeSequence`).
        case event = 1
        /// A `link` record.
        case link = 2
        /// An `unlink` record.
        case unlink = 3
        /// A `forget` record.
        case forget = 4
        /// A `retract` of the event with sequence `causeSequence`.
        case retract = 5
        /// A policy change (`schema set`, `reapply`).
        case policy = 6
    }
    /// What happened.
    public var kind: Kind
    /// Wall-clock time of the write (ms since 1970).
    public var time: Int64
    /// What caused it.
    public var cause: Cause
    /// The event sequence number involved (0 when none).
    public var causeSequence: UInt64
    /// The entities involved (see ``Kind``).
    public var entities: [EntityID]

    var bytes: [UInt8] {
        var w = ByteWriter(capacity: 24 + entities.count * 8)
        w.append(kind.rawValue); w.append(time); w.append(cause.rawValue); w.append(causeSequence)
        w.append(UInt32(entities.count))
        for e in entities { w.append(e) }
        return w.bytes
    }

    /// Whether the record encoded in `bytes` names an entity for which `matches` holds, read in
    /// place (a reader looking for one entity's records decodes only those: decoding all 3.2M
    /// records of a 10M-event database, an array each, took HISTORY 1.6 s). A record too short
    /// to hold its entities counts as a match, so that the decoder reports it.
    static func names(in bytes: UnsafeRawBufferPointer, where matches: (EntityID) -> Bool) -> Bool {
        let countAt = 1 + 8 + 1 + 8  // kind, time, cause, cause sequence
        guard bytes.count >= countAt + 4 else { return true }
        let count = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: countAt, as: UInt32.self)))
        guard bytes.count >= countAt + 4 + count * 8 else { return true }
        for i in 0..<count where matches(UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: countAt + 4 + i * 8, as: UInt64.self))) {
            return true
        }
        return false
    }

    /// ``names(in:where:)`` for one entity.
    static func names(_ entity: EntityID, in bytes: UnsafeRawBufferPointer) -> Bool {
        names(in: bytes) { $0 == entity }
    }

    /// Appends the encoding of a merge of `gone` into `keep` to `w`, the bytes ``bytes`` gives
    /// for such a record, without building one (the bulk writer records millions of merges:
    /// an array of entities and one of bytes each).
    static func encodeMerge(into w: inout ByteWriter, time: Int64, cause: Cause, causeSequence: UInt64, keep: EntityID, gone: EntityID) {
        w.append(Kind.merge.rawValue); w.append(time); w.append(cause.rawValue); w.append(causeSequence)
        w.append(UInt32(2))
        w.append(keep); w.append(gone)
    }

    init(kind: Kind, time: Int64, cause: Cause, causeSequence: UInt64, entities: [EntityID]) {
        self.kind = kind
        self.time = time
        self.cause = cause
        self.causeSequence = causeSequence
        self.entities = entities
    }

    init(bytes: UnsafeRawBufferPointer) throws(RecordError) {
        var r = ByteReader(bytes)
        guard let k = Kind(rawValue: try r.uint8()) else { throw RecordError.corrupt("history kind") }
        kind = k
        time = try r.int64()
        guard let c = Cause(rawValue: try r.uint8()) else { throw RecordError.corrupt("history cause") }
        cause = c
        causeSequence = try r.uint64()
        let n = try r.uint32()
        entities = []
        for _ in 0..<n { entities.append(try r.uint64()) }
    }
}

extension Cursor {
    /// Positions this `adj` cursor on `u`'s entry for `neighbour` (`MDB_GET_BOTH_RANGE` on the
    /// probe) and returns it; `nil` when `u` has no link to it (the position is then undefined).
    func seekEdge(_ u: NodeID, to neighbour: NodeID) throws -> EdgeEntry? {
        guard try seek(key: u, valueAtOrAfter: EdgeEntry.probe(neighbour)) else { return nil }
        let entry = withCurrent { EdgeEntry(bytes: $1) }
        return entry.neighbour == neighbour ? entry : nil
    }
}
