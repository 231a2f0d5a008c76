import Foundation
@testable import IdentityGraph
import LMDB
import Testing

/// `check` finds each kind of damage: the database is built by the writer, then one record is
/// changed behind its back, and `check` must name the invariant that broke.
@Suite struct CheckerTests {
    /// One change to the stored records, and the invariant it breaks.
    enum Damage: String, CaseIterable, Sendable {
        case identToMissingNode, identDeleted, identWrongValue
        case nodeInOtherEntity, memberDeleted, entitySizeWrong, genericFlagWrong
        case reverseLinkEvidence, reverseLinkDeleted, degreeWrong
        case bridgeRemoved
        case nodeSummaryWrong, entitySummaryWrong
        case timelineEntryDeleted, timelineEntryWrongTime, eventNamesMissingNode
        case countersWrong, redirectToNothing

        var invariant: Int {
            switch self {
            case .identToMissingNode, .identDeleted, .identWrongValue: return 1
            case .nodeInOtherEntity, .memberDeleted, .entitySizeWrong, .genericFlagWrong: return 2
            case .reverseLinkEvidence, .reverseLinkDeleted, .degreeWrong: return 3
            case .bridgeRemoved: return 4
            case .nodeSummaryWrong, .entitySummaryWrong: return 5
            case .timelineEntryDeleted, .timelineEntryWrongTime, .eventNamesMissingNode: return 6
            case .countersWrong, .redirectToNothing: return 7
            }
        }
    }

    /// a@x.com – c-1 – b@x.com (one entity through the cookie), a@x.com – +1415… , d@x.com – c-2,
    /// and e@x.com – c-3 merged into it by a later event, so that a redirect exists.
    func graph() throws -> TemporaryDatabase {
        let db = try TemporaryDatabase()
        var t: Int64 = 1_700_000_000_000
        func event(_ ids: [String], amount: Int64? = nil) -> GraphOperation {
            t += 1000
            return .event(EventInput(eventID: Array("e\(t)".utf8), timestamp: t, type: Array("order".utf8), source: Array("web".utf8),
                                     identifiers: ids.map { .id($0) }, amountMicros: amount.map { $0 * 1_000_000 }))
        }
        try db.graph.apply([
            event(["email:a@x.com", "cookie:c-1"], amount: 10),
            event(["email:b@x.com", "cookie:c-1"]),
            event(["email:a@x.com", "phone:+14155550123"], amount: 5),
            event(["email:d@x.com", "cookie:c-2"]),
            event(["email:e@x.com", "cookie:c-3"]),
            event(["email:e@x.com", "cookie:c-2"], amount: 7),
        ], now: t)
        #expect(try db.graph.check().isEmpty)
        return db
    }

    func node(_ db: TemporaryDatabase, _ text: String) throws -> NodeID {
        let parts = text.split(separator: ":", maxSplits: 1)
        let id = Identifier(type: String(parts[0]), value: Array(parts[1].utf8))
        return try #require(try db.graph.read { try $0.node(of: id) })
    }

