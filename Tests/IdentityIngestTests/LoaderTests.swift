import Foundation
import IdentityGraph
@testable import IdentityIngest
import Testing

final class Workspace {
    let path = NSTemporaryDirectory() + "idgraph-ingest-" + UUID().uuidString
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String, _ lines: [String]) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        return p
    }

    /// A new database named `name` in the workspace (`fast` commits; `mapSize` bytes of map to
    /// begin with, when given, for tests of a full map).
    func graph(_ name: String = "db", mapSize: Int? = nil) throws -> IdentityGraph {
        var options = IdentityGraph.Options()
        options.durability = .fast
        if let mapSize { options.initialMapSize = mapSize }
        return try IdentityGraph.open(at: path + "/" + name, options: options, createIfMissing: true)
    }

    /// Loads `paths` into a new database with `--skip-bad`, bad lines to `rejects.ndjson` in the
    /// workspace: the summary, the database and the rejects file's entries.
    func loadSkippingBad(_ paths: [String]) throws -> (summary: LoadSummary, graph: IdentityGraph, rejects: [[String: Any]]) {
        let graph = try graph()
        var options = LoadOptions()
        options.skipBad = true
        options.rejectsPath = path + "/rejects.ndjson"
        let summary = try Loader(graph: graph, options: options).load(paths)
        let rejects = try String(contentsOfFile: options.rejectsPath!, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        return (summary, graph, rejects)
    }
}

func partition(_ graph: IdentityGraph) throws -> Set<Set<String>> {
    var groups: [EntityID: Set<String>] = [:]
    try graph.read { try $0.forEachMembership { id, e in groups[e, default: []].insert(id.description) } }
    return Set(groups.values)
}

@Suite struct LoaderTests {
    @Test func aBadLineStopsTheLoadAfterCommittingEverythingBeforeIt() throws {
        let w = Workspace()
        let archive = w.file("a.ndjson", [
            #"{"event_id":"e1","ids":{"email":"a@x.com","cookie":"c-1"}}"#,
            "",
            #"{"event_id":"e2","ids":{"cookie":"c-1","device":"d-1"}}"#,
            #"{"event_id":"e3","ids":{"phone":"no digits"}}"#,
            #"{"event_id":"e4","ids":{"email":"c@x.com"}}"#,
        ])
        let graph = try w.graph()
        var options = LoadOptions()
        options.batchSize = 1
        do {
            _ = try Loader(graph: graph, options: options).load([archive])
            Issue.record("a bad line must stop the load")
        } catch let LoadError.badLine(file, line, reason, _) {
            #expect(file == archive)
            #expect(line == 4)
            #expect(reason.contains("phone"))
        }
        #expect(try partition(graph) == [["email:a@x.com", "cookie:c-1", "device:d-1"]])
    }

    @Test func skipBadWritesEveryBadLineWithItsNumberAndReason() throws {
        let w = Workspace()
        let archive = w.file("a.ndjson", [
            #"{"ids":{"email":"a@x.com"}}"#,
            #"{"ids":{"email":"   "}}"#,
            #"not json"#,
            #"{"ids":{"email":"b@x.com"}}"#,
        ])
        let (summary, graph, rejects) = try w.loadSkippingBad([archive])
        #expect(summary.rejected == 2)
        #expect(summary.records == 2)
        #expect(rejects.count == 2)
        let first = rejects[0]
        #expect(first["line"] as? Int == 2)
        #expect(first["file"] as? String == archive)
        #expect((first["reason"] as? String)?.contains("empty") == true)
        #expect(first["text"] as? String == #"{"ids":{"email":"   "}}"#)
        #expect(rejects[1]["line"] as? Int == 3)
        #expect(try partition(graph) == [["email:a@x.com"], ["email:b@x.com"]])
    }

