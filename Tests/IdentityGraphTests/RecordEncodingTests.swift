import Foundation
@testable import IdentityGraph
import Testing

/// Encodings written without building a record give the record's own bytes, which readers decode.
@Suite struct RecordEncodingTests {
    @Test(arguments: [HistoryRecord.Cause.event, .link])
    func aMergeEncodedInPlaceIsTheRecordsBytes(cause: HistoryRecord.Cause) throws {
        for (keep, gone, sequence) in [(UInt64(1), UInt64(2), UInt64(0)), (7, 3, 42), (UInt64(UInt32.max) + 5, 1, UInt64.max)] {
            let record = HistoryRecord(kind: .merge, time: 1_750_000_000_123, cause: cause, causeSequence: sequence, entities: [keep, gone])
            var w = ByteWriter(capacity: 8)
            w.append(UInt8(0xAB))  // appended after what the buffer holds, like the bulk writer's reused one after clearing
            HistoryRecord.encodeMerge(into: &w, time: record.time, cause: cause, causeSequence: sequence, keep: keep, gone: gone)
            #expect(Array(w.bytes.dropFirst()) == record.bytes)
            let decoded = try w.bytes.dropFirst().withUnsafeBytes { try HistoryRecord(bytes: $0) }
            #expect(decoded.kind == .merge && decoded.entities == [keep, gone] && decoded.causeSequence == sequence && decoded.cause == cause)
        }
    }
}
