import Foundation
import IdentityGraph
import IdentityIngest
import Testing

@Suite struct GenericValueTests {
    let kioskSchema = Schema(types: ["device": TypePolicy(genericAfter: 2)])

    @Test func aSharedDeviceTurnsGenericAndSplitsTheStrangersItWelded() throws {
        let db = try TemporaryDatabase(schema: kioskSchema)
        try db.graph.apply([event("email:a@x.com", "device:kiosk"), event("email:b@x.com", "device:kiosk")])
        #expect(try db.graph.partition() == [["email:a@x.com", "email:b@x.com", "device:kiosk"]])  // degree 2: not yet generic
        let third = try db.graph.apply([event("email:c@x.com", "device:kiosk")])
        #expect(third.demotions == 1)
        #expect(try db.graph.partition() == [["email:a@x.com"], ["email:b@x.com"], ["email:c@x.com"]])
        #expect(try db.graph.entity(of: "device:kiosk") == nil)
        #expect(try db.graph.read { try $0.stats() }.genericIdentifiers == 1)
        #expect(try db.graph.check().isEmpty)
        // Evidence withdrawn brings its degree back under the threshold: it merges again.
        let back = try db.graph.apply([forget("email:c@x.com")])
        #expect(back.promotions == 1)
        #expect(try db.graph.partition() == [["email:a@x.com", "email:b@x.com", "device:kiosk"]])
        #expect(try db.graph.read { try $0.stats() }.genericIdentifiers == 0)
        #expect(try db.graph.check().isEmpty)
        try db.graph.read { reader throws in
            let kinds = try reader.history().map(\.record.kind)
            #expect(kinds.contains(.demoted))
            #expect(kinds.contains(.promoted))
        }
    }

    @Test func degreeCountsDistinctMergeTypeIdentifiersOnly() throws {
        let db = try TemporaryDatabase(schema: kioskSchema)
        // IPs and addresses relate; they do not count toward a device's degree.
        try db.graph.apply([
            event("device:d", "email:a@x.com", "ip:1.1.1.1", "address:1 Main St"),
            event("device:d", "email:a@x.com"),
            event("device:d", "cookie:c-1"),
        ])
        #expect(try db.graph.read { try $0.stats() }.genericIdentifiers == 0)
        #expect(try db.graph.partition() == [["device:d", "email:a@x.com", "cookie:c-1"]])
    }

    /// SPEC.md: with generic_after the partition is a function of the surviving evidence and the
    /// schema alone, never of arrival order.
    @Test(arguments: [1, 2, 3])
    func aGeneratedArchiveWithKiosksResolvesAlikeInAnyOrder(seed: UInt64) throws {
        var options = ArchiveGenerator.Options()
        options.events = 4000
        options.kiosks = 3
        options.seed = seed
        let path = NSTemporaryDirectory() + "kiosks-\(UUID().uuidString).ndjson"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var generator = ArchiveGenerator(options: options)
        _ = try generator.write(to: path)
        let operations = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try RecordParser.parse(String($0)) }
        var rng = SplitMix(seed: seed)
        let schema = Schema(types: ["device": TypePolicy(genericAfter: 25)])
        let inOrder = try TemporaryDatabase(schema: schema)
        let shuffled = try TemporaryDatabase(schema: schema)
        try inOrder.graph.apply(operations, now: 0)
        for chunk in operations.shuffled(using: &rng).chunked(into: 500) { try shuffled.graph.apply(chunk, now: 0) }
        #expect(try inOrder.graph.partition() == shuffled.graph.partition())
        #expect(try inOrder.graph.read { try $0.stats() }.genericIdentifiers == 3)  // every kiosk
        #expect(try inOrder.graph.check().isEmpty)
        #expect(try shuffled.graph.check().isEmpty)
        // The oracle agrees.
        var oracle = Oracle(schema: Schema.builtIn(overriddenBy: schema))
        for op in operations { oracle.apply(op, now: 0) }
        #expect(Set(oracle.partition().map { Set($0.map(\.description)) }) == (try inOrder.graph.partition()))
    }
}

@Suite struct BlockedValueTests {
    @Test func blockedValuesAreDroppedAndCountedAndTheRestOfTheEventLoads() throws {
        let schema = Schema(types: [
            "email": TypePolicy(normalize: .email, blocked: ["^test@", "^null$"]),
            "device": TypePolicy(blocked: ["^[0-]*$"]),
        ])
        let db = try TemporaryDatabase(schema: schema)
        let report = try db.graph.apply([
            event("email:TEST@shop.example", "cookie:c-1", id: "e1"),
            event("email:null", "cookie:c-2", "device:0000-0000", id: "e2"),
            event("email:real@x.com", "cookie:c-1", id: "e3"),
            event("device:00000000", id: "e4"),
        ])
        #expect(report.blockedValues == 4)
        #expect(report.eventsStored == 3)  // e4 named only a blocked value
        #expect(try db.graph.partition() == [["cookie:c-1", "email:real@x.com"], ["cookie:c-2"]])
        let stats = try db.graph.read { try $0.stats() }
        #expect(stats.blockedValues == ["email /^test@/": 1, "email /^null$/": 1, "device /^[0-]*$/": 2])
        #expect(try db.graph.check().isEmpty)
    }

    @Test func anInvalidPatternIsASchemaError() {
        #expect(throws: SchemaError.badPolicy("email", "blocked pattern '([' is not a valid regular expression")) {
            try Schema.parse(json: .init(#"{"types":{"email":{"blocked":["(["]}}}"#.utf8))
        }
    }
}

extension Array {
    func chunked(into size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min(count, $0 + size)]) }
    }
}
