import ArgumentParser
import Foundation
import IdentityIngest

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a seeded synthetic archive for demos, tests and benchmarks.",
        discussion: """
            People with several emails, phones, cookies and devices; anonymous sessions that later \
            log in; households sharing an address; shared IPs; orders with amounts; optionally \
            shared kiosk devices, control records and replayed events. The same seed gives the \
            same archive. --truth writes identifier,person: who each identifier really belongs to.

            Example:
              idgraph generate --events 1000000 --output events.ndjson.gz --gzip --truth truth.csv
            """
    )
    @Option(help: "Lines to write (events and control records).") var events = 10_000
    @Option(help: "People behind them (default: events / 10).") var persons: Int?
    @Option(help: "Seed of the random choices.") var seed: UInt64 = 42
    @Option(help: "native or segment.") var format: InputFormat = .native
    @Option(help: "Shared kiosk devices used by strangers.") var kiosks = 0
    @Option(help: "Share of control records (unlink, forget, retract, link), 0 to 0.5.") var controlShare = 0.0
    @Option(help: "Share of replayed events (same event id), 0 to 0.5.") var duplicateShare = 0.0
    @Option(help: ArgumentHelp("What event ids start with (default e-, or m- for Segment messageIds). The same seed with another prefix gives the same people and journeys as new events: a second day to load on top of the first.", valueName: "prefix")) var idPrefix: String?
    @Option(name: .shortAndLong, help: ArgumentHelp("Output file (- for standard output).", valueName: "file")) var output = "-"
    @Flag(help: "Compress the output with gzip.") var gzip = false
    @Option(help: ArgumentHelp("Also write the ground truth identifier,person here.", valueName: "file")) var truth: String?

    func validate() throws {
        if events < 1 { throw ValidationError("--events must be at least 1") }
        if let persons, persons < 1 { throw ValidationError("--persons must be at least 1") }
        if !(0...0.5).contains(controlShare) { throw ValidationError("--control-share must be between 0 and 0.5") }
        if !(0...0.5).contains(duplicateShare) { throw ValidationError("--duplicate-share must be between 0 and 0.5") }
        if format == .auto { throw ValidationError("--format must be native or segment") }
        if gzip && output == "-" { throw ValidationError("--gzip needs --output FILE") }
        if let idPrefix, !ArchiveGenerator.Options.isValidEventIDPrefix(idPrefix) { throw ValidationError("--id-prefix cannot hold quotes, backslashes or line breaks") }
    }

    func run() throws {
        var options = ArchiveGenerator.Options()
        options.events = events
        options.persons = persons
        options.seed = seed
        options.format = format
        options.kiosks = kiosks
        options.controlShare = controlShare
        options.duplicateShare = duplicateShare
        options.eventIDPrefix = idPrefix
        var generator = ArchiveGenerator(options: options)
        let written = try generator.write(to: output, gzip: gzip, truthPath: truth)
        if output != "-" {
            FileHandle.standardError.write("wrote \(written.lines) lines (\(written.events) events, \(written.controlRecords) control records, \(written.persons) people) to \(output)\n".data(using: .utf8)!)
        }
    }
}
