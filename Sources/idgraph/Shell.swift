import ArgumentParser
import CEditLine
import Foundation
import IdentityGraph
import IdentityIngest
import IdentityQuery

extension OutputMode: ExpressibleByArgument {}

/// `--as-of`: the time profiles are evaluated at (lifecycle stages, COMPUTE RFM).
struct AsOfOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Evaluate lifecycle stages and RFM as of this time ('2024-12-31', RFC 3339 or epoch ms) instead of now: for archives from the past.",
        valueName: "time"))
    var asOf: String?

    /// The time in ms since 1970, `nil` for now.
    func millis() throws -> Int64? {
        guard let asOf else { return nil }
        if let ms = Int64(asOf) { return ms }
        if let ms = Timestamp.parseRFC3339(Array(asOf.utf8)) ?? Timestamp.parseRFC3339(Array((asOf + "T00:00:00Z").utf8)) { return ms }
        throw ValidationError("--as-of '\(asOf)' is not a time: write 2024-12-31, 2024-12-31T12:00:00Z or epoch milliseconds")
    }
}

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one statement of the query language and print the result.",
        discussion: """
            Examples:
              idgraph query 'RESOLVE email:alice@example.com'
              idgraph query 'EVENTS OF cookie:c-1 LIMIT 10' --format json
              idgraph query 'FIND ENTITIES WHERE revenue > 100 ORDER BY revenue DESC LIMIT 10' --format csv
              idgraph query "FIND ENTITIES WHERE lifecycle = 'hero' ORDER BY revenue DESC LIMIT 10" --as-of 2024-12-31
              idgraph query 'ENTITY OF email:alice@example.com'     (the Customer 360 profile)

            Statements: \(Parser.statementKeywords.joined(separator: ", ")). See docs/query-language.md, \
            or `.help` in idgraph shell. Exit 1 when the statement fails.
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("The statement.", valueName: "statement")) var statement: String
    @Option(help: "table, csv, json, line or markdown.") var format: OutputMode = .table
    @Option(help: "Most rows printed (0: all).") var maxRows = 0
    @OptionGroup var asOf: AsOfOption

    func run() throws {
        let graph = try database.open()
        let session = ShellSession(executor: Executor(graph: graph, recordParser: { try RecordParser.parse($0) }, now: try asOf.millis()), formatter: ResultFormatter(mode: format, maxRows: maxRows > 0 ? maxRows : nil), bail: true)
        if !session.runStatements(statement) { throw ExitCode(1) }
        session.flush()
    }
}

struct Shell: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The interactive query shell (or a script runner: idgraph shell < script).",
        discussion: """
            Type a statement and press Enter (several on one line: separate them with ';'). Lines \
            starting with '.' are shell commands; .help lists them and the statements, .help \
            STATEMENT explains one. Tab completes keywords, identifier types and dot-commands; \
            history is kept in ~/.idgraph_history.

            With standard input from a file, every line is run in order; --bail stops at the \
            first error with exit 1.
            """
    )
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Stop at the first error (exit 1).") var bail = false
    @Option(help: "table, csv, json, line or markdown.") var format: OutputMode = .table
    @Option(help: "Most rows printed per result (0: all).") var maxRows = 1000
    @OptionGroup var asOf: AsOfOption

    func run() throws {
        let graph = try database.open()
        let session = ShellSession(executor: Executor(graph: graph, recordParser: { try RecordParser.parse($0) }, now: try asOf.millis()), formatter: ResultFormatter(mode: format, maxRows: maxRows > 0 ? maxRows : nil), bail: bail)
        let interactive = isatty(0) != 0
        if interactive {
            print("idgraph shell on \(graph.path) — .help for help, .quit to leave")
            session.interactiveLoop(types: graph.knownTypes)
        } else {
            while let line = readLine(strippingNewline: true) {
                if !session.handle(line) { break }
            }
        }
        session.flush()
        if session.failed && bail { throw ExitCode(1) }
    }
}

/// Words offered by tab completion (set before each prompt).
nonisolated(unsafe) private var completionWords: [String] = []
nonisolated(unsafe) private var completionMatches: [String] = []

/// libedit calls this with the word under the cursor; state 0 starts a new completion.
private let completionGenerator: @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutablePointer<CChar>? = { text, state in
    if state == 0 {
        let prefix = text.map { String(cString: $0) } ?? ""
        let upper = prefix.uppercased()
        completionMatches = completionWords.filter { $0.hasPrefix(prefix) || $0.hasPrefix(upper) || $0.lowercased().hasPrefix(prefix.lowercased()) && $0.first == "." }
    }
    let i = Int(state)
    guard i < completionMatches.count else { return nil }
    return strdup(completionMatches[i])
}

/// One shell session: output mode, timer, redirections, and the statements run so far.
final class ShellSession {
    let executor: Executor
    var formatter: ResultFormatter
    let bail: Bool
    private var timer = false
    private var output: FileHandle = .standardOutput
    private var onceTarget: FileHandle?
    private var buffer = ""
    private(set) var failed = false

    init(executor: Executor, formatter: ResultFormatter, bail: Bool) {
        self.executor = executor
        self.formatter = formatter
        self.bail = bail
    }

    static let dotCommands: [(String, String)] = [
        (".help [STATEMENT]", "list the statements and shell commands, or explain one statement"),
        (".mode table|csv|json|line|markdown", "how results are printed"),
        (".timer on|off", "print the time each statement took"),
        (".maxrows N", "print at most N rows per result (0: all); a footer says how many there were"),
        (".output [FILE]", "send results to FILE (no FILE: back to the terminal)"),
        (".once FILE", "send the next result to FILE"),
        (".read FILE", "run the statements and commands in FILE"),
        (".dot ENTITY [FILE]", "Graphviz DOT of the entity's identifier graph (FILE.svg or .png renders it with dot)"),
        (".bail on|off", "stop a script at the first error"),
        (".quit", "leave (also .exit, or Ctrl-D)"),
    ]

    func interactiveLoop(types: [String]) {
        let historyPath = (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.idgraph_history"
        using_history()
        stifle_history(10_000)
        _ = read_history(historyPath)
        cedit_set_completion(completionGenerator)
        completionWords = Parser.keywords + Self.dotCommands.map { String($0.0.split(separator: " ")[0]) }
            + types.map { $0 + ":" } + OutputMode.allCases.map(\.rawValue) + Parser.fieldNames
        while true {
            guard let raw = readline("idgraph> ") else { print(""); break }
            let line = String(cString: raw)
            free(raw)
            if !line.trimmingCharacters(in: .whitespaces).isEmpty {
                add_history(line)
                _ = write_history(historyPath)
            }
            if !handle(line) { break }
            flush()
        }
    }

    /// Handles one input line; `false` means leave.
    func handle(_ line: String) -> Bool {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("--") { return true }
        if trimmed.hasPrefix(".") { return dot(trimmed) }
        let ok = runStatements(trimmed)
        return ok || !bail
    }

    /// Runs the `;`-separated statements of a line; `false` when one failed.
    func runStatements(_ line: String) -> Bool {
        for statement in Self.split(line) where !statement.trimmingCharacters(in: .whitespaces).isEmpty {
            if !runStatement(statement.trimmingCharacters(in: .whitespaces)) {
                if bail { return false }
            }
        }
        return !failed || !bail
    }

    /// Splits on `;` outside quotes.
    static func split(_ line: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for c in line {
            if let q = quote {
                current.append(c)
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
                current.append(c)
            } else if c == ";" {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }

    private func runStatement(_ text: String) -> Bool {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let result = try executor.run(text)
            emit(formatter.render(result))
            let machine = formatter.mode == .csv || formatter.mode == .json
            if machine, let max = formatter.maxRows, result.rows.count > max {
                // The data stays clean, but a cut never goes unsaid.
                FileHandle.standardError.write(Data("\(result.rows.count) rows (\(max) shown; .maxrows 0 shows all)\n".utf8))
            }
            for note in result.notes where !note.isEmpty {
                if machine { FileHandle.standardError.write(Data((note + "\n").utf8)) } else { emit(note + "\n") }
            }
            if timer {
                let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1_000_000
                FileHandle.standardError.write(Data(String(format: "time: %.3f ms\n", ms).utf8))
            }
            if onceTarget != nil {
                flush()  // the result goes to the .once file, then output returns to normal
                onceTarget = nil
            }
            return true
        } catch let error as QueryError {
            report(error.rendered(statement: text))
        } catch {
            report("error: \(error)")
        }
        return false
    }

    private func report(_ message: String) {
        failed = true
        flush()
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    private func emit(_ text: String) {
        guard !text.isEmpty else { return }
        buffer += text
        if buffer.utf8.count > 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        (onceTarget ?? output).write(Data(buffer.utf8))
        buffer = ""
    }

    private func open(_ path: String) -> FileHandle? {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            report("error: cannot write \(path)")
            return nil
        }
        return h
    }

    /// Runs a dot-command; `false` means leave.
    private func dot(_ line: String) -> Bool {
        flush()
        let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let args = Array(parts.dropFirst())
        switch parts[0].lowercased() {
        case ".quit", ".exit":
            return false
        case ".help":
            if let name = args.first {
                guard let help = StatementHelp.named(name) else { report("error: no statement \(name); .help lists them"); return !bail }
                emit("\(help.syntax)\n\n\(help.summary)\n\nExample: \(help.example)\n")
            } else {
                var text = "Statements (one per line, or separated by ';'):\n"
                for h in StatementHelp.all { text += "  " + h.syntax + "\n" }
                text += "\nShell commands:\n"
                let width = Self.dotCommands.map(\.0.count).max() ?? 0
                for (c, d) in Self.dotCommands { text += "  " + c.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + d + "\n" }
                text += "\n.help STATEMENT explains one statement with an example.\n"
                emit(text)
            }
        case ".mode":
            guard let m = args.first.flatMap(OutputMode.init(rawValue:)) else {
                report("error: .mode takes one of \(OutputMode.allCases.map(\.rawValue).joined(separator: ", ")) (now \(formatter.mode.rawValue))")
                return !bail
            }
            formatter.mode = m
        case ".timer":
            guard let v = args.first, v == "on" || v == "off" else { report("error: .timer takes on or off"); return !bail }
            timer = v == "on"
        case ".bail":
            guard let v = args.first, v == "on" || v == "off" else { report("error: .bail takes on or off"); return !bail }
            // A script asked for it: from now on errors stop it.
            if v == "on" && !bail { emit("note: start the shell with --bail to stop at the first error\n") }
        case ".maxrows":
            guard let n = args.first.flatMap(Int.init), n >= 0 else { report("error: .maxrows takes a number (0: all rows)"); return !bail }
            formatter.maxRows = n == 0 ? nil : n
        case ".output":
            if let path = args.first { if let h = open(path) { output = h } } else { output = .standardOutput }
        case ".once":
            guard let path = args.first else { report("error: .once takes a file name"); return !bail }
            onceTarget = open(path)
        case ".read":
            guard let path = args.first, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                report("error: .read takes a readable file (\(args.first ?? "none given"))")
                return !bail
            }
            for l in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if !handle(String(l)) { return false }
            }
        case ".dot":
            guard let target = args.first else { report("error: .dot takes an entity id or an identifier type:value"); return !bail }
            do {
                let dot = try dotGraph(target)
                if let file = args.dropFirst().first {
                    try render(dot, to: file)
                    emit("wrote \(file)\n")
                } else {
                    emit(dot)
                }
            } catch let error as QueryError {
                report("error: \(error.message)")
            } catch {
                report("error: \(error)")
            }
        default:
            report("error: unknown command \(parts[0]); .help lists the commands")
            return !bail
        }
        flush()
        return true
    }

    /// The DOT text of an entity's identifier graph, links labelled with their evidence;
    /// identifiers that only relate (IP, address) are drawn dashed.
    private func dotGraph(_ target: String) throws -> String {
        let graph = executor.graph
        return try graph.read { reader in
            var entity: EntityID?
            if let n = EntityID(target) { entity = try reader.resolve(n)?.id } else {
                let raw: RawIdentifier
                do { raw = try RawIdentifier(text: target) } catch let error as IdentifierError { throw QueryError(error.description) }
                entity = try reader.entity(of: raw).flatMap { try reader.resolve($0)?.id }
            }
            guard let entity else { throw QueryError("\(target) is not an entity or an identifier in one") }
            let members = Set(try reader.members(of: entity))
            func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            var out = "graph entity_\(entity) {\n  graph [label=\(quote("entity \(entity)")), fontname=\"Helvetica\"];\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
            var names: [NodeID: String] = [:]
            for m in members.sorted() { names[m] = try reader.nodeInfo(m)?.identifier.description ?? "#\(m)"; out += "  \(quote(names[m]!));\n" }
            var drawn = Set<String>()
            for m in members.sorted() {
                for link in try reader.links(of: m) {
                    let other = link.neighbour
                    let key = "\(min(m, other))-\(max(m, other))"
                    guard drawn.insert(key).inserted else { continue }
                    if members.contains(other) {
                        out += "  \(quote(names[m]!)) -- \(quote(names[other]!)) [label=\"\(link.evidence)\"];\n"
                    } else if let info = try reader.nodeInfo(other), info.entity == nil {
                        out += "  \(quote(info.identifier.description)) [style=dashed];\n"
                        out += "  \(quote(names[m]!)) -- \(quote(info.identifier.description)) [style=dashed, label=\"\(link.evidence)\"];\n"
                    }
                }
            }
            return out + "}\n"
        }
    }

    private func render(_ dot: String, to file: String) throws {
        let lower = file.lowercased()
        guard lower.hasSuffix(".svg") || lower.hasSuffix(".png") || lower.hasSuffix(".pdf") else {
            guard FileManager.default.createFile(atPath: file, contents: Data(dot.utf8)) else { throw QueryError("cannot write \(file)") }
            return
        }
        let format = String(lower.split(separator: ".").last!)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["dot", "-T\(format)", "-o", file]
        let input = Pipe()
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw QueryError("rendering needs Graphviz's dot (apt-get install graphviz); without a .svg/.png name the DOT text is written as is") }
        input.fileHandleForWriting.write(Data(dot.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            throw QueryError("dot failed (exit \(process.terminationStatus)); install Graphviz (apt-get install graphviz), or give a .dot file name to get the DOT text")
        }
    }
}
