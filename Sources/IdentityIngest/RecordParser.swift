import IdentityGraph

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
        var scanner = JSONScanner(line)
        do {
            guard try scanner.nextKind() == .object else { throw LineError.notAnObject }
            var fields = Fields()
            try scanner.readObject { s, key in try fields.read(key, from: &s) }
            try scanner.expectEnd()
            let native: Bool
            switch format {
            case .auto: native = fields.identifiers != nil || fields.op != nil
            case .native: native = true
            case .segment: native = false
            }
            return native ? try fields.nativeOperation() : try fields.segmentOperation()
        } catch let error as LineError {
            throw error
        } catch let error as JSONScanner.SyntaxError {
            throw LineError.malformedJSON(column: error.offset + 1, expected: error.expected)
        } catch {
            throw LineError.malformedJSON(column: scanner.position + 1, expected: "valid JSON")
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
}

private let kEventID = Array("event_id".utf8), kTs = Array("ts".utf8), kType = Array("type".utf8)
private let kSource = Array("source".utf8), kIds = Array("ids".utf8), kProps = Array("props".utf8)
private let kOp = Array("op".utf8), kA = Array("a".utf8), kB = Array("b".utf8), kId = Array("id".utf8)
private let kMessageID = Array("messageId".utf8), kUserID = Array("userId".utf8), kAnonymousID = Array("anonymousId".utf8)
private let kPreviousID = Array("previousId".utf8), kTimestamp = Array("timestamp".utf8), kEvent = Array("event".utf8)
private let kProperties = Array("properties".utf8), kTraits = Array("traits".utf8), kContext = Array("context".utf8)
private let kEmail = Array("email".utf8), kPhone = Array("phone".utf8), kIP = Array("ip".utf8), kDevice = Array("device".utf8)
private let kAmount = Array("amount".utf8)

/// Matches a member name (the line's bytes) against a known one, in `switch` statements.
@inline(__always)
private func ~= (pattern: [UInt8], key: UnsafeRawBufferPointer) -> Bool { key.elementsEqual(pattern) }
@inline(__always)
private func == (key: UnsafeRawBufferPointer, pattern: [UInt8]) -> Bool { key.elementsEqual(pattern) }

/// The fields of one record, as read (native and Segment alike).
private struct Fields {
    // Native.
    var eventID: [UInt8]?
    var timestamp: Int64?
    var type: [UInt8]?
    var source: [UInt8]?
    var identifiers: [RawIdentifier]?
    var props: [UInt8]?
    var amountMicros: Int64?
    var op: [UInt8]?
    var a: [UInt8]?
    var b: [UInt8]?
    var id: [UInt8]?
    // Segment.
    var messageID: [UInt8]?
    var userID: [UInt8]?
    var anonymousID: [UInt8]?
    var previousID: [UInt8]?
    var segmentTimestamp: [UInt8]?
    var event: [UInt8]?
    var properties: [UInt8]?
    var propertiesAmount: Int64?
    var traitsEmail: [UInt8]?
    var traitsPhone: [UInt8]?
    var contextEmail: [UInt8]?
    var contextPhone: [UInt8]?
    var contextIP: [UInt8]?
    var deviceID: [UInt8]?
    // Both: top-level string fields of props/properties and traits, for profiles.
    var attributes = AttributeList()
    /// Attributes from a Segment message's top-level `traits`: the user's, except in a `group`
    /// message, where they describe the group (a company's name is not the person's).
    var topTraitAttributes = AttributeList()

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

