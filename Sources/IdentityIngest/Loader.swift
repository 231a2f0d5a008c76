import Crypto
import Foundation
import IdentityGraph
import Synchronization

/// Set by SIGINT/SIGTERM; the loader commits what it has and stops at the next line.
let interruptRequested = Atomic<Bool>(false)

/// Installs SIGINT and SIGTERM handlers that ask a running load to stop cleanly.
public func installInterruptHandler() {
    let handler: @convention(c) (Int32) -> Void = { _ in interruptRequested.store(true, ordering: .relaxed) }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
}

/// How a load runs.
public struct LoadOptions: Sendable {
    /// Operations per write transaction.
    public var batchSize = 50_000
    /// Keep going after a bad line (it goes to the rejects file) instead of stopping.
    public var skipBad = false
    /// Where rejected lines go (NDJSON, one object per bad line); default `<db>/rejects.ndjson`.
    public var rejectsPath: String?
    /// Ignore checkpoints of earlier loads and read every file from its beginning.
    public var restart = false
    /// Print a progress line on stderr.
    public var progress = false
    /// How lines are read.
    public var format: InputFormat = .auto
    /// Parse and validate every line, write nothing (no data, no checkpoint).
    public var dryRun = false
    /// Load into an empty database through the bulk path (resolve in memory, write each table
    /// once in key order) while the lines are events; `false` always applies batches incrementally.
    public var bulk = true
    /// Memory the bulk path may hold before it commits and hands the rest to the incremental path.
    public var memoryLimit = 4 << 30
    /// The clock of the writes (ms since 1970): stamps events without a time, entity and
    /// history records. `nil`: the current time of each commit. Fixed for reproducible loads.
    public var now: Int64?

    /// Defaults: 50,000 operations per batch, stop at the first bad line, resume from checkpoints.
    public init() {}
}

/// What a load did.
public struct LoadSummary: Sendable {
    /// Files read.
    public var files = 0
    /// Lines read (including blank and rejected ones; not those skipped by resuming).
    public var lines = 0
    /// Records applied (events and control records).
    public var records = 0
    /// Bad lines written to the rejects file.
    public var rejected = 0
    /// Records that went through the bulk path (included in ``records``).
    public var bulkRecords = 0
    /// Where the bulk path's writer spent its time.
    public var bulkTimings = BulkTimings()
    /// Lines skipped because a checkpoint showed they were already loaded.
    public var resumedLines = 0
    /// Bytes of input read (compressed size for .gz).
    public var bytes = 0
    /// What the graph did.
    public var report = ApplyReport()
    /// Wall-clock seconds.
    public var elapsedSeconds = 0.0
    /// Where rejected lines were written, if any were.
    public var rejectsPath: String?
}

/// Why a load stopped.
public enum LoadError: Error, CustomStringConvertible {
    /// A bad line (everything before it is committed, unless it was a dry run).
    case badLine(file: String, line: Int, reason: String, dryRun: Bool = false)
    /// Interrupted by a signal after committing everything read so far.
    case interrupted(file: String, line: Int)
    /// An input could not be read.
    case input(InputError)
    /// The rejects file could not be written.
    case rejectsFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .badLine(let file, let line, let reason, let dryRun):
            if dryRun { return "\(file):\(line): \(reason)\n  (dry run: nothing was written)" }
            return "\(file):\(line): \(reason)\n  (every line before it is loaded; fix the line and run the same command again to resume, or use --skip-bad to set bad lines aside)"
        case .interrupted(let file, let line):
            return "interrupted at \(file):\(line); everything before it is committed. Run the same command again to resume."
        case .input(let error):
            return error.description
        case .rejectsFile(let path, let reason):
            return "cannot write rejects file \(path): \(reason)"
        }
    }
}

/// Replays archives into a graph: batches of operations, one transaction each, with the
/// archive's checkpoint (fingerprint → byte offset) committed in the same transaction.
public final class Loader {
    private let graph: IdentityGraph
    private let options: LoadOptions
    private var rejects: FileHandle?
    private var summary = LoadSummary()
    private let started = Date()
    private var lastProgress = Date.distantPast

