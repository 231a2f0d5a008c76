import Foundation

/// Normalizes identifier values on bytes, exactly as SPEC.md's "Semantics" says.
public enum Normalizer {
    /// ASCII whitespace: space, tab, line feed, vertical tab, form feed, carriage return.
    @inlinable
    static func isASCIIWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || (b >= 0x09 && b <= 0x0D)
    }

    /// Applies `normalization` to a value (already known to be UTF-8); does not check emptiness.
    public static func apply(_ normalization: Normalization, to value: [UInt8]) -> [UInt8] {
        switch normalization {
        case .none: return value
        case .trim:
            let t = trimmed(value)
            return t.count == value.count ? value : Array(t)  // unchanged: no copy
        case .email, .lower:
            let t = trimmed(value)
            if t.count == value.count && !value.contains(where: { ($0 >= 0x41 && $0 <= 0x5A) || $0 >= 0x80 }) { return value }
            return lowercased(t)
        case .phone: return phone(value)
        }
    }

    /// The value without ASCII whitespace at either end.
    @inlinable
    public static func trimmed(_ value: [UInt8]) -> ArraySlice<UInt8> { value[trimmedBounds(value)] }

    /// Where a value is once ASCII whitespace at either end is left out.
    @inlinable
    public static func trimmedBounds<C: BidirectionalCollection>(_ value: C) -> Range<C.Index> where C.Element == UInt8 {
        var start = value.startIndex
        var end = value.endIndex
        while start < end && isASCIIWhitespace(value[start]) { start = value.index(after: start) }
        while end > start && isASCIIWhitespace(value[value.index(before: end)]) { end = value.index(before: end) }
        return start..<end
    }

    /// Unicode lowercase: bytes for ASCII (the common case), `String.lowercased()` otherwise.
    public static func lowercased(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        appendLowercased(value, to: &out)
        return out
    }

    /// Appends the Unicode lowercase form of `value` to `out` (ASCII byte by byte).
    public static func appendLowercased(_ value: some Collection<UInt8>, to out: inout [UInt8]) {
        if value.allSatisfy({ $0 < 0x80 }) {
            out.reserveCapacity(out.count + value.count)
            for b in value { out.append((b >= 0x41 && b <= 0x5A) ? b | 0x20 : b) }
        } else {
            out.append(contentsOf: String(decoding: value, as: UTF8.self).lowercased().utf8)
        }
    }

    /// Digits only, with a leading `+` when the first non-whitespace byte is `+`.
    public static func phone(_ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        appendPhone(value, to: &out)
        return out
    }

    /// Appends the digits of `value` to `out`, after a `+` when its first non-whitespace byte is one.
    public static func appendPhone(_ value: some Collection<UInt8>, to out: inout [UInt8]) {
        if let first = value.first(where: { !isASCIIWhitespace($0) }), first == 0x2B { out.append(0x2B) }
        for b in value where b >= 0x30 && b <= 0x39 { out.append(b) }
    }

    /// Whether the bytes are well-formed UTF-8.
    public static func isValidUTF8(_ value: some Collection<UInt8>) -> Bool {
        if value.allSatisfy({ $0 < 0x80 }) { return true }
        return String(validating: value, as: UTF8.self) != nil
    }

    /// What a raw identifier is under a schema.
    public enum Outcome: Equatable, Sendable {
        /// A valid, normalized identifier.
        case identifier(Identifier)
        /// Its type's role is `ignore`.
        case ignored
        /// Its value matches a blocked pattern of its type (`type /pattern/`).
        case blocked(String)
    }

    /// Validates, normalizes and checks a raw identifier against its type's blocked patterns.
    public static func classify(_ raw: RawIdentifier, schema: Schema) throws(IdentifierError) -> Outcome {
        guard let (id, policy) = try normalized(raw, schema: schema) else { return .ignored }
        if let patterns = policy.blocked, !patterns.isEmpty {
            let text = id.valueText
            for pattern in patterns where BlockedPatterns.matches(pattern, text) { return .blocked("\(id.type) /\(pattern)/") }
        }
        return .identifier(id)
    }

    /// Validates and normalizes a raw identifier under `schema`.
    ///
    /// Returns `nil` for a type whose role is `ignore` or a blocked value; throws for a bad type
    /// name, invalid UTF-8, an empty value, a phone without digits or a value over 1,024 bytes.
    public static func identifier(_ raw: RawIdentifier, schema: Schema) throws(IdentifierError) -> Identifier? {
        if case .identifier(let id) = try classify(raw, schema: schema) { return id }
        return nil
    }

    /// Validation and normalization alone, with the type's policy (nil for an ignored type).
    static func normalized(_ raw: RawIdentifier, schema: Schema) throws(IdentifierError) -> (Identifier, TypePolicy)? {
        let folded = raw.type.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) ? IdentifierType.fold(raw.type) : raw.type
        guard IdentifierType.isValidName(folded) else {
            throw IdentifierError.badTypeName(String(decoding: raw.type, as: UTF8.self))
        }
        let type = String(decoding: folded, as: UTF8.self)
        let policy = schema.policy(for: type)
        if policy.role == .ignore { return nil }
        guard isValidUTF8(raw.value) else { throw IdentifierError.invalidUTF8(type: type) }
        let value = apply(policy.normalize, to: raw.value)
        if policy.normalize == .phone && !value.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) {
            throw IdentifierError.phoneWithoutDigits(String(decoding: raw.value, as: UTF8.self))
        }
        if value.isEmpty { throw IdentifierError.emptyValue(type: type) }
        if value.count > maximumIdentifierValueBytes {
            throw IdentifierError.valueTooLong(type: type, bytes: value.count)
        }
        return (Identifier(type: type, value: value), policy)
    }
}

/// Compiled blocked patterns, shared by every schema that names them.
enum BlockedPatterns {
    private final class Box: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
        let regex: NSRegularExpression
        init(_ regex: NSRegularExpression) { self.regex = regex }
    }
    /// Read by every identifier of a blocked type, on every thread that normalizes (loader,
    /// submitters, lookups): shared, so they never wait for each other (see ``ReadMostly``).
    private static let cache = ReadMostly<[String: Box]>([:])

    /// The compiled pattern, or `nil` when it is not a valid regular expression.
    static func compiled(_ pattern: String) -> NSRegularExpression? {
        if let box = cache.read({ $0[pattern] }) { return box.regex }
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        cache.update { $0[pattern] = Box(regex) }
        return regex
    }

    static func matches(_ pattern: String, _ text: String) -> Bool {
        guard let regex = compiled(pattern) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
