#if canImport(Glibc)
import Glibc
#endif

/// One classified text.
public struct Prediction: Sendable, Equatable {
    public var labelId: Int
    public var label: String
    public var score: Float            // probability of `label`
    public var probabilities: [Float]  // softmax of `logits` (long_text "window": the windows' mean)
    public var logits: [Float]         // (long_text "window": the windows' mean)
    /// The windows the text was read in (long_text "window"; 1 otherwise).
    public var windows = 1
}

/// Metrics of one evaluation pass.
public struct Evaluation: Sendable {
    public var examples: Int
    public var accuracy: Double
    public var loss: Double            // mean cross-entropy (natural log)
    public var seconds: Double
    /// Macro F1, per-label precision/recall/F1/support, the confusion matrix, Matthews correlation.
    public var metrics: ClassificationMetrics
}

/// A loaded, immutable classifier: tokenizer + encoder + head + labels.
/// Every method may be called concurrently from several threads.
public final class SentimentModel: @unchecked Sendable {
    public let options: ModelOptions
    public let config: EncoderConfig
    public let tokenizer: BertTokenizer
    public let encoder: EncoderForward
    /// True when the classification head was initialized at load (the checkpoint had none).
    public let freshHead: Bool
    /// config.json as read (a save keeps its unknown keys).
    let rawConfig: JSON
    /// An int8 checkpoint's per-row scales, smoothing factors, fp32 outlier columns and recorded
    /// config (see `LoadedCheckpoint.int8Scales`; a save reuses them).
    let int8Scales: [String: [Float]]
    let int8Smoothing: [String: [Float]]
    let int8Outliers: [String: [Int]]
    let int8Config: Int8Config?
    /// The int8 linear layers (precision int8 only).
    public let quantized: QuantizedEncoderWeights?
    /// Per-row scales of the int8-stored word embeddings (precision int8 only; what a save reuses).
    let wordEmbeddingScales: [Float]?
    /// Effective compute threads.
    public let threads: Int
    /// The matrix instructions this process computes with (ISA.swift).
    public let isa: ISA
    public let loadSeconds: Double

    /// The float weights the model computes with (see `EncoderForward.floatWeights`: rebuilt on
    /// each call, since the encoder keeps only its packed or int8 copy of the linear weights).
    public func floatWeights() throws -> EncoderWeights { try encoder.floatWeights() }
    public var parameterCount: Int { encoder.parameterCount }
    public var labels: [String] { config.labels }
    /// Texts per encoder batch when a call names none.
    public static let defaultBatchSize = 32

    public static func load(_ options: ModelOptions) throws -> SentimentModel {
        try SentimentModel(options)
    }

