/// Labelled sentences: GLUE-style TSV files (SST-2) or in-memory lists.
public struct LabeledDataset: Sendable {
    public var texts: [String]
    public var labels: [Int]
    /// The file the examples came from, for messages; nil for in-memory data.
    public var source: String?

    public var count: Int { texts.count }

    public init(texts: [String], labels: [Int], source: String? = nil) throws {
        guard texts.count == labels.count else {
            throw SentimentError.invalidArgument(
                "texts has \(texts.count) entries but labels has \(labels.count)", field: "labels")
        }
        self.texts = texts
        self.labels = labels
        self.source = source
    }

    /// Reads a TSV with a header line naming a `sentence` column and a `label` column
    /// (GLUE SST-2: `sentence<TAB>label`). Labels must be integers in `0..<numLabels`.
    /// Errors are `.format` naming the file and line; a missing file is `.io`.
    public static func readTSV(path: String, numLabels: Int, field: String = "data_file") throws -> LabeledDataset {
        let bytes = try FileIO.read(path, field: field)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw SentimentError.format("\(path) is not valid UTF-8", field: field)
        }
        var texts: [String] = []
        var labels: [Int] = []
        var sentenceColumn = -1, labelColumn = -1, columns = 0
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if lineNumber == 1 {
                let names = line.split(separator: "\t", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: " ").lowercased() }
                columns = names.count
                sentenceColumn = names.firstIndex(of: "sentence") ?? -1
                labelColumn = names.firstIndex(of: "label") ?? -1
                guard sentenceColumn >= 0, labelColumn >= 0 else {
                    throw SentimentError.format(
                        "\(path):1: header must name a 'sentence' and a 'label' column (tab-separated), found \"\(line.prefix(80))\"",
                        field: field)
                }
                continue
            }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }   // blank lines (e.g. the final newline)
            let cells = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard cells.count == columns else {
                throw SentimentError.format(
                    "\(path):\(lineNumber): expected \(columns) tab-separated columns, found \(cells.count)", field: field)
            }
            let labelText = cells[labelColumn].trimmingCharacters(in: " ")
            guard let label = Int(labelText), label >= 0, label < numLabels else {
                throw SentimentError.format(
                    "\(path):\(lineNumber): label \"\(labelText.prefix(20))\" is not an integer in 0..<\(numLabels)",
                    field: field)
            }
            texts.append(String(cells[sentenceColumn]))
            labels.append(label)
        }
        guard lineNumber >= 1, sentenceColumn >= 0 else {
            throw SentimentError.format("\(path) is empty (expected a header line)", field: field)
        }
        return try LabeledDataset(texts: texts, labels: labels, source: path)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in c: Character) -> String {
        var s = self[...]
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}