    /// A loader for `graph`.
    public init(graph: IdentityGraph, options: LoadOptions = LoadOptions()) {
        self.graph = graph
        self.options = options
    }

    /// Expands directories (recursively, sorted by path) into the files they hold.
    public static func expand(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            if path != "-" && FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue {
                guard let walker = FileManager.default.enumerator(atPath: path) else {
                    throw LoadError.input(.cannotOpen(path: path, reason: "cannot list the directory"))
                }
                var found: [String] = []
                while let relative = walker.nextObject() as? String {
                    let full = path + "/" + relative
                    var sub: ObjCBool = false
                    if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue,
                       !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                        found.append(full)
                    }
                }
                files += found.sorted()
            } else {
                files.append(path)
            }
        }
        return files
    }

    /// Loads every path in order (`-` is standard input; directories are walked in sorted order).
    /// Throws ``LoadError`` after committing everything before the point of failure.
    public func load(_ paths: [String]) throws -> LoadSummary {
        defer {
            try? rejects?.close()
            if options.progress { FileHandle.standardError.write("\u{1B}[2K\r".data(using: .utf8)!) }
        }
        for file in try Self.expand(paths) {
            try loadFile(file)
            summary.files += 1
        }
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        return summary
    }

    /// The checkpoint key of an archive: a hash of its first line, so the same archive under
    /// another name or path resumes too. `nil` for standard input (a pipe cannot be resumed).
    private func checkpointKey(_ path: String) throws -> String? {
        guard path != "-" else { return nil }
        let reader = LineReader(source: try openInput(path), chunkSize: 1 << 16)
        var hasher = SHA256()
        try reader.nextLine { hasher.update(bufferPointer: $0) }
        return "load:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Where a load of one archive stands: byte offset and line number after the last committed
    /// line, and a hash of the lines before it (their first MiB), which proves on resume that
    /// the archive still starts the same way (it may have grown, or had a bad line fixed).
    struct Checkpoint: Equatable {
        var offset: Int
        var line: Int
        var prefixBytes: Int
        var prefixHash: [UInt8]

        static let hashedPrefixLimit = 1 << 20

        var bytes: [UInt8] {
            var out: [UInt8] = []
            for v in [UInt64(offset), UInt64(line), UInt64(prefixBytes)] { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
            return out + prefixHash
        }

        init(offset: Int, line: Int, prefixBytes: Int, prefixHash: [UInt8]) {
            self.offset = offset
            self.line = line
            self.prefixBytes = prefixBytes
            self.prefixHash = prefixHash
        }

        init?(bytes: [UInt8]) {
            guard bytes.count == 56 else { return nil }
            func field(_ i: Int) -> Int { Int(bytes.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }) }
            offset = field(0)
            line = field(1)
            prefixBytes = field(2)
            prefixHash = Array(bytes[24...])
        }
    }

    /// Hashes the first MiB of an archive's lines as they are read.
    struct PrefixHasher {
        private var hasher = SHA256()
        private(set) var bytes = 0

        mutating func add(_ line: UnsafeRawBufferPointer) {
            guard bytes < Checkpoint.hashedPrefixLimit else { return }
            hasher.update(bufferPointer: line)
            hasher.update(data: [0x0A])
            bytes += line.count + 1
        }

        func checkpoint(offset: Int, line: Int) -> Checkpoint {
            Checkpoint(offset: offset, line: line, prefixBytes: bytes, prefixHash: Array(hasher.finalize()))
        }
    }

    private func loadFile(_ path: String) throws {
        let key: String?
        var source: ByteSource
        do {
            key = try checkpointKey(path)
            source = try openInput(path)
        } catch let error as InputError {
            throw LoadError.input(error)
        }
        var reader = LineReader(source: source)
        var prefix = PrefixHasher()
        if let key, !options.restart, !options.dryRun, let saved = try graph.metadata(key).flatMap(Checkpoint.init(bytes:)) {
            while reader.offset < saved.offset, try reader.nextLine({ prefix.add($0) }) {}
            if prefix.checkpoint(offset: reader.offset, line: reader.lineNumber) == saved {
                summary.resumedLines += reader.lineNumber
                // Say so even when quiet about progress: a resumed load must not surprise anyone.
                FileHandle.standardError.write("\(path): resuming after line \(reader.lineNumber) (already loaded; --restart reads it again)\n".data(using: .utf8)!)
            } else {
                FileHandle.standardError.write("\(path): an archive starting with the same line was loaded before, but this one differs before where that load stopped; loading it from the beginning\n".data(using: .utf8)!)
                source = try openInput(path)
                reader = LineReader(source: source)
                prefix = PrefixHasher()
            }
        }

        let schema = graph.schema
        var batch: [PreparedOperation] = []
        batch.reserveCapacity(options.batchSize)
        var failure: LoadError?
        func commit(offset: Int, line: Int, prefix: PrefixHasher) throws {
            if options.dryRun {
                summary.records += batch.count
                batch.removeAll(keepingCapacity: true)
                return
            }
            var metadata: [(key: String, value: [UInt8])] = []
            if let key { metadata.append((key, prefix.checkpoint(offset: offset, line: line).bytes)) }
            try rejects?.synchronize()
            let report = try graph.apply(prepared: batch, now: options.now, metadata: metadata)
            summary.report.add(report)
            summary.records += batch.count
            batch.removeAll(keepingCapacity: true)
        }

        var previousOffset = reader.offset
        var previousLine = reader.lineNumber
        var previousPrefix = prefix

        /// Reads the next line: its operation (nil for a blank or rejected line, or a bad one,
        /// which sets `failure`) and whether there was a line at all.
        func nextOperation() throws -> (PreparedOperation?, Bool) {
            var op: PreparedOperation?
            let more = try reader.nextLine { line in
                summary.lines += 1
                defer { if failure == nil { prefix.add(line) } }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
                do {
                    let parsed = try RecordParser.parse(line, format: options.format)
                    do {
                        op = try PreparedOperation(parsed, schema: schema)
                    } catch let error as IdentifierError {
                        throw LineError.badIdentifier(field: Self.identifierField(of: parsed), error)
                    }
                } catch let error as LineError {
                    if options.skipBad {
                        try reject(path: path, line: reader.lineNumber, reason: error.description, text: line)
                    } else {
                        failure = .badLine(file: path, line: reader.lineNumber, reason: error.description, dryRun: options.dryRun)
                    }
                }
            }
            return (op, more)
        }

        // The bulk path, while the database is empty and the lines are events.
        var finished = false
        if options.bulk && !options.dryRun && graph.acceptsBulkLoad {
            var interrupted = false
            var handOff: PreparedOperation?
            do {
                let reserve = source.totalBytes.map { max($0 * 16, 1 << 30) } ?? (64 << 30)
                let result = try graph.bulkLoad(now: options.now, reserveBytes: reserve) { feed -> [(key: String, value: [UInt8])] in
                    // Parsing here, resolving and writing on the bulk writer's thread.
                    var chunk: [PreparedEvent] = []
                    chunk.reserveCapacity(Self.bulkChunk)
                    while true {
                        if interruptRequested.load(ordering: .relaxed) { interrupted = true; break }
                        if feed.estimatedBytes > options.memoryLimit { break }
                        let (op, more) = try nextOperation()
                        if failure != nil { break }
                        if let op {
                            guard case .event(let event) = op else { handOff = op; break }
                            chunk.append(event)
                            summary.records += 1
                            summary.bulkRecords += 1
                            if chunk.count == Self.bulkChunk {
                                try feed.send(chunk)
                                chunk.removeAll(keepingCapacity: true)
                            }
                        }
                        previousOffset = reader.offset
                        previousLine = reader.lineNumber
                        previousPrefix = prefix
                        if !more { finished = true; break }
                        if options.progress { showProgress(path: path, source: source) }
                    }
                    if !chunk.isEmpty { try feed.send(chunk) }
                    if options.progress {
                        // The writer still resolves what is queued and writes every table: say so.
                        FileHandle.standardError.write("\u{1B}[2K\r\((path as NSString).lastPathComponent): \(summary.lines) lines read; writing the tables in key order…".data(using: .utf8)!)
                    }
                    try rejects?.synchronize()
                    return key.map { [($0, previousPrefix.checkpoint(offset: previousOffset, line: previousLine).bytes)] } ?? []
                }
                summary.report.add(result.report)
                summary.bulkTimings.resolveSeconds += result.timings.resolveSeconds
                summary.bulkTimings.waitSeconds += result.timings.waitSeconds
                summary.bulkTimings.writeTablesSeconds += result.timings.writeTablesSeconds
                summary.bulkTimings.commitSeconds += result.timings.commitSeconds
            } catch let error as InputError {
                throw LoadError.input(error)
            }
            if interrupted { throw LoadError.interrupted(file: path, line: previousLine + 1) }
            if let handOff {
                batch.append(handOff)
                previousOffset = reader.offset
                previousLine = reader.lineNumber
                previousPrefix = prefix
            }
        }

        do {
            while failure == nil && !finished {
                if interruptRequested.load(ordering: .relaxed) {
                    try commit(offset: previousOffset, line: previousLine, prefix: previousPrefix)
                    throw LoadError.interrupted(file: path, line: previousLine + 1)
                }
                let (op, more) = try nextOperation()
                if let op { batch.append(op) }
                if failure != nil {
                    try commit(offset: previousOffset, line: previousLine, prefix: previousPrefix)
                    break
                }
                if !more { break }
                previousOffset = reader.offset
                previousLine = reader.lineNumber
                previousPrefix = prefix
                if batch.count >= options.batchSize { try commit(offset: previousOffset, line: previousLine, prefix: previousPrefix) }
                if options.progress { showProgress(path: path, source: source) }
            }
            if failure == nil && !finished { try commit(offset: reader.offset, line: reader.lineNumber, prefix: prefix) }
        } catch let error as InputError {
            try? commit(offset: previousOffset, line: previousLine, prefix: previousPrefix)
            throw LoadError.input(error)
        }
        summary.bytes += source.consumedBytes
        if let failure { throw failure }
    }

    /// Events per chunk handed to the bulk writer's thread.
    static let bulkChunk = 2048

    private static func identifierField(of op: GraphOperation) -> String {
        switch op {
        case .event: return "ids"
        case .link, .unlink: return "a/b"
        case .forget: return "id"
        case .retract: return "event_id"
        }
    }

    private func reject(path: String, line: Int, reason: String, text: UnsafeRawBufferPointer) throws {
        let rejectsPath = options.rejectsPath ?? graph.path + "/rejects.ndjson"
        if rejects == nil {
            if !FileManager.default.fileExists(atPath: rejectsPath) {
                guard FileManager.default.createFile(atPath: rejectsPath, contents: nil) else {
                    throw LoadError.rejectsFile(path: rejectsPath, reason: "cannot create it")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: rejectsPath) else {
                throw LoadError.rejectsFile(path: rejectsPath, reason: "cannot open it for writing")
            }
            handle.seekToEndOfFile()
            rejects = handle
            summary.rejectsPath = rejectsPath
        }
        var record: [String: Any] = ["file": path, "line": line, "reason": reason]
        let bytes = Array(text)
        if let string = String(validating: bytes, as: UTF8.self) {
            record["text"] = string
        } else {
            record["text_base64"] = Data(bytes).base64EncodedString()
        }
        var data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
        data.append(0x0A)
        rejects?.write(data)
        summary.rejected += 1
    }

    private func showProgress(path: String, source: ByteSource) {
        let now = Date()
        guard now.timeIntervalSince(lastProgress) >= 0.5 else { return }
        lastProgress = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(summary.records) / elapsed
        var line = "\u{1B}[2K\r\((path as NSString).lastPathComponent): \(summary.lines) lines, \(summary.records) records, \(Int(rate))/s"
        if let total = source.totalBytes, total > 0 {
            let fraction = Double(source.consumedBytes) / Double(total)
            let mbps = Double(source.consumedBytes) / elapsed / 1_048_576
            line += String(format: ", %.1f MB/s, %.0f%%", mbps, fraction * 100)
            if fraction > 0.01 { line += ", ETA \(Int(elapsed / fraction - elapsed))s" }
        }
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }
}
