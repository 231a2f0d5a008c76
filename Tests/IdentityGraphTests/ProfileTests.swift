import Foundation
import IdentityGraph
import LMDB
import Testing

/// Lifecycle stages, RFM scores and survivorship on small hand-built cases, each computed by hand.
@Suite struct ProfileTests {
    static let day: Int64 = 86_400_000
    static let now: Int64 = 1_735_603_200_000  // 2024-12-31T00:00:00Z

    @Test("lifecycle stages at and around every default threshold")
    func lifecycleStages() {
        let t = LifecycleThresholds()  // active 90 days, lost after 365, hero from 5 orders or 1,000
        func stage(_ orders: UInt64, _ revenue: Double, daysAgo: Int64?) -> LifecycleStage {
            LifecycleStage.of(orders: orders, revenue: revenue, lastOrder: daysAgo.map { Self.now - $0 * Self.day }, now: Self.now, thresholds: t)
        }
        #expect(stage(0, 0, daysAgo: nil) == .lead)
        #expect(stage(0, 50, daysAgo: nil) == .lead)  // revenue without an order (a refund, a fee) is still a lead
        #expect(stage(1, 20, daysAgo: 3) == .firstOrder)
        #expect(stage(2, 40, daysAgo: 3) == .active)
        #expect(stage(4, 999.99, daysAgo: 90) == .active)  // exactly 90 days: still active
        #expect(stage(5, 10, daysAgo: 1) == .hero)
        #expect(stage(1, 1000, daysAgo: 1) == .hero)  // one big order
        #expect(stage(5, 2000, daysAgo: 91) == .waiting)  // heroes wait too
        #expect(stage(1, 20, daysAgo: 365) == .waiting)
        #expect(stage(1, 20, daysAgo: 366) == .lost)
        let strict = LifecycleThresholds(activeDays: 7, lostDays: 30, heroOrders: 2, heroRevenue: 100)
        #expect(LifecycleStage.of(orders: 2, revenue: 5, lastOrder: Self.now - 6 * Self.day, now: Self.now, thresholds: strict) == .hero)
        #expect(LifecycleStage.of(orders: 2, revenue: 5, lastOrder: Self.now - 8 * Self.day, now: Self.now, thresholds: strict) == .waiting)
        #expect(LifecycleStage.of(orders: 2, revenue: 5, lastOrder: Self.now - 31 * Self.day, now: Self.now, thresholds: strict) == .lost)
    }

    @Test("quintile scores: ranks over n, equal values share the lower score")
    func quintiles() {
        #expect(RFMScoring.quintiles([10, 20, 30, 40, 50]) == [1, 2, 3, 4, 5])
        #expect(RFMScoring.quintiles([50, 40, 30, 20, 10]) == [5, 4, 3, 2, 1])
        #expect(RFMScoring.quintiles(Array(1...10)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        #expect(RFMScoring.quintiles([7, 7, 7, 7]) == [1, 1, 1, 1])
        #expect(RFMScoring.quintiles([1, 2, 2, 2, 3]) == [1, 2, 2, 2, 5])
        #expect(RFMScoring.quintiles([42]) == [1])
        #expect(RFMScoring.quintiles([Int]()) == [])
    }

    static func order(_ email: String, _ amount: Double, daysAgo: Int64, id: String) -> GraphOperation {
        .event(EventInput(eventID: Array(id.utf8), timestamp: now - daysAgo * day, type: Array("order".utf8),
                          identifiers: [.id("email:\(email)")], amountMicros: Int64(amount * 1_000_000)))
    }

