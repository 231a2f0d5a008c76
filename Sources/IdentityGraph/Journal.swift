import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A place in the journal: a segment and a byte offset in it.
struct JournalPosition: Sendable {
    /// The segment's number (its file is `<number, 16 digits>.log`).
    var segment: UInt64
    /// Bytes from the segment's start.
    var offset: UInt64
}

/// Errors of the journal's files.
public enum JournalError: Error, CustomStringConvertible {
    /// A system call on a journal file failed.
    case io(path: String, operation: String, errno: Int32)
    /// Another process writes to this journal (a real-time writer holds its lock).
    case inUse(path: String)
    /// A complete record could not be read back as an operation.
    case unreadable(path: String, detail: String)

    public var description: String {
        switch self {
        case .io(let path, let operation, let code):
            return "journal \(path): \(operation) failed: \(String(cString: strerror(code))); check the disk and the directory's permissions"
        case .inUse(let path):
            return "journal \(path) is in use by another real-time writer; close it first (one writer per database)"
        case .unreadable(let path, let detail):
            return "journal \(path): \(detail); the database itself is intact up to its last commit: move the journal directory aside to open it without replaying"
        }
    }
}

/// The real-time writer's journal (`<db>/journal/`), for acknowledgements that do not wait
/// for the database's sync (``RealtimeWriter/journaled(graph:options:)``).
///
/// Append-only segment files of framed records, `[length u32][crc32 u32][kind u8][body]`
/// (big-endian): `H` a segment's header (the boot id of the machine that wrote it), `T` a
/// batch, applied in one write transaction (its number and `now`, 16 bytes), `G` one of its
/// submissions (``GraphOperation/encode(into:)``), `S` a snapshot whose pages are all on the
/// disk (its LMDB transaction id, the number of the last batch it holds, and its meta record:
/// 16 + ``MetaPages/recordLength`` bytes). A reader
/// stops at the first frame that is incomplete or fails its checksum: a crash in the middle
/// of an append leaves exactly such a tail, and nothing after it was acknowledged.
///
/// One writer at a time: the directory's `lock` file is held (`flock`) while it is open.
final class Journal {
    /// Record kinds.
    enum Kind: UInt8 {
        case header = 0x48, transaction = 0x54, group = 0x47, synced = 0x53
    }

    /// One record read back, with the position just after it.
    struct Record {
        var kind: Kind
        var body: [UInt8]
        var end: JournalPosition
    }

    let directory: String
    private var fd: Int32 = -1
    private var lockFD: Int32 = -1
    /// The segment appended to and the end of what was written to it.
    private(set) var position: JournalPosition
    /// Frames appended since the last ``flush()``.
    private var buffer: [UInt8] = []
    private let bootID: String

