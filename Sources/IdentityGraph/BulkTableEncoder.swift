import CPrefetch
import Foundation

/// Entries of one table encoded ahead of the bulk writer, in key order: key `keys[i]` with the
/// bytes `bytes[ends[i - 1]..<ends[i]]`, put as one value or, when `elementSize` is set, as
/// duplicates of that many bytes in one `MDB_MULTIPLE` call.
struct EncodedEntries: Sendable {
    var keys: [UInt64] = []
    var bytes: [UInt8] = []
    var ends: [Int] = []
    /// 0: one value per key; otherwise the size of each duplicate.
    var elementSize = 0

    init(elementSize: Int = 0) { self.elementSize = elementSize }

    /// Ends the entry for `key`: the bytes appended since the last one are its value.
    mutating func close(key: UInt64) {
        keys.append(key)
        ends.append(bytes.count)
    }

    /// Lets `encode` append to ``bytes`` directly (a value encoded into a buffer of its own and
    /// then copied here cost a second copy of every record).
    mutating func write(_ encode: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 0)
        swap(&writer.bytes, &bytes)
        encode(&writer)
        swap(&writer.bytes, &bytes)
    }
}

/// What the encoder hands the writer, in the order the writer puts it.
enum EncodedChunk: Sendable {
    /// `node`, `node_summary` and `node_event` entries of a range of nodes.
    case nodes(records: EncodedEntries, summaries: EncodedEntries, timelines: EncodedEntries)
    /// `member` and `entity` entries of a range of entities.
    case entities(members: EncodedEntries, records: EncodedEntries)
    /// `adj` entries of a range of nodes.
    case adjacency(EncodedEntries)
}

