import IdentityGraph
@testable import IdentityIngest
import Testing

@Suite struct RecordParserTests {
    func parse(_ line: String, format: InputFormat = .auto) throws -> GraphOperation { try RecordParser.parse(line, format: format) }

    @Test func propsAndTraitsBecomeAttributesWithinTheirLimits() throws {
        // Top-level string fields only; numbers, objects and arrays are not attributes.
        let op = try parse(#"{"ids":{"email":"a@x.com"},"props":{"name":"Zoë","amount":3,"tags":["x"],"nested":{"city":"no"},"city":"Lyon","empty":""}}"#)
        guard case .event(let e) = op else { Issue.record("not an event"); return }
        #expect(e.attributes.elements.map { String(decoding: $0.key, as: UTF8.self) + "=" + String(decoding: $0.value, as: UTF8.self) } == ["name=Zoë", "city=Lyon"])
        // A key over 255 bytes or a value over 1,024 is left out, and the line still parses.
        let longKey = String(repeating: "k", count: 300), longValue = String(repeating: "v", count: 1025)
        let op2 = try parse(#"{"ids":{"email":"a@x.com"},"props":{"\#(longKey)":"x","a":"\#(longValue)","b":"kept"}}"#)
        guard case .event(let e2) = op2 else { Issue.record("not an event"); return }
        #expect(e2.attributes.elements.map { String(decoding: $0.key, as: UTF8.self) } == ["b"])
        // At most 4,096 attributes per event (the first ones); the line still parses.
        let many = (0..<5000).map { #""k\#($0)":"v""# }.joined(separator: ",")
        let op3 = try parse(#"{"ids":{"email":"a@x.com"},"props":{\#(many)}}"#)
        guard case .event(let e3) = op3 else { Issue.record("not an event"); return }
        #expect(e3.attributes.count == 4096)
        // Segment: traits (email and phone too) and properties.
        let op4 = try parse(#"{"type":"identify","userId":"u1","traits":{"email":"b@x.com","name":"Bo","age":3},"properties":{"plan":"pro"}}"#)
        guard case .event(let e4) = op4 else { Issue.record("not an event"); return }
        #expect(Set(e4.attributes.elements.map { String(decoding: $0.key, as: UTF8.self) }) == ["email", "name", "plan"])
        // A group message's traits describe the group: not the person's attributes (context
        // traits still are).
        let op5 = try parse(#"{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme Inc","industry":"retail"},"context":{"traits":{"city":"Oslo"}}}"#)
        guard case .event(let e5) = op5 else { Issue.record("not an event"); return }
        #expect(e5.attributes.elements.map { String(decoding: $0.key, as: UTF8.self) } == ["city"])
    }

    @Test func aFullNativeEvent() throws {
        let op = try parse(#"{"event_id":"e-1","ts":"2024-05-01T12:00:00Z","source":"web","type":"order","ids":{"email":"Alice@Example.com","cookie":["c-1","c-2"]},"props":{"amount":19.99,"sku":"A-42"}}"#)
        guard case .event(let e) = op else { Issue.record("not an event"); return }
        #expect(e.eventID == Array("e-1".utf8))
        #expect(e.timestamp == 1_714_564_800_000)
        #expect(e.type == Array("order".utf8))
        #expect(e.source == Array("web".utf8))
        #expect(e.identifiers == [RawIdentifier(type: "email", value: "Alice@Example.com"), RawIdentifier(type: "cookie", value: "c-1"), RawIdentifier(type: "cookie", value: "c-2")])
        #expect(e.props == Array(#"{"amount":19.99,"sku":"A-42"}"#.utf8))
        #expect(e.amountMicros == 19_990_000)
    }

    /// JSON whitespace (space, tab, carriage return) between any two tokens reads as the compact
    /// line does; the scanner's fast path expects the next byte right there.
    @Test func whitespaceBetweenTokensIsAllowed() throws {
        let compact = #"{"event_id":"e-1","ts":1714564800000,"type":"order","ids":{"email":"a@x.com","cookie":["c-1","c-2"]},"props":{"sku":"A-42"}}"#
        for ws in [" ", "\t", "\r", " \t\r "] {
            let spaced = "\(ws){\(ws)\"event_id\"\(ws):\(ws)\"e-1\"\(ws),\(ws)\"ts\"\(ws):\(ws)1714564800000\(ws),\(ws)\"type\"\(ws):\(ws)\"order\"\(ws),"
                + "\(ws)\"ids\"\(ws):\(ws){\(ws)\"email\"\(ws):\(ws)\"a@x.com\"\(ws),\(ws)\"cookie\"\(ws):\(ws)[\(ws)\"c-1\"\(ws),\(ws)\"c-2\"\(ws)]\(ws)}\(ws),"
                + "\(ws)\"props\"\(ws):{\"sku\":\"A-42\"}\(ws)}\(ws)"
            #expect(try parse(spaced) == parse(compact), "whitespace \(Array(ws.utf8))")
        }
        // Not inside a token.
        #expect(throws: LineError.self) { try parse(#"{"ts":17145 64800000,"ids":{"email":"a@x.com"}}"#) }
        #expect(throws: LineError.self) { try parse(#"{"ids":{"email":"a@x.com"}} }"#) }
    }

    @Test func defaultsWhenOptionalFieldsAreMissing() throws {
        guard case .event(let e) = try parse(#"{"ids":{"email":"a@x.com"}}"#) else { Issue.record("not an event"); return }
        #expect(e.eventID == nil)
        #expect(e.timestamp == nil)
        #expect(e.type == Array("event".utf8))
        #expect(e.source == Array("default".utf8))
        #expect(e.props.isEmpty)
    }

    @Test func nullOptionalFieldsAndEmptyEventIDsMeanAbsent() throws {
        guard case .event(let e) = try parse(#"{"event_id":null,"ts":null,"type":null,"source":null,"props":null,"ids":{"email":"a@x.com"}}"#) else { Issue.record("not an event"); return }
        #expect(e.eventID == nil)
        #expect(e.timestamp == nil)
        #expect(e.type == Array("event".utf8))
        #expect(e.props.isEmpty)
        guard case .event(let empty) = try parse(#"{"event_id":"","ids":{"email":"a@x.com"}}"#) else { Issue.record("not an event"); return }
        #expect(empty.eventID == nil)
        #expect(throws: LineError.missingField("event_id")) { try parse(#"{"op":"retract","event_id":""}"#) }
    }

    @Test func epochMillisecondsAndNumericEventIDs() throws {
        guard case .event(let e) = try parse(#"{"event_id":17,"ts":1714564800123,"ids":{"email":"a@x.com"}}"#) else { Issue.record("not an event"); return }
        #expect(e.timestamp == 1_714_564_800_123)
        #expect(e.eventID == Array("17".utf8))
    }

    @Test func controlRecords() throws {
        #expect(try parse(#"{"op":"link","a":"email:x@y.z","b":"crm:42"}"#) == .link(.init(type: "email", value: "x@y.z"), .init(type: "crm", value: "42")))
        #expect(try parse(#"{"op":"unlink","a":"email:x@y.z","b":"cookie:c-1"}"#) == .unlink(.init(type: "email", value: "x@y.z"), .init(type: "cookie", value: "c-1")))
        #expect(try parse(#"{"op":"forget","id":"email:x@y.z"}"#) == .forget(.init(type: "email", value: "x@y.z")))
        #expect(try parse(#"{"op":"retract","event_id":"e-1"}"#) == .retract(eventID: Array("e-1".utf8)))
    }

    @Test func everyKindOfBadLineIsNamed() {
        #expect(throws: LineError.notAnObject) { try parse(#"["email","b@x.com"]"#) }
        #expect(throws: LineError.noIdentifiers) { try parse(#"{"ids":{}}"#) }
        #expect(throws: LineError.unknownOp("merge-everything")) { try parse(#"{"op":"merge-everything","a":"email:a@x.com"}"#) }
        #expect(throws: LineError.badTimestamp("yesterday-ish")) { try parse(#"{"ts":"yesterday-ish","ids":{"email":"b@x.com"}}"#) }
        #expect(throws: LineError.wrongType(field: "ids.email", expected: "a string or an array of strings")) { try parse(#"{"ids":{"email":42}}"#) }
        #expect(throws: LineError.wrongType(field: "ids.email", expected: "an array of strings")) { try parse(#"{"ids":{"email":["a",1]}}"#) }
        #expect(throws: LineError.wrongType(field: "props", expected: "an object")) { try parse(#"{"ids":{"email":"a"},"props":[1]}"#) }
        #expect(throws: LineError.missingField("b")) { try parse(#"{"op":"link","a":"email:a@x.com"}"#) }
        #expect(throws: LineError.missingField("event_id")) { try parse(#"{"op":"retract"}"#) }
        #expect(throws: LineError.badIdentifier(field: "id", .missingColon("nocolon"))) { try parse(#"{"op":"forget","id":"nocolon"}"#) }
        #expect(throws: LineError.notARecord) { try parse(#"{"hello":"world"}"#, format: .native) }
        #expect(throws: LineError.badAmount("1e300")) { try parse(#"{"ids":{"email":"a"},"props":{"amount":1e300}}"#) }
    }

    @Test func malformedJSONSaysWhereAndWhat() {
        do {
            _ = try parse(#"{"event_id":"e3","ids":{"email":"b@x.com""#)
            Issue.record("accepted a truncated line")
        } catch let LineError.malformedJSON(column, expected) {
            #expect(column == 42)  // one past the last byte: the line ended too early
            #expect(expected.contains("'}'"))
        } catch {
            Issue.record("wrong error \(error)")
        }
    }

    @Test func theScannerIsStrict() {
        let bad = [
            #"{"ids":{"email":"a"},}"#,            // trailing comma
            #"{"ids":{"email":"a"}} x"#,           // trailing garbage
            #"{"ts":01,"ids":{"email":"a"}}"#,     // leading zero
            #"{"ids":{"email":"a\q"}}"#,           // bad escape
            #"{"ids":{"email":"\ud800"}}"#,        // lone surrogate
            "{\"ids\":{\"email\":\"a\u{01}\"}}",   // raw control character
            #"{'ids':{}}"#,                        // single quotes
            #"{"ids":{"email":"a"},"x":tru}"#,     // bad literal
            #"{"ids":{"email":"a"},"x":1.}"#,      // bad number
        ]
        for line in bad { #expect(throws: LineError.self, "\(line)") { try parse(line) } }
        // Invalid UTF-8 inside a string.
        #expect(throws: LineError.self) { try RecordParser.parse(Array(#"{"ids":{"email":""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8)) }
    }

    /// The string scanner's eight-bytes-at-a-time search against the byte-by-byte definition, on
    /// words made mostly of the bytes that matter and their neighbours.
    @Test func theWordTestAgreesWithTheByteTest() {
        var rng = SeededGenerator(seed: 7)
        let interesting: [UInt8] = [0x00, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7F, 0x80, 0xC3, 0xFF, 0x41, 0x61, 0x01, 0x02]
        func needsALook(_ b: UInt8) -> Bool { b == 0x22 || b == 0x5C || b < 0x20 || b >= 0x80 }
        var flagged = 0
        for n in 0..<200_000 {
            var bytes = (0..<8).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }.filter { !needsALook($0) }
            while bytes.count < 8 { bytes.append(0x61) }
            // Most words get one or two bytes from the interesting ones, some none.
            for _ in 0..<(n % 3) { bytes[Int.random(in: 0..<8, using: &rng)] = interesting.randomElement(using: &rng)! }
            let word = UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let flags = JSONScanner.bytesNeedingALook(word)
            // No flag at all exactly when no byte needs a look; else the lowest flag is the first that does.
            let first = bytes.firstIndex(where: needsALook)
            let lowest = flags == 0 ? nil : flags.trailingZeroBitCount / 8
            if lowest != first || (flags != 0 && flags.trailingZeroBitCount % 8 != 7) {
                Issue.record("word \(bytes): first byte needing a look \(String(describing: first)), flagged \(String(describing: lowest))")
                return
            }
            if first != nil { flagged += 1 }
        }
        #expect(flagged > 50_000 && flagged < 150_000)
    }

    /// Strings of every length up to 40 with one special byte at each position read (or fail)
    /// as the byte-by-byte rules say, whichever eight-byte word the byte falls in.
    @Test func specialBytesAreFoundAtEveryPositionOfAString() throws {
        for length in 1...40 {
            for position in 0..<length {
                var value = Array(repeating: UInt8(ascii: "a"), count: length)
                func line(_ v: [UInt8]) -> [UInt8] { Array(#"{"ids":{"email":""#.utf8) + v + Array(#""}}"#.utf8) }
                func email(_ bytes: [UInt8]) throws -> String? {
                    guard case .event(let e) = try RecordParser.parse(bytes) else { return nil }
                    return String(decoding: e.identifiers[0].value, as: UTF8.self)
                }
                value[position] = 0x01
                #expect(throws: LineError.self, "control at \(position) of \(length)") { try RecordParser.parse(line(value)) }
                value[position] = 0xFF
                #expect(throws: LineError.self, "bad UTF-8 at \(position) of \(length)") { try RecordParser.parse(line(value)) }
                value[position] = 0x5C
                value.insert(0x6E, at: position + 1)  // \n
                #expect(try email(line(value)) == String(repeating: "a", count: position) + "\n" + String(repeating: "a", count: length - position - 1))
                value.remove(at: position + 1)
                value[position] = 0xC3
                value.insert(0xA9, at: position + 1)  // é
                #expect(try email(line(value)) == String(repeating: "a", count: position) + "é" + String(repeating: "a", count: length - position - 1))
            }
        }
    }

    @Test func escapesAndSurrogatePairsAreDecoded() throws {
        guard case .event(let e) = try parse(#"{"ids":{"email":"caf\u00e9\ud83c\udf6a\n\"q\"@x"}}"#) else { Issue.record("not an event"); return }
        #expect(String(decoding: e.identifiers[0].value, as: UTF8.self) == "café🍪\n\"q\"@x")
    }

    @Test func randomBytesNeverCrashTheParser() {
        var rng = SeededGenerator(seed: 99)
        let alphabet = Array(#"{}[]":,\ 0123456789.eE+-truefalsnids"#.utf8) + [0xC3, 0xFF, 0x00, 0x0A]
        var accepted = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<40, using: &rng)
            let bytes = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            if (try? RecordParser.parse(bytes)) != nil { accepted += 1 }
        }
        #expect(accepted < 20_000)
    }

    @Test func segmentMessagesMapToIdentifiers() throws {
        guard case .event(let e) = try parse(#"{"type":"identify","messageId":"m2","anonymousId":"anon-1","userId":"u-1","timestamp":"2024-01-01T10:00:00Z","traits":{"email":"Bob@Example.com","phone":"+1 555 0100"},"context":{"ip":"203.0.113.9","device":{"id":"dev-3"}}}"#) else {
            Issue.record("not an event"); return
        }
        #expect(e.eventID == Array("m2".utf8))
        #expect(e.type == Array("identify".utf8))
        #expect(e.timestamp == 1_704_103_200_000)
        #expect(e.identifiers.map { String(decoding: $0.type, as: UTF8.self) + ":" + String(decoding: $0.value, as: UTF8.self) }
                == ["user_id:u-1", "anonymous_id:anon-1", "email:Bob@Example.com", "phone:+1 555 0100", "device:dev-3", "ip:203.0.113.9"])
    }

    @Test func segmentTrackUsesTheEventNameAndProperties() throws {
        guard case .event(let e) = try parse(#"{"type":"track","userId":"u-1","event":"Order Completed","properties":{"amount":42},"context":{"traits":{"email":"c@x.com"}}}"#) else {
            Issue.record("not an event"); return
        }
        #expect(e.type == Array("Order Completed".utf8))
        #expect(e.amountMicros == 42_000_000)
        #expect(e.props == Array(#"{"amount":42}"#.utf8))
        #expect(e.identifiers.count == 2)
    }

    @Test func segmentAliasPreviousIDFollowsSPEC() throws {
        guard case .event(let same) = try parse(#"{"type":"alias","anonymousId":"anon-2","previousId":"anon-2","userId":"u-2"}"#),
              case .event(let other) = try parse(#"{"type":"alias","previousId":"u-1","userId":"u-1-new"}"#) else { Issue.record("not events"); return }
        #expect(same.identifiers.contains(RawIdentifier(type: "anonymous_id", value: "anon-2")))
        #expect(!same.identifiers.contains(RawIdentifier(type: "user_id", value: "anon-2")))
        #expect(other.identifiers == [RawIdentifier(type: "user_id", value: "u-1-new"), RawIdentifier(type: "user_id", value: "u-1")])
    }

    @Test func segmentNullsAreAbsent() throws {
        guard case .event(let e) = try parse(#"{"type":"page","userId":null,"anonymousId":"a-1","traits":null,"context":{"traits":{"email":null}}}"#) else { Issue.record("not an event"); return }
        #expect(e.identifiers == [RawIdentifier(type: "anonymous_id", value: "a-1")])
        #expect(throws: LineError.noSegmentIdentifiers) { try parse(#"{"type":"page","userId":null}"#) }
    }

    @Test func formatDetectionIsPerLine() throws {
        if case .event(let e) = try parse(#"{"type":"track","ids":{"email":"a@x.com"}}"#) { #expect(e.type == Array("track".utf8)) }
        else { Issue.record("a line with ids is native") }
        #expect(throws: LineError.notARecord) { try parse(#"{"userId":"u-1"}"#) }  // Segment needs a type
        // A native event with its identifiers under a wrong name reads as a Segment message,
        // and the message says so instead of blaming an "ids" field the line does not have.
        #expect(throws: LineError.noSegmentIdentifiers) { try parse(#"{"type":"x","identifiers":{"email":"a@b.c"}}"#) }
        #expect(LineError.noSegmentIdentifiers.description.contains("no \"ids\" object"))
    }
}

@Suite struct TimestampTests {
    func ms(_ s: String) -> Int64? { Timestamp.parseRFC3339(Array(s.utf8)) }

    @Test func validForms() {
        #expect(ms("1970-01-01T00:00:00Z") == 0)
        #expect(ms("2024-05-01T12:00:00Z") == 1_714_564_800_000)
        #expect(ms("2024-05-01t12:00:00z") == 1_714_564_800_000)
        #expect(ms("2024-05-01 12:00:00Z") == 1_714_564_800_000)
        #expect(ms("2024-05-01T12:00:00.5Z") == 1_714_564_800_500)
        #expect(ms("2024-05-01T12:00:00.123456Z") == 1_714_564_800_123)
        #expect(ms("2024-05-01T14:00:00+02:00") == 1_714_564_800_000)
        #expect(ms("2024-05-01T07:30:00-04:30") == 1_714_564_800_000)
        #expect(ms("2024-02-29T00:00:00Z") != nil)
        #expect(ms("1969-12-31T23:59:59Z") == -1000)
    }

    @Test func invalidForms() {
        for s in ["yesterday-ish", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:00:00",
                  "2024-05-01", "2024-05-01T12:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+2:00", "2024-05-01T12:00:00Zjunk"] {
            #expect(ms(s) == nil, "\(s)")
        }
    }

    @Test func formatRoundTrips() {
        for value: Int64 in [0, 1_714_564_800_123, -1000, 951_782_400_000, 4_102_444_799_999] {
            #expect(ms(Timestamp.format(value)) == value)
        }
        #expect(Timestamp.format(1_714_564_800_123) == "2024-05-01T12:00:00.123Z")
    }
}
