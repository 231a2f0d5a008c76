#if canImport(Glibc)
import Glibc
#endif

/// A stream of bytes: a file, standard input, or a decompressor over one of them.
public protocol ByteSource: AnyObject {
    /// Reads up to `count` bytes into `buffer`; returns 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Bytes of the underlying file consumed so far (for progress).
    var consumedBytes: Int { get }
    /// The underlying file's size, when known.
    var totalBytes: Int? { get }
}

/// Errors opening or reading an input.
public enum InputError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened.
    case cannotOpen(path: String, reason: String)
    /// Reading failed.
    case readFailed(path: String, reason: String)
    /// The gzip stream is damaged.
    case corruptGzip(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
        case .readFailed(let path, let reason): return "cannot read \(path): \(reason)"
        case .corruptGzip(let path, let reason): return "\(path): damaged gzip data (\(reason))"
        }
    }
}

/// A file descriptor read with `read(2)`.
public final class FileSource: ByteSource {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// The path (or `-` for standard input).
    public let path: String
    public private(set) var consumedBytes = 0
    public let totalBytes: Int?

    /// Opens `path`; `-` is standard input.
    public init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = 0
            ownsDescriptor = false
            totalBytes = nil
        } else {
            let opened = open(path, O_RDONLY)
            guard opened >= 0 else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            var st = stat()
            if fstat(opened, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                close(opened)
                throw InputError.cannotOpen(path: path, reason: "is a directory")
            }
            fd = opened
            ownsDescriptor = true
            totalBytes = (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : nil
        }
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { consumedBytes += n; return n }
            if errno == EINTR { continue }
            throw InputError.readFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Moves to byte `offset` (regular files only); returns whether it could.
    public func seek(to offset: Int) -> Bool {
        guard ownsDescriptor, lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else { return false }
        consumedBytes = offset
        return true
    }
}

/// Splits a byte source into lines (`\n`, with a `\r` before it dropped), counting line
/// numbers and the byte offset after each line.
public final class LineReader {
    private let source: ByteSource
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var finished = false
    /// The number of the line last returned (1-based).
    public private(set) var lineNumber = 0
    /// Byte offset (in the decoded stream) just after the line last returned.
    public private(set) var offset = 0

    /// Reads lines from `source` with a buffer of `chunkSize` bytes (it grows for longer lines).
    public init(source: ByteSource, chunkSize: Int = 1 << 20) {
        self.source = source
        self.buffer = [UInt8](repeating: 0, count: chunkSize)
    }

    /// Calls `body` with the next line's bytes (valid only during the call); `false` at the end.
    @discardableResult
    public func nextLine(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        while true {
            // memchr: the generic firstIndex(of:) looked at one byte per step.
            let found = buffer.withUnsafeBytes { raw -> Int? in
                guard start < end, let hit = memchr(raw.baseAddress! + start, 0x0A, end - start) else { return nil }
                return UnsafeRawPointer(hit) - raw.baseAddress!
            }
            if let newline = found {
                var lineEnd = newline
                if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let lineStart = start
                start = newline + 1
                offset += newline + 1 - lineStart
                let textStart = firstLineText(from: lineStart, to: lineEnd)
                lineNumber += 1
                try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[textStart..<lineEnd])) }
                return true
            }
            if finished {
                guard start < end else { return false }
                // The last line has no newline.
                var lineEnd = end
                if buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let lineStart = start
                offset += end - start
                start = end
                let textStart = firstLineText(from: lineStart, to: lineEnd)
                lineNumber += 1
                try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[textStart..<lineEnd])) }
                return true
            }
            try fill()
        }
    }

    /// Where the text of the line at `lineStart..<lineEnd` starts: after a UTF-8 byte order mark
    /// when it is the stream's first line (some Windows tools start their exports with one; it
    /// is not part of the JSON), else at `lineStart`. The mark still counts in ``offset``.
    private func firstLineText(from lineStart: Int, to lineEnd: Int) -> Int {
        guard lineNumber == 0, lineEnd - lineStart >= 3,
              buffer[lineStart] == 0xEF, buffer[lineStart + 1] == 0xBB, buffer[lineStart + 2] == 0xBF else { return lineStart }
        return lineStart + 3
    }

    private func fill() throws {
        if start > 0 {
            let count = end - start
            buffer.withUnsafeMutableBytes { raw in
                if count > 0 { raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: count) }
            }
            start = 0
            end = count
        }
        if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
        let n = try buffer.withUnsafeMutableBytes { raw in
            try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
        }
        if n == 0 { finished = true } else { end += n }
    }
}
