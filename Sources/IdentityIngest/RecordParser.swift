import IdentityGraph
#if canImport(Glibc)
import Glibc
#endif

/// Which archive format a line is read as.
public enum InputFormat: String, Sendable, CaseIterable {
    /// Per line: a line with an `ids` or `op` field is native, any other object is Segment.
    case auto
    /// The native format of SPEC.md.
    case native
    /// Segment/RudderStack-style messages.
    case segment
}

/// Parses one line of an archive into an ``GraphOperation``, in one pass over its bytes.
///
/// Native (SPEC.md): `{"event_id","ts","type","source","ids":{type: value|[values]},"props"}`
/// or a control record `{"op":"link|unlink|forget|retract",...}`.
/// Segment: `userId` → `user_id`, `anonymousId` → `anonymous_id`, `traits.email` /
/// `context.traits.email` → `email` (and `phone`), `context.device.id` → `device`, `context.ip`
/// → `ip`, alias `previousId` → `anonymous_id` when it equals `anonymousId`, else `user_id`;
/// `messageId` → event id, `timestamp` → time, `event` (or the message type) → type,
/// `properties` → props.
public enum RecordParser {
    /// Parses a line (without its newline). Throws ``LineError`` naming the field at fault.
    public static func parse(_ line: UnsafeRawBufferPointer, format: InputFormat = .auto) throws(LineError) -> GraphOperation {
        var batch = EventBatch(schema: .builtIn)  // as an arena only: nothing is prepared here
        batch.reserveCapacity(bytes: line.count + 64, identifiers: 8)
        var fields = Fields()
        try readFields(line, into: &batch, fields: &fields)
        if fields.isNative(format) {
            if fields.op != nil { return try fields.controlRecord(batch) }
            try fields.checkNativeEvent(batch)
            return .event(fields.eventInput(batch, as: .native))
        }
        try fields.nameSegmentIdentifiers(&batch)
        return .event(fields.eventInput(batch, as: .segment(time: try fields.segmentTime(batch))))
    }

    /// Parses a line into `batch`: an event is prepared into it (identifiers validated and
    /// normalized under the batch's schema) and nil returned; a control record is returned and
    /// leaves the batch as it was, as does a bad line, which throws.
    public static func parse(_ line: UnsafeRawBufferPointer, format: InputFormat = .auto, into batch: inout EventBatch) throws(LineError) -> GraphOperation? {
        let mark = batch.mark()
        do {
            var fields = Fields(reusingAttributeListsOf: &batch)
            defer { fields.giveBackAttributeLists(to: &batch) }
            try readFields(line, into: &batch, fields: &fields)
            let native = fields.isNative(format)
            if native && fields.op != nil {
                let op = try fields.controlRecord(batch)
                batch.rollback(to: mark)
                return op
            }
            if native { try fields.checkNativeEvent(batch) } else { try fields.nameSegmentIdentifiers(&batch) }
            try fields.finishEvent(&batch, native: native)
            return nil
        } catch {
            batch.rollback(to: mark)
            throw error
        }
    }

    /// Parses a line given as bytes.
    public static func parse(_ line: [UInt8], format: InputFormat = .auto) throws(LineError) -> GraphOperation {
        do {
            return try line.withUnsafeBytes { try parse($0, format: format) }
        } catch let error as LineError {
            throw error
        } catch {
            preconditionFailure("parse throws only LineError")
        }
    }

    /// Parses a line given as text.
    public static func parse(_ line: String, format: InputFormat = .auto) throws(LineError) -> GraphOperation {
        try parse(Array(line.utf8), format: format)
    }

    /// Reads the members of a line's object into `fields` (empty): strings go to `batch`'s arena,
    /// native identifiers to its pending list. (Filled in place: a `Fields` returned was copied
    /// out of the closure that filled it, its attribute lists retained and released each line.)
    private static func readFields(_ line: UnsafeRawBufferPointer, into batch: inout EventBatch, fields: inout Fields) throws(LineError) {
        var scanner = JSONScanner(line)
        do {
            guard try scanner.nextKind() == .object else { throw LineError.notAnObject }
            try scanner.readObject { s, key in try fields.read(key, from: &s, into: &batch) }
            try scanner.expectEnd()
        } catch let error as LineError {
            throw error
        } catch let error as JSONScanner.SyntaxError {
            throw LineError.malformedJSON(column: error.offset + 1, expected: error.expected)
        } catch {
            throw LineError.malformedJSON(column: scanner.position + 1, expected: "valid JSON")
        }
    }
}

