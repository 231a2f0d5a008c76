import Foundation
import IdentityGraph

/// Parses one statement (grammar: docs/query-language.md).
public struct Parser {
    private let tokens: [Token]
    private var position = 0

    /// The statement keywords, for completion and help.
    public static let statementKeywords = [
        "RESOLVE", "ENTITY", "IDENTIFIERS", "EVENTS", "EVENT", "NEIGHBORS", "PATH", "HISTORY", "LINEAGE", "RELATED",
        "FIND", "COUNT", "LINK", "UNLINK", "FORGET", "RETRACT", "PREVIEW", "STATS", "SCHEMA", "EXPLAIN",
        "CREATE", "DROP", "SEGMENTS", "HOUSEHOLD", "COMPUTE",
    ]
    /// Every keyword of the language.
    public static let keywords = statementKeywords + [
        "OF", "TYPE", "SINCE", "UNTIL", "LIMIT", "DEPTH", "TO", "ENTITIES", "WHERE", "ORDER", "BY",
        "ASC", "DESC", "AND", "OR", "NOT", "HAS", "SEGMENT", "AS", "IN", "RFM",
    ]
    /// Entity fields usable in `WHERE` and `ORDER BY` (plus `events.<type>` and identifier types).
    public static let fieldNames = [
        "id", "size", "events", "revenue", "first_seen", "last_seen", "orders", "aov", "last_order", "lifecycle",
        "rfm", "rfm_r", "rfm_f", "rfm_m", "preferred_channel", "most_used_device", "top_product", "product",
        "campaign", "list",
    ]

    /// Parses `text` into a statement.
    public static func parse(_ text: String) throws(QueryError) -> Statement {
        // PREVIEW takes a raw archive line (JSON), which is not made of tokens.
        let trimmed = text.drop(while: \.isWhitespace)
        if trimmed.prefix(7).uppercased() == "PREVIEW", trimmed.dropFirst(7).first?.isWhitespace ?? true {
            let record = trimmed.dropFirst(7).trimmingCharacters(in: .whitespaces)
            guard !record.isEmpty else {
                throw QueryError("expected an archive line after PREVIEW, e.g. PREVIEW {\"ids\":{\"email\":\"a@x.com\",\"cookie\":\"c-1\"}}", at: text.count..<text.count)
            }
            return .preview(record)
        }
        var parser = Parser(tokens: try Lexer.tokens(text), text: Array(text))
        let statement = try parser.statement()
        _ = parser.accept(symbol: ";")
        guard case .end = parser.current.kind else {
            throw QueryError("unexpected \(parser.describe(parser.current)) after the end of the statement", at: parser.current.range)
        }
        return statement
    }

    private let text: [Character]

    private init(tokens: [Token], text: [Character]) {
        self.tokens = tokens
        self.text = text
    }

