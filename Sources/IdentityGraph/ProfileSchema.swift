import Foundation

/// How one golden-record attribute picks its value among everything an entity's events said.
public enum SurvivorshipRule: String, Codable, Sendable, CaseIterable {
    /// The value seen most recently (ties: the more frequent, then the smaller value).
    case mostRecent = "most_recent"
    /// The value seen most often (ties: the more recent, then the smaller value).
    case mostFrequent = "most_frequent"
    /// The value from the highest source in ``ProfileSchema/sourcePriority`` that gave one;
    /// among that source's values, the most recent. Sources not listed rank last.
    case sourcePriority = "source_priority"

    /// Decodes a rule, naming the valid ones when the text is none of them.
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let rule = SurvivorshipRule(rawValue: text) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath,
                debugDescription: "'\(text)' is not a survivorship rule: use \(Self.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        self = rule
    }
}

/// One attribute of the golden record.
public struct AttributeRule: Codable, Sendable, Equatable {
    /// How its value is chosen.
    public var rule: SurvivorshipRule
    /// The `props`/`traits` keys that feed it (default: the attribute's own name).
    public var keys: [String]?

    /// Creates a rule.
    public init(rule: SurvivorshipRule, keys: [String]? = nil) {
        self.rule = rule
        self.keys = keys
    }
}

/// Thresholds of the lifecycle stage (docs/formats.md, "Profiles").
public struct LifecycleThresholds: Codable, Sendable, Equatable {
    /// A last order at most this many days ago keeps an entity active (`first_order`, `active`, `hero`).
    public var activeDays: Int
    /// A last order more than this many days ago makes it `lost` (between the two: `waiting`).
    public var lostDays: Int
    /// At least this many orders make an active entity a `hero`...
    public var heroOrders: Int
    /// ...and so does at least this much revenue.
    public var heroRevenue: Double

    /// The documented defaults: active 90 days, lost after 365, hero from 5 orders or 1,000 revenue.
    public init(activeDays: Int = 90, lostDays: Int = 365, heroOrders: Int = 5, heroRevenue: Double = 1000) {
        self.activeDays = activeDays
        self.lostDays = lostDays
        self.heroOrders = heroOrders
        self.heroRevenue = heroRevenue
    }

    enum CodingKeys: String, CodingKey {
        case activeDays = "active_days", lostDays = "lost_days", heroOrders = "hero_orders", heroRevenue = "hero_revenue"
    }

    /// Decodes thresholds; missing fields take the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LifecycleThresholds()
        activeDays = try c.decodeIfPresent(Int.self, forKey: .activeDays) ?? d.activeDays
        lostDays = try c.decodeIfPresent(Int.self, forKey: .lostDays) ?? d.lostDays
        heroOrders = try c.decodeIfPresent(Int.self, forKey: .heroOrders) ?? d.heroOrders
        heroRevenue = try c.decodeIfPresent(Double.self, forKey: .heroRevenue) ?? d.heroRevenue
    }
}

/// What a database makes of event `props` and Segment `traits` for Customer 360 profiles: the
/// golden-record attributes with their survivorship rules, which event types are orders, product
/// views and (un)subscriptions, which keys name products, campaigns and lists, and the lifecycle
/// thresholds. Part of ``Schema`` (`"profile"` in a schema file); every field has a default.
public struct ProfileSchema: Codable, Sendable, Equatable {
    /// Golden-record attributes by name.
    public var attributes: [String: AttributeRule]
    /// Sources from most to least trusted, for ``SurvivorshipRule/sourcePriority``.
    public var sourcePriority: [String]
    /// Event types that are orders (counted in `orders`, `last_order`, average order value).
    public var orderTypes: [String]
    /// Event types whose product key counts as a product view.
    public var viewTypes: [String]
    /// Keys naming a product (on view events).
    public var productKeys: [String]
    /// Keys naming a campaign (on any event).
    public var campaignKeys: [String]
    /// Event types that subscribe to the list their list key names...
    public var subscribeTypes: [String]
    /// ...and that unsubscribe from it.
    public var unsubscribeTypes: [String]
    /// Keys naming a list (newsletter) on (un)subscribe events.
    public var listKeys: [String]
    /// The `relate` identifier type whose shared values make a household (`HOUSEHOLD OF`).
    public var householdType: String
    /// Lifecycle thresholds.
    public var lifecycle: LifecycleThresholds

