import Foundation
@testable import IdentityGraph
import Testing

@Suite struct KeysTests {
    /// Tombstone keys must not change from one version to the next: a database finds its erased
    /// identifiers by them. The expected values come from Python's `hmac` module (an
    /// independent HMAC-SHA-256), with the key bytes 0…31; one `Tombstones` hashes them all, in
    /// both orders (each key is computed from a copy of the keyed state, which must stay clean).
    @Test func tombstoneKeysAreHMACSHA256OfTypeColonValue() {
        let vectors: [(Identifier, String)] = [
            (Identifier(type: "email", value: Array("a@x.com".utf8)), "94f8e39a4df63354d8196533c06761042a3ed103817091fc9e0d75ee4bba3edd"),
            (Identifier(type: "phone", value: Array("+14155550123".utf8)), "6735399aa366f516e815e67e155c22b12d3b4d1f6d0f2e3dd67622f3904acae6"),
            (Identifier(type: "cookie", value: []), "d75d7aeea9b5dca48b860c9f79de4310dc432d1f123e8d9e48c449d9dc6e10f8"),
        ]
        let tombstones = Keys.Tombstones(key: Array(0..<32))
        for (identifier, expected) in vectors + vectors.reversed() {
            #expect(tombstones.key(identifier).map { String(format: "%02x", $0) }.joined() == expected)
        }
    }
}
