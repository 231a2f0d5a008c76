import Foundation
import IdentityGraph
@testable import IdentityIngest
import Testing

/// The loader's fast path parses and prepares events straight into an ``EventBatch``; it must
/// give exactly what parsing to a ``GraphOperation`` and preparing it gives — the same prepared
/// event, the same error for a bad line — and a bad line must leave the batch as it was.
@Suite struct EventBatchTests {
    /// A schema exercising every normalizer, the three roles and blocked patterns.
    static let schema: Schema = {
        var s = Schema.builtIn
        s.types["crm"] = TypePolicy(normalize: .lower)
        s.types["loyalty"] = TypePolicy(normalize: .none)
        s.types["tracker"] = TypePolicy(role: .ignore)
        s.types["email"] = TypePolicy(normalize: .email, blocked: ["^test@", "^null$"])
        s.types["device"] = TypePolicy(blocked: ["^0+$"])
        return s
    }()

    static let long = String(repeating: "x", count: 500)

    /// Lines meant to reach every branch: normalizers, folding, dedup after normalization,
    /// ignored and blocked values, escapes, Unicode, long values, bad identifiers, Segment
    /// shapes, control records and malformed lines.
    static let trickyLines: [String] = [
        #"{"event_id":"a1","ts":"2024-05-01T12:00:00.5+02:00","type":"order","source":"web","ids":{"email":" Alice@Example.COM ","cookie":["c-1","c-2"]},"props":{"amount":19.99,"sku":"A-42","name":"Zoë"}}"#,
        #"{"ids":{"EMAIL":"ÉLODIE@Exemple.FR","Phone":"+1 (415) 555-0123","crm":"  ABC-1 "}}"#,
        #"{"ids":{"email":["a@x.com","A@X.COM"," a@x.com"],"cookie":"c"}}"#,
        #"{"ids":{"tracker":"t-1","email":"test@x.com","device":"000","loyalty":" L1 "}}"#,
        #"{"ids":{"tracker":"t-1"}}"#,
        #"{"ids":{"email":"null"},"event_id":""}"#,
        #"{"ids":{"cookie":"caf\u00e9 \ud83d\ude00","crm":"\u00C9T\u00C9"}}"#,
        #"{"ids":{"crm":"\#(long)","cookie":"c-\#(long)"},"event_id":"\#(long)"}"#,
        #"{"ids":{"phone":"n/a"}}"#,
        #"{"ids":{"phone":"+"}}"#,
        #"{"ids":{"cookie":"   "}}"#,
        #"{"ids":{"e-mail":"x"}}"#,
        #"{"ids":{"cookie":"\#(String(repeating: "y", count: 1100))"}}"#,
        #"{"ids":{"cookie":"ok","email":"   "}}"#,
        #"{"ids":{"cookie":"c1"},"ids":{"cookie":"c2"}}"#,
        #"{"ids":{},"type":"x"}"#,
        #"{"ids":{"cookie":[]}}"#,
        #"{"ids":{"cookie":3}}"#,
        #"{"ids":{"cookie":"c"},"ts":1704067219388.75,"type":"","source":null,"props":null}"#,
        #"{"ids":{"cookie":"c"},"ts":"yesterday"}"#,
        #"{"ids":{"cookie":"c"},"props":{"amount":"12"}}"#,
        #"{"ids":{"cookie":"c"},"props":{"amount":1e300}}"#,
        #"{"ids":{"cookie":"c"},"props":[1]}"#,
        #"{"ids":{"cookie":"c"},"event_id":42}"#,
        #"{"op":"link","a":"email:A@x.com","b":"cookie:c"}"#,
        #"{"op":"unlink","a":"email:a@x.com","b":"cookie c"}"#,
        #"{"op":"forget","id":"phone:+1 415"}"#,
        #"{"op":"retract","event_id":"a1"}"#,
        #"{"op":"retract"}"#,
        #"{"op":"merge","a":"x:y"}"#,
        #"{"type":"identify","userId":"U1","anonymousId":"anon-1","traits":{"email":"Bob@Example.com","name":"Bob","phone":"+44 20 7946 0000","plan":"pro"},"context":{"ip":"10.0.0.1","device":{"id":"dev-1"},"traits":{"email":"bob@work.com","city":"Leeds"}},"timestamp":"2024-01-02T03:04:05Z","messageId":"m1"}"#,
        #"{"type":"track","event":"Order Completed","anonymousId":"anon-2","properties":{"amount":5,"sku":"S"},"messageId":"m2"}"#,
        #"{"type":"alias","previousId":"anon-3","anonymousId":"anon-3","userId":"U3"}"#,
        #"{"type":"alias","previousId":"old-user","userId":"U4"}"#,
        #"{"type":"group","userId":"U5","traits":{"name":"ACME","email":"billing@acme.com"}}"#,
        #"{"type":"page","userId":null,"anonymousId":null,"context":null,"traits":null}"#,
        #"{"type":"track","userId":"U6","timestamp":"not a time"}"#,
        #"{"type":"track","userId":"U7","event":""}"#,
        #"{"userId":"U8"}"#,
        #"{"type":"track","userId":"U9","context":{"traits":{"phone":"none"}}}"#,
        #"[1,2]"#,
        #"{"ids":{"cookie":"c"}"#,
        #"{"ids":{"cookie":"c"}} x"#,
        #"{"ids":{"cookie":"\u12"}}"#,
    ]