    /// The documented defaults (docs/formats.md, "Profiles").
    public init() {
        attributes = [
            "name": AttributeRule(rule: .mostRecent), "first_name": AttributeRule(rule: .mostRecent),
            "last_name": AttributeRule(rule: .mostRecent), "email": AttributeRule(rule: .sourcePriority),
            "phone": AttributeRule(rule: .sourcePriority), "country": AttributeRule(rule: .mostFrequent),
            "city": AttributeRule(rule: .mostFrequent), "language": AttributeRule(rule: .mostRecent),
        ]
        sourcePriority = ["crm", "shop", "call_centre", "app", "web", "segment"]
        orderTypes = ["order", "Order Completed", "purchase"]
        viewTypes = ["product_view", "Product Viewed", "page_view", "page"]
        productKeys = ["sku", "product_id"]
        campaignKeys = ["utm_campaign", "campaign"]
        subscribeTypes = ["subscribe", "newsletter_subscribe", "Subscribed"]
        unsubscribeTypes = ["unsubscribe", "newsletter_unsubscribe", "Unsubscribed"]
        listKeys = ["list"]
        householdType = "address"
        lifecycle = LifecycleThresholds()
    }

    enum CodingKeys: String, CodingKey {
        case attributes, lifecycle
        case sourcePriority = "source_priority", orderTypes = "order_types", viewTypes = "view_types"
        case productKeys = "product_keys", campaignKeys = "campaign_keys", subscribeTypes = "subscribe_types"
        case unsubscribeTypes = "unsubscribe_types", listKeys = "list_keys", householdType = "household_type"
    }

    /// Decodes a profile section; missing fields take the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ProfileSchema()
        attributes = try c.decodeIfPresent([String: AttributeRule].self, forKey: .attributes) ?? d.attributes
        sourcePriority = try c.decodeIfPresent([String].self, forKey: .sourcePriority) ?? d.sourcePriority
        orderTypes = try c.decodeIfPresent([String].self, forKey: .orderTypes) ?? d.orderTypes
        viewTypes = try c.decodeIfPresent([String].self, forKey: .viewTypes) ?? d.viewTypes
        productKeys = try c.decodeIfPresent([String].self, forKey: .productKeys) ?? d.productKeys
        campaignKeys = try c.decodeIfPresent([String].self, forKey: .campaignKeys) ?? d.campaignKeys
        subscribeTypes = try c.decodeIfPresent([String].self, forKey: .subscribeTypes) ?? d.subscribeTypes
        unsubscribeTypes = try c.decodeIfPresent([String].self, forKey: .unsubscribeTypes) ?? d.unsubscribeTypes
        listKeys = try c.decodeIfPresent([String].self, forKey: .listKeys) ?? d.listKeys
        householdType = try c.decodeIfPresent(String.self, forKey: .householdType) ?? d.householdType
        lifecycle = try c.decodeIfPresent(LifecycleThresholds.self, forKey: .lifecycle) ?? d.lifecycle
    }
}

/// What an event type means for profiles.
struct EventTypeRole: OptionSet, Sendable {
    let rawValue: UInt8
    static let order = EventTypeRole(rawValue: 1)
    static let view = EventTypeRole(rawValue: 2)
    static let subscribe = EventTypeRole(rawValue: 4)
    static let unsubscribe = EventTypeRole(rawValue: 8)
}

/// What a `props`/`traits` key feeds.
private struct KeyRole: Sendable {
    /// The attribute it feeds: its index in ``ProfileRules/attributeNames``.
    var attribute: Int?
    var product = false, campaign = false, list = false
}

/// A ``ProfileSchema`` turned into lookups by bytes: what one event contributes to a summary.
struct ProfileRules: Sendable {
    let profile: ProfileSchema
    /// What each known key feeds; searched linearly (a schema names a dozen keys), comparing
    /// bytes in place, so reading an event's attributes allocates nothing for unknown keys.
    private let keyRoles: [(key: [UInt8], role: KeyRole)]
    /// The golden record's attribute names in byte order (a tally's name is its index here, so
    /// indices compare as the names do).
    let attributeNames: [[UInt8]]
    private let rolesByName: [String: EventTypeRole]
    /// Roles by interned event-type id, extended as the catalog grows.
    private var roles: [EventTypeRole] = []

