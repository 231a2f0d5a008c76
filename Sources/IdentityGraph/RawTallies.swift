import Foundation

/// Tallies in their stored form, read and merged without building a ``TallyKey`` per entry.
extension Summary {
    /// Tallies as stored bytes: this summary's own when they are still raw, else encoded.
    var encodedTallies: RawTallies {
        if let raw = rawTallies { return raw }
        var out = ByteWriter()
        Self.appendTallies(tallyMap, into: &out)
        return RawTallies(count: UInt32(tallyMap.count), bytes: out.bytes)
    }

    /// The tallies of `a` and `b` folded (counts added, the later time kept), as stored bytes,
    /// by one merge of the two sorted lists: no ``TallyKey`` is built. A merge into an entity
    /// of thousands of tallies (a device shared by strangers) decoded every one of them into a
    /// key of two arrays, and encoded them again, for each entity it absorbed.
    static func mergeEncoded(_ a: RawTallies, _ b: RawTallies) -> RawTallies {
        var out = ByteWriter()
        out.bytes.reserveCapacity(a.bytes.count + b.bytes.count)
        let count = a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in appendMergedTallies(x, count: a.count, y, count: b.count, into: &out) }
        }
        return RawTallies(count: count, bytes: out.bytes)
    }

    /// Appends the stored tallies `x` (`xCount` of them) and `y` folded, as ``mergeEncoded(_:_:)``
    /// does, and returns how many it appended. Both lists are valid stored tallies (read from
    /// storage and checked, or encoded here): a short entry ends its list, as if it were the last.
    static func appendMergedTallies(
        _ x: UnsafeRawBufferPointer, count xCount: UInt32, _ y: UnsafeRawBufferPointer, count yCount: UInt32, into out: inout ByteWriter
    ) -> UInt32 {
        var count: UInt32 = 0
        var ra = RawTallyCursor(x, count: xCount), rb = RawTallyCursor(y, count: yCount)
        func next(_ cursor: inout RawTallyCursor) -> RawTally? { (try? cursor.next()) ?? nil }
        var ea = next(&ra), eb = next(&rb)
        while let p = ea, let q = eb {
            let order = p.compare(q)
            if order < 0 {
                out.append(bytes: p.bytes); ea = next(&ra)
            } else if order > 0 {
                out.append(bytes: q.bytes); eb = next(&rb)
            } else {
                out.append(bytes: UnsafeRawBufferPointer(rebasing: p.bytes[..<p.keyLength]))
                out.append(p.count + q.count)
                out.append(UInt64(bitPattern: Swift.max(p.last, q.last)))
                ea = next(&ra); eb = next(&rb)
            }
            count += 1
        }
        while let p = ea { out.append(bytes: p.bytes); count += 1; ea = next(&ra) }
        while let q = eb { out.append(bytes: q.bytes); count += 1; eb = next(&rb) }
        return count
    }

    /// Appends the encoding of the summary stored as `stored` with `added` folded in: the bytes
    /// that decoding `stored`, merging `added` (``merge(_:)``) and encoding would give, read in
    /// place. Counting a batch's events toward the summaries they touch decoded each stored
    /// summary into maps (three arrays and their retains) and encoded it again; this reads the
    /// stored counts and tallies once, merging them as sorted lists. Summaries of version 1
    /// (written before profiles) take the decoding path.
    static func appendMerging(stored: UnsafeRawBufferPointer, added: Summary, into out: inout ByteWriter) throws(RecordError) {
        var r = ByteReader(stored)
        let header = try SummaryHeader(decoding: &r)
        guard header.version == 2, !added.isEmpty, header.events > 0 else {
            var summary = try Summary(bytes: stored)
            summary.merge(added)
            summary.encode(into: &out)
            return
        }
        header.folding(added).encode(into: &out)
        try appendMergedCounts(&r, added.typeCounts, into: &out)
        try appendMergedCounts(&r, added.sourceCounts, into: &out)
        let tallies = try storedTallies(&r)
        guard added.hasTallies else {
            out.append(tallies.count)
            out.append(bytes: tallies.bytes)
            return
        }
        let addedTallies = added.encodedTallies
        addedTallies.bytes.withUnsafeBytes { addedBytes in
            appendCounted(into: &out) { out in
                appendMergedTallies(tallies.bytes, count: tallies.count, addedBytes, count: addedTallies.count, into: &out)
            }
        }
    }

    /// Appends the stored counts `r` is at (`n`, then `n` × id and count) with `added` summed in.
    private static func appendMergedCounts(_ r: inout ByteReader, _ added: SortedMap<UInt32, UInt64>, into out: inout ByteWriter) throws(RecordError) {
        let n = Int(try r.uint32())
        let stored = try r.slice(n * 12)
        func id(_ i: Int) -> UInt32 { UInt32(bigEndian: stored.loadUnaligned(fromByteOffset: i * 12, as: UInt32.self)) }
        func count(_ i: Int) -> UInt64 { UInt64(bigEndian: stored.loadUnaligned(fromByteOffset: i * 12 + 4, as: UInt64.self)) }
        let entries = added.entries
        appendCounted(into: &out) { out in
            var i = 0, j = 0, appended: UInt32 = 0
            while i < n || j < entries.count {
                if j == entries.count || (i < n && id(i) < entries[j].key) {
                    out.append(id(i)); out.append(count(i)); i += 1
                } else if i == n || entries[j].key < id(i) {
                    out.append(entries[j].key); out.append(entries[j].value); j += 1
                } else {
                    out.append(id(i)); out.append(count(i) + entries[j].value); i += 1; j += 1
                }
                appended += 1
            }
            return appended
        }
    }

    /// Appends a list the way summaries store them, its number first: `body` appends the
    /// entries and returns how many, which goes into the 4 bytes left before them.
    private static func appendCounted(into out: inout ByteWriter, _ body: (inout ByteWriter) -> UInt32) {
        let countAt = out.bytes.count
        out.append(UInt32(0))
        let count = body(&out)
        out.bytes.withUnsafeMutableBytes { $0.storeBytes(of: count.bigEndian, toByteOffset: countAt, as: UInt32.self) }
    }
}

