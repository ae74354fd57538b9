// What each call on a model takes, with its defaults. The C API's requests (parsed in the
// Sentiment target) take their defaults from these; `TrainingConfig` is the train request's.

/// Numeric precision of a model's encoder, or of the weights a save writes.
public enum Precision: String, Sendable, CaseIterable {
    case fp32
    case int8
    /// bf16 linear layers with fp32 accumulation (needs AVX512-BF16 or AMX); saves write BF16.
    case bf16
}

/// How to load a model folder (`sentiment_model_load`).
public struct ModelOptions: Sendable {
    public var modelDirectory: String
    public var precision: Precision = .fp32
    /// Token budget per text including [CLS] and [SEP]; longer texts are truncated.
    public var maxLength: Int = 128
    /// Compute threads; 0 = OMP_NUM_THREADS or every online core.
    public var threads: Int = 0
    /// Which classification head to use (see `LoadOptions.Head`).
    public var head: LoadOptions.Head = .auto
    /// Seed for a fresh (untrained) classification head.
    public var seed: UInt64 = 42
    /// Precision int8 of a float checkpoint: SmoothQuant calibrated on these sentences (nil:
    /// activations quantized per token only).
    public var calibration: CalibrationOptions? = nil

    public init(modelDirectory: String) { self.modelDirectory = modelDirectory }

    /// The values `maxLength` and `threads` accept (at load and in a train config).
    public static let maxLengthRange = 2...512
    public static let threadsRange = 0...1024
}

/// Texts to tokenize with a model's tokenizer (`sentiment_tokenize`).
public struct TokenizeOptions: Sendable {
    public var texts: [String]
    /// The second text of each sentence pair (`text_pairs`); nil for single texts.
    public var textPairs: [String]? = nil
    /// Token budget per text; the model's own `max_length` by default.
    public var maxLength: Int

    public init(texts: [String], model: SentimentModel) {
        self.texts = texts
        self.maxLength = model.options.maxLength
    }
}

/// Texts to classify (`sentiment_classify`).
public struct ClassifyOptions: Sendable {
    /// What to do with a text longer than `max_length` tokens (`long_text`).
    public enum LongText: String, Sendable, CaseIterable {
        /// Keep its first tokens.
        case truncate
        /// Classify overlapping windows of max_length tokens and average their probabilities.
        case window
    }

    public var texts: [String]
    /// The second text of each sentence pair (`text_pairs`); nil for single texts.
    public var textPairs: [String]? = nil
    /// How many labels each result lists, best first (`top_k`): nil lists none (the result's
    /// own label is the best), `Int.max` (JSON null) lists all.
    public var topK: Int? = nil
    public var longText: LongText = .truncate
    /// Tokens that neighbouring windows share (`stride`); nil: a quarter of a window's text tokens.
    public var stride: Int? = nil
    public var batchSize: Int = SentimentModel.defaultBatchSize

    public init(texts: [String]) { self.texts = texts }
}

/// Labelled examples to score a model on (`sentiment_evaluate`).
public struct EvaluateOptions: Sendable {
    public enum Data: Sendable {
        /// A data file (TSV, CSV or JSON Lines; see `DataRows.read`).
        case file(DataFile)
        /// Texts (and second texts of pairs) with labels: ids, or names of the model's labels.
        case examples(texts: [String], pairs: [String]?, labels: Labels)
    }

    /// The labels of in-memory examples.
    public enum Labels: Sendable {
        case ids([Int])
        case names([String])
    }

    public var data: Data
    public var batchSize: Int = SentimentModel.defaultBatchSize

    public init(data: Data) { self.data = data }

    /// The examples, read for a model with these labels (`id2label`).
    public func dataset(labelNames: [String]) throws -> LabeledDataset {
        switch data {
        case .file(let file): return try LabeledDataset.read(file, labelNames: labelNames)
        case .examples(let texts, let pairs, .ids(let ids)): return try LabeledDataset(texts: texts, pairs: pairs, labels: ids)
        case .examples(let texts, let pairs, .names(let names)):
            let ids = try names.enumerated().map { i, name in
                guard let id = matching(name, in: labelNames) else {
                    throw SentimentError.invalidArgument(
                        "labels[\(i)] \"\(name.prefix(40))\" is not one of the model's labels "
                            + "(\(labelNames.map { "\"\($0)\"" }.joined(separator: ", ")))", field: "labels")
                }
                return id
            }
            return try LabeledDataset(texts: texts, pairs: pairs, labels: ids)
        }
    }
}

/// Where and how to write a model as a Hugging Face checkpoint (`sentiment_model_save`).
public struct SaveOptions: Sendable {
    public var outputDirectory: String
    public var precision: Precision = .fp32
    /// An int8 save of a float model: SmoothQuant calibrated on these sentences.
    public var calibration: CalibrationOptions? = nil

    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }
}
