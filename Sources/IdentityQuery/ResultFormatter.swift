import Foundation
import IdentityGraph

/// How results are printed.
public enum OutputMode: String, CaseIterable, Sendable {
    /// Aligned columns with a header rule (the default).
    case table
    /// RFC 4180 CSV with a header row.
    case csv
    /// A JSON array of objects.
    case json
    /// One `column = value` line per cell, a blank line between rows.
    case line
    /// A Markdown table.
    case markdown
}

/// Renders a ``QueryResult``. Output is never cut without saying so: when `maxRows` hides rows,
/// table, line and markdown output end with "N rows (M shown)".
public struct ResultFormatter: Sendable {
    /// The mode.
    public var mode: OutputMode
    /// Most rows printed (`nil`: all).
    public var maxRows: Int?

    /// A formatter.
    public init(mode: OutputMode = .table, maxRows: Int? = nil) {
        self.mode = mode
        self.maxRows = maxRows
    }

    /// The rendered result (without the notes; machine-readable modes keep notes out of the data).
    public func render(_ result: QueryResult) -> String {
        guard !result.columns.isEmpty else { return "" }
        let shown = maxRows.map { Array(result.rows.prefix($0)) } ?? result.rows
        let cut = shown.count < result.rows.count
        var out: String
        switch mode {
        case .table: out = table(result.columns, shown)
        case .csv: out = csv(result.columns, shown)
        case .json: out = json(result.columns, shown)
        case .line: out = lines(result.columns, shown)
        case .markdown: out = markdown(result.columns, shown)
        }
        switch mode {
        case .table, .line, .markdown:
            let n = result.rows.count
            out += cut ? "\(n) rows (\(shown.count) shown; .maxrows changes it)\n" : "\(n) row\(n == 1 ? "" : "s")\n"
        case .csv, .json:
            break
        }
        return out
    }

    private func isNumeric(_ v: Value) -> Bool {
        switch v { case .int, .double: return true; default: return false }
    }

    private func table(_ columns: [String], _ rows: [[Value]]) -> String {
        var widths = columns.map(\.count)
        let cells = rows.map { $0.map { $0.description.replacingOccurrences(of: "\n", with: "\\n") } }
        for row in cells { for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func pad(_ s: String, _ w: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return right ? fill + s : s + fill
        }
        var out = columns.enumerated().map { pad($1, widths[$0], right: false) }.joined(separator: "  ")
            .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for (r, row) in cells.enumerated() {
            out += row.enumerated().map { pad($1, widths[$0], right: isNumeric(rows[r][$0])) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }
        return out
    }

    private func csv(_ columns: [String], _ rows: [[Value]]) -> String {
        var out = columns.map(TextEncoding.csvField).joined(separator: ",") + "\n"
        for row in rows { out += row.map { TextEncoding.csvField($0.description) }.joined(separator: ",") + "\n" }
        return out
    }

    private func jsonValue(_ v: Value) -> String {
        switch v {
        case .null: return "null"
        case .int(let n): return String(n)
        case .double(let d): return d.isFinite ? String(d) : "null"
        case .text(let s): return TextEncoding.jsonString(s)
        }
    }

    private func json(_ columns: [String], _ rows: [[Value]]) -> String {
        if rows.isEmpty { return "[]\n" }
        return "[\n" + rows.map { row in
            "  {" + zip(columns, row).map { TextEncoding.jsonString($0) + ": " + jsonValue($1) }.joined(separator: ", ") + "}"
        }.joined(separator: ",\n") + "\n]\n"
    }

    private func lines(_ columns: [String], _ rows: [[Value]]) -> String {
        let width = columns.map(\.count).max() ?? 0
        return rows.map { row in
            zip(columns, row).map { String(repeating: " ", count: width - $0.count) + $0 + " = " + $1.description }.joined(separator: "\n") + "\n"
        }.joined(separator: "\n")
    }

    private func markdown(_ columns: [String], _ rows: [[Value]]) -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var out = "| " + columns.map(cell).joined(separator: " | ") + " |\n"
        out += "|" + columns.map { _ in " --- " }.joined(separator: "|") + "|\n"
        for row in rows { out += "| " + row.map { cell($0.description) }.joined(separator: " | ") + " |\n" }
        return out
    }
}
