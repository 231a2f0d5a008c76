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
        var count: UInt32 = 0
        a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                // Both validated (decoded from storage, or encoded here): a short entry ends
                // its list, as if it were the last.
                var ra = RawTallyCursor(x, count: a.count), rb = RawTallyCursor(y, count: b.count)
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
            }
        }
        return RawTallies(count: count, bytes: out.bytes)
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