    func damage(_ db: TemporaryDatabase, _ damage: Damage) throws {
        let graph = db.graph!, dbs = graph.databases
        let a = try node(db, "email:a@x.com"), c1 = try node(db, "cookie:c-1"), b = try node(db, "email:b@x.com")
        let d = try node(db, "email:d@x.com")
        let entityA = try #require(try graph.read { try $0.nodeInfo(a)?.entity })
        let entityD = try #require(try graph.read { try $0.nodeInfo(d)?.entity })
        try graph.environment.write { txn in
            func nodeRecord(_ n: NodeID) throws -> NodeRecord {
                try txn.withValue(dbs.node, key: n) { try NodeRecord(bytes: $0!) }
            }
            func edit(_ n: NodeID, _ change: (inout NodeRecord) -> Void) throws {
                var r = try nodeRecord(n)
                change(&r)
                try txn.put(dbs.node, key: n, value: r.bytes)
            }
            func summary(_ n: NodeID) throws -> Summary {
                try txn.withValue(dbs.nodeSummary, key: n) { try $0.map { try Summary(bytes: $0) } ?? Summary() }
            }
            let ra = try nodeRecord(a)
            switch damage {
            case .identToMissingNode:
                try txn.put(dbs.ident, key: Keys.ident(type: ra.typeID, value: ra.value), value: UInt64(999_999))
            case .identDeleted:
                try txn.delete(dbs.ident, key: Keys.ident(type: ra.typeID, value: ra.value))
            case .identWrongValue:
                try txn.put(dbs.ident, key: Keys.ident(type: ra.typeID, value: Array("z@x.com".utf8)), value: a)
                try txn.delete(dbs.ident, key: Keys.ident(type: ra.typeID, value: ra.value))
            case .nodeInOtherEntity:
                try edit(b) { $0.entity = entityD }
            case .memberDeleted:
                let cursor = try txn.cursor(dbs.member)
                defer { cursor.close() }
                if try cursor.seek(key: entityA, value: b) { try cursor.deleteCurrent() }
            case .entitySizeWrong:
                let record = try txn.withValue(dbs.entity, key: entityA) { try EntityRecord(bytes: $0!) }
                guard case .live(let size, let created, let updated, let s) = record else { Issue.record("entity not live"); return }
                try txn.put(dbs.entity, key: entityA, value: EntityRecord.live(size: size + 1, created: created, updated: updated, summary: s).bytes)
            case .genericFlagWrong:
                try edit(a) { $0.flags |= NodeRecord.genericFlag }
            case .reverseLinkEvidence:
                let cursor = try txn.cursor(dbs.adjacency)
                defer { cursor.close() }
                if try cursor.seek(key: c1, valueAtOrAfter: EdgeEntry.probe(a)) {
                    let e = cursor.withCurrent { EdgeEntry(bytes: $1) }
                    try cursor.put(key: c1, value: EdgeEntry(neighbour: e.neighbour, evidence: e.evidence + 3, flags: e.flags), flags: .current)
                }
            case .reverseLinkDeleted:
                let cursor = try txn.cursor(dbs.adjacency)
                defer { cursor.close() }
                if try cursor.seek(key: c1, valueAtOrAfter: EdgeEntry.probe(a)) { try cursor.deleteCurrent() }
            case .degreeWrong:
                try edit(c1) { $0.degree += 1 }
            case .bridgeRemoved:
                // b hangs on the entity through c-1 alone: take the link away both ways (and
                // keep the degrees right), and the entity falls apart.
                for (u, v) in [(b, c1), (c1, b)] {
                    let cursor = try txn.cursor(dbs.adjacency)
                    if try cursor.seek(key: u, valueAtOrAfter: EdgeEntry.probe(v)) { try cursor.deleteCurrent() }
                    cursor.close()
                }
                try edit(b) { $0.degree -= 1 }
                try edit(c1) { $0.degree -= 1 }
                var counters = try txn.withValue(dbs.meta, key: MetaKey.counters) { try Counters(bytes: $0!) }
                counters.links -= 1
                try txn.put(dbs.meta, key: MetaKey.counters, value: counters.bytes)
            case .nodeSummaryWrong:
                var s = try summary(a)
                s.events += 1
                try txn.put(dbs.nodeSummary, key: a, value: s.bytes)
            case .entitySummaryWrong:
                let record = try txn.withValue(dbs.entity, key: entityD) { try EntityRecord(bytes: $0!) }
                guard case .live(let size, let created, let updated, var s) = record else { Issue.record("entity not live"); return }
                s.events += 2
                try txn.put(dbs.entity, key: entityD, value: EntityRecord.live(size: size, created: created, updated: updated, summary: s).bytes)
            case .timelineEntryDeleted:
                let cursor = try txn.cursor(dbs.nodeEvent)
                defer { cursor.close() }
                if try cursor.seek(key: b) { try cursor.deleteCurrent() }
            case .timelineEntryWrongTime:
                let cursor = try txn.cursor(dbs.nodeEvent)
                defer { cursor.close() }
                if try cursor.seek(key: b) {
                    let pair = cursor.withCurrent { UInt64Pair(bytes: $1) }
                    try cursor.deleteCurrent()
                    try txn.put(dbs.nodeEvent, key: b, value: UInt64Pair(pair.first + 5, pair.second))
                }
            case .eventNamesMissingNode:
                let cursor = try txn.cursor(dbs.event)
                defer { cursor.close() }
                guard try cursor.first() else { return }
                let (key, value) = cursor.current()
                var event = try value.withUnsafeBytes { try EventRecord(bytes: $0) }
                event.nodes.append(888_888)
                try txn.put(dbs.event, key: key, value: event.bytes)
            case .countersWrong:
                var counters = try txn.withValue(dbs.meta, key: MetaKey.counters) { try Counters(bytes: $0!) }
                counters.identifiers += 1
                try txn.put(dbs.meta, key: MetaKey.counters, value: counters.bytes)
            case .redirectToNothing:
                try txn.put(dbs.entity, key: UInt64(777_777), value: EntityRecord.redirect(to: 777_778, at: 0).bytes)
            }
        }
    }

    @Test func anUndamagedGraphIsClean() throws {
        #expect(try graph().graph.check().isEmpty)
    }

    @Test(arguments: Damage.allCases)
    func eachDamageIsFound(_ damage: Damage) throws {
        let db = try graph()
        try self.damage(db, damage)
        let violations = try db.graph.check()
        #expect(violations.contains { $0.invariant == damage.invariant }, "\(damage): \(violations)")
    }
}
