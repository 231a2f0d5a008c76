import Foundation
import LMDB

/// Where a customer stands, from orders and their recency (thresholds: ``LifecycleThresholds``).
public enum LifecycleStage: String, Sendable, CaseIterable, Codable {
    /// No order yet.
    case lead
    /// One order, recent.
    case firstOrder = "first_order"
    /// Several orders, the last one recent.
    case active
    /// Recent, and many orders or much revenue.
    case hero
    /// The last order is older than `active_days`.
    case waiting
    /// The last order is older than `lost_days`.
    case lost

    /// The stage of an entity with these totals at time `now` (ms since 1970).
    ///
    /// No order: `lead`. Last order more than `lost_days` before `now`: `lost`; more than
    /// `active_days`: `waiting`. Otherwise `hero` with at least `hero_orders` orders or
    /// `hero_revenue` revenue, `first_order` with one order, else `active`.
    public static func of(orders: UInt64, revenue: Double, lastOrder: Int64?, now: Int64, thresholds t: LifecycleThresholds) -> LifecycleStage {
        guard orders > 0, let lastOrder else { return .lead }
        let age = now - lastOrder
        if age > Int64(t.lostDays) * 86_400_000 { return .lost }
        if age > Int64(t.activeDays) * 86_400_000 { return .waiting }
        if orders >= UInt64(t.heroOrders) || revenue >= t.heroRevenue { return .hero }
        return orders == 1 ? .firstOrder : .active
    }
}

/// A value of the golden record, with where and when it came from.
public struct GoldenValue: Sendable, Equatable {
    /// The attribute (`name`, `country`…).
    public var attribute: String
    /// The surviving value.
    public var value: String
    /// The source of its latest observation (the winning source under `source_priority`).
    public var source: String
    /// When that observation was made (ms since 1970).
    public var seen: Int64
    /// How many events gave this value (all sources).
    public var count: UInt64
    /// The rule that chose it.
    public var rule: SurvivorshipRule
}

/// Something counted in a profile: a product, a campaign, a source.
public struct CountedName: Sendable, Equatable {
    /// The name.
    public var name: String
    /// How many events.
    public var count: UInt64
    /// The latest of them (ms since 1970).
    public var last: Int64
}

/// An entity's RFM scores (1–5 each), as last computed over all entities (``IdentityGraph/computeRFM(now:)``).
public struct RFMScore: Sendable, Equatable {
    /// Recency: 5 for the most recent fifth of last orders.
    public var recency: UInt8
    /// Frequency: 5 for the fifth with the most orders.
    public var frequency: UInt8
    /// Monetary: 5 for the fifth with the most revenue.
    public var monetary: UInt8
    /// The three digits as one number (`543`).
    public var code: Int { Int(recency) * 100 + Int(frequency) * 10 + Int(monetary) }

    /// Creates scores.
    public init(recency: UInt8, frequency: UInt8, monetary: UInt8) {
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
    }
}

/// The Customer 360 view of one entity: golden record, aggregates, lifecycle, RFM.
public struct EntityProfile: Sendable, Equatable {
    /// Golden-record values, by attribute name.
    public var golden: [GoldenValue]
    /// Events counted.
    public var events: UInt64
    /// Order events.
    public var orders: UInt64
    /// Revenue (sum of `props.amount` over all events).
    public var revenue: Double
    /// Revenue per order, `nil` without orders.
    public var averageOrderValue: Double?
    /// First and last event, last order (ms since 1970).
    public var firstSeen: Int64?, lastSeen: Int64?, lastOrder: Int64?
    /// Lifecycle stage at the profile's `now`.
    public var lifecycle: LifecycleStage
    /// Events per source, most first.
    public var channels: [CountedName]
    /// The source with the most events (ties: the smaller name).
    public var preferredChannel: String? { channels.first?.name }
    /// The `device` identifier with the most events, and how many.
    public var mostUsedDevice: CountedName?
    /// Products viewed, most first.
    public var products: [CountedName]
    /// Campaigns, most first.
    public var campaigns: [CountedName]
    /// Lists whose latest (un)subscribe event is a subscribe.
    public var lists: [String]
    /// RFM scores from the last computation, if this entity was scored.
    public var rfm: RFMScore?
}

/// Builds profiles from summaries: pure functions of a summary, the profile schema and names.
public enum ProfileBuilder {
    /// The golden record of `summary` under `schema`, attribute by attribute (sorted by name).
    public static func golden(_ summary: Summary, schema: ProfileSchema, sourceName: (UInt32) -> String) -> [GoldenValue] {
        golden(summary.decodedTallies, schema: schema, sourceName: sourceName)
    }

