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
    /// Operations read before they are handed to the writer (for lines that go batch by
    /// batch), and per transaction at least.
    public var batchSize = 100_000
    /// Operations per transaction for lines that go batch by batch: each batch is applied
    /// while the next is read, and a transaction commits after the batch that brings it to
    /// this many. nil: ``automaticTransactionSize(batchSize:databaseBytes:)``.
    public var transactionSize: Int?

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
    /// Memory the bulk path may hold before it commits and hands the rest to the incremental
    /// path (checked against the bulk writer's own estimate; the process's peak is about 1.3
    /// times that). Default: ``automaticMemoryLimit(availableBytes:)`` of the memory available
    /// when the options are made.
    public var memoryLimit = LoadOptions.automaticMemoryLimit(availableBytes: LoadOptions.availableMemoryBytes())
    /// The clock of the writes (ms since 1970): stamps events without a time, entity and
    /// history records. `nil`: the current time of each commit. Fixed for reproducible loads.
    public var now: Int64?

    /// Defaults: 100,000 operations per batch, stop at the first bad line, resume from checkpoints.
    public init() {}

    /// In the automatic transaction size, one batch per this many bytes of database.
    static let databaseBytesPerBatch = 512 << 20

    /// The transaction size for a database of `databaseBytes`: one batch per 512 MiB of
    /// database, at least one, at most ten. A commit writes every page its transaction changed.
    /// In a small database one batch of events spread over it changes most of its pages
    /// already, and a longer transaction only adds pages to the file (memory the kernel touches
    /// anew, and past 2^17 dirty pages LMDB spills them as it goes); in a large one a batch
    /// changes a fraction of them, and more batches per transaction share their pages.
    /// Measured with 1M events per load spread over the database, by operations per transaction
    /// (docs/benchmarks.md, session 11): 0.5 GB, 100,000 8.8 s against 13 s for 1,000,000;
    /// 1.6 GB, 100,000 / 300,000 / 1,000,000 32.3 / 32.8 / 37.5 s; 5.4 GB, 100,000 / 200,000 /
    /// 1,000,000 51.6–58 / 44–50 / 29–42 s, while a day of customers close together in it took
    /// 13.1–13.6 s with 100,000 and 14.2–14.7 s with 1,000,000.
    public static func automaticTransactionSize(batchSize: Int, databaseBytes: Int) -> Int {
        batchSize * min(10, max(1, databaseBytes / databaseBytesPerBatch))
    }
}

extension LoadOptions {
    /// The default memory limit of the bulk path: 40% of `availableBytes` (the memory available
    /// when the load starts), at least 256 MiB; 4 GiB when that is unknown.
    ///
    /// A fixed 4 GiB ended the bulk part of a 30M-event archive before its 19.3 millionth line
    /// on a 24 GiB machine, and the rest went batch by batch at ~15,000 events/s (some 12
    /// minutes more), while a machine with less memory than that could run out of it. The
    /// process's peak RSS is 1.3–1.6 times the estimate the limit is checked against (10M
    /// events: estimate 1,983 MiB, peak 3,053 MiB; 30M: 6,352 and 8,035 MiB), so this keeps
    /// the peak under two thirds of what is available.
    public static func automaticMemoryLimit(availableBytes: Int?) -> Int {
        guard let availableBytes, availableBytes > 0 else { return 4 << 30 }
        return max(256 << 20, availableBytes / 5 * 2)
    }

    /// `MemAvailable` of `/proc/meminfo` in bytes (memory that can be used without swapping,
    /// the page cache that can be dropped included), or `nil` where it cannot be read.
    public static func availableMemoryBytes(meminfo path: String = "/proc/meminfo") -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kibibytes = Int(fields[1]) else { return nil }
            return kibibytes * 1024
        }
        return nil
    }
}

