import ArgumentParser
import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a database (loading into a missing one creates it too).",
        discussion: """
            The schema file (JSON) sets the policy of identifier types; types it does not name keep \
            the built-in policy (email and phone normalized, ip and address relate-only, others merge):

              {"types": {"email": {"normalize": "email", "role": "merge", "blocked": ["^test@"]},
                         "device": {"generic_after": 50},
                         "kiosk": {"role": "relate"}},
               "default": {"normalize": "trim", "role": "merge"}}

            normalize: email | phone | lower | trim | none      role: merge | relate | ignore
            generic_after: N — a value linked to more than N identifiers stops merging
            blocked: regular expressions for values that are never identifiers
            An optional "profile" section sets the Customer 360 profile: golden-record attributes
            with their survivorship rules, order types, lifecycle thresholds, e.g.
              "profile": {"attributes": {"country": {"rule": "most_frequent"}},
                          "lifecycle": {"active_days": 60}}
            Change policies later with `idgraph schema set FILE` (see docs/formats.md).
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Option(help: ArgumentHelp("A JSON schema file.", valueName: "file")) var schema: String?

    func run() throws {
        var parsed: Schema?
        if let schema {
            guard let data = FileManager.default.contents(atPath: schema) else { throw ValidationError("cannot read schema file \(schema)") }
            parsed = try Schema.parse(json: data)
        }
        let graph = try IdentityGraph.create(at: database.path, schema: parsed)
        print("created \(graph.path) with \(graph.knownTypes.count) identifier types")
    }
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load event archives (native NDJSON or Segment; .gz read transparently).",
        discussion: """
            Each line is an event or a control record (link, unlink, forget, retract); see \
            docs/formats.md. FILE may be a directory (its files are read in sorted order) or - for \
            standard input.

            Every batch is one transaction, committed together with the archive's checkpoint: a \
            load that was killed or interrupted resumes where it stopped when you run the same \
            command again (--restart reads the archive from the beginning).

            A bad line stops the load with FILE:LINE and the reason, after committing every line \
            before it (exit 1). With --skip-bad, bad lines go to the rejects file with their file, \
            line number and reason, and the load goes on.

            Into an empty database, events take the bulk path: they are resolved in memory and \
            each table is written once, in key order, in one transaction with the checkpoint \
            (the result is byte for byte what batch-by-batch loading gives), across all the \
            archives of the load, events and links alike. The bulk part ends at the first unlink, forget \
            or retract, at a bad line \
            or at --memory-limit; the rest is loaded batch by batch. Killed during the bulk part, a load starts that \
            part again; --no-bulk loads batch by batch from the start.
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("Archives to load (- is standard input).", valueName: "file")) var files: [String]
    @Option(help: "Line format: auto (per line), native or segment.") var format: InputFormat = .auto
    @Flag(help: "Set bad lines aside in the rejects file and keep going.") var skipBad = false
    @Option(help: ArgumentHelp("Where --skip-bad writes bad lines (default <db>/rejects.ndjson).", valueName: "file")) var rejects: String?
    @Option(help: "Operations per batch, for lines that go batch by batch: the writer applies one batch while the next is read (measured: into a fresh database 200,000 was 10% faster than 100,000).") var batchSize = 100_000
    @Option(help: ArgumentHelp("Operations per transaction for lines that go batch by batch (whole batches; each commit writes every page its transaction changed). Default: one batch per 512 MiB of database, 1 to 10. Larger transactions pay when the events touch records spread over a large database: on a 5.4 GB database, 1M events of returning customers spread over it took 52-58 s in transactions of 100,000 and 29-42 s in transactions of 1,000,000 (the default there); on a 0.5 GB one, 8.8 s against 13 s.", valueName: "n")) var transactionSize: Int?
    @Flag(help: "Ignore checkpoints: read every archive from its beginning.") var restart = false
    @Option(help: "durable (fsync per commit), fast (no fsync until the end; a system crash may lose recent batches and damage the database: run check after one).") var durability: Durability = .durable
    @Flag(help: "Parse and validate every line, report bad ones, write nothing.") var dryRun = false
    @Flag(name: .shortAndLong, help: "Print no summary.") var quiet = false
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(help: "Load batch by batch even into an empty database.") var noBulk = false
    @Option(help: ArgumentHelp("Memory (MiB) the bulk path may hold before it commits and goes on batch by batch (checked against its own estimate, printed in the summary; peak RSS is 1.3 to 1.6 times it). Default: 40% of the memory available when the load starts, at least 256.", valueName: "MiB")) var memoryLimit: Int?

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if let transactionSize, transactionSize < 1 { throw ValidationError("--transaction-size must be at least 1") }
        if let memoryLimit, memoryLimit < 1 { throw ValidationError("--memory-limit must be at least 1 (MiB)") }
    }

    func run() throws {
        // A dry run against a database that does not exist yet validates with the built-in schema.
        var scratch: String?
        if dryRun && !IdentityGraph.exists(at: database.path) {
            scratch = NSTemporaryDirectory() + "idgraph-dry-run-" + UUID().uuidString
        }
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        var openOptions = IdentityGraph.Options()
        openOptions.durability = durability
        let graph = try IdentityGraph.open(at: scratch ?? database.path, options: openOptions, createIfMissing: true).reportingJournalRecovery()
        var options = LoadOptions()
        options.dryRun = dryRun
        options.batchSize = batchSize
        options.transactionSize = transactionSize
        options.skipBad = skipBad
        options.rejectsPath = rejects
        options.restart = restart
        options.format = format
        options.bulk = !noBulk
        if let memoryLimit { options.memoryLimit = memoryLimit << 20 }
        options.progress = isatty(2) != 0 && !quiet
        installInterruptHandler()
        let summary = try Loader(graph: graph, options: options).load(files)
        if durability == .fast { try graph.sync() }
        if quiet { return }
        let r = summary.report
        if json {
            let fields: [(String, Any)] = [
                ("files", summary.files), ("lines", summary.lines), ("records", summary.records),
                ("events_stored", r.eventsStored), ("duplicate_events", r.duplicateEvents),
                ("identifiers_created", r.identifiersCreated), ("merges", r.merges), ("splits", r.splits),
                ("demotions", r.demotions), ("promotions", r.promotions), ("refused_links", r.refusedLinks),
                ("links_asserted", r.linksAsserted), ("unlinks", r.unlinks), ("forgotten", r.forgotten),
                ("retracted", r.retracted), ("erased_identifiers_skipped", r.erasedIdentifiersSkipped),
                ("bulk_records", summary.bulkRecords), ("bulk_resolve_seconds", summary.bulkTimings.resolveSeconds),
                ("bulk_wait_seconds", summary.bulkTimings.waitSeconds), ("bulk_write_tables_seconds", summary.bulkTimings.writeTablesSeconds),
                ("bulk_commit_seconds", summary.bulkTimings.commitSeconds), ("bulk_memory_estimate_mib", summary.bulkMemoryEstimateBytes >> 20), ("memory_limit_mib", options.memoryLimit >> 20), ("rejected", summary.rejected), ("rejected_earlier", summary.rejectedEarlier), ("resumed_lines", summary.resumedLines),
                ("batch_records", summary.batchRecords), ("batch_reason", summary.batchReason.map { "\"\($0.code)\"" } ?? "null"),
                ("elapsed_seconds", summary.elapsedSeconds),
                ("records_per_second", summary.elapsedSeconds > 0 ? Double(summary.records) / summary.elapsedSeconds : 0),
            ]
            print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
            return
        }
        let rate = summary.elapsedSeconds > 0 ? Int(Double(summary.records) / summary.elapsedSeconds) : summary.records
        if dryRun {
            print("checked \(summary.lines) lines: \(summary.records) valid records, \(summary.rejected) bad, in \(String(format: "%.2f", summary.elapsedSeconds)) s (\(rate) records/s); nothing written")
            return
        }
        print("loaded \(summary.records) records from \(summary.files) file\(summary.files == 1 ? "" : "s") in \(String(format: "%.2f", summary.elapsedSeconds)) s (\(rate) records/s)")
        print("  events: \(r.eventsStored) stored, \(r.duplicateEvents) duplicate event_id skipped, \(r.eventsWithoutIdentifiers) without identifiers")
        print("  identifiers: \(r.identifiersCreated) new, \(r.erasedIdentifiersSkipped) erased ones skipped\(r.blockedValues > 0 ? ", \(r.blockedValues) blocked values dropped" : "")")
        print("  entities: \(r.merges) merges, \(r.splits) splits\(r.demotions + r.promotions > 0 ? ", \(r.demotions) values turned generic, \(r.promotions) turned back" : "")\(r.refusedLinks > 0 ? ", \(r.refusedLinks) links refused by limits (conflicts: RELATED shows them)" : "")")
        print("  control: \(r.linksAsserted) links, \(r.unlinks) unlinks (\(r.unknownUnlinks) unknown), \(r.forgotten) forgotten (\(r.unknownForgets) unknown), \(r.retracted) retracted (\(r.unknownRetracts) unknown)")
        if summary.bulkRecords > 0 {
            let t = summary.bulkTimings
            print("  bulk path: \(summary.bulkRecords) records resolved in memory and written in key order; writer: "
                + String(format: "resolving %.2f s, waiting for the parser %.2f s, writing tables %.2f s, commit %.2f s", t.resolveSeconds, t.waitSeconds, t.writeTablesSeconds, t.commitSeconds)
                + "; memory estimate \(summary.bulkMemoryEstimateBytes >> 20) MiB of --memory-limit \(options.memoryLimit >> 20)")
        }
        if summary.batchRecords > 0, let reason = summary.batchReason {
            // Advice only when most of the load went batch by batch (corrections already in an
            // archive of their own, after the events, are no reason to advise anything).
            let advice = summary.batchRecords > summary.bulkRecords ? reason.advice.map { " (\($0))" } ?? "" : ""
            print("  batch by batch: \(summary.batchRecords) records, \(reason)\(advice)")
        }
        if summary.resumedLines > 0 { print("  resumed: \(summary.resumedLines) lines were already loaded") }
        if summary.rejected > 0 {
            let earlier = summary.rejectedEarlier > 0 ? " (\(summary.rejectedEarlier) of them were there already, from a run that was interrupted)" : ""
            print("  rejected: \(summary.rejected) bad lines written to \(summary.rejectsPath ?? "the rejects file")\(earlier)")
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write identifier,entity for every identifier that belongs to an entity.",
        discussion: """
            CSV (header identifier,entity) or NDJSON ({"identifier":"email:a@x.com","entity":17}), \
            grouped by entity. Identifiers that never merge (relate types such as ip and address, \
            generic values) belong to no entity and are left out.

            --segment NAME writes only the entities of a segment (CREATE SEGMENT in the query \
            language), evaluated now (or --as-of): e.g. idgraph export --segment newsletter_heroes.

            --profiles writes one row per entity instead: its Customer 360 profile (lifecycle, \
            counts, revenue, dates, preferred channel, the golden record, and in NDJSON also its \
            identifiers, products, campaigns, lists and RFM scores), for the systems downstream:
              idgraph export --profiles --format ndjson --segment heroes --as-of 2024-12-31
            """
    )
    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, ndjson }
    @OptionGroup var database: DatabaseOptions
    @Option(help: "csv or ndjson.") var format: Format = .csv
    @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var output: String?
    @Option(help: ArgumentHelp("Only the entities of this segment.", valueName: "name")) var segment: String?
    @Flag(help: "One row per entity: its profile and golden record (see above).") var profiles = false
    @OptionGroup var asOf: AsOfOption

    func run() throws {
        let graph = try database.open()
        var members: Set<EntityID>?
        if let segment {
            let executor = IdentityQuery.Executor(graph: graph, now: try asOf.millis())
            do {
                let result = try executor.run(Statement.find(.inSegment(segment), orderBy: nil, descending: false, limit: nil))
                members = Set(result.rows.compactMap { if case .int(let id) = $0.first { EntityID(id) } else { nil } })
            } catch let error as QueryError {
                throw ValidationError(error.message)
            }
        }
        var out = try Output(path: output)
        if profiles {
            try ProfileExport(format: format, now: try asOf.millis() ?? currentTimeMillis()).write(graph, members: members, to: &out)
            out.flush()
            return
        }
        if format == .csv { out.write("identifier,entity\n") }
        try graph.read { reader in
            try reader.forEachMembership { identifier, entity in
                if let members, !members.contains(entity) { return }
                switch format {
                case .csv: out.write(TextEncoding.csvField(identifier.description) + "," + String(entity) + "\n")
                case .ndjson: out.write("{\"identifier\":" + TextEncoding.jsonString(identifier.description) + ",\"entity\":" + String(entity) + "}\n")
                }
            }
        }
        out.flush()
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Counts: identifiers, entities, links, events, largest entity, generic identifiers, refused links.")
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let graph = try database.open()
        let s = try graph.read { try $0.stats() }
        let usage = graph.storageUsage
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(s), as: UTF8.self))
            return
        }
        let rows: [(String, String)] = [
            ("identifiers", "\(s.identifiers)"),
            ("entities", "\(s.entities)"),
            ("links", "\(s.links)"),
            ("events", "\(s.events)"),
            ("largest entity", s.largestEntity == 0 ? "-" : "\(s.largestEntitySize) identifiers (entity \(s.largestEntity))"),
            ("generic identifiers", "\(s.genericIdentifiers)"),
            ("refused links (limit)", "\(s.refusedLinks)"),
            ("identifiers in no entity", "\(s.identifiersWithoutEntity)"),
            ("tombstones", "\(s.tombstones)"),
            ("history records", "\(s.historyRecords)"),
            ("identifier types", "\(s.identifierTypes)"),
            ("storage", String(format: "%.1f MiB used", Double(usage.usedBytes) / 1_048_576)),
        ] + s.blockedValues.sorted { $0.key < $1.key }.map { ("blocked \($0.key)", "\($0.value) values dropped") }
        let width = rows.map(\.0.count).max() ?? 0
        for (k, v) in rows { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify every invariant of the store; exit 1 on any violation.",
        discussion: """
            Checks that the identifier index, node records, entity membership and adjacency agree; \
            that links are symmetric with evidence; that every entity is connected and no active \
            link joins two entities; that summaries equal the fold of their events; that timelines \
            point at stored events; and that the counters are right.
            """
    )
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let graph = try database.open()
        let violations = try graph.check()
        if violations.isEmpty {
            let s = try graph.read { try $0.stats() }
            print("ok: \(s.identifiers) identifiers, \(s.entities) entities, \(s.links) links, \(s.events) events; every invariant holds")
            return
        }
        for v in violations { FileHandle.standardError.write("\(v)\n".data(using: .utf8)!) }
        FileHandle.standardError.write("check failed: \(violations.count) violation\(violations.count == 1 ? "" : "s")\(violations.count >= 1000 ? " (first 1000 shown)" : "")\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the entity of an identifier (type:value) or an entity id: identifiers and summary.",
        discussion: """
            Examples:
              idgraph show email:alice@example.com
              idgraph show 42
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("An identifier type:value (normalized as on load) or an entity id.", valueName: "target")) var target: String

    func run() throws {
        let graph = try database.open()
        try graph.read { reader in
            var entityID: EntityID
            if let number = EntityID(target) {
                entityID = number
            } else {
                let raw = try RawIdentifier(text: target)
                guard let id = try reader.normalize(raw) else { throw ValidationError("type of \(target) is ignored by the schema") }
                guard let node = try reader.node(of: id) else {
                    print("\(id): unknown identifier")
                    throw ExitCode(1)
                }
                guard let info = try reader.nodeInfo(node), let e = info.entity else {
                    print("\(id): belongs to no entity (role \(try reader.nodeInfo(node)?.role.rawValue ?? "?"))")
                    return
                }
                entityID = e
            }
            switch try reader.entityState(entityID) {
            case nil:
                print("entity \(entityID): unknown")
                throw ExitCode(1)
            case .erased?:
                print("entity \(entityID): erased (its last identifier was forgotten)")
                return
            case .mergedInto(let next)?:
                let live = try reader.resolve(entityID)
                print("entity \(entityID) was merged into \(next)\(live.map { " (now entity \($0.id))" } ?? "")")
                guard let live else { return }
                entityID = live.id
            case .live?:
                break
            }
            guard let info = try reader.resolve(entityID) else { return }
            let s = info.summary
            print("entity \(info.id): \(info.size) identifier\(info.size == 1 ? "" : "s")")
            for id in try reader.identifiers(of: info.id) { print("  \(id)") }
            var named = Set<UInt64>()
            for node in try reader.members(of: info.id) { for entry in try reader.timeline(of: node) { named.insert(entry.sequence) } }
            let shared = named.count - Int(s.events)
            print("events \(s.events)\(shared > 0 ? " (and \(shared) more that name its identifiers but count toward another entity)" : ""), revenue \(String(format: "%.2f", s.revenue))")
            if let f = s.firstSeen, let l = s.lastSeen { print("first seen \(Timestamp.format(f)), last seen \(Timestamp.format(l))") }
            let byType = s.eventsByType.map { (reader.eventTypeName($0.key), $0.value) }.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            if !byType.isEmpty { print("by type: " + byType.map { "\($0.0) \($0.1)" }.joined(separator: ", ")) }
        }
    }
}

/// `idgraph export --profiles`: one row per entity with its profile.
struct ProfileExport {
    let format: Export.Format
    let now: Int64

    func write(_ graph: IdentityGraph, members: Set<EntityID>?, to out: inout Output) throws {
        try graph.read { reader in
            let attributes = reader.schema.profile.attributes.keys.sorted()
            if format == .csv {
                let header = ["entity", "lifecycle", "events", "orders", "revenue", "aov", "first_seen", "last_seen", "last_order", "preferred_channel"]
                    + attributes + ["identifiers"]
                out.write(header.map(TextEncoding.csvField).joined(separator: ",") + "\n")
            }
            try reader.forEachEntity { info in
                if let members, !members.contains(info.id) { return }
                let p = try reader.profile(of: info, now: now)
                let ids = try reader.identifiers(of: info.id).map(\.description).sorted()
                switch format {
                case .csv: out.write(csvRow(info, p, ids, attributes))
                case .ndjson: out.write(jsonLine(info, p, ids))
                }
            }
        }
    }

    private func time(_ ms: Int64?) -> String { ms.map(Timestamp.format) ?? "" }
    private func money(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "" }

    private func csvRow(_ info: GraphReader.EntityInfo, _ p: EntityProfile, _ ids: [String], _ attributes: [String]) -> String {
        var fields = [String(info.id), p.lifecycle.rawValue, String(p.events), String(p.orders), money(p.revenue), money(p.averageOrderValue),
                      time(p.firstSeen), time(p.lastSeen), time(p.lastOrder), p.preferredChannel ?? ""]
        for name in attributes { fields.append(p.golden.first { $0.attribute == name }?.value ?? "") }
        fields.append(ids.joined(separator: " "))
        return fields.map(TextEncoding.csvField).joined(separator: ",") + "\n"
    }

    private func jsonLine(_ info: GraphReader.EntityInfo, _ p: EntityProfile, _ ids: [String]) -> String {
        func str(_ s: String?) -> String { s.map(TextEncoding.jsonString) ?? "null" }
        func counts(_ list: [CountedName]) -> String { "{" + list.map { TextEncoding.jsonString($0.name) + ":" + String($0.count) }.joined(separator: ",") + "}" }
        let golden = p.golden.map {
            TextEncoding.jsonString($0.attribute) + ":{\"value\":" + TextEncoding.jsonString($0.value) + ",\"source\":" + TextEncoding.jsonString($0.source)
                + ",\"seen\":" + TextEncoding.jsonString(Timestamp.format($0.seen)) + ",\"count\":" + String($0.count) + ",\"rule\":\"" + $0.rule.rawValue + "\"}"
        }.joined(separator: ",")
        var parts = [
            "\"entity\":\(info.id)", "\"lifecycle\":\"\(p.lifecycle.rawValue)\"", "\"events\":\(p.events)", "\"orders\":\(p.orders)",
            "\"revenue\":" + money(p.revenue), "\"aov\":" + (p.averageOrderValue.map(money) ?? "null"),
            "\"first_seen\":" + str(p.firstSeen.map(Timestamp.format)), "\"last_seen\":" + str(p.lastSeen.map(Timestamp.format)),
            "\"last_order\":" + str(p.lastOrder.map(Timestamp.format)), "\"preferred_channel\":" + str(p.preferredChannel),
            "\"most_used_device\":" + str(p.mostUsedDevice?.name), "\"golden\":{" + golden + "}",
            "\"products\":" + counts(p.products), "\"campaigns\":" + counts(p.campaigns),
            "\"lists\":[" + p.lists.map(TextEncoding.jsonString).joined(separator: ",") + "]",
            "\"rfm\":" + (p.rfm.map { "\"\($0.code)\"" } ?? "null"),
        ]
        parts.append("\"identifiers\":[" + ids.map(TextEncoding.jsonString).joined(separator: ",") + "]")
        return "{" + parts.joined(separator: ",") + "}\n"
    }
}
