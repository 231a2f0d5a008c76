import IdentityGraph

/// A deliberately simple model of SPEC.md's semantics, recomputed from scratch: the log of
/// operations is replayed with plain collections, and the partition is union-find over the
/// evidence that survives. It shares nothing with the store but the normalizer.
struct Oracle {
    struct Event {
        var eventID: String?
        var ids: [Identifier]
        var time: Int64
        var type: String
        var amountMicros: Int64
        var index: Int  // position in the log
        var anchor: Identifier
        var source: String = "default"
        var attributes: [(key: String, value: String)] = []
    }

    let schema: Schema
    private(set) var identifiers: Set<Identifier> = []
    private(set) var tombstones: Set<Identifier> = []
    private(set) var events: [Int: Event] = [:]  // by log index
    private var eventIndexByID: [String: Int] = [:]
    private var seenEventIDs: Set<String> = []
    private var linkRecords: [(pair: Set<Identifier>, index: Int)] = []
    private var unlinkMark: [Set<Identifier>: Int] = [:]
    private var log = 0
    /// Links refused by a `limit` (SPEC.md: decided when the link appears, first come first
    /// kept, never retried while the link lives).
    private(set) var refused: Set<Set<Identifier>> = []

    init(schema: Schema = .builtIn) { self.schema = schema }

    func role(_ id: Identifier) -> Role { schema.policy(for: id.type).role }

    private func normalize(_ raw: RawIdentifier) -> Identifier? { try! Normalizer.identifier(raw, schema: schema) }

    /// Whether some type has a limit (else links are never refused, and nothing is tracked).
    private var hasLimits: Bool { schema.types.values.contains { $0.limit != nil } || schema.defaultPolicy.limit != nil }

    mutating func apply(_ op: GraphOperation, now: Int64) {
        guard hasLimits else { return record(op, now: now) }
        let before = Set(livePairs())
        record(op, now: now)
        let after = Set(livePairs())
        refused.formIntersection(after)
        // New links, in the order the store meets them: an event's pairs (i < j), or the link.
        var fresh: [Set<Identifier>] = []
        switch op {
        case .event:
            if let e = events[log] {
                for i in e.ids.indices { for j in e.ids.indices where i < j { fresh.append([e.ids[i], e.ids[j]]) } }
            }
        case .link(let ra, let rb):
            if let a = normalize(ra), let b = normalize(rb), a != b { fresh.append([a, b]) }
        default: break
        }
        var decided = before.subtracting(refused)
        for pair in fresh where after.contains(pair) && !before.contains(pair) && !decided.contains(pair) && !refused.contains(pair) {
            if wouldExceedLimit(pair, over: Array(decided)) { refused.insert(pair) } else { decided.insert(pair) }
        }
    }

    /// Whether linking the two ends of `pair` would put more values of a limited type in one
    /// entity than allowed, with the entities made by `pairs`.
    private func wouldExceedLimit(_ pair: Set<Identifier>, over pairs: [Set<Identifier>]) -> Bool {
        let ends = Array(pair)
        let groups = partition(over: pairs)
        guard let ga = groups.first(where: { $0.contains(ends[0]) }), let gb = groups.first(where: { $0.contains(ends[1]) }), ga != gb else { return false }
        var counts: [String: Int] = [:]
        for id in ga.union(gb) { counts[id.type, default: 0] += 1 }
        return counts.contains { type, n in schema.policy(for: type).limit.map { n > $0 } ?? false }
    }