/// One stored tally, as views into its bytes.
struct RawTally {
    /// The whole entry: key, count, latest time.
    let bytes: UnsafeRawBufferPointer
    /// How many of ``bytes`` are the key (kind, name, source, value).
    let keyLength: Int
    /// ``TallyKind``'s raw value.
    let kind: UInt8
    /// The attribute name (empty for products, campaigns and lists).
    let name: UnsafeRawBufferPointer
    /// The interned source (attributes only).
    let source: UInt32
    /// The value counted.
    let value: UnsafeRawBufferPointer
    /// Events that gave it.
    let count: UInt64
    /// The latest of their times (ms since 1970).
    let last: Int64

    /// The order of ``TallyKey``'s `<` (negative: `self` first).
    func compare(_ other: RawTally) -> Int {
        Self.compare(kind: kind, name: name, source: source, value: value, with: other)
    }

    /// The order of ``TallyKey``'s `<` between a key given by its parts and `other`'s
    /// (negative: the parts' key first): the one definition of the stored tallies' order.
    static func compare(kind: UInt8, name: UnsafeRawBufferPointer, source: UInt32, value: UnsafeRawBufferPointer, with other: RawTally) -> Int {
        if kind != other.kind { return kind < other.kind ? -1 : 1 }
        let byName = compareBytes(name, other.name)
        if byName != 0 { return byName }
        if source != other.source { return source < other.source ? -1 : 1 }
        return compareBytes(value, other.value)
    }

    /// Lexicographic order of two byte strings (a prefix comes first).
    static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = Swift.min(a.count, b.count)
        if n > 0, let pa = a.baseAddress, let pb = b.baseAddress {
            let c = memcmp(pa, pb, n)
            if c != 0 { return c < 0 ? -1 : 1 }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

/// Walks stored tallies: the one parser of their format (``Summary`` decodes and validates
/// through it, ``SummaryBounds`` and ``Summary/mergeEncoded(_:_:)`` read through it).
struct RawTallyCursor {
    private var reader: ByteReader
    private var left: UInt32

    init(_ buffer: UnsafeRawBufferPointer, count: UInt32) {
        reader = ByteReader(buffer)
        left = count
    }

    /// Bytes read so far (the tallies' extent once the last is read).
    var offset: Int { reader.offset }

    /// The next tally, nil after the last; throws at bytes that do not hold one.
    mutating func next() throws(RecordError) -> RawTally? {
        guard left > 0 else { return nil }
        left -= 1
        let start = reader.offset
        let kind = try reader.uint8()
        let name = try reader.slice(Int(try reader.uint8()))
        let source = try reader.uint32()
        let value = try reader.slice(Int(try reader.uint16()))
        let keyEnd = reader.offset
        let count = try reader.uint64()
        let last = Int64(bitPattern: try reader.uint64())
        return RawTally(
            bytes: UnsafeRawBufferPointer(rebasing: reader.buffer[start..<reader.offset]), keyLength: keyEnd - start,
            kind: kind, name: name, source: source, value: value, count: count, last: last)
    }
}