    private init(_ options: ModelOptions) throws {
        let start = Clock.now()
        guard !options.modelDirectory.isEmpty else {
            throw SentimentError.invalidArgument("model_dir must not be empty", field: "model_dir")
        }
        guard FileSystem.kind(options.modelDirectory) == .directory else {
            throw SentimentError.io("model_dir \(options.modelDirectory) is not a readable directory", field: "model_dir")
        }
        self.options = options
        self.isa = try ISA.active()
        self.threads = SentimentModel.effectiveThreads(options.threads)
        Parallel.setThreads(threads)
        var loadOptions = LoadOptions()
        loadOptions.head = options.head
        loadOptions.seed = options.seed
        let checkpoint = try Checkpoint.load(directory: options.modelDirectory, options: loadOptions)
        self.config = checkpoint.weights.config
        self.freshHead = checkpoint.freshHead
        self.rawConfig = checkpoint.rawConfig
        self.int8Scales = checkpoint.int8Scales
        self.int8Smoothing = checkpoint.int8Smoothing
        self.int8Outliers = checkpoint.int8Outliers
        let int8Config = checkpoint.isInt8 ? Int8Config(metadata: checkpoint.metadata) ?? Int8Config() : nil
        self.int8Config = int8Config
        guard options.maxLength >= 2, options.maxLength <= config.maxPositions else {
            throw SentimentError.invalidArgument(
                "max_length must be in 2...\(config.maxPositions) for this model, got \(options.maxLength)",
                field: "max_length")
        }
        self.tokenizer = try BertTokenizer.load(modelDirectory: options.modelDirectory)
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw SentimentError.format(
                "vocab.txt has \(tokenizer.vocabSize) tokens but the model's embedding has \(config.vocabSize) rows",
                field: FileSystem.join(options.modelDirectory, "vocab.txt"))
        }
        if options.calibration != nil && options.precision != .int8 {
            throw SentimentError.invalidArgument("calibration_file calibrates int8 quantization; it needs precision \"int8\"",
                                                 field: "calibration_file")
        }
        switch options.precision {
        case .fp32:
            self.quantized = nil
            self.wordEmbeddingScales = nil
            self.encoder = try EncoderForward(weights: checkpoint.weights)
        case .int8:
            // Calibrated on the float weights, before the word embeddings are rounded, as a
            // quantizing save calibrates.
            let q = try SentimentModel.quantize(
                checkpoint.weights, scales: checkpoint.int8Scales, smoothing: checkpoint.int8Smoothing,
                outliers: checkpoint.int8Outliers, config: int8Config,
                calibration: options.calibration, tokenizer: tokenizer, maxLength: options.maxLength)
            // The int8 model computes with the int8-stored word embeddings (see QuantizedEncoder.swift).
            self.wordEmbeddingScales = try EmbeddingRows.quantize(
                checkpoint.weights.embeddings.word, knownScales: checkpoint.int8Scales[TensorSlot.embedding(.word).name], roundInPlace: true
            ).scales
            self.quantized = q
            self.encoder = try EncoderForward(weights: checkpoint.weights, packing: .int8(q))
        case .bf16:
            self.quantized = nil
            self.wordEmbeddingScales = nil
            self.encoder = try EncoderForward(weights: checkpoint.weights, packing: .bf16(training: false))
        }
        self.loadSeconds = Clock.now() - start
    }

    /// `requested` threads, or OMP_NUM_THREADS, or every CPU, at most the CPUs the process may use.
    static func effectiveThreads(_ requested: Int) -> Int { Parallel.clampedThreads(requested) }

    // MARK: Tokenize

    public func encode(_ texts: [String]) -> [[Int32]] {
        texts.map { tokenizer.encode($0, maxLength: options.maxLength) }
    }

    /// Token ids of texts, and their types when `pairs` gives sentence pairs.
    public func encode(_ texts: [String], pairs: [String]?) -> (ids: [[Int32]], types: [[Int32]]?) {
        tokenizer.encode(texts, pairs: pairs, maxLength: options.maxLength)
    }

    // MARK: Classify

    /// Logits for token-id sequences, in input order. Sequences are grouped by length into
    /// batches of `batchSize` (packed, so no padding is computed); a sequence's logits do
    /// not depend on which others share its batch.
    public func logits(_ sequences: [[Int32]], tokenTypes: [[Int32]]? = nil, batchSize: Int,
                       progress: ((Int) -> Bool)? = nil) throws -> [[Float]] {
        guard batchSize > 0 else { throw SentimentError.invalidArgument("batch_size must be > 0", field: "batch_size") }
        Parallel.setThreads(threads)
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        var out = [[Float]](repeating: [], count: sequences.count)
        var workspace: ForwardWorkspace? = nil
        var done = 0
        while done < order.count {
            let chunk = order[done..<Swift.min(order.count, done + batchSize)]
            let batch = try PackedBatch(sequences: chunk.map { sequences[$0] }, tokenTypes: tokenTypes.map { t in chunk.map { t[$0] } })
            let rows = try encoder.logits(batch, workspace: &workspace)
            for (k, i) in chunk.enumerated() { out[i] = rows[k] }
            done += chunk.count
            if let progress, !progress(done) {
                throw SentimentError(.cancelled, "cancelled by the progress callback")
            }
        }
        return out
    }

    public func classify(_ texts: [String], batchSize: Int = defaultBatchSize) throws -> [Prediction] {
        try classify(ClassifyOptions(texts: texts).with(batchSize: batchSize))
    }

    /// The prediction of probabilities `probs` (and the logits they came from).
    func prediction(probabilities probs: [Double], logits: [Float], windows: Int = 1) -> Prediction {
        var best = 0
        for k in probs.indices where probs[k] > probs[best] { best = k }
        let name = best < labels.count ? labels[best] : "LABEL_\(best)"
        return Prediction(labelId: best, label: name, score: Float(probs[best]),
                          probabilities: probs.map { Float($0) }, logits: logits, windows: windows)
    }

    static func softmax(_ logits: [Float]) -> [Double] {
        let m = Double(logits.max() ?? 0)
        let e = logits.map { exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    // MARK: Evaluate

    /// Accuracy and mean cross-entropy over labelled examples. `progress(done, total)`
    /// returning false cancels.
    public func evaluate(_ data: LabeledDataset, batchSize: Int = defaultBatchSize,
                         progress: ((Int, Int) -> Bool)? = nil) throws -> Evaluation {
        let start = Clock.now()
        for (i, y) in data.labels.enumerated() where y < 0 || y >= config.numLabels {
            throw SentimentError.invalidArgument(
                "labels[\(i)] = \(y) is outside 0..<\(config.numLabels)", field: "labels")
        }
        let total = data.count
        let encoded = encode(data.texts, pairs: data.pairs)
        let rows = try logits(encoded.ids, tokenTypes: encoded.types, batchSize: batchSize,
                              progress: progress.map { p in { done in p(done, total) } })
        let m = SentimentModel.lossAndAccuracy(logits: rows, labels: data.labels)
        let predictions = rows.map(SentimentModel.argmax)
        return Evaluation(
            examples: total, accuracy: m.accuracy, loss: m.loss, seconds: Clock.now() - start,
            metrics: ClassificationMetrics(labels: data.labels, predictions: predictions, classes: config.numLabels))
    }

    /// The index of the largest logit (the first on ties).
    static func argmax(_ row: [Float]) -> Int {
        row.indices.reduce(0) { row[$1] > row[$0] ? $1 : $0 }
    }

    /// Mean cross-entropy (natural log) and accuracy (argmax, first index on ties) of logits rows
    /// against labels in range. Empty input gives (0, 0).
    static func lossAndAccuracy(logits rows: [[Float]], labels: [Int]) -> (loss: Double, accuracy: Double) {
        var correct = 0
        var loss = 0.0
        for (row, y) in zip(rows, labels) {
            let m = Double(row.max() ?? 0)
            let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
            loss += lse - Double(row[y])
            var best = 0
            for k in row.indices where row[k] > row[best] { best = k }
            if best == y { correct += 1 }
        }
        let n = Swift.max(Swift.min(rows.count, labels.count), 1)
        return (loss / Double(n), Double(correct) / Double(n))
    }

    // MARK: Save

    /// Writes a Hugging Face checkpoint folder; returns the files written. `.int8` writes the
    /// int8 checkpoint (I8 weights + F32 scales, see `Int8Scheme`), quantizing a float model first
    /// (calibrated on `calibration`'s sentences when given);
    /// `.fp32` writes float32 tensors: the weights the model computes with (an int8 model's
    /// dequantized ones, a bf16 model's bf16 values); `.bf16` writes them as BF16.
    public func save(to directory: String, precision: Precision, calibration: CalibrationOptions? = nil) throws -> [String] {
        let weights = try floatWeights()
        var int8: [String: Int8Tensor] = [:]
        var metadata: [String: String] = [:]
        if calibration != nil && precision != .int8 {
            throw SentimentError.invalidArgument("calibration_file calibrates an int8 save; it needs precision \"int8\"",
                                                 field: "calibration_file")
        }
        if calibration != nil, quantized != nil {
            throw SentimentError.invalidArgument(
                "this model is already quantized; load its float checkpoint with precision \"int8\" and calibration_file",
                field: "calibration_file")
        }
        if precision == .int8 {
            let q = try quantized ?? SentimentModel.quantize(
                weights, scales: int8Scales, smoothing: int8Smoothing, outliers: int8Outliers, config: int8Config,
                calibration: calibration,
                tokenizer: tokenizer, maxLength: options.maxLength)
            metadata[Int8Scheme.configKey] = q.config.json.serialized()
            let word = try EmbeddingRows.quantize(
                weights.embeddings.word, knownScales: wordEmbeddingScales ?? int8Scales[TensorSlot.embedding(.word).name],
                roundInPlace: false)
            int8 = q.checkpointTensors(wordEmbeddings: word)
        }
        if precision == .bf16, quantized != nil {
            throw SentimentError.invalidArgument("an int8 model saves as int8 or fp32, not bf16", field: "precision")
        }
        let saved = try Checkpoint.save(weights: weights, rawConfig: rawConfig, tokenizerFrom: options.modelDirectory,
                                        to: directory, metadata: metadata, int8: int8, bf16: precision == .bf16)
        return saved.files
    }
}

extension SentimentModel {
    /// The int8 layers of `weights`: an int8 checkpoint's own (`scales`, `smoothing`, `outliers`
    /// and `config` reproduce its integers), or quantized now, calibrated on `calibration`'s
    /// sentences when given (SmoothQuant factors and fp32 outlier channels). Calibrating an int8
    /// checkpoint is `.invalidArgument`.
    static func quantize(
        _ weights: EncoderWeights, scales: [String: [Float]], smoothing: [String: [Float]], outliers: [String: [Int]],
        config: Int8Config?, calibration: CalibrationOptions?, tokenizer: BertTokenizer, maxLength: Int
    ) throws -> QuantizedEncoderWeights {
        guard let calibration else {
            return try QuantizedEncoderWeights(weights, knownScales: scales, smoothing: smoothing, outliers: outliers,
                                               config: config ?? Int8Config())
        }
        guard scales.isEmpty else {
            throw SentimentError.invalidArgument(
                "the checkpoint is already int8; calibrate when quantizing its float checkpoint", field: "calibration_file")
        }
        let texts = try calibration.texts()
        let ranges = try ActivationRanges.collect(weights, sequences: texts.map { tokenizer.encode($0, maxLength: maxLength) })
        let outliers = ranges.outliers(count: calibration.outlierChannels)
        return try QuantizedEncoderWeights(
            weights, smoothing: ranges.smoothing(weights, alpha: calibration.alpha, outliers: outliers), outliers: outliers,
            config: Int8Config(smoothQuant: calibration, samples: texts.count))
    }
}
