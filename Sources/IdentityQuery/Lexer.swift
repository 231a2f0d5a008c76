/// A token of the query language, with where it stands in the statement (for carets).
public struct Token: Equatable, Sendable {
    /// What the token is.
    public enum Kind: Equatable, Sendable {
        /// A keyword or a name (`RESOLVE`, `email`, `events.order`); compared case-insensitively as a keyword.
        case word(String)
        /// An integer.
        case integer(Int64)
        /// A decimal number.
        case number(Double)
        /// A quoted string (`'…'` or `"…"`).
        case string(String)
        /// An identifier literal `type:value` (or `type:'value with spaces'`).
        case identifier(type: String, value: String)
        /// `=`, `!=`, `<`, `<=`, `>`, `>=`, `(`, `)`, `,`, `;`.
        case symbol(String)
        /// The end of the statement.
        case end
    }
    /// What the token is.
    public var kind: Kind
    /// Character offsets in the statement.
    public var range: Range<Int>

    /// The keyword spelled by a word token, uppercased.
    var keyword: String? { if case .word(let w) = kind { return w.uppercased() } else { return nil } }
}

/// A statement that cannot be read or run: the message, and the character span at fault.
public struct QueryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong and what was expected.
    public var message: String
    /// The offending span in the statement, when there is one.
    public var range: Range<Int>?

    /// Creates an error.
    public init(_ message: String, at range: Range<Int>? = nil) {
        self.message = message
        self.range = range
    }

    public var description: String { message }

    /// The statement with a caret line under the offending span, then the message.
    public func rendered(statement: String) -> String {
        guard let range else { return "error: \(message)" }
        let start = max(0, min(range.lowerBound, statement.count))
        let width = max(1, min(range.count, statement.count - start))
        return "  \(statement)\n  \(String(repeating: " ", count: start))\(String(repeating: "^", count: width))\nerror: \(message)"
    }
}

/// Splits a statement into tokens.
public enum Lexer {
    /// The tokens of `text`, ending with `.end`.
    public static func tokens(_ text: String) throws(QueryError) -> [Token] {
        let chars = Array(text)
        var tokens: [Token] = []
        var i = 0
        func isWordStart(_ c: Character) -> Bool { c.isLetter || c == "_" }
        func isWordChar(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" }
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if c == "'" || c == "\"" {
                let (s, next) = try quoted(chars, from: i)
                tokens.append(Token(kind: .string(s), range: start..<next))
                i = next
                continue
            }
            if c.isNumber || (c == "-" && i + 1 < chars.count && chars[i + 1].isNumber) {
                i += 1
                while i < chars.count && (chars[i].isNumber || chars[i] == ".") { i += 1 }
                let text = String(chars[start..<i])
                if let n = Int64(text) { tokens.append(Token(kind: .integer(n), range: start..<i)) }
                else if let d = Double(text) { tokens.append(Token(kind: .number(d), range: start..<i)) }
                else { throw QueryError("'\(text)' is not a number", at: start..<i) }
                continue
            }
            if isWordStart(c) {
                while i < chars.count && isWordChar(chars[i]) { i += 1 }
                let word = String(chars[start..<i])
                if i < chars.count && chars[i] == ":" && !word.contains(".") {
                    // An identifier literal: type:value, the value up to white space, or quoted.
                    i += 1
                    if i < chars.count && (chars[i] == "'" || chars[i] == "\"") {
                        let (value, next) = try quoted(chars, from: i)
                        i = next
                        tokens.append(Token(kind: .identifier(type: word, value: value), range: start..<i))
                    } else {
                        let valueStart = i
                        while i < chars.count && !chars[i].isWhitespace { i += 1 }
                        var valueEnd = i
                        // A trailing ';' ends the statement, not the value.
                        if valueEnd > valueStart && chars[valueEnd - 1] == ";" && (i == chars.count) { valueEnd -= 1; i -= 1 }
                        guard valueEnd > valueStart else { throw QueryError("identifier '\(word):' has no value; write type:value, e.g. email:alice@example.com", at: start..<i) }
                        tokens.append(Token(kind: .identifier(type: word, value: String(chars[valueStart..<valueEnd])), range: start..<valueEnd))
                    }
                    continue
                }
                tokens.append(Token(kind: .word(word), range: start..<i))
                continue
            }
            let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
            if ["!=", "<=", ">=", "<>"].contains(two) {
                tokens.append(Token(kind: .symbol(two == "<>" ? "!=" : two), range: start..<i + 2))
                i += 2
                continue
            }
            if "=<>(),;*".contains(c) {
                tokens.append(Token(kind: .symbol(String(c)), range: start..<i + 1))
                i += 1
                continue
            }
            throw QueryError("unexpected character '\(c)'", at: start..<start + 1)
        }
        tokens.append(Token(kind: .end, range: chars.count..<chars.count))
        return tokens
    }

    private static func quoted(_ chars: [Character], from start: Int) throws(QueryError) -> (String, Int) {
        let quote = chars[start]
        var i = start + 1
        var out = ""
        while i < chars.count {
            if chars[i] == quote {
                // A doubled quote is a literal quote, as in SQL.
                if i + 1 < chars.count && chars[i + 1] == quote { out.append(quote); i += 2; continue }
                return (out, i + 1)
            }
            if chars[i] == "\\" && i + 1 < chars.count { out.append(chars[i + 1]); i += 2; continue }
            out.append(chars[i])
            i += 1
        }
        throw QueryError("unterminated string: add the closing \(quote)", at: start..<chars.count)
    }
}