/// What a load did.
public struct LoadSummary: Sendable {
    /// Files read.
    public var files = 0
    /// Lines read (including blank and rejected ones; not those skipped by resuming).
    public var lines = 0
    /// Records applied (events and control records).
    public var records = 0
    /// Bad lines set aside: written to the rejects file, or found there already.
    public var rejected = 0
    /// Of ``rejected``, the bad lines the rejects file already held (written by an earlier run
    /// that was killed before the batch after them committed), not written again.
    public var rejectedEarlier = 0
    /// Records that went through the bulk path (included in ``records``).
    public var bulkRecords = 0
    /// Where the bulk path's writer spent its time.
    public var bulkTimings = BulkTimings()
    /// The bulk writer's estimate of the memory it held at the end of its run, in bytes (what
    /// ``LoadOptions/memoryLimit`` is checked against); 0 without a bulk run.
    public var bulkMemoryEstimateBytes = 0
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
    /// Why records went batch by batch rather than through the bulk path (`nil` when none did
    /// for a reason the user can change: a dry run, an empty input).
    public var batchReason: BatchReason?

    /// Records applied batch by batch (not through the bulk path).
    public var batchRecords: Int { records - bulkRecords }
}

/// Why a load went batch by batch, so that a slow load says what would make it fast.
public enum BatchReason: Sendable, Equatable, CustomStringConvertible {
    /// `--no-bulk`.
    case bulkDisabled
    /// The database already held identifiers, events or tombstones.
    case databaseNotEmpty
    /// The schema has `generic_after` or `limit` policies.
    case policies
    /// The bulk part ended at an `unlink`, `forget` or `retract` record (`kind`) at `file:line`.
    case controlRecord(kind: String, file: String, line: Int)
    /// The bulk part reached the memory limit (`megabytes`) before `file:line`.
    case memoryLimit(megabytes: Int, file: String, line: Int)

    /// A short code for scripts (`--json`).
    public var code: String {
        switch self {
        case .bulkDisabled: return "no_bulk"
        case .databaseNotEmpty: return "database_not_empty"
        case .policies: return "policies"
        case .controlRecord: return "control_record"
        case .memoryLimit: return "memory_limit"
        }
    }

    /// The reason in words, with the file and line where the bulk part ended when it did.
    public var description: String {
        switch self {
        case .bulkDisabled:
            return "--no-bulk"
        case .databaseNotEmpty:
            return "the bulk path loads only into an empty database"
        case .policies:
            return "the schema has generic_after or limit policies, which only the batch-by-batch path follows"
        case .controlRecord(let kind, let file, let line):
            return "from \(file):\(line) on: the bulk path ends at the first unlink, forget or retract record, and that line is \(kind == "unlink" ? "an" : "a") \(kind)"
        case .memoryLimit(let megabytes, let file, let line):
            return "from \(file):\(line) on: the bulk part reached --memory-limit \(megabytes) MiB"
        }
    }

    /// What would let more of such a load take the bulk path, when something would.
    public var advice: String? {
        switch self {
        case .controlRecord:
            return "corrections kept in an archive of their own, loaded after the events', let the events take the bulk path"
        case .memoryLimit:
            return "a larger --memory-limit keeps more of the load in bulk"
        case .databaseNotEmpty:
            // Measured: a second 1M-event day on top of the first took 9.3-9.7 s batch by batch
            // (18.7-20.9 s before session 10), both days in one load into a new database
            // 3.5 s, with the same export.
            return "archives given to one load into a new database take the bulk path together, several times faster per event"
        case .bulkDisabled, .policies:
            return nil
        }
    }
}

