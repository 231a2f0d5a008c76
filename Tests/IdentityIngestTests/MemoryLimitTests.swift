import Foundation
import IdentityGraph
@testable import IdentityIngest
import Testing

/// The bulk path's memory limit: by default a share of the memory available, and the estimate
/// it is checked against reported with the load.
@Suite struct MemoryLimitTests {
    @Test func theDefaultIsFortyPercentOfWhatIsAvailableWithAFloor() {
        #expect(LoadOptions.automaticMemoryLimit(availableBytes: nil) == 4 << 30)
        #expect(LoadOptions.automaticMemoryLimit(availableBytes: 0) == 4 << 30)
        #expect(LoadOptions.automaticMemoryLimit(availableBytes: 100 << 20) == 256 << 20)
        #expect(LoadOptions.automaticMemoryLimit(availableBytes: 10 << 30) == 4 << 30)
        #expect(LoadOptions.automaticMemoryLimit(availableBytes: 24 << 30) == (24 << 30) / 5 * 2)
    }

    @Test func availableMemoryIsReadFromMeminfo() throws {
        let w = Workspace()
        let sample = w.file("meminfo", ["MemTotal:       24576000 kB", "MemFree:         1000 kB", "MemAvailable:    2048 kB", "Buffers: 1 kB"])
        #expect(LoadOptions.availableMemoryBytes(meminfo: sample) == 2048 * 1024)
        let without = w.file("meminfo-old", ["MemTotal: 100 kB", "MemFree: 50 kB"])
        #expect(LoadOptions.availableMemoryBytes(meminfo: without) == nil)
        #expect(LoadOptions.availableMemoryBytes(meminfo: w.path + "/missing") == nil)
        // This machine's own.
        let available = try #require(LoadOptions.availableMemoryBytes())
        #expect(available > 0)
        #expect(LoadOptions().memoryLimit >= 256 << 20)
    }

    @Test func aBulkLoadReportsTheEstimateItWasCheckedAgainst() throws {
        let w = Workspace()
        let lines = (0..<3000).map { #"{"event_id":"e\#($0)","ids":{"email":"u\#($0)@x.com","cookie":"c\#($0 % 97)"}}"# }
        let path = w.file("a.ndjson", lines)
        var options = LoadOptions()
        options.now = 1_750_000_000_000
        let bulk = try Loader(graph: try w.graph(), options: options).load([path])
        #expect(bulk.bulkRecords == 3000)
        // At least the identifiers' keys and the event ids are counted.
        #expect(bulk.bulkMemoryEstimateBytes > 3000 * 20)
        options.bulk = false
        let batches = try Loader(graph: try w.graph("other"), options: options).load([path])
        #expect(batches.bulkMemoryEstimateBytes == 0)
    }
}
