// A data file's label column as written, all integers or all names, and what it says about the
// label set: the ids of its labels for given names, or the names a training run infers.

/// The label cells of a data file, in row order, with each row's line for messages.
public struct LabelColumn: Sendable {
    /// The labels when they are integers (`byName` false).
    public private(set) var integers: [Int] = []
    /// The labels when they are names (`byName` true; trimmed of spaces in TSV and CSV).
    public private(set) var names: [String] = []
    /// nil until the first label is read.
    public private(set) var byName: Bool?
    private var lines: [Int32] = []
    let path: String, field: String, column: String

    public var count: Int { lines.count }

    init(path: String, field: String, column: String) {
        self.path = path
        self.field = field
        self.column = column
    }

    private func error(_ message: String, line: Int) -> SentimentError {
        SentimentError.format("\(path):\(line): \(message)", field: field)
    }

    private func line(_ row: Int) -> Int { Int(lines[row]) }

    mutating func append(_ cell: DataCell, line: Int) throws {
        var integer: Int? = nil, name = ""
        switch cell {
        case .text(let s):
            name = s.trimmingSpaces
            integer = Int(name)
            if integer == nil, Double(name) != nil {
                throw error("label \(name.prefix(40)) is a number but not an integer (labels are integer ids or names)", line: line)
            }
        case .json(.string(let s)): name = s
        case .json(.int(let i)): integer = Int(exactly: i)
        case .json(let v):
            throw error("'\(column)' is a \(v.typeName), not a label (an integer or a name)", line: line)
        }
        let isName = integer == nil
        if let byName, byName != isName {
            let other = lines.first.map(Int.init) ?? line
            throw error(
                "label \(isName ? "\"\(name.prefix(40))\"" : String(integer ?? 0)) is \(isName ? "a name" : "an integer") but "
                    + "the label on line \(other) is \(byName ? "a name" : "an integer"); use one kind in a file", line: line)
        }
        if let integer {
            guard integer >= 0 else { throw error("label \(integer) is negative (label ids are 0, 1, ...)", line: line) }
            integers.append(integer)
        } else {
            guard !name.isEmpty else { throw error("the '\(column)' field is empty", line: line) }
            names.append(name)
        }
        byName = isName
        lines.append(Int32(clamping: line))
    }

    func prefix(_ n: Int) -> LabelColumn {
        var c = self
        c.integers = Array(integers.prefix(n))
        c.names = Array(names.prefix(n))
        c.lines = Array(lines.prefix(n))
        return c
    }

    /// Each row's label id: an integer in 0..<labelNames.count, or the index of its name in
    /// `labelNames` (exact, else the one case-insensitive match). Else `.format` naming the line.
    public func ids(names labelNames: [String]) throws -> [Int] {
        if byName != true {
            for (row, i) in integers.enumerated() where i >= labelNames.count {
                throw error("label \(i) is outside 0..<\(labelNames.count) (the model's labels)", line: line(row))
            }
            return integers
        }
        var known: [String: Int] = [:]
        return try names.enumerated().map { row, name in
            if let id = known[name] { return id }
            guard let id = matching(name, in: labelNames) else {
                throw error(
                    "label \"\(name.prefix(40))\" is not one of the model's labels (\(labelNames.map { "\"\($0)\"" }.joined(separator: ", ")))",
                    line: line(row))
            }
            known[name] = id
            return id
        }
    }

    /// The distinct names, sorted by Unicode scalars (Python's `sorted`, as Hugging Face's
    /// run_glue orders a data set's labels); empty for integer labels.
    public var distinctNames: [String] {
        Set(names).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    /// The largest integer label; nil for names or no rows.
    public var maxInteger: Int? { integers.max() }
}