// Member names as static strings: a `[UInt8]` global is initialized lazily (a `swift_once`
// check on every use) and compared through the generic `elementsEqual` (together 4.5% of the
// parser's time); these are constant bytes compared with `memcmp`.
private let kEventID: StaticString = "event_id"
private let kTs: StaticString = "ts"
private let kType: StaticString = "type"
private let kSource: StaticString = "source"
private let kIds: StaticString = "ids"
private let kProps: StaticString = "props"
private let kOp: StaticString = "op"
private let kA: StaticString = "a"
private let kB: StaticString = "b"
private let kId: StaticString = "id"
private let kMessageID: StaticString = "messageId"
private let kUserID: StaticString = "userId"
private let kAnonymousID: StaticString = "anonymousId"
private let kPreviousID: StaticString = "previousId"
private let kTimestamp: StaticString = "timestamp"
private let kEvent: StaticString = "event"
private let kProperties: StaticString = "properties"
private let kTraits: StaticString = "traits"
private let kContext: StaticString = "context"
private let kEmail: StaticString = "email"
private let kPhone: StaticString = "phone"
private let kIP: StaticString = "ip"
private let kDevice: StaticString = "device"
private let kAmount: StaticString = "amount"

extension StaticString {
    /// The string's UTF-8 bytes (static storage: valid for the whole run).
    var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}

/// Matches a member name (the line's bytes) against a known one, in `switch` statements.
@inline(__always)
private func ~= (pattern: StaticString, key: UnsafeRawBufferPointer) -> Bool { key == pattern }
@inline(__always)
private func == (key: UnsafeRawBufferPointer, pattern: StaticString) -> Bool {
    key.count == pattern.utf8CodeUnitCount && (key.isEmpty || memcmp(key.baseAddress!, pattern.utf8Start, key.count) == 0)
}

/// The fields of one record, as read (native and Segment alike): where their bytes are in the
/// batch's arena.
private struct Fields {
    // Native.
    var eventID: ByteSpan?
    var timestamp: Int64?
    var type: ByteSpan?
    var source: ByteSpan?
    /// Whether the line has an `ids` object (its identifiers are the batch's pending ones).
    var hasIDs = false
    var props: ByteSpan?
    var amountMicros: Int64?
    var op: ByteSpan?
    var a: ByteSpan?
    var b: ByteSpan?
    var id: ByteSpan?
    // Segment.
    var messageID: ByteSpan?
    var userID: ByteSpan?
    var anonymousID: ByteSpan?
    var previousID: ByteSpan?
    var segmentTimestamp: ByteSpan?
    var event: ByteSpan?
    var properties: ByteSpan?
    var propertiesAmount: Int64?
    var traitsEmail: ByteSpan?
    var traitsPhone: ByteSpan?
    var contextEmail: ByteSpan?
    var contextPhone: ByteSpan?
    var contextIP: ByteSpan?
    var deviceID: ByteSpan?
    // Both: top-level string fields of props/properties and traits, for profiles.
    var attributes = AttributeList()
    /// Attributes from a Segment message's top-level `traits`: the user's, except in a `group`
    /// message, where they describe the group (a company's name is not the person's).
    var topTraitAttributes = AttributeList()

    init() {}

    /// Fields whose attribute lists are `batch`'s spare ones (empty, with storage): a parser
    /// gives them back after the line (``giveBackAttributeLists(to:)``).
    init(reusingAttributeListsOf batch: inout EventBatch) {
        swap(&attributes, &batch.spareAttributes)
        swap(&topTraitAttributes, &batch.spareTraitAttributes)
    }

