import Foundation
import IdentityGraph

/// A cell of a result.
public enum Value: Equatable, Sendable, CustomStringConvertible {
    /// No value.
    case null
    /// An integer.
    case int(Int64)
    /// A decimal number.
    case double(Double)
    /// Text.
    case text(String)

    public var description: String {
        switch self {
        case .null: return ""
        case .int(let n): return String(n)
        case .double(let d): return String(format: "%.2f", d)
        case .text(let s): return s
        }
    }
}

/// What a statement returns: a table and notes (merges caused, redirects followed, …).
public struct QueryResult: Equatable, Sendable {
    /// Column names.
    public var columns: [String]
    /// Rows of cells, one per column.
    public var rows: [[Value]]
    /// Messages for the reader, printed after the table.
    public var notes: [String]

    /// Creates a result.
    public init(columns: [String] = [], rows: [[Value]] = [], notes: [String] = []) {
        self.columns = columns
        self.rows = rows
        self.notes = notes
    }
}

/// Runs statements against a graph: reads in one read transaction, writes in one write transaction.
public struct Executor {
    /// The graph queried.
    public let graph: IdentityGraph
    /// Turns an archive line into an operation, for `PREVIEW` (the ingest layer provides it).
    public let recordParser: (@Sendable (String) throws -> GraphOperation)?

    /// The time profiles are evaluated at (lifecycle stages, RFM computations); `nil` is the
    /// current time. `--as-of` sets it, so archives from the past can be examined as of then.
    public var now: Int64?

    /// An executor over `graph`; `recordParser` enables `PREVIEW`.
    public init(graph: IdentityGraph, recordParser: (@Sendable (String) throws -> GraphOperation)? = nil, now: Int64? = nil) {
        self.graph = graph
        self.recordParser = recordParser
        self.now = now
    }

    /// What a statement touched, for `EXPLAIN`.
    final class Trace {
        var steps: [String] = []
        var counts: [(String, Int)] = []
        func count(_ what: String, _ n: Int = 1) {
            if let i = counts.firstIndex(where: { $0.0 == what }) { counts[i].1 += n } else { counts.append((what, n)) }
        }
    }

    /// Parses and runs one statement.
    public func run(_ text: String) throws -> QueryResult {
        try run(Parser.parse(text))
    }

    /// Runs a parsed statement.
    public func run(_ statement: Statement) throws -> QueryResult {
        if case .explain(let inner) = statement { return try explain(inner) }
        return try execute(statement, trace: Trace())
    }

    private func explain(_ statement: Statement) throws -> QueryResult {
        let trace = Trace()
        let started = DispatchTime.now().uptimeNanoseconds
        let result = try execute(statement, trace: trace)
        let micros = Double(DispatchTime.now().uptimeNanoseconds - started) / 1000
        var rows: [[Value]] = trace.steps.enumerated().map { [.text("step \($0.offset + 1)"), .text($0.element)] }
        for (what, n) in trace.counts { rows.append([.text(what), .int(Int64(n))]) }
        rows.append([.text("rows returned"), .int(Int64(result.rows.count))])
        rows.append([.text("time"), .text(String(format: "%.1f µs", micros))])
        return QueryResult(columns: ["plan", "detail"], rows: rows, notes: statement.writes ? ["EXPLAIN ran the write: it is committed"] : [])
    }

    private func execute(_ statement: Statement, trace: Trace) throws -> QueryResult {
        switch statement {
        case .link(let a, let b): return try write([.link(a, b)], trace: trace, what: "LINK")
        case .unlink(let a, let b): return try write([.unlink(a, b)], trace: trace, what: "UNLINK")
        case .forget(let a): return try write([.forget(a)], trace: trace, what: "FORGET")
        case .retract(let id): return try write([.retract(eventID: Array(id.utf8))], trace: trace, what: "RETRACT")
        case .explain(let inner): return try explain(inner)
        case .preview(let line): return try preview(line, trace: trace)
        case .createSegment(let name, let condition, let definition):
            trace.steps.append("store the definition in meta (one write transaction), then count its members")
            let stored = try graph.read { try $0.segments() }
            let existed = stored[name] != nil
            // Refuse a definition that would reach itself through IN SEGMENT, before storing it.
            var pending = Self.segmentsReferenced(by: condition)
            var seen: Set<String> = []
            while let next = pending.popLast() {
                if next == name { throw QueryError("segment \(name) would refer to itself (through IN SEGMENT)") }
                guard seen.insert(next).inserted else { continue }
                guard let text = stored[next] else { throw QueryError("no segment named \(next); SEGMENTS lists them") }
                if case .count(let inner?) = try Parser.parse("COUNT ENTITIES WHERE " + text) { pending += Self.segmentsReferenced(by: inner) }
            }
            try graph.defineSegment(name, definition: definition)
            let count = try execute(Parser.parse("COUNT ENTITIES WHERE IN SEGMENT \(name)"), trace: trace)
            let n = count.rows.first?.first ?? .int(0)
            return QueryResult(notes: ["segment \(name) \(existed ? "replaced" : "created"): \(n) entit\(n == .int(1) ? "y matches" : "ies match") now; membership is evaluated when asked, so it follows every merge and split"])
        case .dropSegment(let name):
            trace.steps.append("remove the definition from meta (one write transaction)")
            guard try graph.dropSegment(name) else { throw QueryError("no segment named \(name); SEGMENTS lists them") }
            return QueryResult(notes: ["segment \(name) dropped"])
        case .computeRFM:
            trace.steps.append("scan every entity's totals, rank last order, orders and revenue, rewrite the rfm table (one write transaction)")
            let report = try graph.computeRFM(now: now)
            trace.count("entities scanned", report.entities)
            return QueryResult(columns: ["field", "value"], rows: [
                [.text("entities"), .int(Int64(report.entities))], [.text("scored"), .int(Int64(report.scored))],
                [.text("computed_at"), .text(Timestamp.format(report.computedAt))],
            ], notes: ["entities without an order get no score; scores stay as computed until the next COMPUTE RFM"])
        default:
            let time = now ?? currentTimeMillis()
            return try graph.read { reader in try Query(reader: reader, trace: trace, now: time, segments: SegmentBook(), thresholds: reader.schema.profile.lifecycle).run(statement) }
        }
    }

