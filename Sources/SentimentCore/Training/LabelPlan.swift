// Which labels a training run trains, and whether the checkpoint's head can be kept. As Hugging
// Face's run_glue: names in the train file are sorted; the checkpoint's labels are kept when the
// file's all match them; a head with another number of outputs is replaced by a fresh one.

struct LabelPlan: Equatable {
    /// The label names in id order (the saved config's `id2label`).
    var labels: [String]
    /// The checkpoint's classifier is replaced (its number of outputs differs).
    var freshHead: Bool
    /// Where the labels came from, when not from the checkpoint.
    var source: String? = nil
    /// The checkpoint's labels, when they were not kept.
    var replaced: [String]? = nil

    /// `requested` is the `labels` key; `column` the train file's labels; `checkpoint` its config.json's.
    static func choose(requested: [String]?, column: LabelColumn, checkpoint: [String]) throws -> LabelPlan {
        let limit = EncoderConfig.Limits.labels
        let labels: [String], source: String
        if let requested {
            (labels, source) = (requested, "\"labels\"")
        } else if column.byName == true {
            let names = column.distinctNames
            if names.allSatisfy({ matching($0, in: checkpoint) != nil }) {
                return LabelPlan(labels: checkpoint, freshHead: false)
            }
            guard names.count >= 2 else {
                throw SentimentError.invalidArgument(
                    "train_file has one label (\"\(names.first?.prefix(40) ?? "")\"), which is not one of the model's "
                        + "(\(quoted(checkpoint))); a classifier needs 2 or more: list them with \"labels\"", field: "labels")
            }
            guard names.count <= limit else {
                throw SentimentError.invalidArgument(
                    "train_file has \(names.count) distinct labels in '\(column.column)' (at most \(limit)); "
                        + "is \"label_column\" the right column?", field: "label_column")
            }
            (labels, source) = (names, "the train file's labels")
        } else {
            let n = (column.maxInteger ?? 0) + 1
            if n <= checkpoint.count { return LabelPlan(labels: checkpoint, freshHead: false) }
            guard n <= limit else {
                throw SentimentError.invalidArgument(
                    "train_file has label \(n - 1) (at most \(limit) labels); is \"label_column\" the right column?",
                    field: "label_column")
            }
            (labels, source) = ((0..<n).map { "LABEL_\($0)" }, "the train file's labels 0...\(n - 1)")
        }
        if labels == checkpoint { return LabelPlan(labels: labels, freshHead: false) }
        return LabelPlan(labels: labels, freshHead: labels.count != checkpoint.count, source: source, replaced: checkpoint)
    }

    /// What changed from the checkpoint's labels, for the result's notes (nil when nothing did);
    /// `classifierRead`: the loaded checkpoint had a classifier that the run continues from.
    func note(classifierRead: Bool) -> String? {
        guard let source, let replaced else { return nil }
        if !classifierRead {
            return "labels \(Self.quoted(labels)) (\(source)); the classifier starts fresh"
                + (freshHead ? " (the checkpoint's has \(replaced.count) labels)" : "")
        }
        return "\(source) (\(Self.quoted(labels))) replace the checkpoint's (\(Self.quoted(replaced))); its classifier is kept"
    }

    static func quoted(_ names: [String]) -> String {
        let shown = names.prefix(8).map { "\"\($0.prefix(40))\"" }.joined(separator: ", ")
        return names.count > 8 ? shown + ", ..." : shown
    }
}

extension Checkpoint {
    /// A checkpoint folder's config.json alone (labels: `id2label`, else its defaults).
    static func config(directory: String) throws -> EncoderConfig {
        let path = FileSystem.join(directory, configName)
        return try EncoderConfig.fromHuggingFace(readConfig(path), path: path)
    }
}