    private mutating func record(_ op: GraphOperation, now: Int64) {
        log += 1
        switch op {
        case .event(let input):
            if let id = input.eventID.map({ String(decoding: $0, as: UTF8.self) }), seenEventIDs.contains(id) { return }
            var ids: [Identifier] = []
            for raw in input.identifiers {
                guard let id = normalize(raw), !ids.contains(id), !tombstones.contains(id) else { continue }
                ids.append(id)
            }
            guard !ids.isEmpty else { return }
            for id in ids { identifiers.insert(id) }
            let anchor = ids.first(where: { role($0) == .merge }) ?? ids[0]
            let eventID = input.eventID.map { String(decoding: $0, as: UTF8.self) }
            events[log] = Event(eventID: eventID, ids: ids, time: input.timestamp ?? now, type: String(decoding: input.type, as: UTF8.self),
                                amountMicros: input.amountMicros ?? 0, index: log, anchor: anchor,
                                source: String(decoding: input.source, as: UTF8.self),
                                attributes: input.attributes.map { (String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) })
            if let eventID { seenEventIDs.insert(eventID); eventIndexByID[eventID] = log }
        case .link(let ra, let rb):
            guard let a = normalize(ra), let b = normalize(rb), !tombstones.contains(a), !tombstones.contains(b) else { return }
            identifiers.insert(a)
            identifiers.insert(b)
            if a != b { linkRecords.append(([a, b], log)) }
        case .unlink(let ra, let rb):
            guard let a = normalize(ra), let b = normalize(rb), a != b else { return }
            if evidence(for: [a, b]) > 0 { unlinkMark[[a, b]] = log }
        case .forget(let raw):
            guard let x = normalize(raw) else { return }
            tombstones.insert(x)
            identifiers.remove(x)
            for (k, var e) in events where e.ids.contains(x) {
                e.ids.removeAll { $0 == x }
                if e.ids.isEmpty { events[k] = nil; continue }
                if e.anchor == x { e.anchor = e.ids.first(where: { role($0) == .merge }) ?? e.ids[0] }
                events[k] = e
            }
            linkRecords.removeAll { $0.pair.contains(x) }
        case .retract(let raw):
            let id = String(decoding: raw, as: UTF8.self)
            if let k = eventIndexByID[id] { events[k] = nil }
        }
    }

    /// Pieces of evidence for a pair that survive: events and link records after its last unlink.
    func evidence(for pair: Set<Identifier>) -> Int {
        let mark = unlinkMark[pair] ?? 0
        var n = linkRecords.filter { $0.pair == pair && $0.index > mark }.count
        let members = Array(pair)
        for e in events.values where e.index > mark && e.ids.contains(members[0]) && e.ids.contains(members[1]) { n += 1 }
        return n
    }

    /// Pairs with surviving evidence: events and link records after the pair's last unlink,
    /// counted in one pass.
    func livePairs() -> [Set<Identifier>] {
        var counts: [Set<Identifier>: Int] = [:]
        for e in events.values {
            for i in e.ids.indices {
                for j in e.ids.indices where i < j {
                    let pair: Set<Identifier> = [e.ids[i], e.ids[j]]
                    if e.index > unlinkMark[pair] ?? 0 { counts[pair, default: 0] += 1 }
                }
            }
        }
        for l in linkRecords where l.index > unlinkMark[l.pair] ?? 0 { counts[l.pair, default: 0] += 1 }
        return counts.filter { $0.value > 0 }.map(\.key)
    }

    /// Generic values: merge-type identifiers linked to more distinct merge-type identifiers
    /// than their type's `generic_after`.
    func genericIdentifiers() -> Set<Identifier> {
        var degree: [Identifier: Int] = [:]
        for pair in livePairs() {
            let m = Array(pair)
            if role(m[1]) == .merge { degree[m[0], default: 0] += 1 }
            if role(m[0]) == .merge { degree[m[1], default: 0] += 1 }
        }
        return Set(degree.compactMap { id, d in
            guard role(id) == .merge, let limit = schema.policy(for: id.type).genericAfter, d > limit else { return nil }
            return id
        })
    }

    /// Entities: union-find over the live links that were not refused, between merge-type,
    /// non-generic identifiers.
    func partition() -> [Set<Identifier>] {
        partition(over: livePairs().filter { !refused.contains($0) })
    }

    /// Entities made by `pairs` (links between merge-type, non-generic identifiers).
    func partition(over pairs: [Set<Identifier>]) -> [Set<Identifier>] {
        var parent: [Identifier: Identifier] = [:]
        func find(_ x: Identifier) -> Identifier {
            var x = x
            while let p = parent[x], p != x { x = p }
            return x
        }
        let generic = genericIdentifiers()
        for id in identifiers where role(id) == .merge && !generic.contains(id) { parent[id] = id }
        for pair in pairs {
            let m = Array(pair)
            guard parent[m[0]] != nil, parent[m[1]] != nil else { continue }
            let (ra, rb) = (find(m[0]), find(m[1]))
            if ra != rb { parent[ra] = rb }
        }
        var groups: [Identifier: Set<Identifier>] = [:]
        for id in parent.keys { groups[find(id), default: []].insert(id) }
        return Array(groups.values)
    }