/// A short queue of encoded chunks from the encoder thread to the writer.
final class ChunkPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [EncodedChunk] = []
    private var done = false
    private var cancelled = false
    /// Set when the encoder delivered everything (not cancelled).
    private(set) var completed = false
    /// Signalled once when the encoder has stopped.
    let finished = DispatchSemaphore(value: 0)
    /// Chunks queued at most; the encoder waits beyond.
    static let depth = 4

    /// Queues a chunk; false when the writer gave up (the encoder stops).
    func put(_ chunk: EncodedChunk) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= Self.depth && !cancelled { condition.wait() }
        if cancelled { return false }
        queue.append(chunk)
        condition.broadcast()
        return true
    }

    /// The next chunk, waiting until `deadline` at most (`nil`: as long as it takes):
    /// `.timedOut` when none came by then, `nil` when the encoder is done (or the pipe was
    /// cancelled).
    func take(waitingUntil deadline: Date?) -> TakeResult? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !done && !cancelled {
            if let deadline {
                if !condition.wait(until: deadline) { break }
            } else {
                condition.wait()
            }
        }
        if cancelled || (queue.isEmpty && done) { return nil }
        if queue.isEmpty { return .timedOut }
        let chunk = queue.removeFirst()
        condition.broadcast()
        return .chunk(chunk)
    }

    /// What ``take(waitingUntil:)`` got.
    enum TakeResult {
        case chunk(EncodedChunk)
        case timedOut
    }

    /// The encoder is done (`completed` when it delivered everything).
    func close(completed: Bool) {
        condition.lock()
        done = true
        self.completed = completed && !cancelled
        condition.broadcast()
        condition.unlock()
        finished.signal()
    }

    /// The writer stops taking: the encoder stops at its next chunk.
    func cancel() {
        condition.lock()
        cancelled = true
        queue.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

/// Builds the value of every `node`, `node_summary`, `node_event`, `member`, `entity` and `adj`
/// entry of a bulk run, in key order, on its own thread (``BulkWriter/finish()``): exactly the
/// records the incremental writer would hold after the same events.
final class TableEncoder: @unchecked Sendable {  // its vars are touched by its own thread only, after init
    let count: Int
    let now: Int64
    let rules: ProfileRules
    private var entityOf: [UInt32]
    let parent: [UInt32]
    let redirect: [UInt32]
    let entitySize: [UInt32]
    private var nodeType: [UInt16]
    private var identKeys: ByteKeyTable
    private var longValues: [UInt32: [UInt8]]
    private var timelineNode: [UInt32]
    private var timelineEvent: [UInt32]
    private var eventTime: [UInt64]
    private var eventType: [UInt32]
    private var eventSource: [UInt32]
    private var eventAmount: [Int64]
    private var eventTallyIndex: [Int32]
    let tallyArena: [UInt8]
    private var tallyStart: [Int]
    private var tallyCount: [UInt16]
    let progress: BulkProgress?
    /// Signalled once the per-event data are regrouped (and freed): the sorter waits for it
    /// before its larger sorts, so that the two peaks of memory do not add up.
    let regrouped: DispatchSemaphore?

    init(count: Int, now: Int64, rules: ProfileRules, entityOf: [UInt32], parent: [UInt32], redirect: [UInt32], entitySize: [UInt32], nodeType: [UInt16], identKeys: ByteKeyTable, longValues: [UInt32: [UInt8]], timelineNode: [UInt32], timelineEvent: [UInt32], eventTime: [UInt64], eventType: [UInt32], eventSource: [UInt32], eventAmount: [Int64], eventTallyIndex: [Int32], tallyArena: [UInt8], tallyStart: [Int], tallyCount: [UInt16], progress: BulkProgress?, regrouped: DispatchSemaphore? = nil) {
        self.count = count
        self.now = now
        self.rules = rules
        self.entityOf = entityOf
        self.parent = parent
        self.redirect = redirect
        self.entitySize = entitySize
        self.nodeType = nodeType
        self.identKeys = identKeys
        self.longValues = longValues
        self.timelineNode = timelineNode
        self.timelineEvent = timelineEvent
        self.eventTime = eventTime
        self.eventType = eventType
        self.eventSource = eventSource
        self.eventAmount = eventAmount
        self.eventTallyIndex = eventTallyIndex
        self.tallyArena = tallyArena
        self.tallyStart = tallyStart
        self.tallyCount = tallyCount
        self.progress = progress
        self.regrouped = regrouped
    }

    /// Nodes (or entities) per chunk at most.
    static let chunkSize = 16_384

    /// Nodes per chunk for this run: an eighth of them, between 64 and ``chunkSize`` (so that
    /// small loads, the tests' among them, also go through several chunks).
    private var chunk: Int { min(Self.chunkSize, max(64, count / 8)) }
    private static let none = UInt32.max
    private static let anchorBit: UInt32 = 1 << 31

    /// Encodes everything into `pipe`; waits for `sorted` (membership, adjacency order) after
    /// the node tables.
    func run(into pipe: ChunkPipe, sorted: SortedOutputs) {
        var completed = false
        defer { pipe.close(completed: completed) }

        // Timeline entries grouped by node, in one sequential pass over the events (a counting
        // sort: they are in sequence order, which it keeps), with what the node tables need of
        // each event copied next to it: reading it per node instead (eight random reads per
        // entry) took 38 s of the 44 s of writing the tables at 10M events.
        var first = [Int](repeating: 0, count: count + 1)
        var firstAnchored = [Int](repeating: 0, count: count + 1)
        for n in timelineNode {
            first[Int(n & ~Self.anchorBit) + 1] += 1
            if n & Self.anchorBit != 0 { firstAnchored[Int(n & ~Self.anchorBit) + 1] += 1 }
        }
        for i in 0..<count {
            first[i + 1] += first[i]
            firstAnchored[i + 1] += firstAnchored[i]
        }
        // Two passes, so that what each needs goes as soon as it is copied (at 10M events the
        // regrouped copies are 660 MB, and this is the run's peak of memory).
        var contributions = [AnchoredEvent](repeating: AnchoredEvent(time: 0, amount: 0, type: 0, source: 0, tallyOffset: AnchoredEvent.noTallies, tallyCount: 0), count: firstAnchored[count])
        do {
            var fillAnchored = firstAnchored
            for k in timelineNode.indices where timelineNode[k] & Self.anchorBit != 0 {
                let node = Int(timelineNode[k] & ~Self.anchorBit)
                let e = Int(timelineEvent[k])
                // The attributes' place is copied here, where the tally index is read in event
                // order: read per node it was a second cache miss per event with attributes.
                let t = Int(eventTallyIndex[e])
                contributions[fillAnchored[node]] = AnchoredEvent(
                    time: eventTime[e], amount: eventAmount[e], type: eventType[e], source: eventSource[e],
                    tallyOffset: t < 0 ? AnchoredEvent.noTallies : UInt32(tallyStart[t]), tallyCount: t < 0 ? 0 : tallyCount[t])
                fillAnchored[node] += 1
            }
        }
        eventType = []; eventSource = []; eventAmount = []; eventTallyIndex = []; tallyStart = []; tallyCount = []
        var entries = [TimelineEntry](repeating: TimelineEntry(time: 0, event: 0), count: timelineNode.count)
        do {
            var fill = first
            for k in timelineNode.indices {
                let node = Int(timelineNode[k] & ~Self.anchorBit)
                let e = Int(timelineEvent[k])
                entries[fill[node]] = TimelineEntry(time: eventTime[e], event: UInt32(e))
                fill[node] += 1
            }
        }
        // Everything per event is in `entries` and `contributions` now.
        timelineNode = []; timelineEvent = []; eventTime = []
        regrouped?.signal()

        // node, node_summary and node_event, by id; the degrees come from the links, which the
        // sorter counts first.
        sorted.linksReady.wait()
        var degree = sorted.degree
        sorted.degree = []
        var nodeSummary = Summary()
        var nodeTallies = TallyFold()
        var lower = 0
        while lower < count {
            let upper = min(lower + chunk, count)
            var records = EncodedEntries(), summaries = EncodedEntries(), timelines = EncodedEntries(elementSize: 16)
            records.bytes.reserveCapacity((upper - lower) * 40)
            for i in lower..<upper {
                let id = UInt64(i) + 1
                let entity: UInt64 = entityOf[i] == Self.none ? 0 : UInt64(entityOf[i]) + 1
                // The node record (NodeRecord's layout); the value is its ident key after the
                // type (0xFF, never in UTF-8, starts the hash of a long value instead).
                records.write { record in
                    record.append(nodeType[i]); record.append(UInt8(0)); record.append(UInt8(0)); record.append(entity); record.append(degree[i])
                    identKeys.withKey(i) { key in
                        if key.count > 2 && key[2] == Keys.hashedMarker, let long = longValues[UInt32(i)] {
                            record.append(bytes: long)
                        } else {
                            record.append(bytes: UnsafeRawBufferPointer(rebasing: key[2...]))
                        }
                    }
                }
                records.close(key: id)
                nodeSummary.removeAll()
                nodeTallies.removeAll()
                addContributions(ofNode: i, to: &nodeSummary, tallies: &nodeTallies, contributions: contributions, first: firstAnchored)
                if !nodeSummary.isEmpty {
                    summaries.write { encode(nodeSummary, tallies: &nodeTallies, into: &$0) }
                    summaries.close(key: id)
                }
                guard first[i + 1] > first[i] else { continue }
                if first[i + 1] - first[i] > 1 {
                    entries[first[i]..<first[i + 1]].sort { ($0.time, $0.event) < ($1.time, $1.event) }
                }
                for entry in entries[first[i]..<first[i + 1]] {
                    timelines.bytes.appendBigEndian(entry.time); timelines.bytes.appendBigEndian(UInt64(entry.event) + 1)
                }
                timelines.close(key: id)
            }
            guard pipe.put(.nodes(records: records, summaries: summaries, timelines: timelines)) else { return }
            lower = upper
            progress?.set(0.7 * Double(upper) / Double(count))
        }

        // The node pass is over: what only it read goes (the identifier table is the largest).
        identKeys = ByteKeyTable(); longValues = [:]; nodeType = []; degree = []; entityOf = []
        first = []; entries = []

        sorted.done.wait()
        sorted.done.signal()
        let membership = sorted.membership

        // member (entity → nodes) and entity records, by id; a live entity's summary is the
        // fold of its members' (each event counts toward one anchor).
        var m = 0
        var total = Summary()
        var totalTallies = TallyFold()
        lower = 0
        while lower < count {
            let upper = min(lower + chunk, count)
            var members = EncodedEntries(elementSize: 8), entities = EncodedEntries()
            for i in lower..<upper where parent[i] != Self.none {
                let id = UInt64(i) + 1
                if redirect[i] != Self.none {
                    entities.bytes.append(contentsOf: EntityRecord.redirect(to: UInt64(redirect[i]) + 1, at: now).bytes)
                    entities.close(key: id)
                    continue
                }
                var size: UInt64 = 0
                let firstMember = m
                while m < membership.count, membership[m] >> 32 == UInt64(i) {
                    let node = membership[m] & 0xFFFF_FFFF
                    members.bytes.appendBigEndian(node + 1)
                    size += 1
                    m += 1
                }
                members.close(key: id)
                // The fold of its members' summaries, counted again from their events in entity
                // order (adding is the fold: every count is a sum, every bound a min or max): an
                // accumulator per entity filled in node order held about 1.5 GB at 10M events
                // for the whole node pass.
                total.removeAll()
                totalTallies.removeAll()
                for k in firstMember..<m {
                    prefetchAnchoredEvents(after: k, membership: membership, contributions: contributions, first: firstAnchored)
                    addContributions(ofNode: Int(membership[k] & 0xFFFF_FFFF), to: &total, tallies: &totalTallies, contributions: contributions, first: firstAnchored)
                }
                entities.write { EntityRecord.encodeLive(size: size, created: now, updated: now, into: &$0) { encode(total, tallies: &totalTallies, into: &$0) } }
                entities.close(key: id)
            }
            guard pipe.put(.entities(members: members, records: entities)) else { return }
            lower = upper
            progress?.set(0.7 + 0.2 * Double(upper) / Double(count))
        }

        // adj: both directions, by node then neighbour (EdgeEntry's layout: neighbour u64,
        // evidence u32, flags u32, big-endian).
        var directed = DirectedLinks(sorted.links)
        sorted.links = LinkTally(forward: [], evidence: [])
        var next = directed.next()
        while next != nil {
            var runs = EncodedEntries(elementSize: 16)
            var nodes = 0
            // Whole runs of one node, until the chunk has its share of nodes.
            while let first = next, nodes < chunk {
                let u = first.key >> 32
                while let link = next, link.key >> 32 == u {
                    runs.bytes.appendBigEndian((link.key & 0xFFFF_FFFF) + 1); runs.bytes.appendBigEndian(link.evidence); runs.bytes.appendBigEndian(UInt32(0))
                    next = directed.next()
                }
                runs.close(key: u + 1)
                nodes += 1
            }
            guard pipe.put(.adjacency(runs)) else { return }
            progress?.set(0.9 + 0.1 * Double(directed.taken) / Double(max(1, directed.count)))
        }
        completed = true
    }

    /// Counts the events anchored at node `i` (`contributions[first[i]..<first[i + 1]]`) into `s`
    /// and their tallies into `tallies`.
    private func addContributions(ofNode i: Int, to s: inout Summary, tallies: inout TallyFold, contributions: [AnchoredEvent], first: [Int]) {
        guard first[i + 1] > first[i] else { return }
        tallyArena.withUnsafeBytes { arena in
            for c in contributions[first[i]..<first[i + 1]] {
                let timestamp = timestampFromSortable(c.time)
                s.add(SummaryContribution(timestamp: timestamp, type: c.type, source: c.source,
                                          amountMicros: c.amount, isOrder: rules.role(ofType: c.type).contains(.order)))
                if c.tallyOffset != AnchoredEvent.noTallies {
                    tallies.add(timestamp: timestamp, type: c.type, source: c.source, attributesAt: Int(c.tallyOffset),
                                count: Int(c.tallyCount), in: arena, rules: rules)
                }
            }
        }
    }

    /// Members are in entity order, their anchored events in node order: asks for the place of
    /// the member 16 after `k` and for the first event of the one 8 after (hints only; each was
    /// a cache miss).
    private func prefetchAnchoredEvents(after k: Int, membership: [UInt64], contributions: [AnchoredEvent], first: [Int]) {
        first.withUnsafeBufferPointer { first in
            if k + 16 < membership.count { idgraph_prefetch(first.baseAddress! + Int(membership[k + 16] & 0xFFFF_FFFF)) }
            guard k + 8 < membership.count else { return }
            let start = first[Int(membership[k + 8] & 0xFFFF_FFFF)]
            contributions.withUnsafeBufferPointer { if start < $0.count { idgraph_prefetch($0.baseAddress! + start) } }
        }
    }

    /// Appends a summary: `s`'s counts, then the tallies.
    private func encode(_ s: Summary, tallies: inout TallyFold, into out: inout ByteWriter) {
        s.encodeAllButTallies(into: &out)
        tallyArena.withUnsafeBytes { tallies.encode(into: &out, arena: $0, names: rules.attributeNames) }
    }
}

/// A timeline entry of a node: the event's sortable time and its index (sequence - 1).
struct TimelineEntry {
    var time: UInt64
    var event: UInt32
}

/// What a node's summary needs of an event anchored at it.
struct AnchoredEvent {
    var time: UInt64
    var amount: Int64
    var type: UInt32
    var source: UInt32
    /// Where its attributes start in the tally arena (``noTallies``: it has none); the arena
    /// stays under 4 GiB (``BulkWriter/tallyArenaLimit``).
    var tallyOffset: UInt32
    /// How many attributes it has there.
    var tallyCount: UInt16

    static let noTallies = UInt32.max
}