    /// What the reference path gives: parse to an operation, then prepare it.
    static func reference(_ line: String, format: InputFormat, schema: Schema) -> Result<PreparedOperation, LineError> {
        do {
            let op = try RecordParser.parse(line, format: format)
            do {
                return .success(try PreparedOperation(op, schema: schema))
            } catch {
                return .failure(LineError.badIdentifier(field: Loader.identifierField(of: op), error))
            }
        } catch {
            return .failure(error)
        }
    }

    /// What the batch path gives, checking that a failure leaves the batch untouched.
    static func batched(_ line: String, format: InputFormat, into batch: inout EventBatch) -> Result<PreparedOperation, LineError> {
        let before = (batch.count, batch.arena.count)
        do {
            let control = try Array(line.utf8).withUnsafeBytes { bytes throws(LineError) in try RecordParser.parse(bytes, format: format, into: &batch) }
            if let control {
                #expect(batch.count == before.0 && batch.arena.count == before.1, "a control record left bytes in the batch: \(line)")
                do {
                    return .success(try PreparedOperation(control, schema: batch.schema))
                } catch {
                    return .failure(LineError.badIdentifier(field: Loader.identifierField(of: control), error))
                }
            }
            #expect(batch.count == before.0 + 1)
            return .success(batch.preparedOperation(at: batch.count - 1))
        } catch let error as LineError {
            #expect(batch.count == before.0 && batch.arena.count == before.1, "a bad line left bytes in the batch: \(line)")
            return .failure(error)
        } catch {
            Issue.record("parse threw \(error), not a LineError")
            return .failure(.notAnObject)
        }
    }

    static func lines(seed: UInt64, format: InputFormat) throws -> [String] {
        var options = ArchiveGenerator.Options()
        options.events = 1500
        options.seed = seed
        options.kiosks = 2
        options.duplicateShare = 0.05
        options.controlShare = 0.05
        options.format = format
        var generator = ArchiveGenerator(options: options)
        let path = NSTemporaryDirectory() + "idgraph-batch-\(UUID().uuidString).ndjson"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try generator.write(to: path)
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test(arguments: [InputFormat.auto, .native, .segment])
    func aBatchPreparesEveryLineAsParsingThenPreparingDoes(format: InputFormat) throws {
        let all = Self.trickyLines + (try Self.lines(seed: 7, format: .native)) + (try Self.lines(seed: 8, format: .segment))
        for schema in [Schema.builtIn, Self.schema] {
            // One batch for all lines, so bad lines and control records sit between good ones.
            var batch = EventBatch(schema: schema)
            var events = 0, failures = 0
            for line in all {
                let expected = Self.reference(line, format: format, schema: schema)
                let got = Self.batched(line, format: format, into: &batch)
                #expect(got == expected, "\(line)")
                if case .success(.event) = got { events += 1 }
                if case .failure = got { failures += 1 }
            }
            #expect(events > 1000)
            #expect(failures > 10)
            // Earlier events are intact after every later line, good or bad.
            var k = 0
            for line in all {
                guard case .success(.event(let expected)) = Self.reference(line, format: format, schema: schema) else { continue }
                #expect(batch.preparedOperation(at: k) == .event(expected), "\(line)")
                k += 1
            }
            #expect(k == batch.count)
        }
    }

    @Test func anEmptiedBatchIsReusedWithTheSameResults() throws {
        var batch = EventBatch(schema: Self.schema)
        let lines = try Self.lines(seed: 11, format: .native)
        var first: [Result<PreparedOperation, LineError>] = []
        for line in lines { first.append(Self.batched(line, format: .auto, into: &batch)) }
        batch.removeAll()
        #expect(batch.count == 0 && batch.arena.isEmpty)
        for (line, expected) in zip(lines, first) { #expect(Self.batched(line, format: .auto, into: &batch) == expected) }
    }

    /// The bulk path reads events from batches: with every normalizer, ignored and blocked
    /// values, repeats within an event, long values and ids, and links between events, it
    /// must still leave the tables the incremental path leaves.
    @Test func theBulkPathOverBatchesEqualsTheIncrementalPath() throws {
        let w = Workspace()
        let good = Self.trickyLines.filter { line in
            if case .success = Self.reference(line, format: .auto, schema: Self.schema) { return !line.contains("unlink") && !line.contains("forget") && !line.contains("retract") }
            return false
        }
        let archive = w.file("tricky.ndjson", good + (try Self.lines(seed: 5, format: .native)).filter { !$0.contains("\"op\"") || $0.contains("\"link\"") } + good)
        var graphs: [IdentityGraph] = []
        var summaries: [LoadSummary] = []
        for bulk in [true, false] {
            var graphOptions = IdentityGraph.Options()
            graphOptions.durability = .fast
            let graph = try IdentityGraph.create(at: w.path + (bulk ? "/bulk" : "/incremental"), schema: Self.schema, options: graphOptions)
            var options = LoadOptions()
            options.bulk = bulk
            options.batchSize = 61
            options.now = BulkLoadTests.clock
            summaries.append(try Loader(graph: graph, options: options).load([archive]))
            graphs.append(graph)
        }
        #expect(summaries[0].bulkRecords == summaries[0].records)
        #expect(summaries[0].report == summaries[1].report)
        #expect(summaries[0].report.blockedValues > 0)
        #expect(summaries[0].report.linksAsserted > 0)
        #expect(summaries[0].report.duplicateEvents > 0)
        try expectSameTables(graphs[0], graphs[1])
        #expect(try graphs[0].check().isEmpty)
    }
}
