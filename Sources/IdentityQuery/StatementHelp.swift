/// The reference of every statement: syntax, what it does, and an example. `.help` prints it,
/// and `docs/query-language.md` is generated from it by a test that runs every example.
public struct StatementHelp: Sendable {
    /// The statement keyword.
    public var name: String
    /// Its syntax.
    public var syntax: String
    /// What it does.
    public var summary: String
    /// An example statement (run against the documentation's sample data).
    public var example: String

    /// Every statement, in the order of the documentation.
    public static let all: [StatementHelp] = [
        StatementHelp(
            name: "RESOLVE", syntax: "RESOLVE type:value",
            summary: "The entity of an identifier, normalized as on load (so RESOLVE email:ALICE@Example.com finds alice@example.com).",
            example: "RESOLVE email:ALICE@example.com"),
        StatementHelp(
            name: "ENTITY", syntax: "ENTITY id | ENTITY OF type:value",
            summary: "The Customer 360 profile: identifiers by type, events, revenue, first and last seen, events by type, orders, average order value (aov), last order, lifecycle stage, the golden record (profile.<attribute>: the surviving value with its source, time, count and rule), channels by events (the first is the preferred one), most-used device, top products viewed, campaigns, subscribed lists, RFM scores (as of the last COMPUTE RFM) and the segments it is in. An id that was merged away says where it went and shows the entity it is part of now.",
            example: "ENTITY OF cookie:c-1"),
        StatementHelp(
            name: "IDENTIFIERS", syntax: "IDENTIFIERS OF (id | type:value) [TYPE type]",
            summary: "The identifiers of an entity, with their number of links and of events naming them.",
            example: "IDENTIFIERS OF email:alice@example.com"),
        StatementHelp(
            name: "EVENTS", syntax: "EVENTS OF (id | type:value) [TYPE t] [SINCE time] [UNTIL time] [LIMIT n]",
            summary: "Events naming the entity's identifiers (or one identifier in no entity, such as an IP), newest first: a k-way merge of the members' timelines. Times are '2024-05-01', '2024-05-01T12:00:00Z' or epoch milliseconds; SINCE and UNTIL are inclusive.",
            example: "EVENTS OF cookie:c-1 SINCE '2024-01-02' LIMIT 3"),
        StatementHelp(
            name: "EVENT", syntax: "EVENT 'event-id'",
            summary: "One event by the caller's event_id: its time, type, source, the identifiers it names, the one it counts toward (its anchor) and its props. A retracted or erased event says so.",
            example: "EVENT 'e3'"),
        StatementHelp(
            name: "NEIGHBORS", syntax: "NEIGHBORS type:value [DEPTH n]",
            summary: "Identifiers linked to this one, breadth first up to DEPTH (1 to 6, default 1), with the link's evidence and whether it merges or only relates.",
            example: "NEIGHBORS cookie:c-1 DEPTH 2"),
        StatementHelp(
            name: "PATH", syntax: "PATH type:value TO type:value",
            summary: "Why two identifiers are one entity: the shortest chain of merging links between them and, for each link, the events that assert it (ids and times) and the number of link records. Identifiers in different entities get the chain that only relates them, if any.",
            example: "PATH cookie:c-1 TO crm:42"),
        StatementHelp(
            name: "HISTORY", syntax: "HISTORY (id | type:value)",
            summary: "Merges, splits and erasures that involved the entity, oldest first, with their causes.",
            example: "HISTORY email:bob@example.com"),
        StatementHelp(
            name: "LINEAGE", syntax: "LINEAGE (id | type:value)",
            summary: "How the entity came to be, oldest first: its own merges, splits and erasures and, back through each merge, those of the entities merged into it (and, for an entity that split off, those of the one it left).",
            example: "LINEAGE email:alice@example.com"),
        StatementHelp(
            name: "RELATED", syntax: "RELATED (id | type:value)",
            summary: "Entities connected to this one without being merged: through a relate identifier (a shared IP or address) or a refused link.",
            example: "RELATED email:alice@example.com"),
        StatementHelp(
            name: "FIND", syntax: "FIND ENTITIES [WHERE condition] [ORDER BY field [ASC|DESC]] [LIMIT n]",
            summary: "Entities whose profile matches. Number fields: id, size, events, revenue, orders, aov, events.<type> (events of one type), rfm (the three digits, 543), rfm_r, rfm_f, rfm_m, and any identifier type (how many identifiers of that type); time fields: first_seen, last_seen, last_order; text fields: lifecycle (lead, first_order, active, hero, waiting, lost), preferred_channel, most_used_device, top_product, profile.<attribute> (golden record; an identifier type compared with text, email = 'a@x.com', means the attribute too); set fields, compared with = (contains) and != only: product (viewed), campaign, list (subscribed). Conditions: field = != < <= > >= value, HAS type, IN SEGMENT name, AND, OR, NOT, parentheses. An entity without a value (no order, not scored) only satisfies !=, and sorts last.",
            example: "FIND ENTITIES WHERE revenue > 10 AND HAS email ORDER BY revenue DESC LIMIT 5"),
        StatementHelp(
            name: "FIND", syntax: "FIND ENTITIES WHERE lifecycle = 'stage' … ORDER BY field",
            summary: "Profile fields in conditions and ordering: the stage is computed at the query's time (idgraph query --as-of '2024-01-06' for archives from the past).",
            example: "FIND ENTITIES WHERE lifecycle = 'first_order' AND profile.country = 'FR' AND product != 'B-7' ORDER BY profile.name LIMIT 10"),
        StatementHelp(
            name: "COUNT", syntax: "COUNT ENTITIES [WHERE condition]",
            summary: "How many entities match (conditions as in FIND).",
            example: "COUNT ENTITIES WHERE email >= 1 OR events.order > 0"),
        StatementHelp(
            name: "HOUSEHOLD", syntax: "HOUSEHOLD OF (id | type:value)",
            summary: "The entities sharing an address with this one (the relate type named by the schema's profile.household_type, address by default), each with its identifiers, this entity included.",
            example: "HOUSEHOLD OF email:alice@example.com"),
        StatementHelp(
            name: "CREATE", syntax: "CREATE SEGMENT name AS FIND ENTITIES WHERE condition",
            summary: "Defines (or replaces) a segment: a named condition, stored in the database. Membership is evaluated when asked — ENTITY lists an entity's segments, IN SEGMENT name selects them, idgraph export --segment name writes them — so it always follows merges, splits and new events.",
            example: "CREATE SEGMENT shoppers AS FIND ENTITIES WHERE orders >= 1"),
        StatementHelp(
            name: "SEGMENTS", syntax: "SEGMENTS",
            summary: "Every segment with its definition and how many entities are in it now.",
            example: "SEGMENTS"),
        StatementHelp(
            name: "DROP", syntax: "DROP SEGMENT name",
            summary: "Removes a segment definition.",
            example: "DROP SEGMENT shoppers"),
        StatementHelp(
            name: "COMPUTE", syntax: "COMPUTE RFM",
            summary: "Scores every entity with an order 1 to 5 on recency (last order), frequency (orders) and monetary value (revenue): quintiles over all such entities, equal values sharing a score. The scores are stored per entity id with the time they were computed, untouched by later writes: an entity grown by a merge keeps its id's score and parts split off since have none, until the next COMPUTE RFM.",
            example: "COMPUTE RFM"),
        StatementHelp(
            name: "FIND", syntax: "FIND ENTITIES WHERE rfm_r >= 4 … ORDER BY rfm DESC",
            summary: "RFM scores in conditions and ordering (after COMPUTE RFM): rfm_r, rfm_f, rfm_m (1–5) and rfm (the three digits as one number). Entities without a score satisfy only != and sort last.",
            example: "FIND ENTITIES WHERE rfm_m >= 3 ORDER BY rfm DESC"),
        StatementHelp(
            name: "LINK", syntax: "LINK type:value [TO] type:value",
            summary: "Assert a link without an event (one piece of evidence), in one write transaction; the entities merge if both identifiers merge.",
            example: "LINK crm:42 TO loyalty:L-7"),
        StatementHelp(
            name: "UNLINK", syntax: "UNLINK type:value [FROM] type:value",
            summary: "Remove a link and all of its evidence; the entity splits if it is no longer connected.",
            example: "UNLINK cookie:c-1 FROM email:alice@example.com"),
        StatementHelp(
            name: "FORGET", syntax: "FORGET type:value",
            summary: "Erase an identifier, its links and the events that named only it (right to erasure); a tombstone keeps it from coming back.",
            example: "FORGET device:shared-tablet"),
        StatementHelp(
            name: "RETRACT", syntax: "RETRACT 'event-id'",
            summary: "Remove one event and the evidence it gave; its id stays known, so a replay does not bring it back.",
            example: "RETRACT 'e5'"),
        StatementHelp(
            name: "PREVIEW", syntax: "PREVIEW <archive line>",
            summary: "What one event or control record would do — which identifiers it would create, which entities it would merge or split — without writing anything: it is applied in a write transaction that is then aborted, so the answer is exact.",
            example: #"PREVIEW {"ids":{"email":"bob@example.com","loyalty":"L-7"}}"#),
        StatementHelp(
            name: "STATS", syntax: "STATS",
            summary: "Counts of the whole store.",
            example: "STATS"),
        StatementHelp(
            name: "SCHEMA", syntax: "SCHEMA",
            summary: "Identifier types with their policies (built-in, from the schema file, or first seen in the data), and the default policy.",
            example: "SCHEMA"),
        StatementHelp(
            name: "EXPLAIN", syntax: "EXPLAIN statement",
            summary: "Runs the statement and shows its plan: the indexes it touched, the rows it read, and the time it took. EXPLAIN of a write performs the write.",
            example: "EXPLAIN EVENTS OF email:alice@example.com LIMIT 2"),
    ]

    /// The help of one statement, by keyword (case-insensitive).
    public static func named(_ name: String) -> StatementHelp? {
        all.first { $0.name == name.uppercased() || ($0.name == "NEIGHBORS" && name.uppercased() == "NEIGHBOURS") }
    }

    /// The sample data the examples run against (native NDJSON).
    public static let sampleArchive = """
        {"event_id":"e1","ts":"2024-01-01T10:00:00Z","source":"web","type":"page_view","ids":{"cookie":"c-1","ip":"203.0.113.7"}}
        {"event_id":"e2","ts":"2024-01-02T10:00:00Z","source":"web","type":"login","ids":{"cookie":"c-1","email":"Alice@Example.com"},"props":{"name":"Alice M.","country":"FR"}}
        {"event_id":"e3","ts":"2024-01-03T10:00:00Z","source":"shop","type":"order","ids":{"email":"alice@example.com","crm":"42","address":"1 Rue Verte, Paris"},"props":{"amount":19.5,"sku":"A-42","name":"Alice Martin"}}
        {"event_id":"e4","ts":"2024-01-04T10:00:00Z","source":"app","type":"app_open","ids":{"cookie":"c-1","device":"shared-tablet"}}
        {"event_id":"e5","ts":"2024-01-05T10:00:00Z","source":"web","type":"login","ids":{"email":"bob@example.com","cookie":"c-2","ip":"203.0.113.7"}}
        {"event_id":"e6","ts":"2024-01-06T10:00:00Z","source":"app","type":"app_open","ids":{"cookie":"c-2","device":"shared-tablet"}}
        {"op":"unlink","a":"cookie:c-2","b":"device:shared-tablet"}
        {"event_id":"e7","ts":"2024-01-07T10:00:00Z","source":"shop","type":"order","ids":{"email":"bob@example.com","address":"1 Rue Verte, Paris"},"props":{"amount":5,"country":"FR"}}
        """
}
