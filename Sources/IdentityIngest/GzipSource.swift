import CZlib

/// Decompresses a gzip stream (every member of a multi-member file) from another source.
public final class GzipSource: ByteSource {
    private let inner: ByteSource
    private let path: String
    private var stream = z_stream()
    private var input: [UInt8]
    private var inputStart = 0
    private var inputEnd = 0
    private var innerFinished = false
    private var streamEnded = false

    /// Wraps `inner`, whose bytes are gzip data.
    public init(_ inner: ByteSource, path: String) throws {
        self.inner = inner
        self.path = path
        self.input = [UInt8](repeating: 0, count: 1 << 18)
        let rc = czlib_inflate_init_gzip(&stream)
        guard rc == Z_OK else { throw InputError.corruptGzip(path: path, reason: "inflateInit2 failed (\(rc))") }
    }

    deinit { inflateEnd(&stream) }

    public var consumedBytes: Int { inner.consumedBytes }
    public var totalBytes: Int? { inner.totalBytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            if inputStart == inputEnd && !innerFinished {
                let n = try input.withUnsafeMutableBytes { try inner.read(into: $0) }
                inputStart = 0
                inputEnd = n
                if n == 0 { innerFinished = true }
            }
            if streamEnded {
                // Another gzip member may follow; otherwise we are done.
                if inputStart == inputEnd { return 0 }
                inflateReset(&stream)
                streamEnded = false
            }
            let available = inputEnd - inputStart
            let (produced, rc): (Int, Int32) = input.withUnsafeMutableBytes { raw in
                stream.next_in = raw.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputStart
                stream.avail_in = uInt(available)
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(buffer.count)
                let rc = inflate(&stream, Z_NO_FLUSH)
                return (buffer.count - Int(stream.avail_out), rc)
            }
            inputStart = inputEnd - Int(stream.avail_in)
            switch rc {
            case Z_OK: break
            case Z_STREAM_END: streamEnded = true
            case Z_BUF_ERROR:
                if innerFinished && inputStart == inputEnd && produced == 0 {
                    throw InputError.corruptGzip(path: path, reason: "the file ends in the middle of a gzip stream")
                }
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "code \(rc)"
                throw InputError.corruptGzip(path: path, reason: message)
            }
            if produced > 0 { return produced }
            if innerFinished && inputStart == inputEnd && !streamEnded {
                throw InputError.corruptGzip(path: path, reason: "the file ends in the middle of a gzip stream")
            }
        }
    }
}

/// Opens an input: `-` is standard input; gzip data (by its magic bytes) is decompressed.
public func openInput(_ path: String) throws -> ByteSource {
    let file = try FileSource(path: path)
    if path != "-" && isGzip(path) { return try GzipSource(file, path: path) }
    return file
}

/// Whether the file at `path` starts with the gzip magic bytes.
func isGzip(_ path: String) -> Bool {
    guard let probe = try? FileSource(path: path) else { return false }
    var magic = [UInt8](repeating: 0, count: 2)
    let n = (try? magic.withUnsafeMutableBytes { try probe.read(into: $0) }) ?? 0
    return n == 2 && magic[0] == 0x1F && magic[1] == 0x8B
}