    /// Empties the attribute lists and hands their storage back to `batch` for the next line.
    mutating func giveBackAttributeLists(to batch: inout EventBatch) {
        attributes.removeAll()
        topTraitAttributes.removeAll()
        swap(&attributes, &batch.spareAttributes)
        swap(&topTraitAttributes, &batch.spareTraitAttributes)
    }

    func isNative(_ format: InputFormat) -> Bool {
        switch format {
        case .auto: return hasIDs || op != nil
        case .native: return true
        case .segment: return false
        }
    }

    /// The value of a number written as up to 18 digits (with an optional `-`), the common
    /// form of `ts`, without going through `Double`; nil for any other form.
    static func plainInteger(_ text: some Collection<UInt8>) -> Int64? {
        var negative = false
        var digits = 0
        var v: Int64 = 0
        for b in text {
            if b == 0x2D && digits == 0 && !negative { negative = true; continue }
            guard b >= 0x30 && b <= 0x39, digits < 18 else { return nil }
            v = v * 10 + Int64(b - 0x30)
            digits += 1
        }
        guard digits > 0 else { return nil }
        return negative ? -v : v
    }

    mutating func read(_ key: UnsafeRawBufferPointer, from s: inout JSONScanner, into batch: inout EventBatch) throws {
        switch key {
        case kEventID: eventID = try optionalIDText(&s, &batch, field: "event_id")
        case kTs:
            switch try s.nextKind() {
            case .null:
                try s.readNull()
            case .string:
                let start = batch.arena.count
                try s.appendString(to: &batch.arena)
                let ms = batch.arena.withUnsafeBytes { Timestamp.parseRFC3339(UnsafeRawBufferPointer(rebasing: $0[start...])) }
                guard let ms else { throw LineError.badTimestamp(String(decoding: batch.arena[start...], as: UTF8.self)) }
                batch.arena.removeSubrange(start...)
                timestamp = ms
            case .number:
                let text = s.bytes(in: try s.readNumberRange())
                if let ms = Self.plainInteger(text) { timestamp = ms; return }
                guard let v = Double(String(decoding: text, as: UTF8.self)), v.isFinite, abs(v) < 9.2e18 else {
                    throw LineError.badTimestamp(String(decoding: text, as: UTF8.self))
                }
                timestamp = Int64(v.rounded(.down))
            default:
                throw LineError.wrongType(field: "ts", expected: "an RFC 3339 string or epoch milliseconds")
            }
        case kType: type = try optionalString(&s, &batch, field: "type")
        case kSource: source = try optionalString(&s, &batch, field: "source")
        case kIds:
            guard try s.nextKind() == .object else {
                throw LineError.wrongType(field: "ids", expected: "an object of identifier type → string or array of strings")
            }
            batch.discardPendingIdentifiers()  // a repeated `ids` member replaces the first
            try s.readObject { s, key in
                let type = batch.append(key)
                func field() -> String { "ids." + String(decoding: key, as: UTF8.self) }
                switch try s.nextKind() {
                case .string:
                    batch.addRawIdentifier(type: type, value: try Self.appendString(&s, &batch))
                case .array:
                    try s.readArray { s in
                        guard try s.nextKind() == .string else { throw LineError.wrongType(field: field(), expected: "an array of strings") }
                        batch.addRawIdentifier(type: type, value: try Self.appendString(&s, &batch))
                    }
                default:
                    throw LineError.wrongType(field: field(), expected: "a string or an array of strings")
                }
            }
            hasIDs = true
        case kProps:
            if try s.nextKind() == .null { try s.readNull(); return }
            guard try s.nextKind() == .object else { throw LineError.wrongType(field: "props", expected: "an object") }
            let raw = s.bytes(in: try s.skipValue())  // validated by the skip
            props = batch.append(raw)
            amountMicros = try scanProps(raw, field: "props.amount")
        case kOp: op = try string(&s, &batch, field: "op")
        case kA: a = try string(&s, &batch, field: "a")
        case kB: b = try string(&s, &batch, field: "b")
        case kId: id = try string(&s, &batch, field: "id")
        case kMessageID: messageID = try optionalIDText(&s, &batch, field: "messageId")
        case kUserID: userID = try optionalIDText(&s, &batch, field: "userId")
        case kAnonymousID: anonymousID = try optionalIDText(&s, &batch, field: "anonymousId")
        case kPreviousID: previousID = try optionalIDText(&s, &batch, field: "previousId")
        case kTimestamp:
            if try s.nextKind() == .null { try s.readNull() } else { segmentTimestamp = try string(&s, &batch, field: "timestamp") }
        case kEvent:
            if try s.nextKind() == .null { try s.readNull() } else { event = try string(&s, &batch, field: "event") }
        case kProperties:
            switch try s.nextKind() {
            case .null: try s.readNull()
            case .object:
                let raw = s.bytes(in: try s.skipValue())
                properties = batch.append(raw)
                propertiesAmount = try scanProps(raw, field: "properties.amount")
            default: throw LineError.wrongType(field: "properties", expected: "an object")
            }
        case kTraits:
            (traitsEmail, traitsPhone) = try readTraits(&s, &batch, field: "traits", emailField: "traits.email", phoneField: "traits.phone", into: &topTraitAttributes)
        case kContext:
            switch try s.nextKind() {
            case .null: try s.readNull()
            case .object:
                try s.readObject { s, key in
                    switch key {
                    case kIP: self.contextIP = try self.optionalIDText(&s, &batch, field: "context.ip")
                    case kTraits:
                        var found = AttributeList()
                        (self.contextEmail, self.contextPhone) = try self.readTraits(
                            &s, &batch, field: "context.traits", emailField: "context.traits.email", phoneField: "context.traits.phone", into: &found)
                        found.forEachRaw { k, v in self.attributes.append(key: k, value: v) }
                    case kDevice:
                        switch try s.nextKind() {
                        case .null: try s.readNull()
                        case .object:
                            try s.readObject { s, key in
                                if key == kId { self.deviceID = try self.optionalIDText(&s, &batch, field: "context.device.id") } else { try s.skipValue() }
                            }
                        default: throw LineError.wrongType(field: "context.device", expected: "an object")
                        }
                    default: try s.skipValue()
                    }
                }
            default: throw LineError.wrongType(field: "context", expected: "an object")
            }
        default:
            try s.skipValue()
        }
    }