    private var current: Token { tokens[position] }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .word(let w): return "'\(w)'"
        case .integer(let n): return "\(n)"
        case .number(let d): return "\(d)"
        case .string(let s): return "'\(s)'"
        case .identifier(let t, let v): return "\(t):\(v)"
        case .symbol(let s): return "'\(s)'"
        case .end: return "the end of the statement"
        }
    }

    private func fail(_ expected: String) -> QueryError {
        QueryError("expected \(expected), found \(describe(current))", at: current.range)
    }

    private mutating func accept(_ keyword: String) -> Bool {
        if current.keyword == keyword { _ = advance(); return true }
        return false
    }

    private mutating func accept(symbol: String) -> Bool {
        if case .symbol(let s) = current.kind, s == symbol { _ = advance(); return true }
        return false
    }

    private mutating func expect(_ keyword: String) throws(QueryError) {
        if !accept(keyword) { throw fail(keyword) }
    }

    private mutating func identifier() throws(QueryError) -> RawIdentifier {
        switch current.kind {
        case .identifier(let type, let value):
            _ = advance()
            return RawIdentifier(type: type, value: value)
        case .string(let text):
            // 'email:has spaces' also works.
            let token = advance()
            do { return try RawIdentifier(text: text) } catch { throw QueryError(error.description, at: token.range) }
        default:
            throw fail("an identifier type:value (e.g. email:alice@example.com)")
        }
    }

    private mutating func integer(_ what: String) throws(QueryError) -> Int64 {
        guard case .integer(let n) = current.kind else { throw fail(what) }
        _ = advance()
        return n
    }

    private mutating func target() throws(QueryError) -> Target {
        if case .integer(let n) = current.kind {
            _ = advance()
            guard n > 0 else { throw QueryError("entity ids are positive", at: tokens[position - 1].range) }
            return .entity(EntityID(n))
        }
        if case .identifier = current.kind { return .identifier(try identifier()) }
        if case .string = current.kind { return .identifier(try identifier()) }
        throw fail("an entity id or an identifier type:value")
    }

    private mutating func name(_ what: String) throws(QueryError) -> String {
        switch current.kind {
        case .word(let w), .string(let w):
            _ = advance()
            return w
        default:
            throw fail(what)
        }
    }

    private mutating func time() throws(QueryError) -> Int64 {
        let token = current
        switch token.kind {
        case .integer(let n):
            _ = advance()
            return n
        case .string(let s):
            _ = advance()
            if let ms = Timestamp.parseRFC3339(Array(s.utf8)) { return ms }
            if let ms = Timestamp.parseRFC3339(Array((s + "T00:00:00Z").utf8)) { return ms }
            throw QueryError("'\(s)' is not a time: write '2024-05-01', '2024-05-01T12:00:00Z' or epoch milliseconds", at: token.range)
        default:
            throw fail("a time ('2024-05-01', '2024-05-01T12:00:00Z' or epoch milliseconds)")
        }
    }

    /// An event id: a quoted string, a bare word or a number.
    private mutating func eventID(after keyword: String) throws(QueryError) -> String {
        if case .integer(let n) = current.kind {
            _ = advance()
            return String(n)
        }
        return try name("an event id after \(keyword) (e.g. \(keyword) 'e-1')")
    }

    private mutating func limit() throws(QueryError) -> Int? {
        guard accept("LIMIT") else { return nil }
        let token = current
        let n = try integer("a number after LIMIT")
        guard n >= 0 else { throw QueryError("LIMIT must not be negative", at: token.range) }
        return Int(n)
    }

    private mutating func statement() throws(QueryError) -> Statement {
        let token = current
        guard let keyword = token.keyword else { throw fail("a statement (\(Self.statementKeywords.joined(separator: ", ")))") }
        _ = advance()
        switch keyword {
        case "RESOLVE":
            return .resolve(try identifier())
        case "ENTITY":
            if accept("OF") { return .entity(.identifier(try identifier())) }
            return .entity(try target())
        case "IDENTIFIERS":
            try expect("OF")
            let t = try target()
            let type = accept("TYPE") ? try name("an identifier type after TYPE") : nil
            return .identifiers(t, type: type?.lowercased())
        case "EVENTS":
            try expect("OF")
            let t = try target()
            var type: String?, since: Int64?, until: Int64?
            while true {
                if accept("TYPE") { type = try name("an event type after TYPE"); continue }
                if accept("SINCE") { since = try time(); continue }
                if accept("UNTIL") { until = try time(); continue }
                break
            }
            return .events(t, type: type, since: since, until: until, limit: try limit())
        case "EVENT":
            return .event(try eventID(after: "EVENT"))
        case "NEIGHBORS", "NEIGHBOURS":
            let id = try identifier()
            var depth = 1
            if accept("DEPTH") {
                let d = current
                depth = Int(try integer("a depth after DEPTH"))
                guard (1...6).contains(depth) else { throw QueryError("DEPTH must be between 1 and 6", at: d.range) }
            }
            return .neighbors(id, depth: depth)
        case "PATH":
            let a = try identifier()
            try expect("TO")
            return .path(a, try identifier())
        case "HISTORY":
            return .history(try target())
        case "LINEAGE":
            return .lineage(try target())
        case "RELATED":
            return .related(try target())
        case "FIND":
            try expect("ENTITIES")
            let condition = accept("WHERE") ? try orCondition() : nil
            var order: Field?
            var descending = false
            if accept("ORDER") {
                try expect("BY")
                let orderToken = current
                order = try field()
                if order?.isSet == true {
                    throw QueryError("cannot ORDER BY \(order!), a set of values; order by top_product, or filter with \(order!) = 'value'", at: orderToken.range)
                }
                if accept("DESC") { descending = true } else { _ = accept("ASC") }
            }
            return .find(condition, orderBy: order, descending: descending, limit: try limit())
        case "COUNT":
            try expect("ENTITIES")
            return .count(accept("WHERE") ? try orCondition() : nil)
        case "LINK":
            let a = try identifier()
            _ = accept("TO")
            return .link(a, try identifier())
        case "UNLINK":
            let a = try identifier()
            _ = accept("FROM")
            return .unlink(a, try identifier())
        case "FORGET":
            return .forget(try identifier())
        case "RETRACT":
            return .retract(try eventID(after: "RETRACT"))
        case "STATS":
            return .stats
        case "SCHEMA":
            return .schema
        case "CREATE":
            try expect("SEGMENT")
            let name = try segmentName()
            try expect("AS")
            try expect("FIND")
            try expect("ENTITIES")
            try expect("WHERE")
            let start = current.range.lowerBound
            let condition = try orCondition()
            let end = tokens[position - 1].range.upperBound
            return .createSegment(name, condition, definition: String(text[start..<end]))
        case "DROP":
            try expect("SEGMENT")
            return .dropSegment(try segmentName())
        case "SEGMENTS":
            return .segments
        case "HOUSEHOLD":
            if accept("OF") { return .household(try target()) }
            return .household(try target())
        case "COMPUTE":
            try expect("RFM")
            return .computeRFM
        case "EXPLAIN":
            let inner = try statement()
            if case .explain = inner { throw QueryError("EXPLAIN EXPLAIN is not a statement", at: token.range) }
            return .explain(inner)
        default:
            throw QueryError("unknown statement '\(token.range.isEmpty ? "" : keyword)'; expected one of \(Self.statementKeywords.joined(separator: ", "))", at: token.range)
        }
    }

    /// A segment name: letters, digits, `_` and `-`, up to 64 characters.
    private mutating func segmentName() throws(QueryError) -> String {
        let token = current
        let name = try name("a segment name")
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw QueryError("a segment name is 1 to 64 letters, digits, '_' or '-'", at: token.range)
        }
        return name
    }

    private mutating func field() throws(QueryError) -> Field {
        let token = current
        let word = try name("a field (\(Self.fieldNames.joined(separator: ", ")), events.<type>, profile.<attribute> or an identifier type)")
        let lower = word.lowercased()
        switch lower {
        case "id": return .id
        case "size": return .size
        case "events": return .events
        case "revenue": return .revenue
        case "first_seen": return .firstSeen
        case "last_seen": return .lastSeen
        case "orders": return .orders
        case "aov": return .averageOrderValue
        case "last_order": return .lastOrder
        case "lifecycle": return .lifecycle
        case "rfm": return .rfm
        case "rfm_r": return .rfmRecency
        case "rfm_f": return .rfmFrequency
        case "rfm_m": return .rfmMonetary
        case "preferred_channel": return .preferredChannel
        case "most_used_device": return .mostUsedDevice
        case "top_product": return .topProduct
        case "product": return .product
        case "campaign": return .campaign
        case "list": return .list
        default:
            if lower.hasPrefix("events.") && lower.count > 7 { return .eventsOfType(String(word.dropFirst(7))) }
            if lower.hasPrefix("profile.") && lower.count > 8 { return .attribute(String(lower.dropFirst(8))) }
            guard IdentifierType.isValidName(Array(lower.utf8)) else {
                throw QueryError("'\(word)' is not a field: use \(Self.fieldNames.joined(separator: ", ")), events.<type> or an identifier type", at: token.range)
            }
            return .identifiersOfType(lower)
        }
    }

    private mutating func orCondition() throws(QueryError) -> Condition {
        var left = try andCondition()
        while accept("OR") { left = .or(left, try andCondition()) }
        return left
    }

    private mutating func andCondition() throws(QueryError) -> Condition {
        var left = try unaryCondition()
        while accept("AND") { left = .and(left, try unaryCondition()) }
        return left
    }

    private mutating func unaryCondition() throws(QueryError) -> Condition {
        if accept("NOT") { return .not(try unaryCondition()) }
        if accept(symbol: "(") {
            let inner = try orCondition()
            if !accept(symbol: ")") { throw fail("')'") }
            return inner
        }
        if accept("HAS") { return .has(try name("an identifier type after HAS").lowercased()) }
        if accept("IN") {
            try expect("SEGMENT")
            return .inSegment(try segmentName())
        }
        var f = try field()
        guard case .symbol(let s) = current.kind, let op = Comparison(rawValue: s) else { throw fail("a comparison (=, !=, <, <=, >, >=)") }
        _ = advance()
        let valueToken = current
        switch valueToken.kind {
        case .integer, .number:
            guard !f.isText else { throw QueryError("\(f) compares with text (\(f == .lifecycle ? "'hero'" : "'FR'"))", at: valueToken.range) }
            _ = advance()
            if case .integer(let n) = valueToken.kind { return .compare(f, op, Double(n)) }
            if case .number(let d) = valueToken.kind { return .compare(f, op, d) }
            throw fail("a number")
        case .string(let text):
            if f.isTime { return .compare(f, op, Double(try time())) }
            if case .identifiersOfType(let type) = f { f = .attribute(type) }  // email = 'a@x.com': the golden value
            guard f.isText else { throw QueryError("\(f) compares with a number", at: valueToken.range) }
            if f.isSet && op != .equal && op != .notEqual {
                throw QueryError("\(f) is a set: use \(f) = 'value' (it contains the value) or \(f) != 'value'", at: valueToken.range)
            }
            if f == .lifecycle, LifecycleStage(rawValue: text.lowercased()) == nil {
                throw QueryError("'\(text)' is not a lifecycle stage: use \(LifecycleStage.allCases.map(\.rawValue).joined(separator: ", "))", at: valueToken.range)
            }
            _ = advance()
            return .compareText(f, op, f == .lifecycle ? text.lowercased() : text)
        default:
            throw fail(f.isTime ? "a time ('2024-05-01')" : f.isText ? "text in quotes" : "a number")
        }
    }
}
