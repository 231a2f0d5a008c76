/// A compact binary form of ``GraphOperation``, for the real-time writer's journal
/// (``Journal``): what a submitter sent, replayed through the same validation after a crash.
///
/// Big-endian; every byte string is `[length u32][bytes]`. A tag byte (1 event, 2 link,
/// 3 unlink, 4 forget, 5 retract), then for an event: a flags byte (1 event id, 2 timestamp,
/// 4 amount), the present optional fields, type, source, the identifiers (count u32, each
/// type then value), props, and the attributes (count u32 and their stored form).
extension GraphOperation {
    private enum Tag: UInt8 { case event = 1, link, unlink, forget, retract }

    func encode(into out: inout ByteWriter) {
        switch self {
        case .event(let e):
            out.append(Tag.event.rawValue)
            var flags: UInt8 = 0
            if e.eventID != nil { flags |= 1 }
            if e.timestamp != nil { flags |= 2 }
            if e.amountMicros != nil { flags |= 4 }
            out.append(flags)
            if let id = e.eventID { Self.append(id, to: &out) }
            if let ts = e.timestamp { out.append(ts) }
            if let amount = e.amountMicros { out.append(amount) }
            Self.append(e.type, to: &out)
            Self.append(e.source, to: &out)
            out.append(UInt32(e.identifiers.count))
            for id in e.identifiers { Self.append(id, to: &out) }
            Self.append(e.props, to: &out)
            out.append(UInt32(e.attributes.count))
            Self.append(e.attributes.bytes, to: &out)
        case .link(let a, let b):
            out.append(Tag.link.rawValue)
            Self.append(a, to: &out)
            Self.append(b, to: &out)
        case .unlink(let a, let b):
            out.append(Tag.unlink.rawValue)
            Self.append(a, to: &out)
            Self.append(b, to: &out)
        case .forget(let a):
            out.append(Tag.forget.rawValue)
            Self.append(a, to: &out)
        case .retract(let id):
            out.append(Tag.retract.rawValue)
            Self.append(id, to: &out)
        }
    }

    /// Reads one operation written by ``encode(into:)``, checking every length.
    static func decode(from reader: inout ByteReader) throws(RecordError) -> GraphOperation {
        guard let tag = Tag(rawValue: try reader.uint8()) else { throw RecordError.corrupt("journal: unknown operation tag") }
        switch tag {
        case .event:
            let flags = try reader.uint8()
            let eventID = try flags & 1 != 0 ? bytes(&reader) : nil
            let timestamp = try flags & 2 != 0 ? reader.int64() : nil
            let amount = try flags & 4 != 0 ? reader.int64() : nil
            let type = try bytes(&reader)
            let source = try bytes(&reader)
            let count = Int(try reader.uint32())
            guard count <= reader.remaining else { throw RecordError.corrupt("journal: identifier count") }
            var identifiers: [RawIdentifier] = []
            identifiers.reserveCapacity(count)
            for _ in 0..<count { identifiers.append(try identifier(&reader)) }
            let props = try bytes(&reader)
            let attributeCount = Int(try reader.uint32())
            let length = Int(try reader.uint32())
            let attributes = try AttributeList(count: attributeCount, stored: try reader.slice(length))
            var input = EventInput(eventID: eventID, timestamp: timestamp, type: type, source: source, identifiers: identifiers, props: props, amountMicros: amount)
            input.attributes = attributes
            return .event(input)
        case .link: return .link(try identifier(&reader), try identifier(&reader))
        case .unlink: return .unlink(try identifier(&reader), try identifier(&reader))
        case .forget: return .forget(try identifier(&reader))
        case .retract: return .retract(eventID: try bytes(&reader))
        }
    }

    private static func append(_ bytes: [UInt8], to out: inout ByteWriter) {
        out.append(UInt32(bytes.count))
        out.append(bytes: bytes)
    }

    private static func append(_ id: RawIdentifier, to out: inout ByteWriter) {
        append(id.type, to: &out)
        append(id.value, to: &out)
    }

    private static func bytes(_ reader: inout ByteReader) throws(RecordError) -> [UInt8] {
        try reader.bytes(Int(try reader.uint32()))
    }

    private static func identifier(_ reader: inout ByteReader) throws(RecordError) -> RawIdentifier {
        RawIdentifier(type: try bytes(&reader), value: try bytes(&reader))
    }
}