    @Test("COMPUTE RFM scores five customers as a hand computation does, and leaves the orderless out")
    func rfmOverAGraph() throws {
        let db = try TemporaryDatabase()
        // a: 1 order 100 days ago, 10; b: 2 orders, last 50 days ago, 40; c: 3 orders, last 10
        // days ago, 30; d: 4 orders, last 5 days ago, 400; e: 5 orders, last 1 day ago, 20.
        var ops: [GraphOperation] = []
        let plan: [(String, [(Double, Int64)])] = [
            ("a", [(10, 100)]), ("b", [(20, 60), (20, 50)]), ("c", [(10, 30), (10, 20), (10, 10)]),
            ("d", [(100, 40), (100, 30), (100, 20), (100, 5)]), ("e", [(4, 9), (4, 8), (4, 7), (4, 6), (4, 1)]),
        ]
        for (who, orders) in plan { for (k, o) in orders.enumerated() { ops.append(Self.order("\(who)@x", o.0, daysAgo: o.1, id: "\(who)\(k)")) } }
        ops.append(.event(EventInput(timestamp: Self.now, identifiers: [.id("email:browser@x")])))  // no order
        try db.graph.apply(ops, now: Self.now)
        let report = try db.graph.computeRFM(now: Self.now)
        #expect(report.scored == 5 && report.entities == 6 && report.computedAt == Self.now)
        let scores = try db.graph.read { r in
            try ["a", "b", "c", "d", "e", "browser"].map { who -> RFMScore? in try r.rfm(of: r.entity(of: .id("email:\(who)@x"))!) }
        }
        // Recency ranks a < b < c < d < e; frequency a < b < c < d < e; revenue a(10) < e(20) < c(30) < b(40) < d(400).
        #expect(scores[0] == RFMScore(recency: 1, frequency: 1, monetary: 1))
        #expect(scores[1] == RFMScore(recency: 2, frequency: 2, monetary: 4))
        #expect(scores[2] == RFMScore(recency: 3, frequency: 3, monetary: 3))
        #expect(scores[3] == RFMScore(recency: 4, frequency: 4, monetary: 5))
        #expect(scores[4] == RFMScore(recency: 5, frequency: 5, monetary: 2))
        #expect(scores[5] == nil)
        #expect(try db.graph.read { try $0.rfmComputedAt() } == Self.now)
        // A recomputation replaces the table: after a merges into d, only four are scored.
        try db.graph.apply([.link(.id("email:a@x"), .id("email:d@x"))], now: Self.now)
        #expect(try db.graph.computeRFM(now: Self.now).scored == 4)
    }

    static func said(_ email: String, _ attributes: [(String, String)], source: String, daysAgo: Int64, id: String) -> GraphOperation {
        .event(EventInput(eventID: Array(id.utf8), timestamp: now - daysAgo * day, source: Array(source.utf8),
                          identifiers: [.id("email:\(email)")], attributes: attributes.map { EventAttribute($0.0, $0.1) }))
    }

    func golden(_ db: TemporaryDatabase, _ email: String) throws -> [String: String] {
        try db.graph.read { r in
            let info = try r.resolve(r.entity(of: .id("email:\(email)"))!)!
            return Dictionary(uniqueKeysWithValues: try r.profile(of: info, now: Self.now).golden.map { ($0.attribute, "\($0.value) \($0.source)") })
        }
    }

