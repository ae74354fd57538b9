// A data file's examples: which file, in which format, which columns hold the texts and the
// label; reading its rows (`DataRows`), then the labels as ids (`LabeledDataset`).

/// Where a data set's examples are and which columns hold them (the request keys `data_file`,
/// `train_file` or `eval_file`, with `format`, `text_column`, `text_pair_column` and `label_column`).
public struct DataFile: Sendable, Equatable {
    public var path: String
    /// nil: from the extension (`DataFormat.of(path:)`), TSV for any other extension.
    public var format: DataFormat?
    /// nil: `sentence`, else `text`.
    public var textColumn: String?
    /// The second text of a sentence pair; nil: single texts.
    public var textPairColumn: String?
    public var labelColumn = "label"

    public init(path: String, format: DataFormat? = nil, textColumn: String? = nil, textPairColumn: String? = nil,
                labelColumn: String = "label") {
        self.path = path
        self.format = format
        self.textColumn = textColumn
        self.textPairColumn = textPairColumn
        self.labelColumn = labelColumn
    }

    /// The format the file is read as: `format`, else the extension's, else TSV (GLUE's files,
    /// which some name .txt).
    var resolvedFormat: DataFormat { format ?? DataFormat.of(path: path) ?? .tsv }

    /// The text column of a TSV or CSV header: `textColumn`, else `sentence`, else `text`.
    func textColumnName(in names: [String]) -> String {
        textColumn ?? (matching("sentence", in: names) != nil || matching("text", in: names) == nil ? "sentence" : "text")
    }

    /// The keys a JSON Lines object's text may have.
    var textKeys: [String] { textColumn.map { [$0] } ?? ["sentence", "text"] }
}

/// A data file's rows as written: the texts (and second texts of pairs) and the label column,
/// whose cells become ids once the label names are known (`dataset(labelNames:)`).
public struct DataRows: Sendable {
    public var texts: [String]
    /// The second texts, when the file was read with `textPairColumn`.
    public var pairs: [String]?
    public var labels: LabelColumn
    public var count: Int { texts.count }

    /// Reads `file`'s rows (streaming: the file is never held whole). Blank lines are skipped.
    /// Every bad row is a `.format` error naming the file, the line and the column: a wrong field
    /// count, an unclosed quote, invalid UTF-8, bad JSON, a missing or non-text field, a label that
    /// is neither an integer nor a name, labels that mix the two. `field` is the request key named
    /// in errors (`data_file`, `train_file`, `eval_file`).
    public static func read(_ file: DataFile, field: String = "data_file") throws -> DataRows {
        let format = file.resolvedFormat
        let reader = try RecordReader(path: file.path, format: format, field: field)
        var labels = LabelColumn(path: file.path, field: field, column: file.labelColumn)
        var texts: [String] = [], pairs: [String]? = file.textPairColumn == nil ? nil : []
        switch format {
        case .tsv, .csv:
            guard let header = try reader.next() else {
                throw SentimentError.format("\(file.path) is empty (expected a header line naming the columns)", field: field)
            }
            let names = header.fields.map { $0.trimmingSpaces }
            func column(_ name: String) -> Int? { matching(name, in: names) }
            let textName = file.textColumnName(in: names)
            let wanted = [textName, file.labelColumn] + (file.textPairColumn.map { [$0] } ?? [])
            if let missing = wanted.first(where: { column($0) == nil }) {
                throw reader.error(
                    "the header has no '\(missing)' column (\(names.count) column\(names.count == 1 ? "" : "s") read as "
                        + "\(format.rawValue.uppercased())); name the columns with \"text_column\""
                        + (file.textPairColumn == nil ? "" : ", \"text_pair_column\"") + " and \"label_column\""
                        + (file.format == nil ? ", or the format with \"format\"" : ""),
                    line: header.line)
            }
            let textIndex = column(textName) ?? 0, labelIndex = column(file.labelColumn) ?? 0
            let pairIndex = file.textPairColumn.flatMap(column)
            while let r = try reader.next() {
                guard r.fields.count == names.count else {
                    throw reader.error(
                        "expected \(names.count) \(format == .tsv ? "tab" : "comma")-separated fields (as the header), found \(r.fields.count)",
                        line: r.line)
                }
                texts.append(r.fields[textIndex])
                if let pairIndex { pairs?.append(r.fields[pairIndex]) }
                try labels.append(.text(r.fields[labelIndex]), line: r.line)
            }
        case .jsonl:
            func string(_ keys: [String], in r: DataRecord) throws -> String {
                guard let m = r.object.first(where: { keys.contains($0.key) }) else {
                    throw reader.error("the object has no \(keys.map { "\"\($0)\"" }.joined(separator: " or ")) key", line: r.line)
                }
                guard case .string(let s) = m.value else {
                    throw reader.error("\"\(m.key)\" is a \(m.value.typeName), not a string", line: r.line)
                }
                return s
            }
            let textKeys = file.textKeys
            while let r = try reader.next() {
                texts.append(try string(textKeys, in: r))
                if let pairKey = file.textPairColumn { pairs?.append(try string([pairKey], in: r)) }
                guard let label = r.object.first(where: { $0.key == file.labelColumn }) else {
                    throw reader.error("the object has no \"\(file.labelColumn)\" key", line: r.line)
                }
                try labels.append(.json(label.value), line: r.line)
            }
        }
        return DataRows(texts: texts, pairs: pairs, labels: labels)
    }

    /// The first `n` rows.
    public func prefix(_ n: Int) -> DataRows {
        DataRows(texts: Array(texts.prefix(n)), pairs: pairs.map { Array($0.prefix(n)) }, labels: labels.prefix(n))
    }

    /// The examples with labels as ids: integers in 0..<labelNames.count, or names of
    /// `labelNames` (an exact match, else a unique case-insensitive one). An unknown label is a
    /// `.format` error naming its file and line.
    public func dataset(labelNames: [String]) throws -> LabeledDataset {
        try LabeledDataset(texts: texts, pairs: pairs, labels: labels.ids(names: labelNames), source: labels.path)
    }
}

extension LabeledDataset {
    /// Reads `file` (`DataRows.read`) with labels as ids of `labelNames` (the model's `id2label`).
    public static func read(_ file: DataFile, labelNames: [String], field: String = "data_file") throws -> LabeledDataset {
        try DataRows.read(file, field: field).dataset(labelNames: labelNames)
    }
}

/// Where `name` is in `names`: exactly, else the one entry that matches it ignoring case
/// (column names and label names both).
func matching(_ name: String, in names: [String]) -> Int? {
    if let i = names.firstIndex(of: name) { return i }
    let folded = names.indices.filter { names[$0].lowercased() == name.lowercased() }
    return folded.count == 1 ? folded[0] : nil
}

extension String {
    /// Without leading and trailing spaces.
    var trimmingSpaces: String {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
