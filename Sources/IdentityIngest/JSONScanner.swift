/// A strict JSON scanner over the bytes of one line (RFC 8259): it validates as it goes,
/// decodes strings (escapes, surrogate pairs, UTF-8 validation) and skips values it is not
/// asked for, so no tree is ever built. All pointer access of the parser lives here.
struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    /// Offset of the next byte to read.
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.position = 0
    }

    /// Why the bytes are not valid JSON, with the byte offset where it was noticed.
    struct SyntaxError: Error, Equatable {
        var offset: Int
        var expected: String
    }

    @inline(__always) private var atEnd: Bool { position >= bytes.count }

    @inline(__always) private func byte(at i: Int) -> UInt8 { bytes[i] }

    private func error(_ expected: String) -> SyntaxError { SyntaxError(offset: position, expected: expected) }

    /// Whether `b` is JSON whitespace (space, line feed, carriage return, tab).
    @inline(__always)
    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    /// Skips JSON whitespace.
    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count && Self.isWhitespace(bytes[position]) { position += 1 }
    }

    /// The next non-whitespace byte, not consumed.
    @inline(__always)
    mutating func peek() -> UInt8? {
        if position < bytes.count, case let b = bytes[position], !Self.isWhitespace(b) { return b }
        skipWhitespace()
        return atEnd ? nil : bytes[position]
    }

    /// Consumes `expected` (after whitespace) or throws.
    ///
    /// Inlined for the common case, the byte right there (archives are written without
    /// whitespace); called for every colon, comma and bracket of a line, it was 5% of the parser
    /// as a call with the skip of whitespace first.
    @inline(__always)
    mutating func expect(_ expected: UInt8, _ what: @autoclosure () -> String) throws(SyntaxError) {
        if position < bytes.count && bytes[position] == expected { position += 1; return }
        try expectAfterWhitespace(expected, what())
    }

    @inline(never)
    private mutating func expectAfterWhitespace(_ expected: UInt8, _ what: String) throws(SyntaxError) {
        skipWhitespace()
        guard !atEnd, bytes[position] == expected else { throw error(what) }
        position += 1
    }

    /// Consumes `byte` (after whitespace) when it is next.
    @inline(__always)
    mutating func consume(_ b: UInt8) -> Bool {
        if position < bytes.count && bytes[position] == b { position += 1; return true }
        skipWhitespace()
        if !atEnd && bytes[position] == b { position += 1; return true }
        return false
    }

    /// Requires that only whitespace is left.
    mutating func expectEnd() throws(SyntaxError) {
        skipWhitespace()
        if !atEnd { throw error("end of line after the JSON object") }
    }

    /// The kind of the next value, from its first byte.
    enum Kind: Equatable { case object, array, string, number, bool, null }

    /// The kind of the next value (whitespace skipped); throws if no value starts here.
    mutating func nextKind() throws(SyntaxError) -> Kind {
        guard let b = peek() else { throw error("a value") }
        switch b {
        case 0x7B: return .object
        case 0x5B: return .array
        case 0x22: return .string
        case 0x74, 0x66: return .bool
        case 0x6E: return .null
        case 0x2D, 0x30...0x39: return .number
        default: throw error("a value")
        }
    }

    /// Iterates the members of an object: `body` gets each key (valid only during the call:
    /// the line's own bytes unless the key has escapes) and must consume its value.
    mutating func readObject(_ body: (inout JSONScanner, UnsafeRawBufferPointer) throws -> Void) throws {
        try expect(0x7B, "'{'")
        if consume(0x7D) { return }
        while true {
            skipWhitespace()
            guard !atEnd, bytes[position] == 0x22 else { throw error("a quoted member name") }
            if let range = try plainString() {
                try expect(0x3A, "':' after a member name")
                try body(&self, UnsafeRawBufferPointer(rebasing: bytes[range]))
            } else {
                let key = try readString()
                try expect(0x3A, "':' after a member name")
                try key.withUnsafeBytes { try body(&self, $0) }
            }
            if consume(0x2C) { continue }
            try expect(0x7D, "',' or '}' in an object")
            return
        }
    }

    /// Consumes a string without escapes and returns where its bytes are (validated); returns nil
    /// and consumes nothing when it has escapes (``readString()`` decodes those).
    private mutating func plainString() throws(SyntaxError) -> Range<Int>? {
        try expect(0x22, "'\"'")
        let start = position
        var i = start
        var ascii = true
        while i < bytes.count {
            // Eight bytes at a time: to the first that ends the string or needs a look, or past
            // all eight (a byte loop was the parser's top cost, ~15% of it). The last few bytes
            // of the line go one at a time.
            if i + 8 <= bytes.count {
                let flags = Self.bytesNeedingALook(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                if flags == 0 { i += 8; continue }
                i += flags.trailingZeroBitCount >> 3
            }
            let b = bytes[i]
            if b == 0x22 {
                if !ascii && !UTF8Validation.isValid(UnsafeRawBufferPointer(rebasing: bytes[start..<i])) { position = start; throw error("valid UTF-8 in a string") }
                position = i + 1
                return start..<i
            }
            if b == 0x5C { position = start - 1; return nil }
            if b < 0x20 { position = i; throw error("no control character inside a string (escape it)") }
            if b >= 0x80 { ascii = false }
            i += 1
        }
        position = start
        throw error("a closing '\"'")
    }

    /// The top bit of each byte of `word` (first byte lowest) that is a quote, a backslash, a
    /// control character or not ASCII, exact up to the first such byte: above it, a byte may be
    /// flagged that is none of those (the borrow of a subtraction), never below.
    @inline(__always)
    static func bytesNeedingALook(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        // Bytes of at least 0x80 are flagged by `word & highs`. For the others, `x - n` sets a
        // byte's top bit when that byte is below n (or a lower byte borrowed), and `~x` keeps
        // the bytes below 0x80.
        func below(_ x: UInt64, _ n: UInt64) -> UInt64 { (x &- ones &* n) & ~x & highs }
        return word & highs | below(word, 0x20) | below(word ^ (ones &* 0x22), 1) | below(word ^ (ones &* 0x5C), 1)
    }

    /// Skips a string value, validating it, without copying it unless it has escapes.
    mutating func skipString() throws(SyntaxError) {
        skipWhitespace()
        if try plainString() == nil { _ = try readString() }
    }

    /// Iterates the elements of an array: `body` must consume each element.
    mutating func readArray(_ body: (inout JSONScanner) throws -> Void) throws {
        try expect(0x5B, "'['")
        if consume(0x5D) { return }
        while true {
            try body(&self)
            if consume(0x2C) { continue }
            try expect(0x5D, "',' or ']' in an array")
            return
        }
    }

    /// Reads a string value and appends it to `out` (no intermediate array unless it has escapes).
    mutating func appendString(to out: inout [UInt8]) throws(SyntaxError) {
        skipWhitespace()
        if let range = try plainString() {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[range]))
        } else {
            out.append(contentsOf: try readString())
        }
    }

    /// Reads a string value: escapes decoded, UTF-8 validated.
    mutating func readString() throws(SyntaxError) -> [UInt8] {
        skipWhitespace()
        // Fast path: no escapes (validated in place, copied once).
        if let range = try plainString() { return Array(UnsafeRawBufferPointer(rebasing: bytes[range])) }
        // Slow path: escapes.
        try expect(0x22, "'\"'")
        var out: [UInt8] = []
        var ascii = true
        while true {
            guard position < bytes.count else { throw error("a closing '\"'") }
            let b = bytes[position]
            if b == 0x22 {
                position += 1
                if !ascii && !out.withUnsafeBytes({ UTF8Validation.isValid($0) }) { throw error("valid UTF-8 in a string") }
                return out
            }
            if b < 0x20 { throw error("no control character inside a string (escape it)") }
            if b >= 0x80 { ascii = false }
            if b != 0x5C { out.append(b); position += 1; continue }
            position += 1
            guard position < bytes.count else { throw error("an escape sequence") }
            let e = bytes[position]
            position += 1
            switch e {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x2F: out.append(0x2F)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try readHex4()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard position + 1 < bytes.count, bytes[position] == 0x5C, bytes[position + 1] == 0x75 else {
                        throw error("a low surrogate \\u escape after a high surrogate")
                    }
                    position += 2
                    let low = try readHex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else { throw error("a low surrogate \\u escape after a high surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw error("no lone low surrogate")
                }
                appendUTF8(scalar, to: &out)
            default:
                position -= 1
                throw error("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
            }
        }
    }

    private mutating func readHex4() throws(SyntaxError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("four hex digits after \\u") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("four hex digits after \\u")
            }
            v = v << 4 | d
            position += 1
        }
        return v
    }

    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (scalar >> 6))); out.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (scalar >> 12))); out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (scalar >> 18))); out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F))); out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    /// Reads a number token (validated against the JSON grammar) and returns its text.
    mutating func readNumberText() throws(SyntaxError) -> [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: bytes[try readNumberRange()]))
    }

    /// Reads a number token (validated against the JSON grammar) and returns where its text is.
    mutating func readNumberRange() throws(SyntaxError) -> Range<Int> {
        skipWhitespace()
        let start = position
        if position < bytes.count && bytes[position] == 0x2D { position += 1 }
        guard position < bytes.count else { throw error("a digit") }
        if bytes[position] == 0x30 {
            position += 1
        } else if bytes[position] >= 0x31 && bytes[position] <= 0x39 {
            while position < bytes.count && bytes[position] >= 0x30 && bytes[position] <= 0x39 { position += 1 }
        } else {
            throw error("a digit")
        }
        if position < bytes.count && bytes[position] == 0x2E {
            position += 1
            let digits = position
            while position < bytes.count && bytes[position] >= 0x30 && bytes[position] <= 0x39 { position += 1 }
            if position == digits { throw error("a digit after '.'") }
        }
        if position < bytes.count && (bytes[position] == 0x65 || bytes[position] == 0x45) {
            position += 1
            if position < bytes.count && (bytes[position] == 0x2B || bytes[position] == 0x2D) { position += 1 }
            let digits = position
            while position < bytes.count && bytes[position] >= 0x30 && bytes[position] <= 0x39 { position += 1 }
            if position == digits { throw error("a digit in the exponent") }
        }
        return start..<position
    }

    /// Reads a number as a `Double`.
    mutating func readNumber() throws(SyntaxError) -> Double {
        let text = try readNumberText()
        guard let value = Double(String(decoding: text, as: UTF8.self)) else { throw error("a number") }
        return value
    }

    /// Reads `true` or `false`.
    mutating func readBool() throws(SyntaxError) -> Bool {
        if try readLiteral("true") { return true }
        if try readLiteral("false") { return false }
        throw error("true or false")
    }

    /// Reads `null`.
    mutating func readNull() throws(SyntaxError) {
        if !(try readLiteral("null")) { throw error("null") }
    }

    private mutating func readLiteral(_ word: StaticString) throws(SyntaxError) -> Bool {
        skipWhitespace()
        let n = word.utf8CodeUnitCount
        guard position + n <= bytes.count else { return false }
        for k in 0..<n where bytes[position + k] != word.utf8Start[k] { return false }
        position += n
        return true
    }

    /// Skips one value of any kind, validating it; returns the byte range it occupied.
    @discardableResult
    mutating func skipValue(depth: Int = 0) throws -> Range<Int> {
        guard depth < 512 else { throw error("nesting no deeper than 512 levels") }
        let kind = try nextKind()
        let start = position
        switch kind {
        case .object: try readObject { scanner, _ in try scanner.skipValue(depth: depth + 1) }
        case .array: try readArray { scanner in try scanner.skipValue(depth: depth + 1) }
        case .string: try skipString()
        case .number: _ = try readNumberText()
        case .bool: _ = try readBool()
        case .null: try readNull()
        }
        return start..<position
    }

    /// The bytes of a range of the line (for raw `props`).
    func slice(_ range: Range<Int>) -> [UInt8] { Array(UnsafeRawBufferPointer(rebasing: bytes[range])) }

    /// The bytes of a range of the line, in place (valid as long as the line is).
    func bytes(in range: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[range]) }
}

/// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
enum UTF8Validation {
    static func isValid(_ s: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = s.count
        while i < n {
            let b = s[i]
            if b < 0x80 { i += 1; continue }
            let need: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; upper = 0x9F
            case 0xF0: need = 3; lower = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; upper = 0x8F
            default: return false
            }
            // The last continuation byte is at i + need; it must be inside the buffer.
            guard i + need < n else { return false }
            let second = s[i + 1]
            if second < lower || second > upper { return false }
            var k = 2
            while k <= need {
                let c = s[i + k]
                if c < 0x80 || c > 0xBF { return false }
                k += 1
            }
            i += need + 1
        }
        return true
    }
}