    /// Appends a string value (known to be one) to the arena and returns where it is.
    static func appendString(_ s: inout JSONScanner, _ batch: inout EventBatch) throws -> ByteSpan {
        let start = batch.arena.count
        try s.appendString(to: &batch.arena)
        return ByteSpan(start: start, count: batch.arena.count - start)
    }

    /// A string, or `nil` for `null` or an empty string (optional fields).
    func optionalString(_ s: inout JSONScanner, _ batch: inout EventBatch, field: String) throws -> ByteSpan? {
        if try s.nextKind() == .null { try s.readNull(); return nil }
        let value = try string(&s, &batch, field: field)
        return value.count == 0 ? nil : value
    }

    func string(_ s: inout JSONScanner, _ batch: inout EventBatch, field: String) throws -> ByteSpan {
        guard try s.nextKind() == .string else { throw LineError.wrongType(field: field, expected: "a string") }
        return try Self.appendString(&s, &batch)
    }

    /// An id given as a string or a number (its text).
    func idText(_ s: inout JSONScanner, _ batch: inout EventBatch, field: String) throws -> ByteSpan {
        switch try s.nextKind() {
        case .string: return try Self.appendString(&s, &batch)
        case .number: return batch.append(s.bytes(in: try s.readNumberRange()))
        default: throw LineError.wrongType(field: field, expected: "a string")
        }
    }

    /// Like ``idText(_:_:field:)``, but `null` (common in Segment exports) means absent.
    func optionalIDText(_ s: inout JSONScanner, _ batch: inout EventBatch, field: String) throws -> ByteSpan? {
        if try s.nextKind() == .null { try s.readNull(); return nil }
        let text = try idText(&s, &batch, field: field)
        return text.count == 0 ? nil : text
    }

