// A data file's examples: which file, in which format, which columns hold the text and the
// label; and reading them into a `LabeledDataset` with labels as ids.

/// Where a data set's examples are and which columns hold them (the request keys `data_file`,
/// `train_file` or `eval_file`, with `format`, `text_column` and `label_column`).
public struct DataFile: Sendable, Equatable {
    public var path: String
    /// nil: from the extension (`DataFormat.of(path:)`), TSV for any other extension.
    public var format: DataFormat?
    /// nil: `sentence`, else `text`.
    public var textColumn: String?
    public var labelColumn = "label"

    public init(path: String, format: DataFormat? = nil, textColumn: String? = nil, labelColumn: String = "label") {
        self.path = path
        self.format = format
        self.textColumn = textColumn
        self.labelColumn = labelColumn
    }

    /// The format the file is read as: `format`, else the extension's, else TSV (GLUE's files,
    /// which some name .txt).
    var resolvedFormat: DataFormat { format ?? DataFormat.of(path: path) ?? .tsv }
}

extension LabeledDataset {
    /// Reads `file`'s examples (streaming: the file is never held whole). Labels are integers
    /// (0..<labelNames.count) or names from `labelNames` (the model's `id2label`; an exact match,
    /// else a unique case-insensitive one), not both in one file. Blank lines are skipped.
    /// Every bad row is a `.format` error naming the file, the line and the column: a wrong field
    /// count, an unclosed quote, invalid UTF-8, bad JSON, a missing or non-text field, an unknown
    /// label. `field` is the request key named in errors (`data_file`, `train_file`, `eval_file`).
    public static func read(_ file: DataFile, labelNames: [String], field: String = "data_file") throws -> LabeledDataset {
        let format = file.resolvedFormat
        let reader = try RecordReader(path: file.path, format: format, field: field)
        var labels = LabelReader(names: labelNames, labelColumn: file.labelColumn, reader: reader)
        var texts: [String] = [], ids: [Int] = []
        switch format {
        case .tsv, .csv:
            guard let header = try reader.next() else {
                throw SentimentError.format("\(file.path) is empty (expected a header line naming the columns)", field: field)
            }
            let names = header.fields.map { $0.trimmingSpaces }
            func column(_ name: String) -> Int? { matching(name, in: names) }
            let textName = file.textColumn ?? (column("sentence") != nil || column("text") == nil ? "sentence" : "text")
            guard let textIndex = column(textName), let labelIndex = column(file.labelColumn) else {
                let missing = column(textName) != nil ? file.labelColumn : textName
                throw reader.error(
                    "the header has no '\(missing)' column (columns: \(names.map { "'\($0.prefix(40))'" }.joined(separator: ", ")), "
                        + "read as \(format.rawValue.uppercased())); name the columns with \"text_column\" and \"label_column\""
                        + (file.format == nil ? ", or the format with \"format\"" : ""), line: header.line)
            }
            while let r = try reader.next() {
                guard r.fields.count == names.count else {
                    throw reader.error(
                        "expected \(names.count) \(format == .tsv ? "tab" : "comma")-separated fields (as the header), found \(r.fields.count)",
                        line: r.line)
                }
                texts.append(r.fields[textIndex])
                ids.append(try labels.id(of: .text(r.fields[labelIndex]), line: r.line))
            }
        case .jsonl:
            let textKeys = file.textColumn.map { [$0] } ?? ["sentence", "text"]
            while let r = try reader.next() {
                guard let text = r.object.first(where: { textKeys.contains($0.key) }) else {
                    throw reader.error("the object has no \(textKeys.map { "\"\($0)\"" }.joined(separator: " or ")) key", line: r.line)
                }
                guard case .string(let s) = text.value else {
                    throw reader.error("\"\(text.key)\" is a \(text.value.typeName), not a string", line: r.line)
                }
                guard let label = r.object.first(where: { $0.key == file.labelColumn }) else {
                    throw reader.error("the object has no \"\(file.labelColumn)\" key", line: r.line)
                }
                texts.append(s)
                ids.append(try labels.id(of: .json(label.value), line: r.line))
            }
        }
        return try LabeledDataset(texts: texts, labels: ids, source: file.path)
    }
}

/// Turns label cells into ids, and keeps a file to integers or to names.
private struct LabelReader {
    let names: [String]
    let labelColumn: String
    let reader: RecordReader
    /// The first label's kind and line.
    private var first: (byName: Bool, line: Int)? = nil

    init(names: [String], labelColumn: String, reader: RecordReader) {
        self.names = names
        self.labelColumn = labelColumn
        self.reader = reader
    }

    mutating func id(of cell: DataCell, line: Int) throws -> Int {
        let text: String
        var integer: Int? = nil
        switch cell {
        case .text(let s):
            text = s.trimmingSpaces
            integer = Int(text)
        case .json(.string(let s)):
            text = s
        case .json(.int(let i)):
            text = String(i)
            integer = Int(exactly: i)
        case .json(let v):
            throw reader.error("'\(labelColumn)' is a \(v.typeName), not a label (an integer or a name)", line: line)
        }
        let byName = integer == nil
        if let first, first.byName != byName {
            throw reader.error(
                "label \"\(text.prefix(40))\" is \(byName ? "a name" : "an integer") but the label on line \(first.line) is "
                    + "\(first.byName ? "a name" : "an integer"); use one kind in a file", line: line)
        }
        if first == nil { first = (byName, line) }
        if let integer {
            guard integer >= 0, integer < names.count else {
                throw reader.error("label \(integer) is outside 0..<\(names.count) (the model's labels)", line: line)
            }
            return integer
        }
        if let i = matching(text, in: names) { return i }
        throw reader.error(
            "label \"\(text.prefix(40))\" is not one of the model's labels (\(names.map { "\"\($0)\"" }.joined(separator: ", ")))",
            line: line)
    }
}

/// Where `name` is in `names`: exactly, else the one entry that matches it ignoring case
/// (column names and label names both).
private func matching(_ name: String, in names: [String]) -> Int? {
    if let i = names.firstIndex(of: name) { return i }
    let folded = names.indices.filter { names[$0].lowercased() == name.lowercased() }
    return folded.count == 1 ? folded[0] : nil
}

extension String {
    /// Without leading and trailing spaces.
    fileprivate var trimmingSpaces: String {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
