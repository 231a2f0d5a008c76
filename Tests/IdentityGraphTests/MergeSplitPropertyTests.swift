import Foundation
import IdentityGraph
import PropertyBased
import Testing

/// Random sequences of event/link/unlink/forget/retract over a small universe of identifiers,
/// applied in random batches; after every batch the store must equal the oracle (partition and
/// summaries), `check` must be clean, and some runs close and reopen the database in between.
@Suite struct MergeSplitPropertyTests {
    /// How many random sequences to run (IDGRAPH_PROPERTY_RUNS overrides; CI uses the default).
    static let runs = Int(ProcessInfo.processInfo.environment["IDGRAPH_PROPERTY_RUNS"] ?? "") ?? 1000

    struct Scenario: CustomStringConvertible {
        var operations: [GraphOperation]
        var batchEnds: [Int]
        var reopenAfter: Set<Int>
        var tinyMap: Bool
        /// Policies laid over the built-in schema (generic_after on some merge types).
        var schema: Schema?
        var description: String { "\(operations.count) operations in \(batchEnds.count) batches" }
    }

    /// Builds a scenario from a seed: identifiers drawn from small pools so they collide often.
    static func scenario(seed: UInt64) -> Scenario {
        var rng = SplitMix(seed: seed)
        let universe = Int.random(in: 8...300, using: &rng)
        func identifier() -> String {
            let n = Int.random(in: 0..<universe, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1: return "email:user\(n % 97)@x.com"
            case 2: return "email:USER\(n % 97)@X.com"  // normalizes onto the line above
            case 3, 4: return "cookie:c\(n)"
            case 5: return "device:d\(n % 61)"
            case 6: return "phone:+1 555 \(n % 53)"
            case 7: return "crm:\(n % 41)"
            case 8: return "ip:10.0.0.\(n % 7)"       // relate
            default: return "address:\(n % 5) Main St"  // relate
            }
        }
        var ops: [GraphOperation] = []
        var eventIDs: [String] = []
        var linkedPairs: [(String, String)] = []
        let count = Int.random(in: 5...80, using: &rng)
        for k in 0..<count {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<55:
                let size = Int.random(in: 1...4, using: &rng)
                let ids = (0..<size).map { _ in identifier() }
                var eventID: String?
                if Int.random(in: 0..<10, using: &rng) < 8 {
                    // Mostly fresh ids, sometimes a replay of an earlier one.
                    eventID = !eventIDs.isEmpty && Int.random(in: 0..<8, using: &rng) == 0 ? eventIDs.randomElement(using: &rng)! : "e\(k)"
                    eventIDs.append(eventID!)
                }
                let ts = Int64(Int.random(in: 0..<20, using: &rng)) * 1000  // ties on purpose
                let amount: Double? = Int.random(in: 0..<3, using: &rng) == 0 ? Double(Int.random(in: 1...9999, using: &rng)) / 100 : nil
                let type = ["page_view", "order", "login", "subscribe", "unsubscribe"].randomElement(using: &rng)!
                let source = ["web", "crm", "shop", "partner"].randomElement(using: &rng)!
                // Profile fields from small pools, so values and times collide and every
                // survivorship tie-break is exercised.
                var attributes: [EventAttribute] = []
                for (key, pool) in [("name", ["Ann", "Bea", "Cy"]), ("country", ["FR", "DE"]), ("email", ["a@x", "b@x"]),
                                    ("sku", ["A", "B", "C"]), ("utm_campaign", ["spring", "fall"]), ("list", ["news", "deals"]),
                                    ("note", ["not an attribute"])]
                where Int.random(in: 0..<3, using: &rng) == 0 {
                    attributes.append(EventAttribute(key, pool.randomElement(using: &rng)!))
                }
                ops.append(.event(EventInput(
                    eventID: eventID.map { Array($0.utf8) }, timestamp: ts, type: Array(type.utf8), source: Array(source.utf8),
                    identifiers: ids.map { RawIdentifier.id($0) }, amountMicros: amount.map { Int64(($0 * 1_000_000).rounded()) },
                    attributes: attributes)))
                if ids.count > 1 { linkedPairs.append((ids[0], ids[1])) }
            case 55..<65:
                let a = identifier(), b = identifier()
                ops.append(link(a, b))
                linkedPairs.append((a, b))
            case 65..<78:
                if let pair = linkedPairs.randomElement(using: &rng), Int.random(in: 0..<4, using: &rng) > 0 {
                    ops.append(unlink(pair.0, pair.1))
                } else {
                    ops.append(unlink(identifier(), identifier()))
                }
            case 78..<85:
                ops.append(forget(identifier()))
            default:
                if let id = eventIDs.randomElement(using: &rng), Int.random(in: 0..<5, using: &rng) > 0 {
                    ops.append(retract(id))
                } else {
                    ops.append(retract("never-\(k)"))
                }
            }
        }
        var ends: [Int] = []
        var position = 0
        while position < ops.count {
            position = min(ops.count, position + Int.random(in: 1...12, using: &rng))
            ends.append(position)
        }
        let reopen = Set(ends.indices.filter { _ in Int.random(in: 0..<5, using: &rng) == 0 })
        var schema: Schema?
        if Int.random(in: 0..<3, using: &rng) == 0 {
            // Shared devices and cookies: a value linked to more than N others turns generic.
            var types: [String: TypePolicy] = ["device": TypePolicy(genericAfter: Int.random(in: 1...3, using: &rng))]
            if Bool.random(using: &rng) { types["cookie"] = TypePolicy(genericAfter: Int.random(in: 2...4, using: &rng)) }
            schema = Schema(types: types)
        } else if Int.random(in: 0..<2, using: &rng) == 0 {
            // Limits: at most N emails (or phones, or CRM ids) per entity; first come, first kept.
            var types: [String: TypePolicy] = ["email": TypePolicy(normalize: .email, limit: Int.random(in: 1...2, using: &rng))]
            if Bool.random(using: &rng) { types["phone"] = TypePolicy(normalize: .phone, limit: 1) }
            if Bool.random(using: &rng) { types["crm"] = TypePolicy(limit: 1) }
            schema = Schema(types: types)
        }
        return Scenario(operations: ops, batchEnds: ends, reopenAfter: reopen, tinyMap: Int.random(in: 0..<10, using: &rng) == 0, schema: schema)
    }

    /// Runs one scenario and returns a description of the first disagreement (nil when none).
    static func run(_ scenario: Scenario) throws -> String? {
        let db = try TemporaryDatabase(mapSize: scenario.tinyMap ? 64 * 1024 : 1 << 22, schema: scenario.schema)
        var oracle = Oracle(schema: scenario.schema.map { Schema.builtIn(overriddenBy: $0) } ?? .builtIn)
        var start = 0
        let now: Int64 = 1_700_000_000_000
        for (b, end) in scenario.batchEnds.enumerated() {
            let batch = Array(scenario.operations[start..<end])
            try db.graph.apply(batch, now: now)
            for op in batch { oracle.apply(op, now: now) }
            start = end
            if scenario.reopenAfter.contains(b) { try db.reopen() }
            if let problem = try compare(db.graph, oracle, afterBatch: b) { return problem }
        }
        return nil
    }

    static func compare(_ graph: IdentityGraph, _ oracle: Oracle, afterBatch b: Int) throws -> String? {
        let expected = Set(oracle.partition().map { Set($0.map(\.description)) })
        let actual = try graph.partition()
        if expected != actual {
            let missing = expected.subtracting(actual).map { $0.sorted() }
            let extra = actual.subtracting(expected).map { $0.sorted() }
            return "after batch \(b): partition differs; expected but missing \(missing), unexpected \(extra)"
        }
        let violations = try graph.check()
        if !violations.isEmpty { return "after batch \(b): check failed: \(violations.prefix(5))" }
        // No entity holds more values of a type than its limit.
        for group in actual {
            var counts: [String: Int] = [:]
            for id in group { counts[String(id.prefix { $0 != ":" }), default: 0] += 1 }
            for (type, n) in counts {
                if let limit = oracle.schema.policy(for: type).limit, n > limit { return "after batch \(b): an entity holds \(n) \(type) values, limit \(limit): \(group.sorted())" }
            }
        }
        return try graph.read { reader -> String? in
            let stats = try reader.stats()
            if stats.events != oracle.liveEventCount { return "after batch \(b): \(stats.events) events, oracle has \(oracle.liveEventCount)" }
            if stats.identifiers != oracle.identifiers.count { return "after batch \(b): \(stats.identifiers) identifiers, oracle has \(oracle.identifiers.count)" }
            if stats.links != oracle.linkCount { return "after batch \(b): \(stats.links) links, oracle has \(oracle.linkCount)" }
            let generic = oracle.genericIdentifiers().count
            if stats.genericIdentifiers != generic { return "after batch \(b): \(stats.genericIdentifiers) generic identifiers, oracle has \(generic)" }
            if stats.refusedLinks != oracle.refused.count { return "after batch \(b): \(stats.refusedLinks) refused links, oracle has \(oracle.refused.count)" }
            // The largest entity: the lowest id among the oracle's largest groups.
            var largest: (size: Int, entity: EntityID) = (0, 0)
            for group in oracle.partition() {
                let any = group.first!
                guard let node = try reader.node(of: any), let entity = try reader.nodeInfo(node)?.entity,
                      let info = try reader.resolve(entity) else { return "after batch \(b): \(any) has no entity" }
                if group.count > largest.size || (group.count == largest.size && entity < largest.entity) { largest = (group.count, entity) }
                let want = oracle.summary(of: group)
                let s = info.summary
                var got = Oracle.ExpectedSummary(events: Int(s.events), revenueMicros: s.revenueMicros, firstSeen: s.firstSeen, lastSeen: s.lastSeen)
                for (type, n) in s.eventsByType { got.byType[reader.eventTypeName(type)] = Int(n) }
                if got != want { return "after batch \(b): summary of the entity of \(any) is \(got), expected \(want)" }
                let profile = try reader.profile(of: info, now: 0)
                var have = Oracle.ExpectedProfile(orders: Int(profile.orders), lastOrder: profile.lastOrder)
                for c in profile.channels { have.channels[c.name] = Int(c.count) }
                for g in profile.golden { have.golden[g.attribute] = "\(g.value)|\(g.source)|\(g.seen)|\(g.count)" }
                for c in profile.products { have.products[c.name] = Int(c.count) }
                for c in profile.campaigns { have.campaigns[c.name] = Int(c.count) }
                have.lists = profile.lists
                let expectedProfile = oracle.profile(of: group)
                if have != expectedProfile { return "after batch \(b): profile of the entity of \(any) is \(have), expected \(expectedProfile)" }
            }
            if stats.largestEntitySize != largest.size || stats.largestEntity != largest.entity {
                return "after batch \(b): largest entity \(stats.largestEntity) of \(stats.largestEntitySize), oracle says \(largest.entity) of \(largest.size)"
            }
            return nil
        }
    }

    @Test("store equals the from-scratch oracle after every batch")
    func storeEqualsOracle() async throws {
        await propertyCheck(count: Self.runs, input: Gen.uint64()) { seed in
            let scenario = Self.scenario(seed: seed)
            let problem = try Self.run(scenario)
            #expect(problem == nil, "seed \(seed): \(problem ?? "")")
        }
    }

    /// A fixed, larger scenario that always runs the same way (a regression anchor).
    @Test("a long fixed scenario matches the oracle")
    func longFixedScenario() throws {
        var scenario = Self.scenario(seed: 7)
        for seed in 8..<40 { scenario.operations += Self.scenario(seed: UInt64(seed)).operations }
        var ends: [Int] = []
        var p = 0
        while p < scenario.operations.count { p = min(scenario.operations.count, p + 25); ends.append(p) }
        scenario.batchEnds = ends
        scenario.reopenAfter = [1, 5]
        let problem = try Self.run(scenario)
        #expect(problem == nil, "\(problem ?? "")")
    }
}

