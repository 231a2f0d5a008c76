/// The longest value an identifier may have, in bytes of UTF-8, after normalization.
public let maximumIdentifierValueBytes = 1024

/// Rules for identifier type names.
public enum IdentifierType {
    /// Whether `name` matches `[a-z][a-z0-9_]*` (after case folding).
    public static func isValidName(_ name: some Collection<UInt8>) -> Bool {
        guard let first = name.first, first >= 0x61 && first <= 0x7A else { return false }
        for byte in name.dropFirst() {
            let ok = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F
            if !ok { return false }
        }
        return true
    }

    /// ASCII-lowercases a type name as SPEC.md's case folding requires.
    @inlinable
    public static func fold(_ name: some Collection<UInt8>) -> [UInt8] {
        name.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }
    }
}

/// An identifier as it arrived: a type name and a value, neither normalized yet.
public struct RawIdentifier: Hashable, Sendable {
    /// The type name as given (case folding happens on validation).
    public var type: [UInt8]
    /// The value as given (UTF-8).
    public var value: [UInt8]

    /// Creates a raw identifier from bytes.
    public init(type: [UInt8], value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// Creates a raw identifier from strings.
    public init(type: String, value: String) {
        self.type = Array(type.utf8)
        self.value = Array(value.utf8)
    }

    /// Parses the text form `type:value` (the value is everything after the first colon).
    public init(text: some Collection<UInt8>) throws(IdentifierError) {
        guard let colon = text.firstIndex(of: 0x3A) else {
            throw IdentifierError.missingColon(String(decoding: text, as: UTF8.self))
        }
        self.type = Array(text[text.startIndex..<colon])
        self.value = Array(text[text.index(after: colon)...])
    }

    /// Parses the text form `type:value`.
    public init(text: String) throws(IdentifierError) {
        try self.init(text: Array(text.utf8))
    }
}

/// A validated, normalized identifier: what the graph stores.
public struct Identifier: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The case-folded type name.
    public let type: String
    /// The normalized value (UTF-8 bytes).
    public let value: [UInt8]

    /// Creates an identifier from parts that are already normalized.
    public init(type: String, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// The value as text.
    public var valueText: String { String(decoding: value, as: UTF8.self) }

    /// The text form `type:value`.
    public var description: String { type + ":" + valueText }

    public static func < (lhs: Identifier, rhs: Identifier) -> Bool {
        lhs.type != rhs.type ? lhs.type < rhs.type : lhs.value.lexicographicallyPrecedes(rhs.value)
    }
}

/// Why an identifier was refused.
public enum IdentifierError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text form had no `:` between type and value.
    case missingColon(String)
    /// The type name does not match `[a-z][a-z0-9_]*`.
    case badTypeName(String)
    /// Nothing is left of the value after normalization.
    case emptyValue(type: String)
    /// A `phone` value without a digit.
    case phoneWithoutDigits(String)
    /// The normalized value is over 1,024 bytes.
    case valueTooLong(type: String, bytes: Int)
    /// The value is not valid UTF-8.
    case invalidUTF8(type: String)

    public var description: String {
        switch self {
        case .missingColon(let text):
            return "identifier '\(text.prefix(80))' has no ':'; expected the form type:value, e.g. email:alice@example.com"
        case .badTypeName(let name):
            return "identifier type '\(name.prefix(80))' is not valid: it must match [a-z][a-z0-9_]* (e.g. email, user_id)"
        case .emptyValue(let type):
            return "\(type) value is empty after normalization"
        case .phoneWithoutDigits(let value):
            return "phone value '\(value.prefix(80))' has no digit"
        case .valueTooLong(let type, let bytes):
            return "\(type) value is \(bytes) bytes after normalization; the limit is \(maximumIdentifierValueBytes)"
        case .invalidUTF8(let type):
            return "\(type) value is not valid UTF-8"
        }
    }
}
