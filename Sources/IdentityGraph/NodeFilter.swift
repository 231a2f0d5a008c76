/// A set of node ids that may answer "yes" for an id it does not hold, never "no" for one it
/// does: one bit per id modulo 2^18 (32 KiB, allocated at the first insert). Node ids are
/// numbered in order, so the ids of one transaction rarely share a bit: a transaction of a
/// few thousand events sets some 1-4% of the bits.
struct NodeFilter {
    private static let bits = 1 << 18
    private var words: [UInt64] = []
    private var isEmpty = true

    /// Adds `node`.
    mutating func insert(_ node: NodeID) {
        if words.isEmpty { words = [UInt64](repeating: 0, count: Self.bits / 64) }
        let bit = Int(truncatingIfNeeded: node) & (Self.bits - 1)
        words[bit >> 6] |= 1 << UInt64(bit & 63)
        isEmpty = false
    }

    /// False only if `node` was not inserted since the last ``removeAll()``.
    func mayContain(_ node: NodeID) -> Bool {
        if isEmpty { return false }
        let bit = Int(truncatingIfNeeded: node) & (Self.bits - 1)
        return words[bit >> 6] & (1 << UInt64(bit & 63)) != 0
    }

    /// Forgets every node (keeps the storage).
    mutating func removeAll() {
        if isEmpty { return }
        for i in words.indices { words[i] = 0 }
        isEmpty = true
    }
}
