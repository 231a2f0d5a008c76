/// Small text encodings shared by every layer that prints: exports, query results, generated archives.
public enum TextEncoding {
    /// A JSON string literal: quotes, backslashes and control characters escaped.
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
    public static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        var out = "\""
        for c in s { out += c == "\"" ? "\"\"" : String(c) }
        return out + "\""
    }
}

extension HistoryRecord.Kind {
    /// The name used in the change feed and in `HISTORY`.
    public var name: String {
        switch self {
        case .merge: return "merge"
        case .split: return "split"
        case .forget: return "forget"
        case .erased: return "erased"
        case .demoted: return "demoted"
        case .promoted: return "promoted"
        case .refused: return "refused"
        }
    }
}

extension HistoryRecord.Cause {
    /// The name used in the change feed and in `HISTORY`.
    public var name: String {
        switch self {
        case .event: return "event"
        case .link: return "link"
        case .unlink: return "unlink"
        case .forget: return "forget"
        case .retract: return "retract"
        case .policy: return "policy"
        }
    }
}
