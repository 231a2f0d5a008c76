import ArgumentParser
import Foundation
import IdentityGraph

struct Changes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print merges, splits, generic-value changes, refused links and erasures as NDJSON, in order (a change feed).",
        discussion: """
            One JSON object per line:
              {"seq":12,"time":"2024-05-01T12:00:00.000Z","kind":"merge","entities":[7,9],"cause":"event","cause_event":42}
            kind: merge (entities[1] merged into entities[0]), split (entities[1...] split off from
            entities[0]), demoted / promoted (a value turned generic / back), refused (a link
            between entities[0] and entities[1] refused by a limit: they stay apart), forget, erased.
            Downstream systems keep the last seq they applied and ask for --since seq+1.
            --follow keeps printing new records as they are committed (Ctrl-C to stop).
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Option(help: "First sequence number to print.") var since: UInt64 = 1
    @Flag(help: "Keep waiting for new records.") var follow = false
    @Option(help: "With --follow, how often to look for new records, in milliseconds.") var pollMillis = 200

    func run() throws {
        let graph = try database.open()
        var next = since
        // Written as it is read, 64 KiB at a time: collected whole first, the 3.2M records of a
        // 10M-event database reached the pipe only at the end, after growing the process to 2.1 GB.
        var out = try Output(path: nil)
        repeat {
            try graph.read { reader in
                try reader.forEachHistory(from: next) { sequence, record in
                    out.write(Self.json(sequence, record) + "\n")
                    next = sequence + 1
                    return true
                }
            }
            out.flush()
            if follow { usleep(UInt32(max(10, pollMillis)) * 1000) }
        } while follow
    }

    static func json(_ sequence: UInt64, _ r: HistoryRecord) -> String {
        var fields = "\"seq\":\(sequence),\"time\":\"\(Timestamp.format(r.time))\",\"kind\":\"\(r.kind.name)\",\"entities\":[\(r.entities.map(String.init).joined(separator: ","))],\"cause\":\"\(r.cause.name)\""
        if r.causeSequence != 0 { fields += ",\"cause_event\":\(r.causeSequence)" }
        return "{" + fields + "}"
    }
}

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite the database without free pages, so that no byte of an erased value survives.",
        discussion: """
            LMDB reuses freed pages but does not wipe them: after `forget`, bytes of the erased \
            identifier can remain in free pages of data.mdb until they are overwritten. compact \
            writes a compacted copy (like mdb_copy -c), checks it, and swaps it in; the old file is \
            removed. Run it while no other process has the database open.
            """
    )
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let path = database.path
        let fm = FileManager.default
        let temporary = path + ".compacting"
        let previous = path + ".before-compact"
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        let before: Int
        do {
            let graph = try database.open()
            before = (try fm.attributesOfItem(atPath: path + "/data.mdb")[.size] as? Int) ?? 0
            try graph.copy(to: temporary, compact: true)
        }
        // The copy must be a sound database before it replaces the original.
        let copy = try IdentityGraph.open(at: temporary)
        let violations = try copy.check()
        guard violations.isEmpty else {
            try? fm.removeItem(atPath: temporary)
            throw ValidationError("the compacted copy failed its check (\(violations.first!)); the database was left as it was")
        }
        try? fm.removeItem(atPath: previous)
        try fm.moveItem(atPath: path, toPath: previous)
        try fm.moveItem(atPath: temporary, toPath: path)
        // Keep files the database directory held besides LMDB's (e.g. rejects.ndjson).
        for name in (try? fm.contentsOfDirectory(atPath: previous)) ?? [] where name != "data.mdb" && name != "lock.mdb" {
            try? fm.moveItem(atPath: previous + "/" + name, toPath: path + "/" + name)
        }
        try fm.removeItem(atPath: previous)
        let after = (try fm.attributesOfItem(atPath: path + "/data.mdb")[.size] as? Int) ?? 0
        print(String(format: "compacted %@: %.1f MiB → %.1f MiB; check passed", path, Double(before) / 1_048_576, Double(after) / 1_048_576))
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Show or change the identifier types' policies.",
        subcommands: [SchemaShow.self, SchemaSet.self]
    )
}

struct SchemaShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the schema in force as JSON (the form `schema set` and `init --schema` read).")
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        print(try database.open().schema.jsonText())
    }
}

struct SchemaSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Replace the schema and re-evaluate the graph against it, in one transaction.",
        discussion: """
            Types in FILE replace the built-in policy of the same name, as with init --schema. \
            generic_after and limit may change: values that turn generic leave their entities, \
            values that turn back merge again; every link is judged again against the limits (in \
            the order its identifiers were first seen): links that would exceed one are refused \
            and their entities split, refused links that now fit merge. The change is reported. \
            How values are \
            normalized and what role a stored type plays cannot change (reload into a new \
            database for that). --dry-run reports what would change and writes nothing.

            The "profile" section (golden-record attributes and their survivorship rules, order \
            and view event types, lifecycle thresholds; docs/formats.md, "Profiles") is replaced \
            too; when it changes, every summary is recounted from the stored events in the same \
            transaction. A file without one sets the documented defaults.
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("A JSON schema file.", valueName: "file")) var file: String
    @Flag(help: "Report what would change; write nothing.") var dryRun = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read schema file \(file)") }
        let schema = try Schema.parse(json: data)
        let report = try database.open().setSchema(schema, dryRun: dryRun)
        print(Reapply.describe(report, dryRun: dryRun))
    }
}

struct Reapply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-evaluate the whole graph against the schema in force and report what changed.",
        discussion: "Values whose degree exceeds their type's generic_after turn generic (their entities split); generic values back under it merge again. Every link is judged again against the limits, in the order its identifiers were first seen: links that would exceed one are refused (their entities split), refused links that now fit merge. --dry-run reports without writing."
    )
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Report what would change; write nothing.") var dryRun = false

    func run() throws {
        print(Self.describe(try database.open().reapply(dryRun: dryRun), dryRun: dryRun))
    }

    static func describe(_ r: ApplyReport, dryRun: Bool) -> String {
        let verb = dryRun ? "would turn" : "turned"
        let changes = "\(r.demotions) value\(r.demotions == 1 ? "" : "s") \(verb) generic, \(r.promotions) \(verb) back; \(r.splits) split\(r.splits == 1 ? "" : "s"), \(r.merges) merge\(r.merges == 1 ? "" : "s")"
        let refused = r.refusedLinks == 0 ? "" : "; \(r.refusedLinks) link\(r.refusedLinks == 1 ? "" : "s") \(dryRun ? "would be " : "")refused by limits"
        return (dryRun ? "dry run, nothing written: " : "") + changes + refused
    }
}