    /// The segments a condition names with IN SEGMENT.
    static func segmentsReferenced(by condition: Condition) -> [String] {
        switch condition {
        case .inSegment(let name): return [name]
        case .and(let a, let b), .or(let a, let b): return segmentsReferenced(by: a) + segmentsReferenced(by: b)
        case .not(let a): return segmentsReferenced(by: a)
        case .compare, .compareText, .has: return []
        }
    }

    private func preview(_ line: String, trace: Trace) throws -> QueryResult {
        guard let recordParser else { throw QueryError("PREVIEW needs the archive parser; run it from idgraph query or idgraph shell") }
        let op: GraphOperation
        do { op = try recordParser(line) } catch { throw QueryError("PREVIEW: \(error)") }
        trace.steps.append("apply in a write transaction, read the outcome, abort: nothing is written")
        let p: Preview
        do { p = try graph.preview([op]) } catch GraphError.invalidOperation(_, let reason) { throw QueryError("PREVIEW: \(reason)") }
        var rows: [[Value]] = []
        for change in p.identifiers {
            let before = change.known ? (change.entityBefore.map { "entity \($0)" } ?? "in no entity") : "new"
            let after = change.entityAfter.map { "entity \($0)" } ?? "in no entity"
            rows.append([.text("identifier"), .text(change.identifier.description), .text("\(before) → \(after)")])
        }
        for h in p.history {
            let what: String
            switch h.kind {
            case .merge: what = "entity \(h.entities[1]) would merge into \(h.entities[0])"
            case .split: what = "entit\(h.entities.count > 2 ? "ies" : "y") \(h.entities.dropFirst().map(String.init).joined(separator: ", ")) would split off from \(h.entities[0])"
            case .demoted: what = "an identifier of \(h.entities[0]) would turn generic and leave it"
            case .promoted: what = "a generic identifier would turn back and join its neighbours"
            case .refused: what = "a link between entities \(h.entities[0]) and \(h.entities[1]) would be refused (limit): they would stay apart, related"
            case .forget: what = h.entities.isEmpty ? "an identifier would be erased" : "an identifier of \(h.entities[0]) would be erased"
            case .erased: what = "entity \(h.entities[0]) would lose its last identifier"
            }
            rows.append([.text(h.kind.name), .text(what), .null])
        }
        let r = p.report
        var summary = "it would store \(r.eventsStored) event\(r.eventsStored == 1 ? "" : "s"), create \(r.identifiersCreated) identifier\(r.identifiersCreated == 1 ? "" : "s"), cause \(r.merges) merge\(r.merges == 1 ? "" : "s") and \(r.splits) split\(r.splits == 1 ? "" : "s")"
        if r.duplicateEvents > 0 { summary = "the event id is already stored: the event would be skipped" }
        return QueryResult(columns: ["change", "subject", "detail"], rows: rows, notes: ["preview only, nothing written: " + summary])
    }

    private func write(_ ops: [GraphOperation], trace: Trace, what: String) throws -> QueryResult {
        trace.steps.append("one write transaction (\(what))")
        let r: ApplyReport
        do {
            r = try graph.apply(ops)
        } catch GraphError.invalidOperation(_, let reason) {
            throw QueryError(reason.description)
        }
        var parts: [String] = []
        if r.linksAsserted > 0 { parts.append("link added") }
        if r.linksIgnored > 0 { parts.append("link ignored (an end is erased, ignored, or both ends are the same)") }
        if r.unlinks > 0 { parts.append("link removed") }
        if r.unknownUnlinks > 0 { parts.append("no such link") }
        if r.forgotten > 0 { parts.append("identifier erased (\(r.eventsErased) event\(r.eventsErased == 1 ? "" : "s") erased with it)") }
        if r.unknownForgets > 0 { parts.append("identifier unknown: tombstone written, it will not be loaded again") }
        if r.retracted > 0 { parts.append("event retracted") }
        if r.unknownRetracts > 0 { parts.append("no such event") }
        if r.identifiersCreated > 0 { parts.append("\(r.identifiersCreated) identifier\(r.identifiersCreated == 1 ? "" : "s") created") }
        if r.merges > 0 { parts.append("\(r.merges) merge\(r.merges == 1 ? "" : "s")") }
        if r.splits > 0 { parts.append("\(r.splits) split\(r.splits == 1 ? "" : "s")") }
        return QueryResult(notes: [parts.joined(separator: "; ")])
    }
}

