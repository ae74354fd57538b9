// sentiment evaluate: a labelled data file's metrics and confusion matrix (sentiment_evaluate).
import ArgumentParser
import Sentiment
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

struct Evaluate: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on a labelled data file: accuracy, loss, F1, MCC, confusion matrix.",
        discussion: "Example: sentiment evaluate -m runs/sst2 dev.tsv")

    @OptionGroup var model: ModelFlags

    @Argument(help: "A labelled data file: TSV, CSV or JSON Lines (by extension, or --format).")
    var dataFile: String

    @Option(help: "tsv, csv or jsonl. Default: from the extension.")
    var format: String?

    @Option(help: "The text column (default: sentence, else text).")
    var textColumn: String?

    @Option(help: "The second text of sentence pairs.")
    var textPairColumn: String?

    @Option(help: "The label column (default: label). Labels are ids or the model's label names.")
    var labelColumn: String?

    @Option(help: "Texts per batch. Default: 32.")
    var batchSize: Int?

    @Flag(help: "Print the library's result document (JSON) instead of tables.")
    var json = false

    var fieldFlags: [String: String] { modelFieldFlags.merging(["data_file": "DATA_FILE"]) { a, _ in a } }

    func run() throws {
        let m = try model.load()
        var members = [JSON.Member("data_file", JSON(dataFile))]
        for (key, value) in [("format", format), ("text_column", textColumn), ("text_pair_column", textPairColumn),
                             ("label_column", labelColumn)] {
            if let value { members.append(JSON.Member(key, JSON(value))) }
        }
        if let batchSize { members.append(JSON.Member("batch_size", JSON(batchSize))) }
        let showProgress = Terminal.stderrIsTTY
        let result = try m.evaluate(.object(members), progress: showProgress ? evaluateProgress : nil, context: nil)
        Terminal.endProgressLine()
        if json {
            Terminal.out(result.serialized() + "\n")
            return
        }
        Terminal.out(Evaluate.report(result, labels: m.labels))
    }

    /// The metrics, the per-label table and the confusion matrix (rows: true label).
    static func report(_ r: JSON, labels: [String]) -> String {
        var s = ""
        for key in ["examples", "accuracy", "loss", "macro_f1", "mcc"] {
            let v = r[key]
            s += key.padded(10) + (key == "examples" ? "\(v?.int64Value ?? 0)" : fixed(v?.doubleValue)) + "\n"
        }
        let names = labels.isEmpty ? (r["per_label"]?.arrayValue ?? []).map { $0["label"]?.stringValue ?? "" } : labels
        let w = max(8, (names.map(\.count).max() ?? 0) + 2)
        s += "\n" + "label".padded(w) + "precision  recall     f1         support\n"
        for l in r["per_label"]?.arrayValue ?? [] {
            s += (l["label"]?.stringValue ?? "").padded(w)
            for k in ["precision", "recall", "f1"] { s += fixed(l[k]?.doubleValue).padded(11) }
            s += "\(l["support"]?.int64Value ?? 0)\n"
        }
        let matrix = (r["confusion_matrix"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).map { $0.int64Value ?? 0 } }
        let cw = max(w, (matrix.flatMap { $0 }.map { String($0).count }.max() ?? 0) + 2)
        s += "\nconfusion matrix (rows: true label, columns: predicted)\n" + "".padded(w)
        s += names.map { $0.padded(cw) }.joined() + "\n"
        for (i, row) in matrix.enumerated() {
            s += (i < names.count ? names[i] : "\(i)").padded(w) + row.map { String($0).padded(cw) }.joined() + "\n"
        }
        return s.trimmingLineEnds
    }
}

/// sentiment_evaluate's progress events as a live line on stderr.
private let evaluateProgress: ProgressCallback = { event, _ in
    guard let event, let e = try? JSON.parse(String(cString: event)) else { return 0 }
    Terminal.progress("evaluated \(e["examples"]?.int64Value ?? 0)/\(e["total"]?.int64Value ?? 0)")
    return 0
}