    static func golden(_ tallies: SortedMap<TallyKey, Tally>, schema: ProfileSchema, sourceName: (UInt32) -> String) -> [GoldenValue] {
        // attribute → value → source → tally
        var byAttribute: [[UInt8]: [[UInt8]: [(source: String, tally: Tally)]]] = [:]
        for entry in tallies.entries where entry.key.kind == .attribute {
            let key = entry.key, t = entry.value
            byAttribute[key.name, default: [:]][key.value, default: []].append((sourceName(key.source), t))
        }
        var result: [GoldenValue] = []
        for (nameBytes, values) in byAttribute {
            let name = String(decoding: nameBytes, as: UTF8.self)
            let rule = schema.attributes[name]?.rule ?? .mostRecent
            if let g = choose(values, rule: rule, priority: schema.sourcePriority) {
                result.append(GoldenValue(attribute: name, value: String(decoding: g.value, as: UTF8.self), source: g.source, seen: g.seen, count: g.count, rule: rule))
            }
        }
        return result.sorted { $0.attribute < $1.attribute }
    }

    /// One attribute's surviving value among `values` (value → observations per source).
    static func choose(_ values: [[UInt8]: [(source: String, tally: Tally)]], rule: SurvivorshipRule, priority: [String]) -> (value: [UInt8], source: String, seen: Int64, count: UInt64)? {
        func rank(_ source: String) -> Int { priority.firstIndex(of: source) ?? priority.count }
        var candidates: [(value: [UInt8], source: String, seen: Int64, count: UInt64)] = []
        var bestRank = Int.max
        if rule == .sourcePriority {
            for observations in values.values { for o in observations { bestRank = min(bestRank, rank(o.source)) } }
        }
        for (value, observations) in values {
            let usable = rule == .sourcePriority ? observations.filter { rank($0.source) == bestRank } : observations
            guard !usable.isEmpty else { continue }
            // The latest observation (ties: the smaller source name) says where and when.
            let latest = usable.max { a, b in a.tally.last != b.tally.last ? a.tally.last < b.tally.last : a.source > b.source }!
            let count = observations.reduce(0) { $0 + $1.tally.count }
            candidates.append((value, latest.source, latest.tally.last, count))
        }
        return candidates.max { a, b in
            switch rule {
            case .mostFrequent:
                if a.count != b.count { return a.count < b.count }
                if a.seen != b.seen { return a.seen < b.seen }
            case .mostRecent, .sourcePriority:
                if a.seen != b.seen { return a.seen < b.seen }
                if a.count != b.count { return a.count < b.count }
            }
            return b.value.lexicographicallyPrecedes(a.value)  // the smaller value wins
        }
    }

    /// Tallies of one kind as counted names, most first (ties: latest, then name).
    static func counted(_ tallies: SortedMap<TallyKey, Tally>, kind: TallyKind) -> [CountedName] {
        tallies.entries.filter { $0.key.kind == kind }
            .map { CountedName(name: String(decoding: $0.key.value, as: UTF8.self), count: $0.value.count, last: $0.value.last) }
            .sorted(by: mostFirst)
    }

    static func mostFirst(_ a: CountedName, _ b: CountedName) -> Bool {
        a.count != b.count ? a.count > b.count : a.last != b.last ? a.last > b.last : a.name < b.name
    }

    /// Lists subscribed to: the latest subscribe is later than the latest unsubscribe.
    static func lists(_ tallies: SortedMap<TallyKey, Tally>) -> [String] {
        var unsubscribed: [[UInt8]: Int64] = [:]
        for entry in tallies.entries where entry.key.kind == .unsubscribed { unsubscribed[entry.key.value] = entry.value.last }
        return tallies.entries.filter { $0.key.kind == .subscribed && $0.value.last > (unsubscribed[$0.key.value] ?? Int64.min) }
            .map { String(decoding: $0.key.value, as: UTF8.self) }.sorted()
    }