    /// A run killed after writing bad lines to the rejects file and before the batch after
    /// them committed leaves them there; the run that resumes reads those lines again and must
    /// not write them twice (a bad line fixed in between is a different line and is written).
    @Test func aResumedLoadWritesEachBadLineToTheRejectsOnce() throws {
        let w = Workspace()
        var lines = (0..<40).map { #"{"ids":{"email":"u\#($0)@x.com"}}"# }
        lines[25] = #"{"ids":{"email":"   "}}"#
        lines[31] = "not json"
        lines[35] = #"{"ids":{"email":"  "}}"#
        let rejectsPath = w.path + "/rejects.ndjson"
        var options = LoadOptions()
        options.skipBad = true
        options.rejectsPath = rejectsPath
        // What the killed run left: the first 20 lines committed, and the rejects of the lines
        // after them that it had read, as it wrote them (taken from a load of a copy).
        let copy = w.file("copy.ndjson", lines)
        var scratch = options
        scratch.rejectsPath = w.path + "/scratch-rejects.ndjson"
        _ = try Loader(graph: try w.graph("scratch"), options: scratch).load([copy])
        let archive = w.file("a.ndjson", Array(lines[0..<20]))
        let graph = try w.graph()
        _ = try Loader(graph: graph, options: options).load([archive])
        _ = w.file("a.ndjson", lines)
        let left = try String(contentsOfFile: scratch.rejectsPath!, encoding: .utf8).split(separator: "\n")
            .map { $0.replacingOccurrences(of: copy, with: archive) }
        #expect(left.count == 3)
        try (left.prefix(2).joined(separator: "\n") + "\n").write(toFile: rejectsPath, atomically: true, encoding: .utf8)
        // Between the two runs the third bad line is fixed… and another line broken.
        lines[35] = #"{"ids":{"email":"u35@x.com"}}"#
        lines[37] = #"{"ids":{"email":""}}"#
        _ = w.file("a.ndjson", lines)

        let summary = try Loader(graph: graph, options: options).load([archive])
        #expect(summary.resumedLines == 20)
        #expect(summary.rejected == 3)
        #expect(summary.rejectedEarlier == 2)
        let rejects = try String(contentsOfFile: rejectsPath, encoding: .utf8).split(separator: "\n")
        let numbers = try rejects.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.map { $0["line"] as? Int }
        #expect(numbers == [26, 32, 38])
        #expect(try graph.read { try $0.stats() }.events == 37)

        // Killed before an archive's first commit: no checkpoint, the next run reads it from
        // its first line, and finds its bad lines already written.
        let second = w.file("b.ndjson", ["not json", #"{"ids":{"email":"v@x.com"}}"#, "[1]"])
        let written = rejects.count
        _ = try Loader(graph: try w.graph("other"), options: options).load([second])
        let afterFirst = try String(contentsOfFile: rejectsPath, encoding: .utf8).split(separator: "\n").count
        #expect(afterFirst == written + 2)
        _ = try Loader(graph: try w.graph("again"), options: options).load([second])
        #expect(try String(contentsOfFile: rejectsPath, encoding: .utf8).split(separator: "\n").count == afterFirst)
    }

    @Test func reloadingAnArchiveResumesFromItsCheckpoint() throws {
        let w = Workspace()
        // No event ids: only the checkpoint keeps a second load from duplicating events.
        let archive = w.file("a.ndjson", (0..<50).map { #"{"ids":{"email":"u\#($0)@x.com","cookie":"c\#($0 % 7)"}}"# })
        let graph = try w.graph()
        var options = LoadOptions()
        options.batchSize = 8
        let first = try Loader(graph: graph, options: options).load([archive])
        #expect(first.records == 50)
        let second = try Loader(graph: graph, options: options).load([archive])
        #expect(second.records == 0)
        #expect(second.resumedLines == 50)
        #expect(try graph.read { try $0.stats() }.events == 50)
        options.restart = true
        let third = try Loader(graph: graph, options: options).load([archive])
        #expect(third.records == 50)
        #expect(try graph.read { try $0.stats() }.events == 100)
    }

    @Test func anArchiveThatGrewResumesAtItsEnd() throws {
        let w = Workspace()
        let lines = (0..<30).map { #"{"ids":{"email":"u\#($0)@x.com"}}"# }
        let path = w.file("a.ndjson", Array(lines[0..<20]))
        let graph = try w.graph()
        _ = try Loader(graph: graph).load([path])
        _ = w.file("a.ndjson", lines)  // the same archive, appended to
        let summary = try Loader(graph: graph).load([path])
        #expect(summary.resumedLines == 20)
        #expect(summary.records == 10)
        #expect(try graph.read { try $0.stats() }.events == 30)
    }

    @Test func fixingTheBadLineAndRunningAgainResumesAfterTheCommittedPrefix() throws {
        let w = Workspace()
        var lines = (0..<10).map { #"{"ids":{"email":"u\#($0)@x.com","cookie":"c\#($0 % 3)"}}"# }
        lines[6] = #"{"ids":{"email":"   "}}"#
        let path = w.file("a.ndjson", lines)
        let graph = try w.graph()
        #expect(throws: LoadError.self) { _ = try Loader(graph: graph).load([path]) }
        #expect(try graph.read { try $0.stats() }.events == 6)
        lines[6] = #"{"ids":{"email":"u6@x.com","cookie":"c0"}}"#
        _ = w.file("a.ndjson", lines)
        let summary = try Loader(graph: graph).load([path])
        #expect(summary.resumedLines == 6)
        #expect(summary.records == 4)
        #expect(try graph.read { try $0.stats() }.events == 10)  // nothing twice, nothing lost
    }

    @Test func anotherArchiveWithTheSameFirstLineLoadsFromItsBeginning() throws {
        let w = Workspace()
        let first = #"{"op":"link","a":"email:a@x.com","b":"crm:1"}"#
        let a = w.file("a.ndjson", [first, #"{"ids":{"email":"b@x.com"}}"#])
        let b = w.file("b.ndjson", [first, #"{"ids":{"email":"c@x.com"}}"#, #"{"ids":{"email":"d@x.com"}}"#])
        let graph = try w.graph()
        _ = try Loader(graph: graph).load([a])
        let summary = try Loader(graph: graph).load([b])
        #expect(summary.resumedLines == 0)
        #expect(summary.records == 3)
        #expect(try partition(graph).contains(["email:d@x.com"]))
    }

    @Test func gzipAndPlainGiveTheSameResult() throws {
        let w = Workspace()
        var options = ArchiveGenerator.Options()
        options.events = 3000
        options.controlShare = 0.05
        var plainGenerator = ArchiveGenerator(options: options)
        _ = try plainGenerator.write(to: w.path + "/a.ndjson")
        var gzipGenerator = ArchiveGenerator(options: options)
        _ = try gzipGenerator.write(to: w.path + "/a.ndjson.gz", gzip: true)
        let plain = try w.graph("plain"), gz = try w.graph("gz")
        let s1 = try Loader(graph: plain).load([w.path + "/a.ndjson"])
        let s2 = try Loader(graph: gz).load([w.path + "/a.ndjson.gz"])
        #expect(s1.records == 3000)
        #expect(s2.records == 3000)
        #expect(try partition(plain) == partition(gz))
        #expect(try plain.read { try $0.stats() } == gz.read { try $0.stats() })
    }

    @Test func aTruncatedGzipFileIsAnErrorNotASilentEnd() throws {
        let w = Workspace()
        var options = ArchiveGenerator.Options()
        options.events = 2000
        var generator = ArchiveGenerator(options: options)
        _ = try generator.write(to: w.path + "/a.gz", gzip: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: w.path + "/a.gz"))
        _ = FileManager.default.createFile(atPath: w.path + "/cut.gz", contents: data.prefix(data.count / 2))
        #expect(throws: LoadError.self) { _ = try Loader(graph: try w.graph()).load([w.path + "/cut.gz"]) }
    }

    @Test func nativeAndSegmentEncodingsOfTheSameJourneysAgree() throws {
        let w = Workspace()
        let native = w.file("n.ndjson", [
            #"{"event_id":"m1","ids":{"anonymous_id":"anon-1","ip":"203.0.113.9"}}"#,
            #"{"event_id":"m2","ids":{"anonymous_id":"anon-1","user_id":"u-1","email":"Bob@Example.com"}}"#,
            #"{"event_id":"m3","ids":{"user_id":"u-1"},"props":{"amount":42}}"#,
            #"{"event_id":"m4","ids":{"device":"dev-3","anonymous_id":"anon-3","email":"carol@example.com"}}"#,
        ])
        let segment = w.file("s.ndjson", [
            #"{"type":"page","messageId":"m1","anonymousId":"anon-1","context":{"ip":"203.0.113.9"}}"#,
            #"{"type":"identify","messageId":"m2","anonymousId":"anon-1","userId":"u-1","traits":{"email":"Bob@Example.com"}}"#,
            #"{"type":"track","messageId":"m3","userId":"u-1","event":"Order Completed","properties":{"amount":42}}"#,
            #"{"type":"screen","messageId":"m4","anonymousId":"anon-3","context":{"device":{"id":"dev-3"},"traits":{"email":"carol@example.com"}}}"#,
        ])
        let a = try w.graph("a"), b = try w.graph("b")
        _ = try Loader(graph: a).load([native])
        var options = LoadOptions()
        options.format = .segment
        _ = try Loader(graph: b, options: options).load([segment])
        #expect(try partition(a) == partition(b))
        #expect(try partition(a).count == 2)
    }

    @Test func generatedNativeAndSegmentArchivesResolveAlike() throws {
        let w = Workspace()
        var options = ArchiveGenerator.Options()
        options.events = 2000
        var native = ArchiveGenerator(options: options)
        _ = try native.write(to: w.path + "/n.ndjson")
        options.format = .segment
        var segment = ArchiveGenerator(options: options)
        _ = try segment.write(to: w.path + "/s.ndjson")
        let a = try w.graph("a"), b = try w.graph("b")
        _ = try Loader(graph: a).load([w.path + "/n.ndjson"])
        _ = try Loader(graph: b).load([w.path + "/s.ndjson"])
        #expect(try a.check().isEmpty)
        #expect(try b.check().isEmpty)
        // Segment has no crm/loyalty/address fields, so compare on the identifiers both carry.
        let shared: Set<String> = ["user_id", "email", "device", "phone"]
        func restricted(_ p: Set<Set<String>>) -> Set<Set<String>> {
            Set(p.map { $0.filter { shared.contains(String($0.prefix(while: { $0 != ":" }))) } }.filter { !$0.isEmpty })
        }
        #expect(try restricted(partition(a)).count > 0)
    }

    @Test func directoriesAreWalkedInSortedOrder() throws {
        let w = Workspace()
        try FileManager.default.createDirectory(atPath: w.path + "/day/b", withIntermediateDirectories: true)
        _ = w.file("day/b/2.ndjson", [#"{"op":"unlink","a":"email:a@x.com","b":"cookie:c-1"}"#])
        _ = w.file("day/1.ndjson", [#"{"ids":{"email":"a@x.com","cookie":"c-1"}}"#])
        #expect(try Loader.expand([w.path + "/day"]) == [w.path + "/day/1.ndjson", w.path + "/day/b/2.ndjson"])
        let graph = try w.graph()
        _ = try Loader(graph: graph).load([w.path + "/day"])
        #expect(try partition(graph) == [["email:a@x.com"], ["cookie:c-1"]])
    }

    @Test func aByteOrderMarkStartingTheArchiveIsNotPartOfItsFirstLine() throws {
        let w = Workspace()
        let bom = "\u{FEFF}"
        // As a Windows tool exports it: a byte order mark, CRLF line ends. A mark anywhere
        // else is not one: that line is bad.
        let path = w.path + "/windows.ndjson"
        let text = bom + #"{"ids":{"email":"a@x.com"}}"# + "\r\n" + #"{"ids":{"email":"a@x.com","cookie":"c-1"}}"# + "\r\n"
            + bom + #"{"ids":{"email":"b@x.com"}}"# + "\r\n"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        let (summary, graph, rejects) = try w.loadSkippingBad([path])
        #expect(summary.records == 2)
        #expect(summary.rejected == 1)
        #expect(try partition(graph) == [["cookie:c-1", "email:a@x.com"]])
        #expect(rejects.map { $0["line"] as? Int } == [3])

        // The reader's offsets count the mark: a resume starts where the bytes are.
        let reader = LineReader(source: try FileSource(path: path), chunkSize: 16)
        var first = ""
        try reader.nextLine { first = String(decoding: $0, as: UTF8.self) }
        #expect(first == #"{"ids":{"email":"a@x.com"}}"#)
        #expect(reader.offset == 3 + first.utf8.count + 2)
    }

    @Test func linesAreSplitAcrossBufferBoundaries() throws {
        let w = Workspace()
        let lines = (0..<500).map { #"{"ids":{"email":"user\#($0)@example.com","cookie":"\#(String(repeating: "k", count: $0 % 300))x"}}"# }
        let path = w.file("a.ndjson", lines)
        let source = try FileSource(path: path)
        let reader = LineReader(source: source, chunkSize: 64)
        var seen: [String] = []
        while try reader.nextLine({ seen.append(String(decoding: $0, as: UTF8.self)) }) {}
        #expect(seen == lines)
        #expect(reader.lineNumber == 500)
    }
}