/// An entity met in a scan: its stored totals, and the rest read only when a field needs it.
/// A scan reuses one candidate for every entity (no allocation per entity): keep what you need.
private final class Candidate {
    private(set) var id: EntityID
    private(set) var size: Int
    private(set) var header: SummaryHeader
    var info: GraphReader.EntityInfo?
    var profile: EntityProfile?

    init(id: EntityID, size: Int, header: SummaryHeader) {
        self.id = id
        self.size = size
        self.header = header
    }

    /// Makes this candidate stand for another entity.
    func reset(id: EntityID, size: Int, header: SummaryHeader) {
        self.id = id
        self.size = size
        self.header = header
        info = nil
        profile = nil
    }

    init(_ info: GraphReader.EntityInfo) {
        id = info.id
        size = info.size
        header = SummaryHeader(info.summary)
        self.info = info
    }
}

/// The value of a field for one entity.
private enum FieldValue: Comparable {
    case number(Double)
    case text(String)
    /// Products, campaigns, lists: compared by membership.
    case set([String])
    /// The entity has no value (no event, no order, not scored, attribute never seen).
    case none

    private var rank: Int {
        switch self {
        case .number: return 0
        case .text: return 1
        case .set: return 2
        case .none: return 3
        }
    }

    static func < (a: FieldValue, b: FieldValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x < y
        case (.text(let x), .text(let y)): return x < y
        case (.set(let x), .set(let y)): return x.count < y.count
        default: return a.rank < b.rank
        }
    }
}

/// Segment conditions, parsed once per statement; guards against segments that refer to themselves.
private final class SegmentBook {
    var definitions: [String: String]?
    var parsed: [String: Condition] = [:]
    var evaluating: Set<String> = []
}

/// One statement's work inside a read transaction.
private struct Query {
    let reader: GraphReader
    let trace: Executor.Trace
    /// The time lifecycle stages are evaluated at.
    let now: Int64
    let segments: SegmentBook
    /// The schema's lifecycle thresholds, read once (not per entity).
    let thresholds: LifecycleThresholds

    func time(_ ms: Int64?) -> Value { ms.map { .text(Timestamp.format($0)) } ?? .null }

    func normalize(_ raw: RawIdentifier) throws -> Identifier {
        do {
            guard let id = try reader.normalize(raw) else {
                throw QueryError("identifiers of type \(String(decoding: raw.type, as: UTF8.self)) are ignored by the schema")
            }
            return id
        } catch let error as IdentifierError {
            throw QueryError(error.description)
        }
    }

    func node(_ raw: RawIdentifier) throws -> (Identifier, NodeID) {
        let id = try normalize(raw)
        trace.count("ident lookups")
        guard let node = try reader.node(of: id) else { throw QueryError("unknown identifier \(id)") }
        return (id, node)
    }

    /// The live entity a target stands for, with a note when a redirect was followed.
    func entity(_ target: Target, notes: inout [String]) throws -> GraphReader.EntityInfo {
        switch target {
        case .identifier(let raw):
            let (id, node) = try node(raw)
            trace.count("node reads")
            guard let info = try reader.nodeInfo(node), let e = info.entity else {
                throw QueryError("\(id) belongs to no entity (its type's role is \(try reader.nodeInfo(node)?.role.rawValue ?? "relate"); it only relates entities)")
            }
            trace.count("entity reads")
            guard let live = try reader.resolve(e) else { throw QueryError("entity \(e) of \(id) is not live") }
            return live
        case .entity(let id):
            trace.count("entity reads")
            switch try reader.entityState(id) {
            case nil: throw QueryError("unknown entity \(id)")
            case .erased?: throw QueryError("entity \(id) was erased (its last identifier was forgotten)")
            case .mergedInto(let next)?:
                guard let live = try reader.resolve(id) else { throw QueryError("entity \(id) was merged into \(next), which was erased") }
                notes.append("entity \(id) was merged into \(next)\(live.id == next ? "" : ", now part of entity \(live.id)"); showing entity \(live.id)")
                return live
            case .live(let info)?: return info
            }
        }
    }