    @Test("survivorship: most recent, most frequent, source priority, and a retraction falls back")
    func survivorship() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            Self.said("p@x", [("name", "Pat"), ("country", "FR"), ("phone", "+331")], source: "crm", daysAgo: 30, id: "1"),
            Self.said("p@x", [("name", "Patricia"), ("country", "DE"), ("phone", "+332")], source: "web", daysAgo: 20, id: "2"),
            Self.said("p@x", [("country", "FR")], source: "web", daysAgo: 10, id: "3"),
            Self.said("p@x", [("name", "Patty"), ("country", "DE"), ("phone", "+333")], source: "partner", daysAgo: 5, id: "4"),
        ], now: Self.now)
        // name: most recent (Patty, 5 days ago); country: most frequent (FR and DE twice each:
        // the later wins, DE 5 days ago); phone: source priority (crm before web; partner unlisted).
        #expect(try golden(db, "p@x") == ["name": "Patty partner", "country": "DE partner", "phone": "+331 crm"])
        try db.graph.apply([.retract(eventID: Array("4".utf8))], now: Self.now)
        #expect(try golden(db, "p@x") == ["name": "Patricia web", "country": "FR web", "phone": "+331 crm"])
        try db.graph.apply([.retract(eventID: Array("1".utf8))], now: Self.now)
        #expect(try golden(db, "p@x") == ["name": "Patricia web", "country": "FR web", "phone": "+332 web"])
        #expect(try db.graph.check().isEmpty)
    }

    @Test("a changed profile schema recounts every summary from the stored events")
    func profileSchemaChangeRebuildsSummaries() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            Self.said("q@x", [("nickname", "Q"), ("sku", "S-1")], source: "web", daysAgo: 3, id: "1"),
            .event(EventInput(timestamp: Self.now, type: Array("checkout".utf8), identifiers: [.id("email:q@x")], amountMicros: 5_000_000)),
        ], now: Self.now)
        #expect(try golden(db, "q@x").isEmpty)
        var schema = Schema(types: [:])
        schema.profile.attributes["nickname"] = AttributeRule(rule: .mostRecent)
        schema.profile.orderTypes.append("checkout")
        try db.graph.setSchema(schema)
        #expect(try golden(db, "q@x") == ["nickname": "Q web"])
        let orders = try db.graph.read { r in try r.resolve(r.entity(of: .id("email:q@x"))!)!.summary.orders }
        #expect(orders == 1)
        #expect(try db.graph.check().isEmpty)
    }

    @Test("households: entities sharing an address, through the relate type only")
    func households() throws {
        let db = try TemporaryDatabase()
        try db.graph.apply([
            .event(EventInput(identifiers: [.id("email:ann@x"), .id("address:1 Elm St")])),
            .event(EventInput(identifiers: [.id("email:bo@x"), .id("address:1 Elm St")])),
            .event(EventInput(identifiers: [.id("email:cy@x"), .id("address:9 Oak Av"), .id("ip:10.0.0.1")])),
            .event(EventInput(identifiers: [.id("email:ann@x"), .id("ip:10.0.0.1")])),
        ], now: Self.now)
        let result = try db.graph.read { r -> [(String, [EntityID])] in
            try r.households(of: r.entity(of: .id("email:ann@x"))!).map { ($0.address.description, $0.entities) }
        }
        let ann = try db.graph.read { try $0.entity(of: .id("email:ann@x"))! }
        let bo = try db.graph.read { try $0.entity(of: .id("email:bo@x"))! }
        #expect(result.count == 1)  // the shared IP is not a household
        #expect(result.first?.0 == "address:1 Elm St")
        #expect(result.first?.1 == [ann, bo].sorted())
    }

    @Test("a database of format 1 (before profiles) is upgraded on open: every summary recounted")
    func formatOneIsUpgraded() throws {
        let path = NSTemporaryDirectory() + "idgraph-upgrade-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let graph = try IdentityGraph.open(at: path, createIfMissing: true)
            try graph.apply([Self.order("u@x", 12, daysAgo: 3, id: "o1"), Self.order("u@x", 30, daysAgo: 1, id: "o2")], now: Self.now)
        }
        // What a format-1 database looks like to this version: version 1, summaries without
        // orders or per-source counts (here: node summaries gone, entity summaries stale).
        do {
            let env = try Environment(path: path)
            let meta = try env.database("meta"), nodeSummary = try env.database("node_summary")
            try env.write { txn in
                try txn.put(meta, key: "format_version", value: UInt64(1))
                try txn.clear(nodeSummary)
            }
        }
        var readOnly = IdentityGraph.Options()
        readOnly.readOnly = true
        #expect(throws: GraphError.self) { try IdentityGraph.open(at: path, options: readOnly) }  // cannot upgrade
        let graph = try IdentityGraph.open(at: path)
        #expect(try graph.check().isEmpty)
        let summary = try graph.read { r in try r.resolve(r.entity(of: .id("email:u@x"))!)!.summary }
        #expect(summary.orders == 2 && summary.lastOrder == Self.now - Self.day && summary.revenue == 42)
        let reopened = try IdentityGraph.open(at: path, options: readOnly)  // format 2 now
        #expect(try reopened.check().isEmpty)
    }

    @Test("a database whose creation was killed before it committed is created on the next open")
    func anInterruptedCreationIsCompletedOnTheNextOpen() throws {
        let path = NSTemporaryDirectory() + "idgraph-interrupted-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        do { _ = try Environment(path: path) }  // data.mdb exists, nothing committed in it
        #expect(IdentityGraph.exists(at: path))
        var readOnly = IdentityGraph.Options()
        readOnly.readOnly = true
        #expect(throws: GraphError.self) { try IdentityGraph.open(at: path, options: readOnly) }
        let graph = try IdentityGraph.open(at: path, createIfMissing: true)
        try graph.apply([Self.order("v@x", 5, daysAgo: 1, id: "v1")], now: Self.now)
        #expect(try graph.check().isEmpty)
        #expect(try graph.read { try $0.stats().events } == 1)
    }

    @Test("a bad profile section is refused with a message that says what to write")
    func badProfileSectionsAreRefused() throws {
        func error(_ json: String) -> String? {
            do { _ = try Schema.parse(json: Data(json.utf8)); return nil } catch { return error.description }
        }
        #expect(error(#"{"profile":{"lifecycle":{"active_days":100,"lost_days":30}}}"#) == "schema profile: lifecycle needs 1 <= active_days <= lost_days, hero_orders >= 1 and hero_revenue >= 0")
        #expect(error(#"{"profile":{"attributes":{"nick":{"rule":"newest"}}}}"#)?.contains("'newest' is not a survivorship rule: use most_recent, most_frequent, source_priority") == true)
        #expect(error(#"{"profile":{"attributes":{"":{"rule":"most_recent"}}}}"#)?.hasPrefix("schema profile: attribute names are 1 to 64 bytes") == true)
        let good = try Schema.parse(json: Data(#"{"profile":{"attributes":{"nick":{"rule":"most_recent","keys":["nickname"]}},"order_types":["checkout"]}}"#.utf8))
        #expect(good.profile.attributes == ["nick": AttributeRule(rule: .mostRecent, keys: ["nickname"])])
        #expect(good.profile.orderTypes == ["checkout"])
        #expect(good.profile.lifecycle == LifecycleThresholds())  // unnamed fields keep their defaults
        #expect(good.profile.sourcePriority == ProfileSchema().sourcePriority)
    }
}
