/// A stored record that cannot be decoded: the database is damaged or from another version.
public enum RecordError: Error, CustomStringConvertible, Equatable {
    /// What could not be read.
    case corrupt(String)
    public var description: String {
        switch self {
        case .corrupt(let what):
            return "stored record is damaged (\(what)); run `idgraph check`, and restore from a backup (mdb_copy) if it fails"
        }
    }
}

/// Appends big-endian integers and bytes to a buffer.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }
    /// The 8 big-endian bytes of `v`.
    static func bigEndian(_ v: UInt64) -> [UInt8] {
        var out = ByteWriter(capacity: 8)
        out.append(v)
        return out.bytes
    }

    @inline(__always) mutating func append(_ v: UInt8) { bytes.append(v) }
    @inline(__always) mutating func append(_ v: UInt16) { bytes.appendBigEndian(v) }
    @inline(__always) mutating func append(_ v: UInt32) { bytes.appendBigEndian(v) }
    @inline(__always) mutating func append(_ v: UInt64) { bytes.appendBigEndian(v) }
    @inline(__always) mutating func append(_ v: Int64) { append(UInt64(bitPattern: v)) }
    mutating func append<C: Collection>(bytes b: C) where C.Element == UInt8 {
        if !b.isEmpty { bytes.append(contentsOf: b) }
    }
}

extension Array where Element == UInt8 {
    // A byte at a time: each `append` of a byte is inlined, while appending an integer's bytes
    // as a buffer called the generic `append(contentsOf:)` and `memmove` for every integer
    // (measured: a 100-byte event record in 47 ns against 24 ns this way; that call was ~10% of
    // the bulk writer thread's samples at 10M events).

    /// Appends `v` big-endian.
    @inline(__always) mutating func appendBigEndian(_ v: UInt16) {
        append(UInt8(truncatingIfNeeded: v >> 8)); append(UInt8(truncatingIfNeeded: v))
    }
    /// Appends `v` big-endian.
    @inline(__always) mutating func appendBigEndian(_ v: UInt32) {
        appendBigEndian(UInt16(truncatingIfNeeded: v >> 16)); appendBigEndian(UInt16(truncatingIfNeeded: v))
    }
    /// Appends `v` big-endian.
    @inline(__always) mutating func appendBigEndian(_ v: UInt64) {
        appendBigEndian(UInt32(truncatingIfNeeded: v >> 32)); appendBigEndian(UInt32(truncatingIfNeeded: v))
    }
}

/// Reads big-endian integers and bytes from a buffer, throwing on a short read.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    var offset = 0

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var remaining: Int { buffer.count - offset }

    mutating func need(_ n: Int) throws(RecordError) {
        if offset + n > buffer.count { throw RecordError.corrupt("short record: need \(n) bytes at \(offset) of \(buffer.count)") }
    }
    mutating func uint8() throws(RecordError) -> UInt8 {
        try need(1); defer { offset += 1 }
        return buffer[offset]
    }
    mutating func uint16() throws(RecordError) -> UInt16 {
        try need(2); defer { offset += 2 }
        return UInt16(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    mutating func uint32() throws(RecordError) -> UInt32 {
        try need(4); defer { offset += 4 }
        return UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    mutating func uint64() throws(RecordError) -> UInt64 {
        try need(8); defer { offset += 8 }
        return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    mutating func int64() throws(RecordError) -> Int64 { Int64(bitPattern: try uint64()) }
    mutating func bytes(_ n: Int) throws(RecordError) -> [UInt8] {
        try need(n); defer { offset += n }
        return Array(buffer[offset..<offset + n])
    }
    /// The next `n` bytes as a view into the buffer (valid as long as the buffer is).
    mutating func slice(_ n: Int) throws(RecordError) -> UnsafeRawBufferPointer {
        try need(n); defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + n])
    }
    mutating func skip(_ n: Int) throws(RecordError) {
        try need(n)
        offset += n
    }
    mutating func rest() -> [UInt8] {
        defer { offset = buffer.count }
        return Array(buffer[offset...])
    }
}

/// Big-endian encoding of a timestamp that sorts as bytes in numeric order (sign bit flipped).
@inline(__always)
func sortableTimestamp(_ ms: Int64) -> UInt64 { UInt64(bitPattern: ms) ^ (1 << 63) }

@inline(__always)
func timestampFromSortable(_ v: UInt64) -> Int64 { Int64(bitPattern: v ^ (1 << 63)) }
