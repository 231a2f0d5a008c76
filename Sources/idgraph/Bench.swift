import ArgumentParser
import Foundation
import Histogram
import IdentityGraph
import IdentityIngest
import Synchronization

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure idgraph under load.",
        subcommands: [BenchRealtime.self]
    )
}

struct BenchRealtime: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "realtime",
        abstract: "Open-loop real-time ingest through the group-commit writer, with concurrent lookups.",
        discussion: """
            Events (generated, with a share of unlinks, forgets, retracts and links) arrive on a \
            schedule: event k is due at start + k/RATE, spread over PRODUCERS submitters. Ingest \
            latency is measured from the due time to the acknowledgement, so it includes queueing \
            (no coordinated omission). Meanwhile READERS resolve random known identifiers at \
            --reader-rate each; their latency is the lookup's own time. \
            Percentiles come from HdrHistogram; --histogram writes the full distributions.

            The writer line says why latency is what it is: the share of the run the writer \
            was busy, the size and duration of its commits, and the bytes written per event (a \
            small commit rewrites every page it touches). When half the submissions waited \
            longer than the window and two commits, they queue: the rate is at or past what \
            the writer sustains (a busy share near 100% alone does not say so: with \
            --window-micros 0 the writer commits whatever is queued, back to back).

            Example:
              idgraph bench realtime --events 200000 --rate 50000 --producers 16 --readers 1
            """
    )
    @Option(help: "Events to submit.") var events = 100_000
    @Option(help: "Offered rate, events per second.") var rate = 20_000
    @Option(help: "Threads that submit events at their due times, each every PRODUCERS-th event, without waiting for acknowledgements (open loop).") var producers = 4
    @Option(help: "Threads resolving random identifiers during the run.") var readers = 1
    @Option(help: "Lookups per second per reader.") var readerRate = 10_000
    @Option(help: "durable (each commit synced before its submitters are acknowledged), fast (commits not synced; a second thread syncs every --sync-interval-ms) or journal (commits not synced, each acknowledged once its operations are in the database's journal, one small sync per commit on a thread of its own; the database synced every --sync-interval-ms behind it, and after a system crash rolled back to the last sync and brought forward from the journal: nothing acknowledged is lost).") var mode: RealtimeMode = .durable
    @Option(help: "Group-commit window in microseconds: the longest a queued submission waits for others before its commit starts (0: commit what is queued at once).") var windowMicros = 1000
    @Option(help: "Most operations in one commit: binds only when the writer is behind (a batch is otherwise what queued during the previous commit); larger batches catch up faster.") var maxBatch = RealtimeWriter.Options().maxBatch
    @Option(help: "In fast and journal modes, milliseconds from the end of one sync of the database to the start of the next (fast: with the time of a sync, the most a system crash loses; journal: how much of the journal a recovery may apply again).") var syncIntervalMs = 10.0
    @Option(help: "Share of control records (merges and splits beyond those events cause).") var controlShare = 0.02
    @Option(help: "Shared kiosk devices used by strangers in the workload: with the default schema each holds one large entity together, which the workload's unlinks, forgets and retracts then split.") var kiosks = 0
    @Option(help: ArgumentHelp("What the workload's event ids start with (default: rt-MILLIS-, the run's start time, new on every run: on top of an existing --db the events are new ones, not replays of an earlier run's).", valueName: "prefix")) var idPrefix: String?
    @Option(help: "Seed of the generated workload (default: a random one, printed, so that a run can be repeated with the same events).") var seed: UInt64?
    @Option(help: ArgumentHelp("Database to write to (default: a fresh temporary one, removed afterwards).", valueName: "path")) var db: String?
    @Option(help: ArgumentHelp("Write the full latency distributions (HdrHistogram text) to FILE-ingest.hgrm and FILE-lookup.hgrm.", valueName: "file")) var histogram: String?
    @Option(help: ArgumentHelp("Append each acknowledged event id to FILE as it is acknowledged (for durability checks).", valueName: "file")) var ackLog: String?
    @Option(help: ArgumentHelp("Instead of one run, find the highest offered rate whose ingest p99 stays within MS milliseconds: runs of --seconds each, from --rate up or down by halves and doubles, then between the last rate within and the first over, each on a fresh database with the same workload seed (--events, --db, --histogram and --ack-log do not apply).", valueName: "ms")) var findRateP99Ms: Double?
    @Option(help: "Length of each run when finding a rate (events = rate × seconds).") var seconds = 5.0
    @Option(help: "Most runs when finding a rate.") var maxRuns = 12
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        if events < 1 || rate < 1 || producers < 1 || readers < 0 { throw ValidationError("--events, --rate and --producers must be positive; --readers at least 0") }
        if !(0...0.5).contains(controlShare) { throw ValidationError("--control-share must be between 0 and 0.5") }
        if maxBatch < 1 { throw ValidationError("--max-batch must be at least 1") }
        if !(syncIntervalMs >= 0) { throw ValidationError("--sync-interval-ms must be at least 0") }
        if let idPrefix, !ArchiveGenerator.Options.isValidEventIDPrefix(idPrefix) { throw ValidationError("--id-prefix cannot hold quotes, backslashes or line breaks") }
        if let target = findRateP99Ms {
            if !(target > 0) { throw ValidationError("--find-rate-p99-ms must be positive") }
            if !(seconds > 0) { throw ValidationError("--seconds must be positive") }
            if maxRuns < 1 { throw ValidationError("--max-runs must be at least 1") }
            if db != nil || histogram != nil || ackLog != nil {
                throw ValidationError("--find-rate-p99-ms runs each rate on a fresh temporary database: leave out --db, --histogram and --ack-log")
            }
        }
    }

    func run() async throws {
        let workloadSeed = seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
        if let target = findRateP99Ms {
            try await findRate(p99Millis: target, workloadSeed: workloadSeed)
            return
        }
        let result = try await measure(rate: rate, events: events, workloadSeed: workloadSeed, at: db)
        if let histogram {
            for (name, h) in [("ingest", result.ingest), ("lookup", result.lookup)] {
                var text = ""
                h.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1)
                try text.write(toFile: "\(histogram)-\(name).hgrm", atomically: true, encoding: .utf8)
            }
        }
        let ingestH = result.ingest, lookupH = result.lookup, commitH = result.commitMicros, operationsH = result.commitOperations
        if json {
            let fields: [(String, String)] = [
                ("events", "\(result.events)"), ("offered_rate", "\(rate)"), ("producers", "\(producers)"), ("readers", "\(readers)"),
                ("mode", "\"\(mode.rawValue)\""), ("window_us", "\(windowMicros)"), ("max_batch", "\(maxBatch)"), ("kiosks", "\(kiosks)"), ("seed", "\(workloadSeed)"), ("seconds", String(format: "%.3f", result.seconds)),
                ("throughput", String(format: "%.0f", result.throughput)), ("commits", "\(result.commits)"), ("syncs", "\(result.syncs)"), ("failures", "\(result.failures)"),
                ("ingest_us", "{\"p50\":\(ingestH.percentile(50)),\"p90\":\(ingestH.percentile(90)),\"p99\":\(ingestH.percentile(99)),\"p999\":\(ingestH.percentile(99.9)),\"max\":\(ingestH.max)}"),
                ("writer_busy", String(format: "%.3f", result.busyShare)),
                ("commit_us", "{\"p50\":\(commitH.percentile(50)),\"p99\":\(commitH.percentile(99)),\"max\":\(commitH.max)}"),
                ("commit_operations", "{\"total\":\(result.operations),\"p50\":\(operationsH.percentile(50)),\"p99\":\(operationsH.percentile(99)),\"max\":\(result.largestCommit)}"),
                ("written_bytes_per_event", result.writtenPerEvent.map { String(format: "%.0f", $0) } ?? "null"),
                ("lookup_us", "{\"count\":\(lookupH.totalCount),\"p50\":\(lookupH.percentile(50)),\"p90\":\(lookupH.percentile(90)),\"p99\":\(lookupH.percentile(99)),\"p999\":\(lookupH.percentile(99.9)),\"max\":\(lookupH.totalCount == 0 ? 0 : lookupH.max)}"),
            ]
            print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
            return
        }
        print("realtime: \(result.events) events offered at \(rate)/s by \(producers) producers, \(mode.rawValue), window \(windowMicros) µs, at most \(maxBatch) operations per commit, \(kiosks > 0 ? "\(kiosks) shared kiosks, " : "")workload seed \(workloadSeed)")
        print(String(format: "completed in %.2f s: %.0f events/s; %llu commits (%.1f events per commit)%@%@", result.seconds, result.throughput, result.commits,
                     Double(result.events) / Double(max(1, result.commits)), mode != .durable ? ", \(result.syncs) syncs" : "",
                     result.failures > 0 ? " — \(result.failures) submissions failed" : ""))
        print("ingest latency (µs): p50 \(ingestH.percentile(50))  p90 \(ingestH.percentile(90))  p99 \(ingestH.percentile(99))  p99.9 \(ingestH.percentile(99.9))  max \(ingestH.max)")
        func ms(_ micros: UInt64) -> String { String(format: "%.1f", Double(micros) / 1000) }
        print(String(format: "writer: busy %.0f%% of the run; per commit p50/p99/max %llu/%llu/%llu operations in %@/%@/%@ ms%@", result.busyShare * 100,
                     operationsH.percentile(50), operationsH.percentile(99), UInt64(result.largestCommit), ms(commitH.percentile(50)), ms(commitH.percentile(99)), ms(commitH.max),
                     result.writtenPerEvent.map { String(format: "; %.1f KB written per event", $0 / 1024) } ?? ""))
        if let commits = result.queuedCommits(windowMicros: windowMicros) {
            print(String(format: "  half the submissions waited %.1f commits or more beyond the window: they queue behind earlier commits, so the offered rate is at or past what the writer sustains here (docs/operations.md, Real-time ingest)", commits))
        }
        if lookupH.totalCount > 0 {
            print("lookup latency (µs): p50 \(lookupH.percentile(50))  p90 \(lookupH.percentile(90))  p99 \(lookupH.percentile(99))  p99.9 \(lookupH.percentile(99.9))  max \(lookupH.max)  (\(lookupH.totalCount) lookups by \(readers) reader\(readers == 1 ? "" : "s"))")
        }
        if let histogram { print("full distributions: \(histogram)-ingest.hgrm, \(histogram)-lookup.hgrm") }
    }

    /// One run at `rate`: `events` generated events (seeded by `workloadSeed`) submitted on
    /// their schedule into the database at `db` (a fresh temporary one, removed afterwards, when nil).
    func measure(rate: Int, events: Int, workloadSeed: UInt64, at db: String?) async throws -> RealtimeRun {
        let path = db ?? (NSTemporaryDirectory() + "idgraph-bench-" + UUID().uuidString)
        defer { if db == nil { try? FileManager.default.removeItem(atPath: path) } }
        var openOptions = IdentityGraph.Options()
        openOptions.durability = mode == .durable ? .durable : .fast
        let graph = try IdentityGraph.open(at: path, options: openOptions, createIfMissing: true).reportingJournalRecovery()

        // The workload, generated and parsed up front so that the run measures ingest only.
        var generatorOptions = ArchiveGenerator.Options()
        generatorOptions.events = events
        generatorOptions.controlShare = controlShare
        generatorOptions.kiosks = kiosks
        generatorOptions.seed = workloadSeed
        generatorOptions.eventIDPrefix = idPrefix ?? "rt-\(currentTimeMillis())-"
        var generator = ArchiveGenerator(options: generatorOptions)
        let archive = path + ".workload.ndjson"
        _ = try generator.write(to: archive)
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let lines = try String(contentsOfFile: archive, encoding: .utf8).split(separator: "\n")
        let workload: [GraphOperation] = try lines.map { try RecordParser.parse(String($0)) }
        let lookupKeys: [RawIdentifier] = workload.prefix(10_000).compactMap { if case .event(let e) = $0 { return e.identifiers.first } else { return nil } }

        var writerOptions = RealtimeWriter.Options()
        writerOptions.window = .microseconds(windowMicros)
        writerOptions.maxBatch = maxBatch
        writerOptions.syncInterval = .microseconds(Int64(syncIntervalMs * 1000))
        // Why latency is what it is: how busy the writer was, how large and how long its
        // commits were, and how much it wrote.
        let commitMicros = LockedHistograms(), commitOperations = LockedHistograms()
        let largestCommit = Atomic<Int>(0)  // exact (the histogram keeps three significant digits)
        writerOptions.onCommit = { commit in
            commitMicros.record(UInt64(max(0, commit.duration / .microseconds(1))))
            commitOperations.record(UInt64(commit.operations))
            largestCommit.max(commit.operations, ordering: .relaxed)
        }
        let writtenBefore = ProcessIO.bytesWritten()
        let writer = mode == .journal ? try RealtimeWriter.journaled(graph: graph, options: writerOptions) : RealtimeWriter(graph: graph, options: writerOptions)
        let ackFile: FileHandle? = try ackLog.map { p in
            guard FileManager.default.createFile(atPath: p, contents: nil), let h = FileHandle(forWritingAtPath: p) else { throw ValidationError("cannot write \(p)") }
            return h
        }

        // Readers: open-loop lookups on threads of their own.
        let run = RunState()
        let lookupHistograms = LockedHistograms()
        var readerThreads: [Thread] = []
        for r in 0..<readers {
            let thread = Thread {
                ThreadControl.name("idgraph-reader\(r)")
                var h = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
                let interval = 1.0 / Double(readerRate)
                var next = Date()
                var i = r * 7919
                while !run.stopReaders.load(ordering: .relaxed) {
                    let now = Date()
                    if now < next { Thread.sleep(forTimeInterval: next.timeIntervalSince(now)) }
                    next = next.addingTimeInterval(interval)
                    i = (i &+ 104_729) % max(1, lookupKeys.count)
                    // Service time of the lookup itself: sleeping threads wake tens of µs late,
                    // which would otherwise swamp a microsecond measurement.
                    let began = DispatchTime.now().uptimeNanoseconds
                    _ = try? graph.read { try $0.entity(of: lookupKeys[i]) }
                    _ = h.record((DispatchTime.now().uptimeNanoseconds - began) / 1000)
                }
                lookupHistograms.add(h)
            }
            thread.start()
            readerThreads.append(thread)
        }

        // Producers: each takes every P-th event and submits it at its due time.
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(20)
        let interval = Duration.nanoseconds(Int64(1_000_000_000 / Double(rate)))
        let ingest = LockedHistograms()
        // Open loop: an event is submitted at its due time whether or not earlier ones were
        // acknowledged, so a slow writer shows up as latency instead of a slower schedule. The
        // acknowledgement is a completion on the writer thread (no task per submission: on two
        // cores the harness would otherwise take CPU from the writer it measures). Producers are
        // plain threads sleeping in the kernel: as Swift tasks, each wake-up was a timer fired by
        // libdispatch's manager thread, which runs at nice -4 and preempted the readers (lookup
        // p99 21-28 µs against 6-9 µs).
        let producing = DispatchGroup()
        for p in 0..<producers {
            producing.enter()
            let thread = Thread {
                ThreadControl.name("idgraph-prod\(p)")
                var k = p
                while k < workload.count {
                    let due = start + interval * k
                    let wait = due - clock.now
                    if wait > .zero { Thread.sleep(forTimeInterval: Double(wait / .nanoseconds(1)) / 1e9) }
                    let operation = workload[k]
                    do {
                        try writer.submit([operation]) { result in
                            let now = clock.now
                            if case .failure = result { run.failures.add(1, ordering: .relaxed) }
                            if case .success = result, let ackFile, case .event(let e) = operation, let id = e.eventID { ackFile.write(Data(id + [0x0A])) }
                            ingest.record(UInt64(max(0, (now - due) / .microseconds(1))))
                            run.lastAckNanoseconds.max(Int((now - start) / .nanoseconds(1)), ordering: .relaxed)
                        }
                    } catch {
                        run.failures.add(1, ordering: .relaxed)
                    }
                    k += producers
                }
                producing.leave()
            }
            thread.start()
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            producing.notify(queue: .global()) { done.resume() }
        }
        writer.close()  // commits what is queued: every completion has run after this
        let elapsed = Duration.nanoseconds(Int64(run.lastAckNanoseconds.load(ordering: .relaxed)))
        run.stopReaders.store(true, ordering: .relaxed)
        for t in readerThreads { while !t.isFinished { usleep(1000) } }
        let stats = writer.statistics
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let busy = Double(stats.busy.components.seconds) + Double(stats.busy.components.attoseconds) / 1e18
        // Busy time over the run (from the first due time to the last acknowledgement).
        let busyShare = seconds > 0 ? min(1, busy / seconds) : 0
        let written = ProcessIO.bytesWritten().flatMap { after in writtenBefore.map { after - $0 } }
        let writtenPerEvent = written.map { Double($0) / Double(max(1, workload.count)) }
        let ingestH = ingest.merged
        return RealtimeRun(
            events: workload.count, seconds: seconds, throughput: Double(workload.count) / seconds, commits: stats.commits, syncs: stats.syncs,
            failures: run.failures.load(ordering: .relaxed), ingest: ingestH, lookup: lookupHistograms.merged,
            commitMicros: commitMicros.merged, commitOperations: commitOperations.merged, largestCommit: largestCommit.load(ordering: .relaxed),
            operations: stats.operations, busyShare: busyShare, writtenPerEvent: writtenPerEvent)
    }
}