/// SplitMix64, for scenarios that depend only on their seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension MergeSplitPropertyTests {
    /// Found by the property test (seed 17597485936236197891, shrunk by hand): one link makes
    /// both of its ends generic; the first end's demotion split the entity and moved the second
    /// end, which was then demoted from the entity it had been in before (a stale record).
    @Test func bothEndsOfALinkTurningGenericAtOnce() throws {
        let scenario = Scenario(
            operations: [
                link("email:user1@x.com", "cookie:c5"),
                .event(EventInput(eventID: Array("e31".utf8), identifiers: ["crm:3", "email:user1@x.com", "phone:+1 555 9"].map { RawIdentifier.id($0) })),
                .event(EventInput(eventID: Array("e47".utf8), identifiers: ["address:0 Main St", "email:user4@x.com", "cookie:c5", "device:d2"].map { RawIdentifier.id($0) })),
            ],
            batchEnds: [1, 2, 3], reopenAfter: [], tinyMap: false,
            schema: Schema(types: ["device": TypePolicy(genericAfter: 1), "cookie": TypePolicy(genericAfter: 2)]))
        #expect(try Self.run(scenario) == nil)
    }
}

extension MergeSplitPropertyTests {
    /// The random scenarios do exercise limits: refusals happen in a good share of them (else
    /// the property above would prove nothing about `limit`).
    @Test func theScenariosRefuseLinks() throws {
        var withRefusals = 0
        for seed in UInt64(1)...300 {
            let scenario = Self.scenario(seed: seed)
            guard let schema = scenario.schema, schema.types.values.contains(where: { $0.limit != nil }) else { continue }
            var oracle = Oracle(schema: Schema.builtIn(overriddenBy: schema))
            for op in scenario.operations { oracle.apply(op, now: 0) }
            if !oracle.refused.isEmpty { withRefusals += 1 }
        }
        #expect(withRefusals >= 20, "only \(withRefusals) of 300 scenarios refused a link")
    }
}

