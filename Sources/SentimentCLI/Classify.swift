// sentiment classify: texts in, one result per text out, batch by batch, so memory stays
// bounded and results appear as they are computed.
import ArgumentParser
import SentimentCore

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, jsonl, tsv, csv
}

struct Classify: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "Classify texts: arguments, lines on stdin, or a data file.",
        discussion: """
            With no texts and no --input, reads one text per line from stdin (every line, blank ones \
            too, so results line up with the input). Results are written as each batch is done.
            Examples:
              sentiment classify -m runs/sst2 "a charming journey" "a tedious mess"
              sentiment classify -m runs/sst2 --output jsonl < reviews.txt > labels.jsonl
              sentiment classify -m runs/sst2 --input dev.tsv --output csv --top-k all
            """)

    @OptionGroup var model: ModelFlags

    @Argument(help: "Texts to classify.")
    var texts: [String] = []

    @Option(name: [.short, .long], help: "A data file: TSV, CSV or JSON Lines (by extension, or --format), or - for stdin.")
    var input: String?

    @Option(help: "The --input file's format: tsv, csv, jsonl, or lines (one text per line).")
    var format: String?

    @Option(help: "The text column of --input (default: sentence, else text).")
    var textColumn: String?

    @Option(help: "The second text of sentence pairs in --input.")
    var textPairColumn: String?

    @Option(name: [.short, .long], help: "table, jsonl, tsv or csv. Default: table on a terminal, else jsonl.")
    var output: OutputFormat?

    @Option(help: "Also list the N best labels of each text, or 'all'.")
    var topK: String?

    @Option(help: "Texts per batch (at most 32,768 tokens go through the model at once). Default: 32.")
    var batchSize: Int?

    @Option(help: "truncate (default) or window: read long texts whole in overlapping windows.")
    var longText: String?

    @Option(help: "Tokens shared by neighbouring windows (with --long-text window).")
    var stride: Int?

    var fieldFlags: [String: String] { modelFieldFlags.merging(["input": "--input", "texts": "TEXT"]) { a, _ in a } }

    func run() throws {
        var source = try textSource(texts: texts, input: input, format: format, textColumn: textColumn,
                                    textPairColumn: textPairColumn)
        let m = try model.load()
        var writer = ResultWriter(format: output ?? (Terminal.stdoutIsTTY ? .table : .jsonl), labels: m.labels,
                                  pairs: textPairColumn != nil)
        // A person typing on a terminal sees each result at once.
        let chunk = Terminal.stdinIsTTY && texts.isEmpty && input == nil ? 1 : max(1, batchSize ?? 32)
        var batch: [(text: String, pair: String?)] = []
        batch.reserveCapacity(chunk)
        func flush() throws {
            guard !batch.isEmpty else { return }
            let results = try m.classify(request(batch))
            for (input, result) in zip(batch, results) { writer.write(input.text, input.pair, result) }
            Terminal.flush()
            batch.removeAll(keepingCapacity: true)
        }
        while let next = try source.next() {
            batch.append(next)
            if batch.count == chunk { try flush() }
        }
        try flush()
    }

    private func request(_ batch: [(text: String, pair: String?)]) -> JSON {
        var members = [JSON.Member("texts", .array(batch.map { JSON($0.text) }))]
        if textPairColumn != nil { members.append(JSON.Member("text_pairs", .array(batch.map { JSON($0.pair ?? "") }))) }
        if let topK { members.append(JSON.Member("top_k", topK == "all" ? .null : Int(topK).map { JSON($0) } ?? JSON(topK))) }
        if let batchSize { members.append(JSON.Member("batch_size", JSON(batchSize))) }
        if let longText { members.append(JSON.Member("long_text", JSON(longText))) }
        if let stride { members.append(JSON.Member("stride", JSON(stride))) }
        return .object(members)
    }
}

/// Writes classify results in one of the output formats; a header first for table, TSV and CSV.
struct ResultWriter {
    let format: OutputFormat
    let labels: [String]
    let pairs: Bool
    private var started = false
    private let labelWidth: Int

    init(format: OutputFormat, labels: [String], pairs: Bool) {
        self.format = format
        self.labels = labels
        self.pairs = pairs
        labelWidth = max(5, labels.map(\.count).max() ?? 5)
    }

    mutating func write(_ text: String, _ pair: String?, _ result: JSON) {
        let label = result["label"]?.stringValue ?? ""
        let score = result["score"]?.doubleValue
        let ranked = (result["labels"]?.arrayValue ?? []).map {
            ($0["label"]?.stringValue ?? "", $0["score"]?.doubleValue)
        }
        defer { started = true }
        switch format {
        case .jsonl:
            var members = [JSON.Member("text", JSON(text))]
            if let pair { members.append(JSON.Member("text_pair", JSON(pair))) }
            Terminal.out(JSON.object(members + (result.objectMembers ?? [])).serialized() + "\n")
        case .table:
            if !started {
                Terminal.out("LABEL".padded(labelWidth) + "  SCORE   " + (ranked.isEmpty ? "" : "RANKED  ") + "TEXT\n")
            }
            let rankedText = ranked.map { "\($0.0) \(fixed($0.1, 3))" }.joined(separator: ", ")
            var line = label.padded(labelWidth) + "  " + fixed(score) + "  " + (ranked.isEmpty ? "" : rankedText + "  ")
            let shown = pair.map { "\(text) | \($0)" } ?? text
            line += shown.cell(max(10, Terminal.width - line.count))
            Terminal.out(line + "\n")
        case .tsv, .csv:
            let sep = format == .tsv ? "\t" : ","
            func cell(_ s: String) -> String {
                if format == .tsv { return s.cell(Int.max) }
                return s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
            }
            if !started {
                var header = ["text"] + (pairs ? ["text_pair"] : []) + ["label", "score"]
                for k in ranked.indices { header += ["label_\(k + 1)", "score_\(k + 1)"] }
                Terminal.out(header.joined(separator: sep) + "\n")
            }
            var row = [cell(text)] + (pairs ? [cell(pair ?? "")] : []) + [cell(label), score.map { JSON.format($0) } ?? ""]
            for (l, s) in ranked { row += [cell(l), s.map { JSON.format($0) } ?? ""] }
            Terminal.out(row.joined(separator: sep) + "\n")
        }
    }
}