extension BenchRealtime {
    /// The highest offered rate whose ingest p99 stays within `p99Millis`: doubles or halves
    /// from `--rate` until one run is within and one over, then narrows the gap (geometric
    /// midpoints, rounded to two significant digits) until the two are within 10% of each other
    /// or `--max-runs` runs are done. A run with failed submissions counts as over.
    func findRate(p99Millis: Double, workloadSeed: UInt64) async throws {
        let limitMicros = UInt64(p99Millis * 1000)
        var within: (rate: Int, run: RealtimeRun)?, over: (rate: Int, run: RealtimeRun)?
        var probes: [(rate: Int, run: RealtimeRun, within: Bool)] = []
        if !json {
            print(String(format: "finding the highest rate with ingest p99 ≤ %@ ms: %@, %d producers, %d reader%@, %@ s per rate, workload seed %llu",
                         Self.decimal(p99Millis), mode.rawValue, producers, readers, readers == 1 ? "" : "s", Self.decimal(seconds), workloadSeed))
        }
        var next: Int? = rate
        while let r = next, probes.count < maxRuns {
            let run = try await measure(rate: r, events: max(1, Int(Double(r) * seconds)), workloadSeed: workloadSeed, at: nil)
            let ok = run.failures == 0 && run.ingest.percentile(99) <= limitMicros
            probes.append((r, run, ok))
            if ok { if within.map({ r > $0.rate }) ?? true { within = (r, run) } } else if over.map({ r < $0.rate }) ?? true { over = (r, run) }
            if !json {
                print(String(format: "  %7d/s: p99 %.1f ms, %.0f events/s, writer busy %.0f%% — %@", r, Double(run.ingest.percentile(99)) / 1000,
                             run.throughput, run.busyShare * 100, ok ? "within" : (run.failures > 0 ? "\(run.failures) submissions failed" : "over")))
            }
            switch (within, over) {
            case (nil, _?): next = r / 2 >= 10 ? r / 2 : nil
            case (_?, nil): next = r * 2 <= 10_000_000 ? r * 2 : nil
            case let (low?, high?):
                let middle = Self.roundedToTwoDigits((Double(low.rate) * Double(high.rate)).squareRoot())
                next = Double(high.rate) / Double(low.rate) > 1.1 && middle > low.rate && middle < high.rate ? middle : nil
            case (nil, nil): next = nil
            }
        }
        if json {
            let runs = probes.map { probe in
                "{\"rate\":\(probe.rate),\"within\":\(probe.within),\"ingest_p99_us\":\(probe.run.ingest.percentile(99)),\"throughput\":\(String(format: "%.0f", probe.run.throughput)),"
                    + "\"writer_busy\":\(String(format: "%.3f", probe.run.busyShare)),\"failures\":\(probe.run.failures)}"
            }
            print("{\"p99_target_ms\":\(Self.decimal(p99Millis)),\"mode\":\"\(mode.rawValue)\",\"producers\":\(producers),\"readers\":\(readers),\"seconds_per_rate\":\(Self.decimal(seconds)),"
                  + "\"seed\":\(workloadSeed),\"rate\":\(within.map { "\($0.rate)" } ?? "null"),\"first_rate_over\":\(over.map { "\($0.rate)" } ?? "null"),\"runs\":[\(runs.joined(separator: ","))]}")
            return
        }
        switch (within, over) {
        case let (low?, high?):
            print(String(format: "highest rate within: %d events/s (p99 %.1f ms); %d/s was over (p99 %.1f ms)", low.rate, Double(low.run.ingest.percentile(99)) / 1000,
                         high.rate, Double(high.run.ingest.percentile(99)) / 1000))
        case let (low?, nil):
            print("highest rate within: at least \(low.rate) events/s (no rate tried was over)")
        case let (nil, high?):
            print(String(format: "no rate tried was within: even %d events/s had p99 %.1f ms", high.rate, Double(high.run.ingest.percentile(99)) / 1000))
        case (nil, nil):
            break
        }
    }