    /// Opens `directory` (creating it) for appending, in a new segment numbered after every
    /// existing one.
    init(directory: String, bootID: String = Journal.currentBootID()) throws {
        self.directory = directory
        self.bootID = bootID
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw JournalError.io(path: directory, operation: "mkdir", errno: errno) }
        lockFD = try Self.lock(directory)
        let next = (Self.segments(in: directory).last ?? 0) + 1
        position = JournalPosition(segment: next, offset: 0)
        do { try openSegment(next) } catch {
            Glibc.close(lockFD)
            throw error
        }
    }

    deinit { close() }

    /// Takes the journal's lock; throws ``JournalError/inUse(path:)`` when another holds it.
    static func lock(_ directory: String) throws -> Int32 {
        let path = directory + "/lock"
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        if fd < 0 { throw JournalError.io(path: path, operation: "open", errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            Glibc.close(fd)
            if code == EWOULDBLOCK { throw JournalError.inUse(path: directory) }
            throw JournalError.io(path: path, operation: "flock", errno: code)
        }
        return fd
    }

    /// Releases a lock taken with ``lock(_:)``.
    static func unlock(_ fd: Int32) { Glibc.close(fd) }

    private func openSegment(_ number: UInt64) throws {
        let path = Self.path(of: number, in: directory)
        let fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw JournalError.io(path: path, operation: "open", errno: errno) }
        self.fd = fd
        position = JournalPosition(segment: number, offset: 0)
        append(.header, body: Array(bootID.utf8))
        try flush()
        // The new file's name must survive a power cut before anything in it is acknowledged.
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            defer { Glibc.close(dir) }
            if fsync(dir) != 0 { throw JournalError.io(path: directory, operation: "fsync", errno: errno) }
        }
    }

    /// Adds a record to what the next ``flush()`` writes.
    func append(_ kind: Kind, body: [UInt8]) {
        var framed = ByteWriter(capacity: body.count + 9)
        Self.frame(kind, body: body, into: &framed)
        buffer.append(contentsOf: framed.bytes)
    }

    /// Adds a framed record (made with ``frame(_:body:into:)``, for instance on a submitter's
    /// thread) to what the next ``flush()`` writes.
    func append(framed: [UInt8]) { buffer.append(contentsOf: framed) }

    /// Frames a record.
    static func frame(_ kind: Kind, body: [UInt8], into out: inout ByteWriter) {
        var crc = crc32(0, nil, 0)
        var k = kind.rawValue
        crc = crc32(crc, &k, 1)
        crc = body.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        out.append(UInt32(body.count + 1))
        out.append(UInt32(truncatingIfNeeded: crc))
        out.append(kind.rawValue)
        out.append(bytes: body)
    }

    /// Writes what was appended and waits until it is on the disk (`fdatasync`).
    func flush() throws {
        if !buffer.isEmpty {
            let path = Self.path(of: position.segment, in: directory)
            var written = 0
            try buffer.withUnsafeBytes { raw in
                while written < raw.count {
                    let n = write(fd, raw.baseAddress! + written, raw.count - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw JournalError.io(path: path, operation: "write", errno: errno)
                    }
                    written += n
                }
            }
            position.offset += UInt64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }
        if fdatasync(fd) != 0 { throw JournalError.io(path: Self.path(of: position.segment, in: directory), operation: "fdatasync", errno: errno) }
    }

    /// Continues in a new segment (what was appended is flushed first).
    func rotate() throws {
        try flush()
        Glibc.close(fd)
        try openSegment(position.segment + 1)
    }

    /// Deletes the segments numbered up to `last`.
    func removeSegments(through last: UInt64) { Self.removeSegments(in: directory, through: last) }

    /// Deletes the segments of `directory` numbered up to `last`.
    static func removeSegments(in directory: String, through last: UInt64 = .max) {
        for n in segments(in: directory) where n <= last { unlink(path(of: n, in: directory)) }
    }

    /// Closes the files and releases the lock; with `removingSegments`, deletes every segment
    /// first (everything in them is durable in the database).
    func close(removingSegments: Bool = false) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if removingSegments { Self.removeSegments(in: directory) }
        if lockFD >= 0 { Glibc.close(lockFD); lockFD = -1 }
    }

    /// The numbers of the segments in `directory`, ascending.
    static func segments(in directory: String) -> [UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> UInt64? in
            guard name.hasSuffix(".log") else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
    }

    static func path(of segment: UInt64, in directory: String) -> String {
        let digits = String(segment)
        return directory + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".log"
    }

    /// The complete records of segment `number`, up to the first incomplete or damaged frame.
    static func records(ofSegment number: UInt64, in directory: String) throws -> [Record] {
        let path = path(of: number, in: directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JournalError.io(path: path, operation: "read", errno: errno)
        }
        let bytes = [UInt8](data)
        var records: [Record] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let stored = UInt32(bytes[offset + 4]) << 24 | UInt32(bytes[offset + 5]) << 16 | UInt32(bytes[offset + 6]) << 8 | UInt32(bytes[offset + 7])
            guard length >= 1, offset + 8 + length <= bytes.count else { break }
            let crc = bytes.withUnsafeBufferPointer { crc32(crc32(0, nil, 0), $0.baseAddress! + offset + 8, uInt(length)) }
            guard UInt32(truncatingIfNeeded: crc) == stored, let kind = Kind(rawValue: bytes[offset + 8]) else { break }
            let end = offset + 8 + length
            records.append(Record(kind: kind, body: Array(bytes[(offset + 9)..<end]), end: JournalPosition(segment: number, offset: UInt64(end))))
            offset = end
        }
        return records
    }

    /// This boot of the machine (`/proc/sys/kernel/random/boot_id`): a journal written under
    /// another one went through a system crash or a restart, which may have lost pages written
    /// without a sync.
    static func currentBootID() -> String {
        // Tests stand for a restarted machine with another id.
        if let id = ProcessInfo.processInfo.environment["IDGRAPH_TEST_BOOT_ID"] { return id }
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
