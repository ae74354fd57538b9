// The texts of a data file, one row at a time, for classifying: columns and formats as
// `DataRows.read` reads them, but no label column is needed and nothing is kept.

/// Streams `file`'s texts (and second texts with `textPairColumn`) in file order. Errors are
/// those of `DataRows.read`: `.io` for a missing or irregular file, `.format` with file:line.
public final class TextStream {
    private let file: DataFile
    private let reader: RecordReader
    private var columns = 0, textIndex = 0, pairIndex: Int?

    /// `field` names the request key or flag the path came from, in every error.
    public init(_ file: DataFile, field: String = "data_file") throws {
        self.file = file
        let format = file.resolvedFormat
        reader = try RecordReader(path: file.path, format: format, field: field)
        guard format != .jsonl else { return }
        guard let header = try reader.next() else {
            throw SentimentError.format("\(file.path) is empty (expected a header line naming the columns)", field: field)
        }
        let names = header.fields.map { $0.trimmingSpaces }
        let textName = file.textColumnName(in: names)
        for name in [textName] + (file.textPairColumn.map { [$0] } ?? []) where matching(name, in: names) == nil {
            throw reader.error(
                "the header has no '\(name)' column (\(names.count) column\(names.count == 1 ? "" : "s") read as "
                    + "\(format.rawValue.uppercased())); name it with \"text_column\""
                    + (file.textPairColumn == nil ? "" : " or \"text_pair_column\""), line: header.line)
        }
        columns = names.count
        textIndex = matching(textName, in: names) ?? 0
        pairIndex = file.textPairColumn.flatMap { matching($0, in: names) }
    }

    /// The next row's text, second text (nil without `textPairColumn`) and line; nil at the end.
    public func next() throws -> (text: String, pair: String?, line: Int)? {
        guard let r = try reader.next() else { return nil }
        if reader.format == .jsonl {
            let text = try string(file.textKeys, in: r)
            return (text, try file.textPairColumn.map { try string([$0], in: r) }, r.line)
        }
        guard r.fields.count == columns else {
            throw reader.error(
                "expected \(columns) \(reader.format == .tsv ? "tab" : "comma")-separated fields (as the header), found \(r.fields.count)",
                line: r.line)
        }
        return (r.fields[textIndex], pairIndex.map { r.fields[$0] }, r.line)
    }

    private func string(_ keys: [String], in r: DataRecord) throws -> String {
        guard let m = r.object.first(where: { keys.contains($0.key) }) else {
            throw reader.error("the object has no \(keys.map { "\"\($0)\"" }.joined(separator: " or ")) key", line: r.line)
        }
        guard case .string(let s) = m.value else {
            throw reader.error("\"\(m.key)\" is a \(m.value.typeName), not a string", line: r.line)
        }
        return s
    }
}