    init(_ profile: ProfileSchema) {
        self.profile = profile
        var roles: [[UInt8]: KeyRole] = [:]
        // By name, so a key listed under two attributes feeds the same one in every process.
        let names = profile.attributes.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        attributeNames = names.map { Array($0.utf8) }
        for (index, name) in names.enumerated() {
            for key in profile.attributes[name]?.keys ?? [name] { roles[Array(key.utf8), default: KeyRole()].attribute = index }
        }
        for key in profile.productKeys { roles[Array(key.utf8), default: KeyRole()].product = true }
        for key in profile.campaignKeys { roles[Array(key.utf8), default: KeyRole()].campaign = true }
        for key in profile.listKeys { roles[Array(key.utf8), default: KeyRole()].list = true }
        keyRoles = roles.map { ($0.key, $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        var byName: [String: EventTypeRole] = [:]
        for t in profile.orderTypes { byName[t, default: []].insert(.order) }
        for t in profile.viewTypes { byName[t, default: []].insert(.view) }
        for t in profile.subscribeTypes { byName[t, default: []].insert(.subscribe) }
        for t in profile.unsubscribeTypes { byName[t, default: []].insert(.unsubscribe) }
        rolesByName = byName
    }

    /// Makes the role table cover every event type (by interned id).
    mutating func cover(_ eventTypes: [String]) {
        while roles.count < eventTypes.count { roles.append(rolesByName[eventTypes[roles.count]] ?? []) }
    }

    /// How many event types (by id) the role table covers.
    var coveredTypes: Int { roles.count }

    func role(ofType type: UInt32) -> EventTypeRole { Int(type) < roles.count ? roles[Int(type)] : [] }

    /// What an event adds to the summary of its anchor (and its entity).
    private func role(ofKey key: UnsafeRawBufferPointer) -> KeyRole? {
        for entry in keyRoles where entry.key.count == key.count {
            if entry.key.withUnsafeBytes({ $0.elementsEqual(key) }) { return entry.role }
        }
        return nil
    }

    func contribution(timestamp: Int64, type: UInt32, source: UInt32, amountMicros: Int64?, attributes: AttributeList) -> SummaryContribution {
        attributes.bytes.withUnsafeBytes {
            contribution(timestamp: timestamp, type: type, source: source, amountMicros: amountMicros, attributes: $0, count: attributes.count)
        }
    }

    /// Whether an event of this type with these attributes counts toward any tally (checked
    /// without building the tallies).
    func hasTallies(type: UInt32, attributes: AttributeList) -> Bool {
        attributes.bytes.withUnsafeBytes { hasTallies(type: type, attributes: $0, count: attributes.count) }
    }

    /// ``hasTallies(type:attributes:)`` for `count` attributes encoded in `attributes`.
    func hasTallies(type: UInt32, attributes: UnsafeRawBufferPointer, count: Int) -> Bool {
        let role = role(ofType: type)
        var found = false
        AttributeList.forEach(in: attributes, count: count) { key, _ in
            guard !found, let k = self.role(ofKey: key) else { return }
            found = k.attribute != nil || k.campaign || (k.product && role.contains(.view))
                || (k.list && (role.contains(.subscribe) || role.contains(.unsubscribe)))
        }
        return found
    }

    /// The contribution of an event whose `count` attributes are encoded in `attributes`
    /// (``AttributeList``'s form).
    func contribution(timestamp: Int64, type: UInt32, source: UInt32, amountMicros: Int64?, attributes: UnsafeRawBufferPointer, count: Int) -> SummaryContribution {
        var c = SummaryContribution(timestamp: timestamp, type: type, source: source, amountMicros: amountMicros ?? 0, isOrder: role(ofType: type).contains(.order))
        forEachTally(type: type, attributes: attributes, count: count) { kind, attribute, value in
            c.tallies.append(kind == .attribute
                ? TallyKey(kind: .attribute, name: attributeNames[attribute], source: source, value: Array(value))
                : TallyKey(kind: kind, value: Array(value)))
        }
        return c
    }

    /// Calls `body` for each tally an event of `type` with `count` attributes encoded in
    /// `attributes` (``AttributeList``'s form) counts toward: its kind, the index of its attribute
    /// in ``attributeNames`` (0 for other kinds) and its value (bytes of `attributes`). An
    /// attribute's tally also names the event's source; the other kinds name none.
    func forEachTally(type: UInt32, attributes: UnsafeRawBufferPointer, count: Int, _ body: (TallyKind, Int, UnsafeRawBufferPointer) -> Void) {
        let role = role(ofType: type)
        AttributeList.forEach(in: attributes, count: count) { key, value in
            guard let k = self.role(ofKey: key) else { return }
            if let attribute = k.attribute { body(.attribute, attribute, value) }
            if k.product, role.contains(.view) { body(.product, 0, value) }
            if k.campaign { body(.campaign, 0, value) }
            if k.list {
                if role.contains(.subscribe) { body(.subscribed, 0, value) }
                if role.contains(.unsubscribe) { body(.unsubscribed, 0, value) }
            }
        }
    }

    func contribution(of event: EventRecord) -> SummaryContribution {
        contribution(timestamp: event.timestamp, type: event.typeID, source: event.sourceID, amountMicros: event.amountMicros, attributes: event.attributes)
    }
}