    /// `email` and `phone` of a traits object (`null` traits: neither); its string fields
    /// (those two first) are appended to `attributes`.
    func readTraits(
        _ s: inout JSONScanner, _ batch: inout EventBatch, field: String, emailField: String, phoneField: String, into attributes: inout AttributeList
    ) throws -> (email: ByteSpan?, phone: ByteSpan?) {
        switch try s.nextKind() {
        case .null:
            try s.readNull()
            return (nil, nil)
        case .object:
            var e: ByteSpan?, p: ByteSpan?
            var found = AttributeList()
            try s.readObject { s, key in
                switch key {
                case kEmail: e = try self.optionalIDText(&s, &batch, field: emailField)
                case kPhone: p = try self.optionalIDText(&s, &batch, field: phoneField)
                default:
                    if try s.nextKind() == .string {
                        try found.append(key: key) { out in try s.appendString(to: &out) }
                    } else {
                        try s.skipValue()
                    }
                }
            }
            batch.arena.withUnsafeBytes { arena in
                if let e { attributes.append(key: kEmail.rawBytes, value: UnsafeRawBufferPointer(rebasing: arena[e.range])) }
                if let p { attributes.append(key: kPhone.rawBytes, value: UnsafeRawBufferPointer(rebasing: arena[p.range])) }
            }
            found.forEachRaw { k, v in attributes.append(key: k, value: v) }
            return (e, p)
        default: throw LineError.wrongType(field: field, expected: "an object")
        }
    }

    /// `amount` at the top level of a props object, in millionths; its top-level string fields
    /// (keys up to 255 bytes, non-empty values up to 1,024) become attributes.
    mutating func scanProps(_ raw: UnsafeRawBufferPointer, field: String) throws -> Int64? {
        var found: Int64?
        var s = JSONScanner(raw)
        try s.readObject { s, key in
            switch try s.nextKind() {
            case .number where key == kAmount:
                let text = s.bytes(in: try s.readNumberRange())
                guard let v = Double(String(decoding: text, as: UTF8.self)), v.isFinite, abs(v) < 9.2e12 else {
                    throw LineError.badAmount(String(decoding: text, as: UTF8.self))
                }
                found = Int64((v * 1_000_000).rounded())
            case .string:
                try self.attributes.append(key: key) { out in try s.appendString(to: &out) }
            default:
                try s.skipValue()
            }
        }
        return found
    }

    func identifier(_ span: ByteSpan?, _ batch: EventBatch, field: String) throws(LineError) -> RawIdentifier {
        guard let span else { throw LineError.missingField(field) }
        do { return try RawIdentifier(text: batch.arena[span.range]) } catch { throw LineError.badIdentifier(field: field, error) }
    }

    /// A native control record (`op` is set).
    func controlRecord(_ batch: EventBatch) throws(LineError) -> GraphOperation {
        guard let op else { throw LineError.notARecord }
        let name = batch.arena[op.range]
        if name.elementsEqual("link".utf8) { return .link(try identifier(a, batch, field: "a"), try identifier(b, batch, field: "b")) }
        if name.elementsEqual("unlink".utf8) { return .unlink(try identifier(a, batch, field: "a"), try identifier(b, batch, field: "b")) }
        if name.elementsEqual("forget".utf8) { return .forget(try identifier(id, batch, field: "id")) }
        if name.elementsEqual("retract".utf8) {
            guard let eventID, eventID.count > 0 else { throw LineError.missingField("event_id") }
            return .retract(eventID: Array(batch.arena[eventID.range]))
        }
        throw LineError.unknownOp(String(decoding: name, as: UTF8.self))
    }

    /// A native event must have identifiers.
    func checkNativeEvent(_ batch: EventBatch) throws(LineError) {
        guard hasIDs else { throw LineError.notARecord }
        guard batch.pendingIdentifierCount > 0 else { throw LineError.noIdentifiers }
    }

