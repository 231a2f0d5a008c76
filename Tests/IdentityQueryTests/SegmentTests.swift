import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery
import PropertyBased
import Testing

/// Segment membership equals evaluating the condition entity by entity, in plain Swift, over
/// facts read from each entity's profile.
@Suite struct SegmentTests {
    static let asOf: Int64 = 1_735_603_200_000  // 2024-12-31: the generated archive covers 2024

    /// What the conditions look at, per entity.
    struct Facts {
        var size: Int
        var orders: Int
        var revenue: Double
        var lifecycle: String
        var country: String?
        var channel: String?
        var hasPhone: Bool
        var products: Set<String>
        var campaigns: Set<String>
        var lists: Set<String>
    }

    /// A random condition as text and as a predicate.
    struct RandomCondition: CustomStringConvertible {
        var text: String
        var holds: @Sendable (Facts) -> Bool
        var description: String { text }
    }

    static func condition(seed: UInt64, depth: Int = 0) -> RandomCondition {
        var rng = SeededGenerator(seed: seed)
        func atom() -> RandomCondition {
            switch Int.random(in: 0..<10, using: &rng) {
            case 7:
                let p = ["A-1", "B-7", "C-3"].randomElement(using: &rng)!
                return RandomCondition(text: "product = '\(p)'") { $0.products.contains(p) }
            case 8:
                let c = ["spring-sale", "black-friday"].randomElement(using: &rng)!
                return RandomCondition(text: "campaign != '\(c)'") { !$0.campaigns.contains(c) }
            case 9:
                return RandomCondition(text: "list = 'newsletter'") { $0.lists.contains("newsletter") }
            case 0:
                let k = Int.random(in: 0...3, using: &rng)
                return RandomCondition(text: "orders >= \(k)") { $0.orders >= k }
            case 1:
                let r = [0, 50, 200].randomElement(using: &rng)!
                return RandomCondition(text: "revenue > \(r)") { $0.revenue > Double(r) }
            case 2:
                let s = LifecycleStage.allCases.randomElement(using: &rng)!.rawValue
                return RandomCondition(text: "lifecycle = '\(s)'") { $0.lifecycle == s }
            case 3:
                let c = ["FR", "DE", "GB", "US"].randomElement(using: &rng)!
                return RandomCondition(text: "profile.country = '\(c)'") { $0.country == c }
            case 4:
                let c = ["web", "app", "shop", "call_centre"].randomElement(using: &rng)!
                return RandomCondition(text: "preferred_channel != '\(c)'") { $0.channel != c }
            case 5:
                let k = Int.random(in: 1...4, using: &rng)
                return RandomCondition(text: "size >= \(k)") { $0.size >= k }
            default:
                return RandomCondition(text: "HAS phone") { $0.hasPhone }
            }
        }
        guard depth < 2 else { return atom() }
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:
            let a = condition(seed: rng.next(), depth: depth + 1), b = condition(seed: rng.next(), depth: depth + 1)
            return RandomCondition(text: "(\(a.text) AND \(b.text))") { a.holds($0) && b.holds($0) }
        case 1:
            let a = condition(seed: rng.next(), depth: depth + 1), b = condition(seed: rng.next(), depth: depth + 1)
            return RandomCondition(text: "(\(a.text) OR \(b.text))") { a.holds($0) || b.holds($0) }
        case 2:
            let a = condition(seed: rng.next(), depth: depth + 1)
            return RandomCondition(text: "NOT \(a.text)") { !a.holds($0) }
        default:
            return atom()
        }
    }

    /// A database of a generated archive, and every entity's facts read directly.
    final class Loaded: @unchecked Sendable {
        let path = NSTemporaryDirectory() + "idgraph-segments-" + UUID().uuidString
        let graph: IdentityGraph
        var facts: [EntityID: Facts] = [:]

        init() throws {
            var options = IdentityGraph.Options()
            options.durability = .fast
            graph = try IdentityGraph.open(at: path, options: options, createIfMissing: true)
            var generatorOptions = ArchiveGenerator.Options()
            generatorOptions.events = 3000
            generatorOptions.seed = 11
            var generator = ArchiveGenerator(options: generatorOptions)
            let archive = path + ".ndjson"
            defer { try? FileManager.default.removeItem(atPath: archive) }
            _ = try generator.write(to: archive)
            let lines = try String(contentsOfFile: archive, encoding: .utf8).split(separator: "\n")
            try graph.apply(lines.map { try RecordParser.parse(String($0)) }, now: SegmentTests.asOf)
            try graph.read { r in
                try r.forEachEntity { info in
                    let p = try r.profile(of: info, now: SegmentTests.asOf)
                    facts[info.id] = Facts(
                        size: info.size, orders: Int(p.orders), revenue: p.revenue, lifecycle: p.lifecycle.rawValue,
                        country: p.golden.first { $0.attribute == "country" }?.value, channel: p.preferredChannel,
                        hasPhone: try r.identifiers(of: info.id).contains { $0.type == "phone" },
                        products: Set(p.products.map(\.name)), campaigns: Set(p.campaigns.map(\.name)), lists: Set(p.lists))
                }
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func ids(_ result: QueryResult) -> Set<EntityID> {
        Set(result.rows.compactMap { if case .int(let id) = $0.first { EntityID(id) } else { nil } })
    }

    @Test("IN SEGMENT, FIND and ENTITY agree with the condition evaluated entity by entity")
    func membershipEqualsTheConditionPerEntity() async throws {
        let db = try Loaded()
        let executor = Executor(graph: db.graph, now: Self.asOf)
        #expect(db.facts.count > 500)
        // The generated data must exercise the conditions (not all empty, not all full).
        #expect(Set(db.facts.values.map(\.lifecycle)).count >= 4)
        #expect(db.facts.values.contains { $0.country == "FR" })
        #expect(db.facts.values.contains { $0.lists.contains("newsletter") })
        #expect(db.facts.values.contains { $0.products.contains("A-1") && $0.campaigns.contains("spring-sale") })
        var nonTrivial = 0
        await propertyCheck(count: 60, input: Gen.uint64()) { seed in
            let condition = Self.condition(seed: seed)
            let expected = Set(db.facts.filter { condition.holds($0.value) }.keys)
            if !expected.isEmpty && expected.count < db.facts.count { nonTrivial += 1 }
            _ = try executor.run("CREATE SEGMENT s AS FIND ENTITIES WHERE \(condition.text)")
            let members = Self.ids(try executor.run("FIND ENTITIES WHERE IN SEGMENT s"))
            #expect(members == expected, "\(condition): \(members.count) members, \(expected.count) expected")
            #expect(Self.ids(try executor.run("FIND ENTITIES WHERE \(condition.text)")) == expected, "\(condition)")
            // ENTITY lists the segment exactly for members (a few entities of each kind).
            for id in Array(expected.prefix(3)) + Array(Set(db.facts.keys).subtracting(expected).prefix(3)) {
                let rows = try executor.run("ENTITY \(id)").rows
                let segments = rows.first { $0.first == .text("segments") }?.last
                #expect((segments == .text("s")) == expected.contains(id), "\(condition): entity \(id)")
            }
        }
        #expect(nonTrivial >= 20)
    }

    @Test("a segment that refers to itself is an error, not a hang; an unknown one says so")
    func selfReference() throws {
        let db = try Loaded()
        let executor = Executor(graph: db.graph, now: Self.asOf)
        _ = try executor.run("CREATE SEGMENT a AS FIND ENTITIES WHERE orders > 0")
        _ = try executor.run("CREATE SEGMENT b AS FIND ENTITIES WHERE IN SEGMENT a AND size > 1")
        #expect(try executor.run("COUNT ENTITIES WHERE IN SEGMENT b").rows.first?.first != .int(0))
        #expect(throws: QueryError.self) { try executor.run("CREATE SEGMENT a AS FIND ENTITIES WHERE IN SEGMENT b") }
        #expect(throws: QueryError.self) { try executor.run("COUNT ENTITIES WHERE IN SEGMENT nothing") }
        #expect(throws: QueryError.self) { try executor.run("DROP SEGMENT nothing") }
    }
}
