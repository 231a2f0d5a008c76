import Foundation
@testable import IdentityGraph
import Testing

/// Readers share the graph's catalog by reference (`CatalogSnapshot`); a catalog changed by
/// another handle on the same database (another process) must still be seen, and kept.
@Suite struct CatalogSnapshotTests {
    @Test func aReaderSeesTypesAnotherHandleInterned() throws {
        let db = try TemporaryDatabase()
        let other = try IdentityGraph.open(at: db.path, options: db.options)
        // Warm both caches with the starting catalog.
        #expect(try db.graph.entity(of: "email:a@x.com") == nil)
        #expect(try other.entity(of: "email:a@x.com") == nil)
        let before = db.graph.cachedCatalog.current

        // The other handle interns a new identifier type, event type and source.
        try other.apply([.event(EventInput(eventID: nil, timestamp: 1, type: Array("visit".utf8), source: Array("kiosk".utf8),
                                           identifiers: [.id("badge:B-1"), .id("email:a@x.com")]))])

        // This handle's reader finds the identifier (its type id comes from the stored catalog)
        // and names the event's type and source.
        let entity = try #require(try db.graph.entity(of: "badge:B-1"))
        #expect(try db.graph.entity(of: "email:a@x.com") == entity)
        let types = try db.graph.read { $0.eventTypes }
        #expect(types.contains("visit"))
        // The newer catalog replaced the cached one (a new snapshot, never changed in place).
        let after = db.graph.cachedCatalog.current
        #expect(after !== before)
        #expect(after.catalog.version > before.catalog.version)
        #expect(after.catalog.typeIndex["badge"] != nil)
        #expect(before.catalog.typeIndex["badge"] == nil)
        // Readers now take the cached snapshot as it is.
        let reused = try db.graph.read { $0.catalogSnapshot }
        #expect(reused === after)
    }
}
