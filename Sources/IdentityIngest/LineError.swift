import IdentityGraph

/// Why one line of an archive was refused. The loader adds the file and line number.
public enum LineError: Error, Equatable, CustomStringConvertible {
    /// Not valid JSON: what was expected at which column (1-based byte offset).
    case malformedJSON(column: Int, expected: String)
    /// Valid JSON, but not an object.
    case notAnObject
    /// Neither an `ids` object nor an `op` field.
    case notARecord
    /// A required field is missing.
    case missingField(String)
    /// A field has the wrong JSON type.
    case wrongType(field: String, expected: String)
    /// `ts` is neither RFC 3339 nor epoch milliseconds.
    case badTimestamp(String)
    /// `op` names no known control record.
    case unknownOp(String)
    /// An identifier is invalid (bad type name, empty after normalization…).
    case badIdentifier(field: String, IdentifierError)
    /// `ids` names no identifier.
    case noIdentifiers
    /// A Segment message (a line without `ids` or `op`, read as Segment) carries none of the
    /// fields identifiers are taken from.
    case noSegmentIdentifiers
    /// `props.amount` is not a finite number in range.
    case badAmount(String)

    public var description: String {
        switch self {
        case .malformedJSON(let column, let expected):
            return "malformed JSON at column \(column): expected \(expected)"
        case .notAnObject:
            return "expected a JSON object per line (an event or a control record)"
        case .notARecord:
            return "expected an \"ids\" object (an event) or an \"op\" field (a control record: link, unlink, forget, retract)"
        case .missingField(let field):
            return "missing field \"\(field)\""
        case .wrongType(let field, let expected):
            return "field \"\(field)\": expected \(expected)"
        case .badTimestamp(let text):
            return "field \"ts\": '\(text.prefix(60))' is neither an RFC 3339 time (2024-05-01T12:00:00Z) nor epoch milliseconds"
        case .unknownOp(let op):
            return "field \"op\": unknown operation '\(op.prefix(60))'; expected link, unlink, forget or retract"
        case .badIdentifier(let field, let reason):
            return "field \"\(field)\": \(reason)"
        case .noIdentifiers:
            return "field \"ids\": names no identifier; an event needs at least one, e.g. {\"email\": \"a@x.com\"}"
        case .noSegmentIdentifiers:
            return "read as a Segment message (it has no \"ids\" object; a native event needs one) but names no identifier: "
                + "expected userId, anonymousId, previousId, traits.email or .phone, context.traits.email or .phone, context.device.id or context.ip"
        case .badAmount(let text):
            return "field \"props.amount\": '\(text.prefix(40))' is not a finite amount"
        }
    }
}