    /// Everything of a profile that comes from the summary alone.
    public static func profile(_ summary: Summary, schema: ProfileSchema, now: Int64, sourceName: (UInt32) -> String) -> EntityProfile {
        let revenue = summary.revenue
        let tallies = summary.decodedTallies  // decoded once for all that reads them
        let channels = summary.eventsBySource.map { CountedName(name: sourceName($0.key), count: $0.value, last: 0) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
        return EntityProfile(
            golden: golden(tallies, schema: schema, sourceName: sourceName), events: summary.events, orders: summary.orders,
            revenue: revenue, averageOrderValue: summary.orders > 0 ? revenue / Double(summary.orders) : nil,
            firstSeen: summary.firstSeen, lastSeen: summary.lastSeen, lastOrder: summary.lastOrder,
            lifecycle: LifecycleStage.of(orders: summary.orders, revenue: revenue, lastOrder: summary.lastOrder, now: now, thresholds: schema.lifecycle),
            channels: channels, mostUsedDevice: nil, products: counted(tallies, kind: .product),
            campaigns: counted(tallies, kind: .campaign), lists: lists(tallies), rfm: nil)
    }
}

/// RFM scoring: quintiles of recency (last order), frequency (orders) and monetary value
/// (revenue) over all entities with at least one order.
public enum RFMScoring {
    /// Scores 1–5 for `values` (one per entity): an entity's score is `1 + 5·r/n`, where `r` is
    /// the number of entities with a strictly smaller value and `n` the number of entities, so
    /// equal values share a score and the largest values score 5.
    public static func quintiles<T: Comparable>(_ values: [T]) -> [UInt8] {
        let n = values.count
        guard n > 0 else { return [] }
        let order = values.indices.sorted { values[$0] < values[$1] }
        var scores = [UInt8](repeating: 0, count: n)
        var rankOfRun = 0
        for (position, index) in order.enumerated() {
            if position > 0 && values[order[position - 1]] < values[index] { rankOfRun = position }
            scores[index] = UInt8(1 + (5 * rankOfRun) / n)
        }
        return scores
    }
}

/// What ``IdentityGraph/computeRFM(now:)`` did.
public struct RFMReport: Sendable, Equatable {
    /// Entities scored (those with at least one order).
    public var scored: Int
    /// Live entities looked at.
    public var entities: Int
    /// When the scores were computed (ms since 1970).
    public var computedAt: Int64
}

extension GraphReader {
    /// The full profile of a live entity at time `now`: golden record, aggregates, lifecycle,
    /// most-used device (reads the entity's `device` members' timelines) and cached RFM scores.
    public func profile(of info: EntityInfo, now: Int64) throws -> EntityProfile {
        var p = ProfileBuilder.profile(info.summary, schema: schema.profile, now: now, sourceName: catalogSnapshot.catalog.sourceName)
        if let deviceType = catalogSnapshot.catalog.typeID("device") {
            var best: CountedName?
            for node in try members(of: info.id) {
                guard let record = try nodeRecord(node), record.typeID == deviceType, record.entity != 0 else { continue }
                let n = try eventCount(of: node)
                let candidate = CountedName(name: String(decoding: record.value, as: UTF8.self), count: UInt64(n), last: 0)
                if n > 0, best.map({ ProfileBuilder.mostFirst(candidate, $0) }) ?? true { best = candidate }
            }
            p.mostUsedDevice = best
        }
        p.rfm = try rfm(of: info.id)
        return p
    }

    func nodeRecord(_ node: NodeID) throws -> NodeRecord? {
        try txn.withValue(db.node, key: node) { try $0.map { try NodeRecord(bytes: $0) } }
    }

    /// How many events name `node` (its timeline's length).
    public func eventCount(of node: NodeID) throws -> Int {
        let cursor = try txn.cursor(db.nodeEvent)
        defer { cursor.close() }
        guard try cursor.seek(key: node) else { return 0 }
        return try cursor.duplicateCount()
    }

    /// The entity's scores from the last RFM computation, `nil` if it was not scored then.
    public func rfm(of entity: EntityID) throws -> RFMScore? {
        guard let table = db.rfm else { return nil }
        return try txn.withValue(table, key: entity) { bytes in
            guard let bytes, bytes.count >= 3 else { return nil }
            return RFMScore(recency: bytes[0], frequency: bytes[1], monetary: bytes[2])
        }
    }

    /// When RFM scores were last computed, `nil` if never.
    public func rfmComputedAt() throws -> Int64? {
        try txn.withValue(db.meta, key: MetaKey.rfmComputedAt) { $0.map { Int64(bitPattern: $0.loadBigEndianUInt64(at: 0)) } }
    }