    mutating func read(_ key: UnsafeRawBufferPointer, from s: inout JSONScanner) throws {
        switch key {
        case kEventID: eventID = try optionalIDText(&s, field: "event_id")
        case kTs:
            switch try s.nextKind() {
            case .null:
                try s.readNull()
            case .string:
                let text = try s.readString()
                guard let ms = Timestamp.parseRFC3339(text) else { throw LineError.badTimestamp(String(decoding: text, as: UTF8.self)) }
                timestamp = ms
            case .number:
                let text = try s.readNumberText()
                if let ms = Self.plainInteger(text) { timestamp = ms; return }
                guard let v = Double(String(decoding: text, as: UTF8.self)), v.isFinite, abs(v) < 9.2e18 else {
                    throw LineError.badTimestamp(String(decoding: text, as: UTF8.self))
                }
                timestamp = Int64(v.rounded(.down))
            default:
                throw LineError.wrongType(field: "ts", expected: "an RFC 3339 string or epoch milliseconds")
            }
        case kType: type = try optionalString(&s, field: "type")
        case kSource: source = try optionalString(&s, field: "source")
        case kIds:
            guard try s.nextKind() == .object else {
                throw LineError.wrongType(field: "ids", expected: "an object of identifier type → string or array of strings")
            }
            var list: [RawIdentifier] = []
            try s.readObject { s, key in
                let type = Array(key)
                func field() -> String { "ids." + String(decoding: type, as: UTF8.self) }
                switch try s.nextKind() {
                case .string:
                    list.append(RawIdentifier(type: type, value: try s.readString()))
                case .array:
                    try s.readArray { s in
                        guard try s.nextKind() == .string else { throw LineError.wrongType(field: field(), expected: "an array of strings") }
                        list.append(RawIdentifier(type: type, value: try s.readString()))
                    }
                default:
                    throw LineError.wrongType(field: field(), expected: "a string or an array of strings")
                }
            }
            identifiers = list
        case kProps:
            if try s.nextKind() == .null { try s.readNull(); return }
            guard try s.nextKind() == .object else { throw LineError.wrongType(field: "props", expected: "an object") }
            let raw = s.slice(try s.skipValue())  // validated by the skip
            props = raw
            amountMicros = try scanProps(raw, field: "props.amount")
        case kOp: op = try string(&s, field: "op")
        case kA: a = try string(&s, field: "a")
        case kB: b = try string(&s, field: "b")
        case kId: id = try string(&s, field: "id")
        case kMessageID: messageID = try optionalIDText(&s, field: "messageId")
        case kUserID: userID = try optionalIDText(&s, field: "userId")
        case kAnonymousID: anonymousID = try optionalIDText(&s, field: "anonymousId")
        case kPreviousID: previousID = try optionalIDText(&s, field: "previousId")
        case kTimestamp:
            if try s.nextKind() == .null { try s.readNull() } else { segmentTimestamp = try string(&s, field: "timestamp") }
        case kEvent:
            if try s.nextKind() == .null { try s.readNull() } else { event = try string(&s, field: "event") }
        case kProperties:
            switch try s.nextKind() {
            case .null: try s.readNull()
            case .object:
                let raw = s.slice(try s.skipValue())
                properties = raw
                propertiesAmount = try scanProps(raw, field: "properties.amount")
            default: throw LineError.wrongType(field: "properties", expected: "an object")
            }
        case kTraits:
            (traitsEmail, traitsPhone, topTraitAttributes) = try readTraits(&s, field: "traits")
        case kContext:
            switch try s.nextKind() {
            case .null: try s.readNull()
            case .object:
                try s.readObject { s, key in
                    switch key {
                    case kIP: self.contextIP = try self.optionalIDText(&s, field: "context.ip")
                    case kTraits:
                        let (e, p, found) = try self.readTraits(&s, field: "context.traits")
                        (self.contextEmail, self.contextPhone) = (e, p)
                        found.forEachRaw { k, v in self.attributes.append(key: k, value: v) }
                    case kDevice:
                        switch try s.nextKind() {
                        case .null: try s.readNull()
                        case .object:
                            try s.readObject { s, key in
                                if key == kId { self.deviceID = try self.optionalIDText(&s, field: "context.device.id") } else { try s.skipValue() }
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

    /// A string, or `nil` for `null` or an empty string (optional fields).
    func optionalString(_ s: inout JSONScanner, field: String) throws -> [UInt8]? {
        if try s.nextKind() == .null { try s.readNull(); return nil }
        let value = try string(&s, field: field)
        return value.isEmpty ? nil : value
    }

    func string(_ s: inout JSONScanner, field: String) throws -> [UInt8] {
        guard try s.nextKind() == .string else { throw LineError.wrongType(field: field, expected: "a string") }
        return try s.readString()
    }

    /// An id given as a string or a number (its text).
    func idText(_ s: inout JSONScanner, field: String) throws -> [UInt8] {
        switch try s.nextKind() {
        case .string: return try s.readString()
        case .number: return try s.readNumberText()
        default: throw LineError.wrongType(field: field, expected: "a string")
        }
    }

    /// Like ``idText(_:field:)``, but `null` (common in Segment exports) means absent.
    func optionalIDText(_ s: inout JSONScanner, field: String) throws -> [UInt8]? {
        if try s.nextKind() == .null { try s.readNull(); return nil }
        let text = try idText(&s, field: field)
        return text.isEmpty ? nil : text
    }

    /// `email` and `phone` of a traits object (`null` traits: neither), and its string fields
    /// (those two included) as attributes.
    func readTraits(_ s: inout JSONScanner, field: String) throws -> (email: [UInt8]?, phone: [UInt8]?, attributes: AttributeList) {
        switch try s.nextKind() {
        case .null:
            try s.readNull()
            return (nil, nil, AttributeList())
        case .object:
            var e: [UInt8]?, p: [UInt8]?
            var found = AttributeList()
            try s.readObject { s, key in
                switch key {
                case kEmail: e = try self.optionalIDText(&s, field: field + ".email")
                case kPhone: p = try self.optionalIDText(&s, field: field + ".phone")
                default:
                    if try s.nextKind() == .string {
                        try found.append(key: key) { out in try s.appendString(to: &out) }
                    } else {
                        try s.skipValue()
                    }
                }
            }
            var attributes = AttributeList()
            if let e { attributes.append(key: kEmail, value: e) }
            if let p { attributes.append(key: kPhone, value: p) }
            found.forEachRaw { k, v in attributes.append(key: k, value: v) }
            return (e, p, attributes)
        default: throw LineError.wrongType(field: field, expected: "an object")
        }
    }

    /// `amount` at the top level of a props object, in millionths; its top-level string fields
    /// (keys up to 255 bytes, non-empty values up to 1,024) become attributes.
    mutating func scanProps(_ raw: [UInt8], field: String) throws -> Int64? {
        var found: Int64?
        var strings = attributes
        try raw.withUnsafeBytes { bytes in
            var s = JSONScanner(bytes)
            try s.readObject { s, key in
                switch try s.nextKind() {
                case .number where key == kAmount:
                    let text = try s.readNumberText()
                    guard let v = Double(String(decoding: text, as: UTF8.self)), v.isFinite, abs(v) < 9.2e12 else {
                        throw LineError.badAmount(String(decoding: text, as: UTF8.self))
                    }
                    found = Int64((v * 1_000_000).rounded())
                case .string:
                    try strings.append(key: key) { out in try s.appendString(to: &out) }
                default:
                    try s.skipValue()
                }
            }
        }
        attributes = strings
        return found
    }

    func identifier(_ text: [UInt8]?, field: String) throws(LineError) -> RawIdentifier {
        guard let text else { throw LineError.missingField(field) }
        do { return try RawIdentifier(text: text) } catch { throw LineError.badIdentifier(field: field, error) }
    }

    func nativeOperation() throws(LineError) -> GraphOperation {
        if let op {
            switch op {
            case Array("link".utf8): return .link(try identifier(a, field: "a"), try identifier(b, field: "b"))
            case Array("unlink".utf8): return .unlink(try identifier(a, field: "a"), try identifier(b, field: "b"))
            case Array("forget".utf8): return .forget(try identifier(id, field: "id"))
            case Array("retract".utf8):
                guard let eventID, !eventID.isEmpty else { throw LineError.missingField("event_id") }
                return .retract(eventID: eventID)
            default: throw LineError.unknownOp(String(decoding: op, as: UTF8.self))
            }
        }
        guard let identifiers else { throw LineError.notARecord }
        guard !identifiers.isEmpty else { throw LineError.noIdentifiers }
        return .event(EventInput(
            eventID: eventID, timestamp: timestamp, type: type ?? Array("event".utf8), source: source ?? Array("default".utf8),
            identifiers: identifiers, props: props ?? [], amountMicros: amountMicros).with(attributes))
    }

    /// A Segment message's attributes: properties and context traits, plus its traits unless it
    /// is a `group` message.
    func segmentAttributes(_ messageType: [UInt8]) -> AttributeList {
        guard messageType != Array("group".utf8), !topTraitAttributes.isEmpty else { return attributes }
        var all = topTraitAttributes
        attributes.forEachRaw { k, v in all.append(key: k, value: v) }
        return all
    }

    func segmentOperation() throws(LineError) -> GraphOperation {
        guard let messageType = type else { throw LineError.notARecord }
        var ids: [RawIdentifier] = []
        func add(_ type: String, _ value: [UInt8]?) {
            if let value { ids.append(RawIdentifier(type: Array(type.utf8), value: value)) }
        }
        add("user_id", userID)
        add("anonymous_id", anonymousID)
        if let previousID { add(previousID == anonymousID ? "anonymous_id" : "user_id", previousID) }
        add("email", traitsEmail)
        add("email", contextEmail)
        add("phone", traitsPhone)
        add("phone", contextPhone)
        add("device", deviceID)
        add("ip", contextIP)
        guard !ids.isEmpty else { throw LineError.noIdentifiers }
        var ms: Int64?
        if let segmentTimestamp {
            guard let parsed = Timestamp.parseRFC3339(segmentTimestamp) else {
                throw LineError.badTimestamp(String(decoding: segmentTimestamp, as: UTF8.self))
            }
            ms = parsed
        }
        return .event(EventInput(
            eventID: messageID, timestamp: ms, type: event ?? messageType, source: Array("segment".utf8),
            identifiers: ids, props: properties ?? [], amountMicros: propertiesAmount).with(segmentAttributes(messageType)))
    }
}

private extension EventInput {
    /// The same event with these attributes.
    func with(_ attributes: AttributeList) -> EventInput {
        var copy = self
        copy.attributes = attributes
        return copy
    }
}
