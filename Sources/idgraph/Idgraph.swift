import ArgumentParser
import Foundation
import IdentityGraph
import IdentityIngest

/// The `idgraph` command: an embedded identity-resolution store.
@main
struct Idgraph: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idgraph",
        abstract: "An embedded identity-resolution store: identifiers in, resolved entities out.",
        discussion: """
            idgraph keeps the graph of identifiers (emails, phones, cookies, device ids, CRM and \
            loyalty ids) seen together in events, resolves each connected group into one entity, \
            merges entities the moment an event links them and splits them when evidence is \
            withdrawn (unlink, forget, retract).

            A database is a directory (an LMDB environment): --db PATH, or IDGRAPH_DB, or ./idgraph.db.

            Quick start:
              idgraph generate --persons 1000 --output sample.ndjson
              idgraph load sample.ndjson
              idgraph stats
              idgraph export --format csv | head

            Exit codes: 0 success, 1 bad input or failed check, 2 usage error.
            """,
        version: "0.1.0",
        subcommands: [Init.self, Load.self, Query.self, Shell.self, Export.self, Stats.self, Check.self, Show.self, Generate.self, Changes.self, Compact.self, SchemaCommand.self, Reapply.self, Bench.self]
    )

    static func main() async {
        AllocatorTuning.apply()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                // SPEC.md: usage errors exit 2.
                FileHandle.standardError.write((fullMessage(for: error) + "\n").data(using: .utf8)!)
                Foundation.exit(2)
            }
            if code == .success || error is CleanExit || error is ExitCode { exit(withError: error) }
            FileHandle.standardError.write(("error: " + Self.describe(error) + "\n").data(using: .utf8)!)
            Foundation.exit(1)
        }
    }

    static func describe(_ error: Error) -> String { String(describing: error) }
}

/// `--db PATH`, shared by every subcommand.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The database directory (env IDGRAPH_DB; default ./idgraph.db).", valueName: "path"))
    var db: String?

    /// The path in force: --db, then IDGRAPH_DB, then ./idgraph.db.
    var path: String {
        if let db { return db }
        if let env = ProcessInfo.processInfo.environment["IDGRAPH_DB"], !env.isEmpty { return env }
        return "./idgraph.db"
    }

    /// Opens the existing database (`load` and `init` create one themselves).
    func open() throws -> IdentityGraph {
        try IdentityGraph.open(at: path).reportingJournalRecovery()
    }
}

extension IdentityGraph {
    /// Says on stderr what opening it recovered from a real-time writer's journal, if anything.
    func reportingJournalRecovery() -> IdentityGraph {
        if let r = journalRecovery {
            let back = r.restoredSyncedSnapshot ? "went back to the last snapshot the journal recorded as synced, then " : ""
            let applied = r.submissions == 0
                ? "nothing to apply again (every acknowledged submission was committed in place)"
                : "applied \(r.submissions) acknowledged submission\(r.submissions == 1 ? "" : "s") again (\(r.transactions) transaction\(r.transactions == 1 ? "" : "s"))"
            FileHandle.standardError.write(Data("idgraph: \(path): recovered a real-time writer's journal: \(back)\(applied)\n".utf8))
        }
        return self
    }
}

extension Durability: ExpressibleByArgument {
    /// What `--durability` and `--mode` accept: `bulk` is the bulk path's own mode, not a choice.
    public static var allValueStrings: [String] { [Durability.durable.rawValue, Durability.fast.rawValue] }

    public init?(argument: String) {
        guard let mode = Durability(rawValue: argument), mode != .bulk else { return nil }
        self = mode
    }
}
extension InputFormat: ExpressibleByArgument {}

/// Writes text to standard output without Foundation's buffering surprises.
struct Output {
    private var buffer: [UInt8] = []
    private let handle: FileHandle

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write \(path)")
            }
            handle = h
        } else {
            handle = FileHandle.standardOutput
        }
        buffer.reserveCapacity(1 << 16)
    }

    mutating func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        if !buffer.isEmpty { handle.write(Data(buffer)); buffer.removeAll(keepingCapacity: true) }
    }
}