    /// A Segment message's identifiers, named in the batch in this order: userId, anonymousId,
    /// previousId (an `anonymous_id` when it equals anonymousId, else a `user_id`), traits and
    /// context traits email and phone, device, ip.
    func nameSegmentIdentifiers(_ batch: inout EventBatch) throws(LineError) {
        guard type != nil else { throw LineError.notARecord }
        batch.discardPendingIdentifiers()
        func add(_ type: StaticString, _ value: ByteSpan?) {
            if let value { batch.addRawIdentifier(type: batch.append(type.rawBytes), value: value) }
        }
        add(kUserIDType, userID)
        add(kAnonymousIDType, anonymousID)
        if let previousID {
            let same = anonymousID.map { batch.arena[$0.range].elementsEqual(batch.arena[previousID.range]) } ?? false
            add(same ? kAnonymousIDType : kUserIDType, previousID)
        }
        add(kEmail, traitsEmail)
        add(kEmail, contextEmail)
        add(kPhone, traitsPhone)
        add(kPhone, contextPhone)
        add(kDevice, deviceID)
        add(kIP, contextIP)
        guard batch.pendingIdentifierCount > 0 else { throw LineError.noSegmentIdentifiers }
    }

    /// A Segment message's time, if it has one.
    func segmentTime(_ batch: EventBatch) throws(LineError) -> Int64? {
        guard let segmentTimestamp else { return nil }
        let parsed = batch.arena.withUnsafeBytes { Timestamp.parseRFC3339(UnsafeRawBufferPointer(rebasing: $0[segmentTimestamp.range])) }
        guard let parsed else { throw LineError.badTimestamp(String(decoding: batch.arena[segmentTimestamp.range], as: UTF8.self)) }
        return parsed
    }

    /// A Segment message's attributes: properties and context traits, plus its traits unless it
    /// is a `group` message.
    func segmentAttributes(_ batch: EventBatch) -> AttributeList {
        guard let type, !batch.arena[type.range].elementsEqual("group".utf8), !topTraitAttributes.isEmpty else { return attributes }
        var all = topTraitAttributes
        attributes.forEachRaw { k, v in all.append(key: k, value: v) }
        return all
    }

    /// Prepares the event into the batch (its identifiers are the batch's pending ones).
    func finishEvent(_ batch: inout EventBatch, native: Bool) throws(LineError) {
        do {
            if native {
                try batch.finishEvent(eventID: eventID, timestamp: timestamp, type: type, source: source, props: props ?? .empty,
                                      amountMicros: amountMicros, attributes: attributes)
            } else {
                let time = try segmentTime(batch)
                try batch.finishEvent(eventID: messageID, timestamp: time, type: event ?? type, source: batch.append(kSegmentSource.rawBytes),
                                      props: properties ?? .empty, amountMicros: propertiesAmount, attributes: segmentAttributes(batch))
            }
        } catch let error as IdentifierError {
            throw LineError.badIdentifier(field: "ids", error)
        } catch let error as LineError {
            throw error
        } catch {
            preconditionFailure("finishEvent throws IdentifierError or LineError")
        }
    }

    /// Which encoding an event came in (a Segment message's time is parsed beforehand).
    enum Encoding { case native, segment(time: Int64?) }

    /// The event as an ``EventInput`` (copies; identifiers as named in the batch).
    func eventInput(_ batch: EventBatch, as encoding: Encoding) -> EventInput {
        func bytes(_ span: ByteSpan) -> [UInt8] { Array(batch.arena[span.range]) }
        let identifiers = (0..<batch.pendingIdentifierCount).map { i -> RawIdentifier in
            let (t, v) = batch.pendingIdentifier(i)
            return RawIdentifier(type: bytes(t), value: bytes(v))
        }
        var input: EventInput
        switch encoding {
        case .native:
            input = EventInput(
                eventID: eventID.map(bytes), timestamp: timestamp, type: type.map(bytes) ?? Array("event".utf8),
                source: source.map(bytes) ?? Array("default".utf8), identifiers: identifiers, props: props.map(bytes) ?? [],
                amountMicros: amountMicros)
            input.attributes = attributes
        case .segment(let time):
            input = EventInput(
                eventID: messageID.map(bytes), timestamp: time, type: bytes(event ?? type ?? .empty), source: Array(kSegmentSource.rawBytes),
                identifiers: identifiers, props: properties.map(bytes) ?? [], amountMicros: propertiesAmount)
            input.attributes = segmentAttributes(batch)
        }
        return input
    }
}

private let kUserIDType: StaticString = "user_id", kAnonymousIDType: StaticString = "anonymous_id", kSegmentSource: StaticString = "segment"