    /// Calls `body` with the id, size and summary header of every live entity, in id order,
    /// without decoding the summaries' maps (fast scans).
    public func forEachEntityHeader(_ body: (EntityID, Int, SummaryHeader) throws -> Void) throws {
        try txn.forEach(db.entity) { key, value in
            if let (size, header) = try EntityRecord.liveHeader(value) { try body(key.loadBigEndianUInt64(at: 0), size, header) }
            return true
        }
    }

    /// Segment definitions by name (the text after `AS`).
    public func segments() throws -> [String: String] {
        try txn.withValue(db.meta, key: MetaKey.segments) { bytes in
            guard let bytes else { return [:] }
            return (try? JSONDecoder().decode([String: String].self, from: Data(bytes))) ?? [:]
        }
    }

    /// The `relate` identifiers of the household type (schema `profile.household_type`) that
    /// `entity`'s members link to, each with the live entities it relates (this one included).
    public func households(of entity: EntityID) throws -> [(address: Identifier, entities: [EntityID])] {
        guard let type = catalogSnapshot.catalog.typeID(schema.profile.householdType) else { return [] }
        var seen: Set<NodeID> = []
        var result: [(Identifier, [EntityID])] = []
        for node in try members(of: entity) {
            for link in try links(of: node) where !seen.contains(link.neighbour) {
                guard let record = try nodeRecord(link.neighbour), record.typeID == type else { continue }
                seen.insert(link.neighbour)
                var entities: Set<EntityID> = []
                for other in try links(of: link.neighbour) {
                    if let e = try nodeInfo(other.neighbour)?.entity, let live = try resolve(e) { entities.insert(live.id) }
                }
                guard let info = try nodeInfo(link.neighbour) else { continue }
                result.append((info.identifier, entities.sorted()))
            }
        }
        return result.sorted { $0.0.description < $1.0.description }
    }
}

extension IdentityGraph {
    /// Scores every live entity with at least one order (RFMScoring.quintiles of last order,
    /// orders and revenue), replaces the cached scores and records the time, in one write
    /// transaction. Scores are kept per entity id, untouched by later writes: parts split off
    /// since have none, an entity grown by a merge keeps its id's, until the next run.
    @discardableResult
    public func computeRFM(now: Int64? = nil) throws -> RFMReport {
        let time = now ?? currentTimeMillis()
        return try environment.write { txn in
            guard let table = databases.rfm else { throw GraphError.damaged(.corrupt("the rfm table is missing")) }
            var ids: [EntityID] = []
            var recency: [Int64] = [], frequency: [UInt64] = [], monetary: [Int64] = []
            var entities = 0
            try txn.forEach(databases.entity) { key, value in
                guard let (_, h) = try EntityRecord.liveHeader(value) else { return true }
                entities += 1
                guard h.orders > 0, let last = h.lastOrder else { return true }
                ids.append(key.loadBigEndianUInt64(at: 0))
                recency.append(last)
                frequency.append(h.orders)
                monetary.append(h.revenueMicros)
                return true
            }
            let r = RFMScoring.quintiles(recency), f = RFMScoring.quintiles(frequency), m = RFMScoring.quintiles(monetary)
            try txn.clear(table)
            let cursor = try txn.cursor(table)
            defer { cursor.close() }
            var value: [UInt8] = [0, 0, 0]  // reused: no allocation per entity
            for i in ids.indices {  // ids ascend: the table is written by appending
                value[0] = r[i]; value[1] = f[i]; value[2] = m[i]
                try cursor.put(key: ids[i], value: value, flags: .append)
            }
            try txn.put(databases.meta, key: MetaKey.rfmComputedAt, value: UInt64(bitPattern: time))
            return RFMReport(scored: ids.count, entities: entities, computedAt: time)
        }
    }

    /// Stores (or replaces) a segment definition: `definition` is the condition text, checked
    /// by the caller (the query layer parses it).
    public func defineSegment(_ name: String, definition: String) throws {
        try updateSegments { $0[name] = definition }
    }

    /// Removes a segment definition; `false` when there was none.
    @discardableResult
    public func dropSegment(_ name: String) throws -> Bool {
        var existed = false
        try updateSegments { existed = $0.removeValue(forKey: name) != nil }
        return existed
    }

    private func updateSegments(_ change: (inout [String: String]) -> Void) throws {
        try environment.write { txn in
            var segments = try txn.value(databases.meta, key: MetaKey.segments)
                .flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0)) } ?? [:]
            change(&segments)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try txn.put(databases.meta, key: MetaKey.segments, value: Array(try encoder.encode(segments)))
        }
    }
}
