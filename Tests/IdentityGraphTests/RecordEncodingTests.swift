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

    /// The in-place filter agrees with decoding: a record names exactly the entities it holds.
    @Test func aRecordNamesTheEntitiesItHoldsAndNoOther() throws {
        let records = [
            HistoryRecord(kind: .merge, time: 5, cause: .event, causeSequence: 9, entities: [3, 8]),
            HistoryRecord(kind: .split, time: 6, cause: .unlink, causeSequence: 0, entities: [3, 11, 12, 13]),
            HistoryRecord(kind: .forget, time: 7, cause: .forget, causeSequence: 0, entities: []),
            HistoryRecord(kind: .erased, time: 8, cause: .forget, causeSequence: 0, entities: [UInt64.max]),
        ]
        for record in records {
            let decoded = try record.bytes.withUnsafeBytes { bytes in
                for entity: EntityID in [0, 3, 8, 11, 13, 14, UInt64.max] {
                    #expect(HistoryRecord.names(entity, in: bytes) == record.entities.contains(entity), "\(record.kind) \(entity)")
                }
                return try HistoryRecord(bytes: bytes)
            }
            #expect(decoded == record)
        }
        // Cut short, a record is left to the decoder (which reports it) rather than skipped.
        let cut = Array(records[1].bytes.dropLast(8))
        cut.withUnsafeBytes { #expect(HistoryRecord.names(99, in: $0)) }
    }
}
