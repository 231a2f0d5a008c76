/// Something that can lend its bytes to LMDB as a key or a value without copying.
///
/// Integer keys are written big-endian so that LMDB's byte order is numeric order.
public protocol LMDBBytes {
    /// Calls `body` with the bytes; the buffer is valid only during the call.
    func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: LMDBBytes where Element == UInt8 {
    @inlinable
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension ArraySlice: LMDBBytes where Element == UInt8 {
    @inlinable
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension UInt64: LMDBBytes {
    /// The eight bytes of the value, most significant first.
    @inlinable
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: self.bigEndian, body)
    }
}

extension String: LMDBBytes {
    /// The UTF-8 bytes of the string.
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

/// Two big-endian 64-bit integers side by side: a 16-byte composite key or fixed-size dup value.
public struct UInt64Pair: LMDBBytes, Hashable, Sendable {
    /// The first (most significant) half.
    public var first: UInt64
    /// The second half.
    public var second: UInt64
    /// Creates the pair.
    @inlinable public init(_ first: UInt64, _ second: UInt64) { self.first = first; self.second = second }

    /// Both halves, big-endian, 16 bytes.
    @inlinable
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: (first.bigEndian, second.bigEndian), body)
    }

    /// Reads a pair from 16 big-endian bytes.
    @inlinable
    public init(bytes: UnsafeRawBufferPointer) {
        first = bytes.loadBigEndianUInt64(at: 0)
        second = bytes.loadBigEndianUInt64(at: 8)
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a big-endian `UInt64` at `offset` (no alignment needed).
    @inlinable
    public func loadBigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    /// Reads a big-endian `UInt32` at `offset` (no alignment needed).
    @inlinable
    public func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UnsafeRawBufferPointer: LMDBBytes {
    /// The bytes themselves (valid for as long as the caller keeps them alive).
    @inlinable
    public func withLMDBBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(self)
    }
}