extension MergeSplitPropertyTests {
    /// Limits set after the fact: `schema set` re-evaluates every link. Afterwards `check` is
    /// clean, no entity exceeds a limit, every refused link between two entities was needed
    /// (merging them would exceed a limit), and a second reapply changes nothing.
    @Test("reapply under new limits leaves no entity over a limit and refuses only what it must")
    func reapplyUnderNewLimits() async throws {
        await propertyCheck(count: max(Self.runs / 5, 20), input: Gen.uint64()) { seed in
            var scenario = Self.scenario(seed: seed)
            scenario.schema = nil
            scenario.batchEnds = [scenario.operations.count]
            let db = try TemporaryDatabase(mapSize: 1 << 22, schema: nil)
            try db.graph.apply(scenario.operations, now: 1_700_000_000_000)
            var rng = SplitMix(seed: seed ^ 0x5EED)
            let limits = Schema(types: [
                "email": TypePolicy(normalize: .email, limit: Int.random(in: 1...2, using: &rng)),
                "cookie": TypePolicy(limit: Int.random(in: 1...3, using: &rng)),
                "phone": TypePolicy(normalize: .phone, limit: 1),
            ])
            let dryRun = try db.graph.setSchema(limits, dryRun: true)
            let report = try db.graph.setSchema(limits)
            #expect(dryRun == report, "seed \(seed): the dry run reported something else")
            let violations = try db.graph.check()
            #expect(violations.isEmpty, "seed \(seed): \(violations.prefix(3))")
            let schema = db.graph.schema
            try db.graph.read { reader in
                var groups: [EntityID: [Identifier]] = [:]
                try reader.forEachMembership { id, entity in groups[entity, default: []].append(id) }
                func counts(_ ids: [Identifier]) -> [String: Int] { ids.reduce(into: [:]) { $0[$1.type, default: 0] += 1 } }
                func exceeds(_ c: [String: Int]) -> Bool { c.contains { t, n in schema.policy(for: t).limit.map { n > $0 } ?? false } }
                for (entity, ids) in groups { #expect(!exceeds(counts(ids)), "seed \(seed): entity \(entity) over a limit: \(ids)") }
                for ids in groups.values {
                    for id in ids {
                        guard let node = try reader.node(of: id) else { continue }
                        for link in try reader.links(of: node) where link.refused {
                            guard let a = try reader.nodeInfo(node)?.entity, let b = try reader.nodeInfo(link.neighbour)?.entity, a != b else { continue }
                            var c = counts(groups[a] ?? [])
                            for (t, n) in counts(groups[b] ?? []) { c[t, default: 0] += n }
                            #expect(exceeds(c), "seed \(seed): a refused link between \(a) and \(b) would fit the limits")
                        }
                    }
                }
            }
            let again = try db.graph.reapply()
            #expect(again.merges == 0 && again.splits == 0 && again.refusedLinks == 0, "seed \(seed): a second reapply changed \(again)")
        }
    }
}

extension MergeSplitPropertyTests {
    /// Limits set after loading do split entities and refuse links in the random scenarios, and
    /// raising them again lets every refused link merge (nothing stays refused without need).
    @Test func reapplyRefusesThenAcceptsAgain() throws {
        var refusing = 0
        for seed in UInt64(1)...100 {
            let scenario = Self.scenario(seed: seed)
            let db = try TemporaryDatabase(mapSize: 1 << 22, schema: nil)
            try db.graph.apply(scenario.operations, now: 1_700_000_000_000)
            let before = try db.graph.partition()
            let tight = try db.graph.setSchema(Schema(types: ["email": TypePolicy(normalize: .email, limit: 1), "cookie": TypePolicy(limit: 1)]))
            if tight.refusedLinks > 0 { refusing += 1 }
            _ = try db.graph.setSchema(Schema(types: [:]))
            #expect(try db.graph.read { try $0.stats().refusedLinks } == 0, "seed \(seed)")
            #expect(try db.graph.partition() == before, "seed \(seed): lifting the limits did not restore the entities")
            #expect(try db.graph.check().isEmpty)
        }
        #expect(refusing >= 20, "only \(refusing) of 100 scenarios refused a link under tight limits")
    }
}