    /// `value` rounded to two significant digits (4,372 → 4,400): rates a person reads at a glance.
    static func roundedToTwoDigits(_ value: Double) -> Int {
        guard value >= 10 else { return Int(value.rounded()) }
        let scale = pow(10, floor(log10(value)) - 1)
        return Int((value / scale).rounded() * scale)
    }

    /// A number without trailing zeros (2, 0.5, 2.25).
    static func decimal(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

/// One run of ``BenchRealtime``: what was offered and what the writer and readers did.
struct RealtimeRun {
    var events: Int
    var seconds: Double
    var throughput: Double
    var commits: UInt64
    var syncs: UInt64
    var failures: Int
    var ingest: Histogram<UInt64>
    var lookup: Histogram<UInt64>
    var commitMicros: Histogram<UInt64>
    var commitOperations: Histogram<UInt64>
    /// The largest commit's operations, exactly (the histograms keep three significant digits).
    var largestCommit: Int
    var operations: UInt64
    /// The writer's busy time over the run.
    var busyShare: Double
    var writtenPerEvent: Double?

    /// How many median commits the median submission waited beyond the window, when that is
    /// more than two (a submission waits at most the window and its own commit, plus the one
    /// in progress when it arrived, unless submissions queue); nil otherwise.
    func queuedCommits(windowMicros: Int) -> Double? {
        guard ingest.totalCount > 0, commitMicros.totalCount > 0 else { return nil }
        let commit = Double(max(1, commitMicros.valueAtPercentile(50)))
        let waited = (Double(ingest.valueAtPercentile(50)) - Double(windowMicros)) / commit
        return waited > 2 ? waited : nil
    }
}

extension Histogram<UInt64> {
    /// The value at `q` percent, 0 for an empty histogram.
    func percentile(_ q: Double) -> UInt64 { totalCount == 0 ? 0 : valueAtPercentile(q) }
}

/// The bytes this process has handed to `write` calls so far (`wchar` of `/proc/self/io`: LMDB's
/// pages and meta pages, the ack log); `nil` where the file does not exist.
enum ProcessIO {
    static func bytesWritten() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("wchar:") {
            return Int(line.dropFirst("wchar:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}

/// What the reader threads and producer tasks of one run share.
final class RunState: Sendable {
    /// Set when the producers are done: the readers stop.
    let stopReaders = Atomic<Bool>(false)
    /// Submissions that failed.
    let failures = Atomic<Int>(0)
    /// When the last acknowledgement came, in nanoseconds from the start.
    let lastAckNanoseconds = Atomic<Int>(0)
}

/// Histograms gathered from several threads or tasks.
final class LockedHistograms: Sendable {
    private let all = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))
    func add(_ h: Histogram<UInt64>) { all.withLock { $0.add(h) } }
    func record(_ value: UInt64) { all.withLock { _ = $0.record(value) } }
    var merged: Histogram<UInt64> { all.withLock { $0 } }
}


/// How `bench realtime` acknowledges: after a synced commit, after an unsynced one, or after
/// the journal's sync (``RealtimeWriter/journaled(graph:options:)``).
enum RealtimeMode: String, ExpressibleByArgument, CaseIterable {
    case durable, fast, journal
}
