import Crypto
import Foundation
import LMDB

extension IdentityGraph {
    /// A SHA-256 digest of every table's entries (keys and values, in key order), by table name:
    /// two databases with equal digests hold the same graph, byte for byte. `meta` leaves out
    /// what differs between any two databases (creation time, the tombstone key) and, unless
    /// `includeLoadCheckpoints`, the loader's resume checkpoints. `tombstone` keys are keyed
    /// hashes under each database's own secret, so only their number is compared.
    ///
    /// This is how the bulk path is proven equal to the incremental one.
    public func tableDigests(includeLoadCheckpoints: Bool = true) throws -> [String: String] {
        let d = databases
        let tables: [(String, Database)] = [
            ("meta", d.meta), ("ident", d.ident), ("node", d.node), ("node_summary", d.nodeSummary), ("adj", d.adjacency),
            ("member", d.member), ("entity", d.entity), ("event", d.event), ("node_event", d.nodeEvent),
            ("event_key", d.eventKey), ("unlinked", d.unlinked), ("history", d.history), ("tombstone", d.tombstone),
        ]
        let skipped: Set<[UInt8]> = [Array(MetaKey.created.utf8), Array(MetaKey.tombstoneKey.utf8)]
        let userPrefix = Array(Self.userMetaPrefix.utf8)
        return try environment.read { txn in
            var digests: [String: String] = [:]
            for (name, table) in tables {
                var hasher = SHA256()
                var entries = 0
                try txn.forEach(table) { key, value in
                    if name == "meta" {
                        let k = Array(key)
                        if skipped.contains(k) || (!includeLoadCheckpoints && k.starts(with: userPrefix)) { return true }
                    }
                    entries += 1
                    if name == "tombstone" { return true }
                    for part in [key, value] {
                        withUnsafeBytes(of: UInt32(part.count).bigEndian) { hasher.update(bufferPointer: $0) }
                        hasher.update(bufferPointer: part)
                    }
                    return true
                }
                digests[name] = "\(entries):" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
            }
            return digests
        }
    }
}
