import Foundation
@testable import IdentityGraph
import Testing

/// The bulk encoder's allocation-free tally fold against ``Summary``, the incremental writer's
/// (obviously correct) way: the same events must encode to the same bytes.
@Suite struct TallyFoldTests {
    /// A schema whose names and values share prefixes (so order by length and by byte both
    /// matter), with a key that feeds two attributes and keys of every other role.
    static func rules() -> ProfileRules {
        var schema = ProfileSchema()
        schema.attributes = [
            "name": AttributeRule(rule: .mostRecent, keys: ["name", "full_name", "shared"]),
            "nam": AttributeRule(rule: .mostFrequent, keys: ["nam"]),
            "name2": AttributeRule(rule: .mostRecent, keys: ["shared", "n2"]),
            "": AttributeRule(rule: .mostRecent, keys: ["blank"]),
            "zeta": AttributeRule(rule: .mostRecent),
        ]
        schema.productKeys = ["sku", "shared"]
        schema.campaignKeys = ["utm_campaign"]
        schema.listKeys = ["list", "nam"]
        schema.viewTypes = ["view"]
        schema.orderTypes = ["order"]
        schema.subscribeTypes = ["sub", "both"]
        schema.unsubscribeTypes = ["unsub", "both"]
        var rules = ProfileRules(schema)
        rules.cover(Self.types)
        return rules
    }

    static let types = ["view", "order", "sub", "unsub", "both", "other"]
    static let keys = ["name", "full_name", "shared", "nam", "n2", "blank", "zeta", "sku", "utm_campaign", "list", "unknown", ""]

    /// Groups of up to `largestGroup` events, like a node's or an entity's (5,000: groups of
    /// 5,000, whose thousands of tallies the fold counts in several rounds).
    @Test(arguments: zip([1, 2, 3] as [UInt64], [60, 60, 5_000]))
    func foldedTalliesEncodeAsASummaryOfTheSameEvents(seed: UInt64, largestGroup: Int) throws {
        let rules = Self.rules()
        #expect(rules.attributeNames == ["", "nam", "name", "name2", "zeta"].map { Array($0.utf8) })
        var rng = SplitMix(seed: seed)
        // Events with their attributes in one arena, as the bulk writer keeps them.
        var arena: [UInt8] = [1, 2, 3]  // offsets do not start at 0
        var events: [(timestamp: Int64, type: UInt32, source: UInt32, offset: Int, count: Int)] = []
        for _ in 0..<(largestGroup > 1_000 ? 10_000 : 3_000) {
            let n = Int(rng.next() % 5)
            let attributes = AttributeList((0..<n).map { _ in
                let value = (0..<Int(rng.next() % 4)).map { _ in UInt8(truncatingIfNeeded: 97 + rng.next() % 3) }
                return EventAttribute(key: Array(Self.keys[Int(rng.next() % UInt64(Self.keys.count))].utf8), value: value)
            })
            events.append((Int64(rng.next() % 50), UInt32(rng.next() % UInt64(Self.types.count)), UInt32(rng.next() % 3), arena.count, attributes.count))
            arena += attributes.bytes
        }
        var fold = TallyFold()
        var folded = 0
        var start = 0
        while start < events.count {
            let size = largestGroup > 1_000 ? largestGroup : 1 + Int(rng.next() % UInt64(largestGroup))
            let end = min(events.count, start + size)
            var summary = Summary()
            fold.removeAll()
            for e in events[start..<end] {
                arena.withUnsafeBytes { a in
                    summary.add(rules.contribution(timestamp: e.timestamp, type: e.type, source: e.source, amountMicros: nil,
                                                   attributes: UnsafeRawBufferPointer(rebasing: a[e.offset...]), count: e.count))
                    fold.add(timestamp: e.timestamp, type: e.type, source: e.source, attributesAt: e.offset, count: e.count, in: a, rules: rules)
                }
            }
            var expected = ByteWriter()
            summary.encode(into: &expected)
            var actual = ByteWriter()
            summary.encodeAllButTallies(into: &actual)
            arena.withUnsafeBytes { fold.encode(into: &actual, arena: $0, names: rules.attributeNames) }
            #expect(actual.bytes == expected.bytes)
            if !summary.tallies.isEmpty { folded += 1 }
            // The bytes decode to the same tallies.
            #expect(try actual.bytes.withUnsafeBytes { try Summary(bytes: $0) }.tallies == summary.tallies)
            start = end
        }
        #expect(folded >= (largestGroup > 1_000 ? 1 : 20))
    }

    @Test func anEmptyFoldEncodesNoTallies() {
        var fold = TallyFold()
        var out = ByteWriter()
        fold.encode(into: &out, arena: UnsafeRawBufferPointer(start: nil, count: 0), names: [])
        #expect(out.bytes == [0, 0, 0, 0])
        #expect(fold.isEmpty)
    }
}