    func run(_ statement: Statement) throws -> QueryResult {
        var notes: [String] = []
        switch statement {
        case .resolve(let raw):
            trace.steps.append("normalize, look up ident, read node, follow entity redirects")
            let id = try normalize(raw)
            trace.count("ident lookups")
            guard let node = try reader.node(of: id) else {
                return QueryResult(columns: ["identifier", "entity", "size"], notes: ["unknown identifier \(id)"])
            }
            trace.count("node reads")
            let info = try reader.nodeInfo(node)
            guard let e = info?.entity, let live = try reader.resolveSize(e) else {
                return QueryResult(columns: ["identifier", "entity", "size"], rows: [[.text(id.description), .null, .null]],
                                   notes: ["\(id) belongs to no entity (role \(info?.role.rawValue ?? "?"))"])
            }
            return QueryResult(columns: ["identifier", "entity", "size"], rows: [[.text(id.description), .int(Int64(live.id)), .int(Int64(live.size))]])

        case .entity(let target):
            trace.steps.append("resolve the entity, read its members and their nodes")
            let info = try entity(target, notes: &notes)
            let members = try reader.members(of: info.id)
            trace.count("member reads", members.count)
            var byType: [String: [String]] = [:]
            for node in members { if let n = try reader.nodeInfo(node) { byType[n.identifier.type, default: []].append(n.identifier.valueText) } }
            trace.count("node reads", members.count)
            let s = info.summary
            var rows: [[Value]] = [
                [.text("entity"), .int(Int64(info.id))],
                [.text("size"), .int(Int64(info.size))],
            ]
            for type in byType.keys.sorted() { rows.append([.text(type), .text(byType[type]!.sorted().joined(separator: ", "))]) }
            rows.append([.text("events"), .int(Int64(s.events))])
            rows.append([.text("revenue"), .double(s.revenue)])
            rows.append([.text("first_seen"), time(s.firstSeen)])
            rows.append([.text("last_seen"), time(s.lastSeen)])
            let byEventType = s.eventsByType.map { (reader.eventTypeName($0.key), $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            if !byEventType.isEmpty { rows.append([.text("events_by_type"), .text(byEventType.map { "\($0.0) \($0.1)" }.joined(separator: ", "))]) }
            rows.append([.text("created"), time(info.created)])
            rows.append([.text("updated"), time(info.updated)])
            rows += try profileRows(Candidate(info))
            return QueryResult(columns: ["field", "value"], rows: rows, notes: notes)

        case .identifiers(let target, let type):
            trace.steps.append("resolve the entity, read its members")
            let info = try entity(target, notes: &notes)
            var rows: [[Value]] = []
            for node in try reader.members(of: info.id) {
                guard let n = try reader.nodeInfo(node) else { continue }
                trace.count("node reads")
                if let type, n.identifier.type != type { continue }
                rows.append([.text(n.identifier.description), .text(n.identifier.type), .int(Int64(n.degree)), .int(Int64(try reader.timelineCount(of: node)))])
            }
            rows.sort { $0[0].description < $1[0].description }
            return QueryResult(columns: ["identifier", "type", "links", "events"], rows: rows, notes: notes)

        case .events(let target, let type, let since, let until, let limit):
            var nodes: [NodeID]
            if case .identifier(let raw) = target {
                // An identifier in no entity (an IP, an address) has its own timeline.
                let (_, node) = try node(raw)
                trace.count("node reads")
                if let e = try reader.nodeInfo(node)?.entity, let live = try reader.resolve(e) {
                    trace.count("entity reads")
                    nodes = try reader.members(of: live.id)
                } else {
                    nodes = [node]
                }
            } else {
                nodes = try reader.members(of: try entity(target, notes: &notes).id)
            }
            trace.steps.append("k-way merge of \(nodes.count) timeline\(nodes.count == 1 ? "" : "s"), newest first")
            var rows: [[Value]] = []
            var names: [NodeID: String] = [:]
            let read = try reader.events(of: nodes, type: type, since: since, until: until, limit: limit) { e in
                var ids: [String] = []
                for n in e.nodes {
                    if names[n] == nil { names[n] = try reader.nodeInfo(n)?.identifier.description ?? "#\(n)" }
                    ids.append(names[n]!)
                }
                rows.append([time(e.timestamp), e.eventID.map { .text($0) } ?? .null, .text(e.type), .text(e.source),
                             .text(ids.joined(separator: " ")), e.amountMicros.map { .double(Double($0) / 1_000_000) } ?? .null,
                             .text(String(decoding: e.props, as: UTF8.self))])
            }
            trace.count("timeline entries read", read)
            trace.count("events read", rows.count)
            return QueryResult(columns: ["ts", "event_id", "type", "source", "identifiers", "amount", "props"], rows: rows, notes: notes)

        case .event(let id):
            trace.steps.append("look up event_key, read the event")
            let columns = ["sequence", "ts", "event_id", "type", "source", "identifiers", "anchor", "amount", "props"]
            guard let e = try reader.event(withID: Array(id.utf8)) else {
                let known = try reader.eventIDIsKnown(Array(id.utf8))
                return QueryResult(columns: columns, notes: [known ? "event '\(id)' was retracted or erased; its id stays known, so a replay is skipped" : "unknown event '\(id)'"])
            }
            var names: [String] = []
            for n in e.nodes { names.append(try reader.nodeInfo(n)?.identifier.description ?? "#\(n)") }
            return QueryResult(columns: columns, rows: [[
                .int(Int64(e.sequence)), time(e.timestamp), .text(id), .text(e.type), .text(e.source), .text(names.joined(separator: " ")),
                .text(try reader.nodeInfo(e.anchor)?.identifier.description ?? "#\(e.anchor)"),
                e.amountMicros.map { .double(Double($0) / 1_000_000) } ?? .null, .text(String(decoding: e.props, as: UTF8.self)),
            ]])

        case .neighbors(let raw, let depth):
            trace.steps.append("breadth-first over links up to depth \(depth)")
            let (id, start) = try node(raw)
            var seen: Set<NodeID> = [start]
            var frontier = [start]
            var rows: [[Value]] = []
            var names: [NodeID: String] = [start: id.description]
            for d in 1...depth {
                var next: [NodeID] = []
                for u in frontier {
                    for link in try reader.links(of: u) {
                        trace.count("links read")
                        guard seen.insert(link.neighbour).inserted else { continue }
                        let info = try reader.nodeInfo(link.neighbour)
                        let name = info?.identifier.description ?? "#\(link.neighbour)"
                        names[link.neighbour] = name
                        rows.append([.int(Int64(d)), .text(name), info?.entity.map { .int(Int64($0)) } ?? .null,
                                     .text(names[u] ?? "#\(u)"), .int(Int64(link.evidence)), .text(link.refused ? "refused" : (info?.role == .merge ? "merge" : "relate"))])
                        next.append(link.neighbour)
                        if rows.count >= 10_000 { break }
                    }
                }
                frontier = next
                if rows.count >= 10_000 { notes.append("stopped at 10,000 neighbours"); break }
            }
            return QueryResult(columns: ["depth", "identifier", "entity", "via", "evidence", "link"], rows: rows, notes: notes)

        case .path(let rawA, let rawB):
            trace.steps.append("breadth-first from the first identifier over merging links, then over all links")
            let (a, na) = try node(rawA)
            let (b, nb) = try node(rawB)
            if na == nb { return QueryResult(notes: ["\(a) and \(b) are the same identifier"]) }
            var path = try shortestPath(na, nb, activeOnly: true)
            if path == nil {
                path = try shortestPath(na, nb, activeOnly: false)
                notes.append(path == nil ? "\(a) and \(b) are not connected" : "\(a) and \(b) are in different entities; the path below only relates them")
            }
            guard let path else { return QueryResult(columns: ["step", "from", "to", "evidence", "events"], notes: notes) }
            var rows: [[Value]] = []
            for (i, pair) in zip(path, path.dropFirst()).enumerated() {
                let (u, v) = pair
                let link = try reader.links(of: u).first { $0.neighbour == v }
                let events = try reader.eventsBehindLink(u, v)
                trace.count("events read", events.count)
                var shown = events.prefix(5).map { "\($0.eventID ?? "#\($0.sequence)")@\(Timestamp.format($0.timestamp))" }
                if events.count > 5 { shown.append("… \(events.count - 5) more") }
                let linkRecords = (link?.evidence ?? 0) - events.count
                if linkRecords > 0 { shown.append("\(linkRecords) link record\(linkRecords == 1 ? "" : "s")") }
                rows.append([.int(Int64(i + 1)), .text(try reader.nodeInfo(u)?.identifier.description ?? "#\(u)"),
                             .text(try reader.nodeInfo(v)?.identifier.description ?? "#\(v)"), .int(Int64(link?.evidence ?? 0)),
                             .text(shown.joined(separator: ", "))])
            }
            return QueryResult(columns: ["step", "from", "to", "evidence", "events"], rows: rows, notes: notes)

        case .history(let target), .lineage(let target):
            let lineage: Bool
            if case .lineage = statement { lineage = true } else { lineage = false }
            trace.steps.append(lineage
                ? "walk history from the newest record back, following the entities merged into (or split from) the entity"
                : "scan history for records naming the entity")
            let id: EntityID
            switch target {
            case .entity(let e): id = e
            case .identifier: id = try entity(target, notes: &notes).id
            }
            let records = try lineage ? reader.lineage(of: id) : reader.history(of: id)
            trace.count("history records matched", records.count)
            let rows: [[Value]] = records.map { seq, r in
                let what: String
                switch r.kind {
                case .merge: what = "entity \(r.entities[1]) merged into \(r.entities[0])"
                case .split: what = "entit\(r.entities.count > 2 ? "ies" : "y") \(r.entities.dropFirst().map(String.init).joined(separator: ", ")) split off from \(r.entities[0])"
                case .forget: what = r.entities.isEmpty ? "an identifier in no entity was erased" : "an identifier of \(r.entities[0]) was erased"
                case .erased: what = "entity \(r.entities[0]) lost its last identifier"
                case .demoted: what = "an identifier of \(r.entities[0]) turned generic (generic_after) and left it"
                case .promoted: what = "a generic identifier turned back and started entity \(r.entities[0])"
                case .refused: what = "a link to entity \(r.entities[1]) was refused (limit): a conflict, related, not merged"
                }
                var cause = r.cause.name
                if r.causeSequence != 0 { cause += " #\(r.causeSequence)" }
                return [.int(Int64(seq)), time(r.time), .text(r.kind.name), .text(what), .text(cause)]
            }
            return QueryResult(columns: ["seq", "time", "kind", "what", "cause"], rows: rows, notes: notes)

        case .related(let target):
            trace.steps.append("members → relate identifiers and refused links → the entities on their other side")
            let info = try entity(target, notes: &notes)
            var rows: [[Value]] = []
            var seen: Set<String> = []
            for member in try reader.members(of: info.id) {
                for link in try reader.links(of: member) {
                    trace.count("links read")
                    guard let via = try reader.nodeInfo(link.neighbour) else { continue }
                    if link.refused, let e = via.entity, e != info.id, seen.insert("\(e) refused").inserted {
                        rows.append([.int(Int64(e)), .text(via.identifier.description), .text("refused link")])
                        continue
                    }
                    guard via.entity == nil else { continue }
                    for other in try reader.links(of: link.neighbour) {
                        trace.count("links read")
                        guard let o = try reader.nodeInfo(other.neighbour), let e = o.entity, e != info.id else { continue }
                        if seen.insert("\(e) \(via.identifier)").inserted {
                            rows.append([.int(Int64(e)), .text(via.identifier.description), .text("shared \(via.identifier.type)")])
                        }
                    }
                }
            }
            return QueryResult(columns: ["entity", "via", "relation"], rows: rows, notes: notes)

        case .find(let condition, let order, let descending, let limit):
            trace.steps.append("scan every entity's stored totals\(condition == nil ? "" : ", evaluate the condition")\(order == nil ? "" : ", sort")")
            var matches: [((id: EntityID, size: Int, header: SummaryHeader), FieldValue)] = []
            try scan(condition) { c in matches.append(((c.id, c.size, c.header), try order.map { try value($0, of: c) } ?? .none)) }
            if order != nil {
                matches.sort { a, b in
                    switch (a.1, b.1) {
                    case (.none, .none): return a.0.id < b.0.id
                    case (.none, _): return false  // entities without a value come last either way
                    case (_, .none): return true
                    default: return a.1 == b.1 ? a.0.id < b.0.id : descending ? a.1 > b.1 : a.1 < b.1
                    }
                }
            }
            let total = matches.count
            if let limit { matches = Array(matches.prefix(limit)) }
            var columns = ["entity", "size", "events", "revenue", "first_seen", "last_seen"]
            var extra: Field?
            if let order, ![.id, .size, .events, .revenue, .firstSeen, .lastSeen].contains(order) { columns.append(order.description); extra = order }
            let rows: [[Value]] = matches.map { c, v in
                let h = c.header
                var row: [Value] = [.int(Int64(c.id)), .int(Int64(c.size)), .int(Int64(h.events)), .double(h.revenue), time(h.firstSeen), time(h.lastSeen)]
                if let extra { row.append(cell(v, of: extra)) }
                return row
            }
            if let limit, total > limit { notes.append("\(total) entities match; LIMIT \(limit) shown") }
            return QueryResult(columns: columns, rows: rows, notes: notes)

        case .count(let condition):
            trace.steps.append("scan every entity\(condition == nil ? "" : ", evaluate the condition")")
            var n: Int64 = 0
            try scan(condition) { _ in n += 1 }
            return QueryResult(columns: ["count"], rows: [[.int(n)]])

        case .stats:
            trace.steps.append("read counters, scan entities and nodes")
            let s = try reader.stats()
            let rows: [[Value]] = [
                [.text("identifiers"), .int(Int64(s.identifiers))], [.text("entities"), .int(Int64(s.entities))],
                [.text("links"), .int(Int64(s.links))], [.text("events"), .int(Int64(s.events))],
                [.text("largest_entity"), s.largestEntity == 0 ? .null : .int(Int64(s.largestEntity))],
                [.text("largest_entity_size"), .int(Int64(s.largestEntitySize))],
                [.text("generic_identifiers"), .int(Int64(s.genericIdentifiers))],
                [.text("refused_links"), .int(Int64(s.refusedLinks))],
                [.text("identifiers_in_no_entity"), .int(Int64(s.identifiersWithoutEntity))],
                [.text("tombstones"), .int(Int64(s.tombstones))], [.text("history_records"), .int(Int64(s.historyRecords))],
            ]
            return QueryResult(columns: ["field", "value"], rows: rows)

        case .schema:
            trace.steps.append("read the catalog")
            let schema = reader.schema
            let names = Set(reader.identifierTypes).union(schema.types.keys).sorted()
            var rows: [[Value]] = names.map { name in
                let p = schema.policy(for: name)
                return [.text(name), .text(p.normalize.rawValue), .text(p.role.rawValue), p.limit.map { .int(Int64($0)) } ?? .null,
                        p.genericAfter.map { .int(Int64($0)) } ?? .null]
            }
            let d = schema.defaultPolicy
            rows.append([.text("(default)"), .text(d.normalize.rawValue), .text(d.role.rawValue), d.limit.map { .int(Int64($0)) } ?? .null, d.genericAfter.map { .int(Int64($0)) } ?? .null])
            return QueryResult(columns: ["type", "normalize", "role", "limit", "generic_after"], rows: rows)

        case .segments:
            trace.steps.append("read the definitions, count each segment's members (a scan per segment)")
            let definitions = try segmentDefinitions()
            var rows: [[Value]] = []
            for name in definitions.keys.sorted() {
                var n: Int64 = 0
                try scan(.inSegment(name)) { _ in n += 1 }
                rows.append([.text(name), .text(definitions[name]!), .int(n)])
            }
            return QueryResult(columns: ["segment", "definition", "entities"], rows: rows,
                               notes: rows.isEmpty ? ["no segments; CREATE SEGMENT name AS FIND ENTITIES WHERE … makes one"] : [])

        case .household(let target):
            trace.steps.append("resolve the entity, follow its members' links to \(reader.schema.profile.householdType) identifiers, and their links to other entities")
            let info = try entity(target, notes: &notes)
            let households = try reader.households(of: info.id)
            var rows: [[Value]] = []
            var entities: Set<EntityID> = []
            for (address, members) in households {
                for e in members {
                    entities.insert(e)
                    let ids = try reader.identifiers(of: e).map(\.description).sorted()
                    trace.count("entities read")
                    rows.append([.text(address.description), .int(Int64(e)), .text(ids.joined(separator: ", "))])
                }
            }
            if households.isEmpty {
                notes.append("entity \(info.id) shares no \(reader.schema.profile.householdType) with anyone (it has none, or the type is not in the data)")
            } else {
                notes.append("household of entity \(info.id): \(entities.count) entit\(entities.count == 1 ? "y" : "ies") sharing \(households.count) \(reader.schema.profile.householdType) value\(households.count == 1 ? "" : "s")")
            }
            return QueryResult(columns: [reader.schema.profile.householdType, "entity", "identifiers"], rows: rows, notes: notes)

        case .link, .unlink, .forget, .retract, .explain, .preview, .createSegment, .dropSegment, .computeRFM:
            preconditionFailure("writes, PREVIEW and EXPLAIN are handled by Executor")
        }
    }

    func shortestPath(_ from: NodeID, _ to: NodeID, activeOnly: Bool) throws -> [NodeID]? {
        var parent: [NodeID: NodeID] = [from: from]
        var frontier = [from]
        while !frontier.isEmpty && parent.count < 2_000_000 {
            var next: [NodeID] = []
            for u in frontier {
                if activeOnly, let info = try reader.nodeInfo(u), u != from, info.entity == nil { continue }
                for link in try reader.links(of: u) {
                    trace.count("links read")
                    if parent[link.neighbour] != nil { continue }
                    if activeOnly {
                        if link.refused { continue }
                        guard let info = try reader.nodeInfo(link.neighbour), info.entity != nil else { continue }
                    }
                    parent[link.neighbour] = u
                    if link.neighbour == to {
                        var path = [to]
                        var x = to
                        while x != from { x = parent[x]!; path.append(x) }
                        return path.reversed()
                    }
                    next.append(link.neighbour)
                }
            }
            frontier = next
        }
        return nil
    }

    /// Every live entity satisfying `condition`, read from stored totals; the rest of an
    /// entity is read only when a field needs it.
    func scan(_ condition: Condition?, _ body: (Candidate) throws -> Void) throws {
        var scanned = 0
        let c = Candidate(id: 0, size: 0, header: SummaryHeader(Summary()))
        try reader.forEachEntityHeader { id, size, header in
            scanned += 1
            c.reset(id: id, size: size, header: header)
            if try condition.map({ try holds($0, c) }) ?? true { try body(c) }
        }
        trace.count("entities scanned", scanned)
    }

    func fullInfo(_ c: Candidate) throws -> GraphReader.EntityInfo {
        if let info = c.info { return info }
        guard let info = try reader.resolve(c.id) else { throw QueryError("entity \(c.id) vanished during the scan") }
        trace.count("full entity reads")
        c.info = info
        return info
    }

    func profile(_ c: Candidate) throws -> EntityProfile {
        if let p = c.profile { return p }
        let p = try reader.profile(of: try fullInfo(c), now: now)
        c.profile = p
        return p
    }

    func segmentDefinitions() throws -> [String: String] {
        if let d = segments.definitions { return d }
        let d = try reader.segments()
        segments.definitions = d
        return d
    }

    func segmentCondition(_ name: String) throws -> Condition {
        if let c = segments.parsed[name] { return c }
        guard let text = try segmentDefinitions()[name] else { throw QueryError("no segment named \(name); SEGMENTS lists them") }
        guard case .count(let condition?) = try Parser.parse("COUNT ENTITIES WHERE " + text) else {
            throw QueryError("segment \(name) has a definition that is not a condition: \(text)")
        }
        segments.parsed[name] = condition
        return condition
    }

    func holds(_ condition: Condition, _ c: Candidate) throws -> Bool {
        switch condition {
        case .and(let a, let b): return try holds(a, c) && holds(b, c)
        case .or(let a, let b): return try holds(a, c) || holds(b, c)
        case .not(let a): return try !holds(a, c)
        case .has(let type): return try value(.identifiersOfType(type), of: c) > .number(0)
        case .inSegment(let name):
            guard segments.evaluating.insert(name).inserted else { throw QueryError("segment \(name) refers to itself") }
            defer { segments.evaluating.remove(name) }
            return try holds(segmentCondition(name), c)
        case .compare(let field, let op, let rhs):
            return compare(try value(field, of: c), op, .number(rhs))
        case .compareText(let field, let op, let rhs):
            return compare(try value(field, of: c), op, .text(rhs))
        }
    }

    /// A comparison; an entity without a value satisfies only `!=`.
    func compare(_ lhs: FieldValue, _ op: Comparison, _ rhs: FieldValue) -> Bool {
        if case .none = lhs { return op == .notEqual }
        if case .set(let values) = lhs, case .text(let value) = rhs {
            switch op {
            case .equal: return values.contains(value)
            case .notEqual: return !values.contains(value)
            default: return false
            }
        }
        switch op {
        case .equal: return lhs == rhs
        case .notEqual: return lhs != rhs
        case .less: return lhs < rhs
        case .lessOrEqual: return lhs <= rhs
        case .greater: return lhs > rhs
        case .greaterOrEqual: return lhs >= rhs
        }
    }

    func value(_ field: Field, of c: Candidate) throws -> FieldValue {
        let h = c.header
        switch field {
        case .id: return .number(Double(c.id))
        case .size: return .number(Double(c.size))
        case .events: return .number(Double(h.events))
        case .revenue: return .number(h.revenue)
        case .firstSeen: return h.firstSeen.map { .number(Double($0)) } ?? .none
        case .lastSeen: return h.lastSeen.map { .number(Double($0)) } ?? .none
        case .orders: return .number(Double(h.orders))
        case .averageOrderValue: return h.orders > 0 ? .number(h.revenue / Double(h.orders)) : .none
        case .lastOrder: return h.lastOrder.map { .number(Double($0)) } ?? .none
        case .lifecycle:
            return .text(LifecycleStage.of(orders: h.orders, revenue: h.revenue, lastOrder: h.lastOrder, now: now, thresholds: thresholds).rawValue)
        case .eventsOfType(let type):
            guard let id = reader.eventTypes.firstIndex(of: type) else { return .number(0) }
            return .number(Double(try fullInfo(c).summary.eventsByType[UInt32(id)] ?? 0))
        case .identifiersOfType(let type):
            var n = 0
            for node in try reader.members(of: c.id) where try reader.nodeInfo(node)?.identifier.type == type { n += 1 }
            trace.count("member reads", c.size)
            return .number(Double(n))
        case .rfm, .rfmRecency, .rfmFrequency, .rfmMonetary:
            trace.count("rfm reads")
            guard let score = try reader.rfm(of: c.id) else { return .none }
            switch field {
            case .rfmRecency: return .number(Double(score.recency))
            case .rfmFrequency: return .number(Double(score.frequency))
            case .rfmMonetary: return .number(Double(score.monetary))
            default: return .number(Double(score.code))
            }
        case .preferredChannel: return try profile(c).preferredChannel.map { .text($0) } ?? .none
        case .mostUsedDevice: return try profile(c).mostUsedDevice.map { .text($0.name) } ?? .none
        case .attribute(let name):
            return try profile(c).golden.first { $0.attribute == name }.map { .text($0.value) } ?? .none
        case .topProduct: return try profile(c).products.first.map { .text($0.name) } ?? .none
        case .product: return .set(try profile(c).products.map(\.name))
        case .campaign: return .set(try profile(c).campaigns.map(\.name))
        case .list: return .set(try profile(c).lists)
        }
    }

    /// A field's value as a result cell.
    func cell(_ v: FieldValue, of field: Field) -> Value {
        switch v {
        case .none: return .null
        case .text(let t): return .text(t)
        case .set(let values): return .text(values.joined(separator: ", "))
        case .number(let n):
            if field.isTime { return time(Int64(n)) }
            if field == .averageOrderValue || field == .revenue { return .double(n) }
            return .int(Int64(n))
        }
    }

    /// The Customer 360 rows of `ENTITY`: aggregates, lifecycle, golden record, lists, RFM, segments.
    func profileRows(_ c: Candidate) throws -> [[Value]] {
        let p = try profile(c)
        func names(_ list: [CountedName], max: Int) -> Value {
            list.isEmpty ? .null : .text(list.prefix(max).map { "\($0.name) \($0.count)" }.joined(separator: ", ") + (list.count > max ? ", … (\(list.count))" : ""))
        }
        var rows: [[Value]] = [
            [.text("orders"), .int(Int64(p.orders))],
            [.text("aov"), p.averageOrderValue.map { .double($0) } ?? .null],
            [.text("last_order"), time(p.lastOrder)],
            [.text("lifecycle"), .text(p.lifecycle.rawValue)],
        ]
        for g in p.golden {
            rows.append([.text("profile.\(g.attribute)"), .text("\(g.value) (\(g.source), \(Timestamp.format(g.seen)), \(g.count)×, \(g.rule.rawValue))")])
        }
        rows.append([.text("preferred_channel"), names(p.channels, max: 4)])
        rows.append([.text("most_used_device"), p.mostUsedDevice.map { .text("\($0.name) (\($0.count) event\($0.count == 1 ? "" : "s"))") } ?? .null])
        rows.append([.text("top_products"), names(p.products, max: 5)])
        rows.append([.text("campaigns"), names(p.campaigns, max: 5)])
        rows.append([.text("lists"), p.lists.isEmpty ? .null : .text(p.lists.joined(separator: ", "))])
        switch (p.rfm, try reader.rfmComputedAt()) {
        case (let score?, let at?):
            rows.append([.text("rfm"), .text("\(score.code) (R \(score.recency), F \(score.frequency), M \(score.monetary); computed \(Timestamp.format(at)))")])
        case (_, let at?):
            rows.append([.text("rfm"), .text("not scored (no order, or the entity changed since COMPUTE RFM at \(Timestamp.format(at)))")])
        case (_, nil):
            rows.append([.text("rfm"), .text("not computed (COMPUTE RFM)")])
        }
        var member: [String] = []
        for name in try segmentDefinitions().keys.sorted() where try holds(.inSegment(name), c) { member.append(name) }
        rows.append([.text("segments"), member.isEmpty ? .null : .text(member.joined(separator: ", "))])
        return rows
    }
}