    /// What an entity's summary must say: the fold of the events anchored at its members.
    struct ExpectedSummary: Equatable {
        var events = 0
        var revenueMicros: Int64 = 0
        var firstSeen: Int64?
        var lastSeen: Int64?
        var byType: [String: Int] = [:]
    }

    func summary(of entity: Set<Identifier>) -> ExpectedSummary {
        var s = ExpectedSummary()
        for e in events.values where entity.contains(e.anchor) {
            s.events += 1
            s.revenueMicros += e.amountMicros
            s.firstSeen = min(s.firstSeen ?? e.time, e.time)
            s.lastSeen = max(s.lastSeen ?? e.time, e.time)
            s.byType[e.type, default: 0] += 1
        }
        return s
    }

    /// A profile computed directly from the entity's events, rule by rule as docs/formats.md
    /// states them (default profile schema).
    struct ExpectedProfile: Equatable, CustomStringConvertible {
        var orders = 0
        var lastOrder: Int64?
        var channels: [String: Int] = [:]
        /// attribute → (value, source, seen, count)
        var golden: [String: String] = [:]
        var products: [String: Int] = [:]
        var campaigns: [String: Int] = [:]
        var lists: [String] = []
        var description: String { "orders \(orders) last \(lastOrder.map(String.init) ?? "-") channels \(channels) golden \(golden) products \(products) campaigns \(campaigns) lists \(lists)" }
    }

    func profile(of entity: Set<Identifier>) -> ExpectedProfile {
        let p = schema.profile
        var x = ExpectedProfile()
        var observations: [String: [(value: String, source: String, time: Int64)]] = [:]
        var subscribed: [String: Int64] = [:], unsubscribed: [String: Int64] = [:]
        for e in events.values where entity.contains(e.anchor) {
            x.channels[e.source, default: 0] += 1
            if p.orderTypes.contains(e.type) { x.orders += 1; x.lastOrder = max(x.lastOrder ?? e.time, e.time) }
            for (key, value) in e.attributes {
                if let name = p.attributes.first(where: { ($0.value.keys ?? [$0.key]).contains(key) })?.key {
                    observations[name, default: []].append((value, e.source, e.time))
                }
                if p.productKeys.contains(key) && p.viewTypes.contains(e.type) { x.products[value, default: 0] += 1 }
                if p.campaignKeys.contains(key) { x.campaigns[value, default: 0] += 1 }
                if p.listKeys.contains(key) && p.subscribeTypes.contains(e.type) { subscribed[value] = max(subscribed[value] ?? .min, e.time) }
                if p.listKeys.contains(key) && p.unsubscribeTypes.contains(e.type) { unsubscribed[value] = max(unsubscribed[value] ?? .min, e.time) }
            }
        }
        x.lists = subscribed.filter { $0.value > (unsubscribed[$0.key] ?? .min) }.map(\.key).sorted()
        for (name, obs) in observations {
            let rule = p.attributes[name]!.rule
            func rank(_ source: String) -> Int { p.sourcePriority.firstIndex(of: source) ?? p.sourcePriority.count }
            let best = obs.map { rank($0.source) }.min()!
            let eligible = rule == .sourcePriority ? obs.filter { rank($0.source) == best } : obs
            var winner: (value: String, source: String, time: Int64, count: Int)?
            for value in Set(eligible.map(\.value)) {
                let mine = eligible.filter { $0.value == value }
                let latest = mine.max { $0.time != $1.time ? $0.time < $1.time : $0.source > $1.source }!
                let count = obs.filter { $0.value == value }.count
                let candidate = (value, latest.source, latest.time, count)
                guard let w = winner else { winner = candidate; continue }
                let better: Bool
                switch rule {
                case .mostFrequent:
                    better = count != w.count ? count > w.count : latest.time != w.time ? latest.time > w.time : value < w.value
                case .mostRecent, .sourcePriority:
                    better = latest.time != w.time ? latest.time > w.time : count != w.count ? count > w.count : value < w.value
                }
                if better { winner = candidate }
            }
            if let w = winner { x.golden[name] = "\(w.value)|\(w.source)|\(w.time)|\(w.count)" }
        }
        return x
    }

    var liveEventCount: Int { events.count }
    var linkCount: Int { livePairs().count }
}
