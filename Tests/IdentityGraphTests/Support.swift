import Foundation
import IdentityGraph

/// A fresh database in a temporary directory, removed when released.
final class TemporaryDatabase {
    let path: String
    private(set) var graph: IdentityGraph!
    let options: IdentityGraph.Options

    init(mapSize: Int = 1 << 24, schema: Schema? = nil) throws {
        path = NSTemporaryDirectory() + "idgraph-test-" + UUID().uuidString
        var options = IdentityGraph.Options()
        options.durability = .fast  // tests do not need fsync; durability is LMDB's job
        options.initialMapSize = mapSize
        self.options = options
        graph = try IdentityGraph.open(at: path, options: options, createIfMissing: true, schema: schema)
    }

    /// Closes and opens the database again, as a new process would.
    func reopen() throws {
        graph = nil
        graph = try IdentityGraph.open(at: path, options: options)
    }

    /// Releases the database without removing it (``reopen()`` opens it again).
    func closeForTest() { graph = nil }

    deinit {
        graph = nil
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension RawIdentifier {
    /// `"email:a@x.com"` → a raw identifier (test shorthand; crashes on a bad literal).
    static func id(_ text: String) -> RawIdentifier { try! RawIdentifier(text: text) }
}

/// Builds an event operation from `type:value` texts.
func event(_ ids: String..., id: String? = nil, ts: Int64? = nil, type: String = "event", amount: Double? = nil) -> GraphOperation {
    .event(EventInput(
        eventID: id.map { Array($0.utf8) }, timestamp: ts, type: Array(type.utf8),
        identifiers: ids.map { RawIdentifier.id($0) }, amountMicros: amount.map { Int64(($0 * 1_000_000).rounded()) }))
}

func link(_ a: String, _ b: String) -> GraphOperation { .link(.id(a), .id(b)) }
func unlink(_ a: String, _ b: String) -> GraphOperation { .unlink(.id(a), .id(b)) }
func forget(_ a: String) -> GraphOperation { .forget(.id(a)) }
func retract(_ id: String) -> GraphOperation { .retract(eventID: Array(id.utf8)) }

extension IdentityGraph {
    /// The partition as a set of sets of identifier texts.
    func partition() throws -> Set<Set<String>> {
        var groups: [EntityID: Set<String>] = [:]
        try read { reader in
            try reader.forEachMembership { id, entity in groups[entity, default: []].insert(id.description) }
        }
        return Set(groups.values)
    }

    /// The entity of an identifier text.
    func entity(of text: String) throws -> EntityID? {
        try read { try $0.entity(of: .id(text)) }
    }

    /// The live entity info of an identifier text.
    func entityInfo(of text: String) throws -> GraphReader.EntityInfo? {
        try read { reader in
            guard let e = try reader.entity(of: .id(text)) else { return nil }
            return try reader.resolve(e)
        }
    }
}