/// Why a load stopped.
public enum LoadError: Error, CustomStringConvertible {
    /// A bad line (everything before it is committed, unless it was a dry run).
    case badLine(file: String, line: Int, reason: String, dryRun: Bool = false)
    /// Interrupted by a signal after committing everything read so far.
    case interrupted(file: String, line: Int)
    /// An input could not be read.
    case input(InputError)
    /// The bulk part outgrew the space reserved for it; nothing of it was kept.
    case bulkMapFull
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
        case .bulkMapFull:
            return "the bulk part of the load outgrew the space reserved for the database; nothing of it was kept and the space has grown: run the same command again (or load with --no-bulk)"
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
    /// The first progress line comes half a second in, when its rates mean something (the
    /// first line once read "1 lines, 684/s, 684.1 MB/s": a whole buffer read in a millisecond).
    private lazy var lastProgress = started

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
        let files = try Self.expand(paths)
        if options.skipBad && !options.dryRun { noteRejectsAlreadyWritten(for: files) }
        var next = 0
        if !options.dryRun && !files.isEmpty {
            if !options.bulk {
                summary.batchReason = .bulkDisabled
            } else if let refusal = graph.bulkLoadRefusal {
                summary.batchReason = refusal == .policyNeedsIncremental ? .policies : .databaseNotEmpty
            }
        }
        if options.bulk && !options.dryRun && !files.isEmpty && graph.acceptsBulkLoad {
            let (stoppedIn, finished) = try loadInBulk(files)
            summary.files += finished
            next = finished
            if let stoppedIn {
                try stoppedIn.loadIncrementally()
                summary.files += 1
                next += 1
            }
        }
        for path in files[next...] {
            try FileLoad(loader: self, path: path).loadIncrementally()
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

    /// One archive being read: its reader, where its committed part ends, and the batch of
    /// operations not yet committed.
    private final class FileLoad {
        /// The loader (held strongly: a file load lives within one call of the loader, and an
        /// `unowned` reference cost two atomic operations per use, several per line).
        let loader: Loader
        /// The loader's options, read once (a copy per line retained its strings).
        private let options: LoadOptions
        let path: String
        /// Checkpoint key (nil for standard input).
        let key: String?
        private(set) var source: ByteSource
        private(set) var reader: LineReader
        private var prefix = PrefixHasher()
        /// Just after the last line whose operation is applied or queued.
        private(set) var doneOffset = 0
        private(set) var doneLine = 0
        private var donePrefix = PrefixHasher()
        /// The bad line that stops the load (not with --skip-bad).
        private(set) var failure: LoadError?
        var batch: [PreparedOperation] = []
        private let schema: Schema
        /// Applies full batches on another thread while the next one is read (started with
        /// the first one).
        private var pipeline: BatchPipeline?
        /// The batch handed to the pipeline last.
        private var lastSubmitted: QueuedBatch?

        /// Opens `path` and, unless told to restart, skips what an earlier load committed.
        init(loader: Loader, path: String) throws {
            self.loader = loader
            options = loader.options
            self.path = path
            schema = loader.graph.schema
            do {
                key = try loader.checkpointKey(path)
                source = try openInput(path)
            } catch let error as InputError {
                throw LoadError.input(error)
            }
            reader = LineReader(source: source)
            if let key, !options.restart, !options.dryRun, let saved = try loader.graph.metadata(key).flatMap(Checkpoint.init(bytes:)) {
                while reader.offset < saved.offset, try reader.nextLine({ prefix.add($0) }) {}
                if prefix.checkpoint(offset: reader.offset, line: reader.lineNumber) == saved {
                    loader.summary.resumedLines += reader.lineNumber
                    // Say so even when quiet about progress: a resumed load must not surprise anyone.
                    FileHandle.standardError.write("\(path): resuming after line \(reader.lineNumber) (already loaded; --restart reads it again)\n".data(using: .utf8)!)
                } else {
                    FileHandle.standardError.write("\(path): an archive starting with the same line was loaded before, but this one differs before where that load stopped; loading it from the beginning\n".data(using: .utf8)!)
                    source = try openInput(path)
                    reader = LineReader(source: source)
                    prefix = PrefixHasher()
                }
            }
            batch.reserveCapacity(options.batchSize)
            markDone()
        }

        /// Everything read so far is applied or queued.
        func markDone() {
            doneOffset = reader.offset
            doneLine = reader.lineNumber
            // Past the hashed prefix both stay as they are: copying the hasher retained and
            // released its state for every line. (Equal byte counts mean equal states: the
            // count grows with every line hashed, and `donePrefix` is an earlier copy.)
            if donePrefix.bytes != prefix.bytes { donePrefix = prefix }
        }

        /// Bytes of the file on disk behind the lines parsed so far: the offset after the last
        /// line for a plain file (the bytes read ahead of it are not counted: with them, the first
        /// 4 MiB of a 1M-event archive held "867,280 events", and the writer's arrays, sized
        /// for that, doubled at the end); the compressed bytes read for gzip.
        var parsedDiskBytes: Int { source is GzipSource ? source.consumedBytes : doneOffset }

        /// The checkpoint of what is applied or queued.
        var checkpoint: Checkpoint { donePrefix.checkpoint(offset: doneOffset, line: doneLine) }

        /// Reads the next line and, unless it is blank, hands it to `take`, which throws
        /// ``LineError`` for a bad line: that line is written to the rejects (`--skip-bad`) or
        /// becomes ``failure``. Returns whether there was a line at all.
        private func nextLine(_ take: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
            try reader.nextLine { line in
                loader.summary.lines += 1
                defer { if failure == nil { prefix.add(line) } }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
                do {
                    try take(line)
                } catch let error as LineError {
                    if options.skipBad {
                        try loader.reject(path: path, line: reader.lineNumber, reason: error.description, text: line)
                    } else {
                        failure = .badLine(file: path, line: reader.lineNumber, reason: error.description, dryRun: options.dryRun)
                    }
                }
            }
        }

        /// An operation validated and normalized; an invalid identifier is the line's error.
        private func prepare(_ parsed: GraphOperation) throws(LineError) -> PreparedOperation {
            do {
                return try PreparedOperation(parsed, schema: schema)
            } catch {
                throw LineError.badIdentifier(field: Loader.identifierField(of: parsed), error)
            }
        }

        /// Reads the next line: its operation (nil for a blank or rejected line, or a bad one,
        /// which sets ``failure``) and whether there was a line at all.
        func nextOperation() throws -> (PreparedOperation?, Bool) {
            var op: PreparedOperation?
            let format = options.format
            let more = try nextLine { line in op = try prepare(try RecordParser.parse(line, format: format)) }
            return (op, more)
        }

        /// What a line read by ``nextRecord(into:)`` was.
        enum Record {
            /// Blank, rejected, or bad (then ``failure`` is set).
            case none
            /// An event, now the last of the batch.
            case event
            /// A control record (prepared).
            case control(PreparedOperation)
        }

        /// Reads the next line: an event goes into `events` (parsed and prepared in place, no
        /// ``PreparedOperation``), a control record is returned; and whether there was a line.
        /// Bad lines are handled as by ``nextOperation()`` and leave `events` as it was.
        func nextRecord(into events: inout EventBatch) throws -> (Record, Bool) {
            var record = Record.none
            let format = options.format
            let more = try nextLine { line in
                if let parsed = try RecordParser.parse(line, format: format, into: &events) {
                    record = .control(try prepare(parsed))
                } else {
                    record = .event
                }
            }
            return (record, more)
        }

        /// Parses and prepares the rest of the archive without writing anything (`--dry-run`).
        private func checkOnly() throws {
            var events = EventBatch(schema: schema)
            do {
                while failure == nil {
                    if interruptRequested.load(ordering: .relaxed) { throw LoadError.interrupted(file: path, line: doneLine + 1) }
                    let (record, more) = try nextRecord(into: &events)
                    if failure != nil { break }
                    if case .none = record {} else { loader.summary.records += 1 }
                    if events.count >= options.batchSize { events.removeAll() }
                    markDone()
                    if !more { break }
                    if options.progress { loader.showProgress(path: path, source: source) }
                }
            } catch let error as InputError {
                throw LoadError.input(error)
            }
            loader.summary.bytes += source.consumedBytes
            if let failure { throw failure }
        }

        /// Applies the batch with the checkpoint of what is done; with `inBackground`, on the
        /// pipeline's thread while the caller reads on, in the transaction open there while it
        /// holds fewer than ``LoadOptions/transactionSize`` operations; without, it commits
        /// before this returns, with everything handed over before it.
        private func commit(inBackground: Bool = false) throws {
            if options.dryRun {
                loader.summary.records += batch.count
                batch.removeAll(keepingCapacity: true)
                return
            }
            // The batch's identifiers looked up while the writer still applies the one before
            // (a snapshot without what the open transaction wrote: the writer looks up again
            // what the snapshot lacked), unless that batch forgets identifiers (the hints would
            // not be used).
            // The keyed hashes of new identifiers, which the writer looks up among the erased
            // ones, computed here rather than on the writer's thread.
            try loader.graph.addTombstoneKeys(to: &batch)
            let appliedForgets = lastSubmitted?.operations.contains { if case .forget = $0 { true } else { false } } ?? false
            let hints = inBackground && !appliedForgets ? try loader.graph.nodeHints(for: batch) : nil
            collectCommitted()
            let metadata: [(key: String, value: [UInt8])] = key.map { [($0, checkpoint.bytes)] } ?? []
            // Rejected lines of the batch reach the disk before its checkpoint does.
            try loader.rejects?.synchronize()
            if !inBackground && pipeline == nil {
                let report = try loader.graph.apply(prepared: batch, now: options.now, metadata: metadata)
                loader.summary.report.add(report)
                loader.summary.records += batch.count
                batch.removeAll(keepingCapacity: true)
                return
            }
            let queued = QueuedBatch(operations: batch, hints: hints, metadata: metadata, endsTransaction: !inBackground)
            batch = []
            batch.reserveCapacity(options.batchSize)
            let pipeline = self.pipeline ?? BatchPipeline(
                graph: loader.graph, now: options.now,
                operationsPerTransaction: options.transactionSize
                    ?? LoadOptions.automaticTransactionSize(batchSize: options.batchSize, databaseBytes: loader.graph.storageUsage.usedBytes))
            self.pipeline = pipeline
            lastSubmitted = queued
            try pipeline.submit(queued)
            // What committed while this batch waited is freed now, not after the next batch is read.
            collectCommitted()
            if !inBackground { try closePipeline() }
        }

        /// Counts what the transactions committed since the last call did, and frees their
        /// batches here, not on the writer's thread (100,000 prepared operations of some twenty
        /// arrays each: 4-6% of the writer's time on a second day's load).
        private func collectCommitted() {
            guard let pipeline else { return }
            for (batches, report) in pipeline.collect() {
                loader.summary.report.add(report)
                for batch in batches {
                    loader.summary.records += batch.operations.count
                    batch.operations.removeAll()
                }
            }
        }

        /// Lets the pipeline commit what it was handed and stop; rethrows its failure.
        private func closePipeline() throws {
            guard let pipeline else { return }
            defer {
                collectCommitted()
                self.pipeline = nil
                lastSubmitted = nil
            }
            try pipeline.close()
        }

        /// Reads the rest of the archive in batches, one transaction each; throws the bad line
        /// after committing everything before it.
        func loadIncrementally() throws {
            if options.dryRun { return try checkOnly() }
            // Whatever leaves this function, no batch is still committing behind it (its
            // checkpoint is what the next run resumes from); on an error, that error is the one
            // reported.
            defer { try? closePipeline() }
            do {
                while failure == nil {
                    if interruptRequested.load(ordering: .relaxed) {
                        try commit()
                        throw LoadError.interrupted(file: path, line: doneLine + 1)
                    }
                    let (op, more) = try nextOperation()
                    if failure != nil { break }
                    if let op { batch.append(op) }
                    markDone()
                    if !more { break }
                    if batch.count >= options.batchSize { try commit(inBackground: true) }
                    if options.progress { loader.showProgress(path: path, source: source) }
                }
                try commit()
            } catch let error as InputError {
                try? commit()
                throw LoadError.input(error)
            }
            loader.summary.bytes += source.consumedBytes
            if let failure { throw failure }
        }
    }

    /// Why the bulk part of a load ended before the last archive's last line.
    private enum BulkStop {
        case interrupted, memoryLimit, controlRecord, badLine, input(InputError)
    }

    /// The bulk path, from the first archive on, while the lines are events and memory lasts:
    /// one transaction for all of it, with a checkpoint for every archive it read. Returns the
    /// archive it stopped in (to be continued batch by batch) and how many it finished.
    private func loadInBulk(_ files: [String]) throws -> (stoppedIn: FileLoad?, finished: Int) {
        var finished = 0
        var current: FileLoad?
        var stop: BulkStop?
        // Room for the one transaction: 16× the input (the database is about 3× its archives),
        // gzip counted as 20× its size; standard input, unknown in size, gets 64 GiB. The map is
        // address space, not disk: the file grows only with the pages written.
        let sizes = files.map { path -> Int? in
            guard path != "-", let size = (try? FileManager.default.attributesOfItem(atPath: (path as NSString).resolvingSymlinksInPath)[.size] as? Int) ?? nil else { return nil }
            return path.hasSuffix(".gz") ? size * 20 : size
        }
        let reserve = sizes.contains { $0 == nil } ? (64 << 30) : max(sizes.reduce(0) { $0 + ($1 ?? 0) } * 16, 1 << 30)
        let result: BulkLoadResult
        do {
            // The archives' sizes on disk (compressed for .gz), to extrapolate how many events
            // the run will hold from what the first MiBs held (nil: standard input, unknown).
            let diskBytes: Int? = sizes.contains { $0 == nil } ? nil : files.reduce(0) { total, path in
                total + ((try? FileManager.default.attributesOfItem(atPath: (path as NSString).resolvingSymlinksInPath)[.size] as? Int) ?? 0)
            }
            var hinted = false
            var finishedBytes = 0
            let lines = { [unowned self] in summary.lines }
            let writing: ((Double) -> Void)? = options.progress ? { fraction in
                FileHandle.standardError.write("\u{1B}[2K\r\(lines()) lines read; writing the tables in key order: \(Int(fraction * 100))%".data(using: .utf8)!)
            } : nil
            result = try graph.bulkLoad(now: options.now, reserveBytes: reserve, writing: writing) { feed -> [(key: String, value: [UInt8])] in
                // Parsing here, resolving and writing on the bulk writer's thread.
                var metadata: [(key: String, value: [UInt8])] = []
                var events = EventBatch(schema: graph.schema)
                // Where the bulk transaction's checkpoint ends in the archive it stopped in,
                // when that is before the last line read (see the control records below).
                var bulkEnd: Checkpoint?
                archives: while finished < files.count {
                    let file = try FileLoad(loader: self, path: files[finished])
                    current = file
                    do {
                        while true {
                            if interruptRequested.load(ordering: .relaxed) { stop = .interrupted; break archives }
                            if feed.estimatedBytes > options.memoryLimit {
                                summary.batchReason = .memoryLimit(megabytes: options.memoryLimit >> 20, file: file.path, line: file.doneLine + 1)
                                stop = .memoryLimit
                                break archives
                            }
                            let (record, more) = try file.nextRecord(into: &events)
                            if file.failure != nil { stop = .badLine; break archives }
                            switch record {
                            case .none:
                                break
                            case .event:
                                summary.records += 1
                                summary.bulkRecords += 1
                                if events.count == Self.bulkChunk {
                                    // Once 4 MiB are read: the writer sizes its tables for the
                                    // whole run (about 60 bytes per event, within a quarter of
                                    // the memory budget).
                                    if !hinted, let diskBytes, case let parsed = file.parsedDiskBytes, parsed >= 4 << 20 {
                                        let estimate = summary.records * diskBytes / max(1, parsed + finishedBytes)
                                        feed.expect(events: min(estimate, options.memoryLimit / 4 / 60))
                                        hinted = true
                                    }
                                    try feed.send(&events)
                                }
                            case .control(let op):
                                guard BulkWriter.accepts(op) else {
                                    // The incremental path applies it, in a later transaction:
                                    // the bulk one's checkpoint ends before it, so that a load
                                    // killed between the two reads it again (it once covered
                                    // the line, and a forget ending the bulk part was lost).
                                    bulkEnd = file.checkpoint
                                    file.batch.append(op)
                                    file.markDone()
                                    summary.batchReason = .controlRecord(kind: op.kind, file: file.path, line: file.doneLine)
                                    stop = .controlRecord
                                    break archives
                                }
                                if !events.isEmpty { try feed.send(&events) }  // events before it stay before it
                                try feed.send([op])
                                summary.records += 1
                                summary.bulkRecords += 1
                            }
                            file.markDone()
                            if !more { break }
                            if options.progress { showProgress(path: file.path, source: file.source) }
                        }
                    } catch let error as InputError {
                        stop = .input(error)  // what was read before it is kept
                        break archives
                    }
                    if let key = file.key { metadata.append((key, file.checkpoint.bytes)) }
                    summary.bytes += file.source.consumedBytes
                    finishedBytes += file.source.consumedBytes
                    current = nil
                    finished += 1
                }
                if let current, let key = current.key { metadata.append((key, (bulkEnd ?? current.checkpoint).bytes)) }
                if !events.isEmpty { try feed.send(&events) }
                if options.progress {
                    // The writer still resolves what is queued and writes every table: say so.
                    FileHandle.standardError.write("\u{1B}[2K\r\(summary.lines) lines read; writing the tables in key order…".data(using: .utf8)!)
                }
                try rejects?.synchronize()
                feed.nothingFollows = stop == nil  // every archive taken whole by this run
                return metadata
            }
        } catch BulkLoadError.mapFull {
            throw LoadError.bulkMapFull
        }
        summary.report.add(result.report)
        summary.bulkTimings = result.timings  // one bulk run per load
        summary.bulkMemoryEstimateBytes = result.memoryEstimateBytes
        switch stop {
        case .interrupted?: throw LoadError.interrupted(file: current?.path ?? "-", line: (current?.doneLine ?? 0) + 1)
        case .input(let error)?: throw LoadError.input(error)
        case .badLine?, .memoryLimit?, .controlRecord?, nil: return (current, finished)
        }
    }

    /// Events per chunk handed to the bulk writer's thread.
    static let bulkChunk = 2048

    static func identifierField(of op: GraphOperation) -> String {
        switch op {
        case .event: return "ids"
        case .link, .unlink: return "a/b"
        case .forget: return "id"
        case .retract: return "event_id"
        }
    }

    /// A bad line's text as the rejects file holds it: as a string when it is UTF-8 (`text`),
    /// else base64-encoded (`text_base64`).
    private enum RejectedText: Equatable {
        case text(String)
        case base64(String)

        init(_ bytes: UnsafeRawBufferPointer) {
            let array = Array(bytes)
            self = String(validating: array, as: UTF8.self).map(RejectedText.text) ?? .base64(Data(array).base64EncodedString())
        }
    }

    /// Where bad lines go (`--rejects`, default `<db>/rejects.ndjson`).
    private var rejectsPath: String { options.rejectsPath ?? graph.path + "/rejects.ndjson" }

    /// Bad lines of this load's archives that the rejects file already holds: path → line →
    /// the line's text as written.
    private var rejectsAlreadyWritten: [String: [Int: RejectedText]] = [:]

    /// Reads, from the rejects file, the bad lines of `files` it already holds. A run killed
    /// before the batch after a bad line committed (or before an archive's first commit) has
    /// written it; the next run reads the line again and writes it only when that file, line
    /// number and text are not there yet, so a load killed any number of times leaves each bad
    /// line in the rejects file once (it once left duplicates).
    ///
    /// The file is read line by line, and only the entries that start with one of `files` (as
    /// ``reject(path:line:reason:text:)`` writes them: `{"file":"…","line":…`) are parsed, so a
    /// large rejects file of other archives costs a scan, not a parse or its size in memory.
    private func noteRejectsAlreadyWritten(for files: [String]) {
        guard FileManager.default.fileExists(atPath: rejectsPath), let source = try? FileSource(path: rejectsPath) else { return }
        let prefixes = Set(files.compactMap { path -> [UInt8]? in
            guard let encoded = try? JSONSerialization.data(withJSONObject: ["file": path], options: [.withoutEscapingSlashes]) else { return nil }
            return Array(encoded.dropLast()) + Array(#","line":"#.utf8)  // {"file":"…","line":
        })
        let reader = LineReader(source: source)
        while (try? reader.nextLine({ line in
            guard prefixes.contains(where: { $0.count <= line.count && line.starts(with: $0) }),
                  let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let path = object["file"] as? String, let number = object["line"] as? Int else { return }
            if let text = object["text"] as? String {
                rejectsAlreadyWritten[path, default: [:]][number] = RejectedText.text(text)
            } else if let text = object["text_base64"] as? String {
                rejectsAlreadyWritten[path, default: [:]][number] = RejectedText.base64(text)
            }
        })) == true {}
    }

    private func reject(path: String, line: Int, reason: String, text: UnsafeRawBufferPointer) throws {
        let written = RejectedText(text)
        if let earlier = rejectsAlreadyWritten[path]?[line], earlier == written {
            summary.rejected += 1  // the same line, written by a run killed before the batch after it committed
            summary.rejectedEarlier += 1
            summary.rejectsPath = rejectsPath
            return
        }
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
        switch written {
        case .text(let string): record["text"] = string
        case .base64(let encoded): record["text_base64"] = encoded
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
