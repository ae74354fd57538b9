/// A fine-tuning run (`sentiment_train`'s config), named after Hugging Face `TrainingArguments`.
/// Defaults are the GLUE SST-2 recipe (lr 2e-5, batch 256, 5 epochs, Adam (0.9, 0.999, 1e-8),
/// linear decay, seed 42).
public struct TrainingConfig: Sendable, Equatable {
    /// An evaluation figure (`metric_for_best_model`; Hugging Face's "eval_" prefix is accepted).
    public enum Metric: String, Sendable, CaseIterable {
        case accuracy, loss
        case macroF1 = "macro_f1"
        case mcc
        /// F1 of label 1 (scikit-learn's binary F1); two labels only.
        case f1
    }

    public enum SaveStrategy: String, Sendable, CaseIterable {
        /// Keep the checkpoint of the epoch with the best `metric_for_best_model` in output_dir.
        case best
        /// Save once, after the last epoch.
        case last
        /// Save after every epoch into output_dir/epoch-N (and the last one into output_dir).
        case epoch
        /// Do not save.
        case no
    }

    public var modelDirectory: String
    public var trainFile: String
    public var evalFile: String?
    /// How train_file and eval_file are read (`DataFile`): `format`, `text_column`,
    /// `text_pair_column`, `label_column`.
    public var dataFormat: DataFormat? = nil
    public var textColumn: String? = nil
    public var textPairColumn: String? = nil
    public var labelColumn = "label"
    /// The label names in id order (`labels`); nil: the train file's (see `LabelPlan`).
    public var labels: [String]? = nil
    public var outputDirectory: String?
    public var learningRate: Double = 2e-5
    public var trainBatchSize: Int = 256
    public var evalBatchSize: Int = 256
    public var numTrainEpochs: Int = 5
    public var seed: UInt64 = 42
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var weightDecay: Double = 0
    public var lrSchedulerType: LearningRateSchedule.Kind = .linear
    public var warmupRatio: Double = 0
    public var maxGradNorm: Double = 1.0
    /// Layer-wise learning-rate decay: layer i of L (0-based) trains at decay^(L - i) times the
    /// rate, the embeddings at decay^(L + 1), the head (and BERT pooler) at the full rate. 1 = off.
    public var layerwiseLRDecay: Double = 1
    /// Decay of an exponential moving average of the weights over optimizer steps; when > 0,
    /// evaluation and checkpoints use the averaged weights (see `WeightAverage`). 0 = off.
    public var emaDecay: Double = 0
    /// R-Drop's alpha (Liang et al. 2021): each batch runs twice under different dropout masks
    /// and the loss adds alpha/4 (KL(p || q) + KL(q || p)) to the mean cross-entropy of the two
    /// copies (`GradientStep.rdropAlpha`). Doubles the compute per step. 0 = off; needs `dropout`.
    public var rdropAlpha: Double = 0
    public var maxLength: Int = 128
    /// Stop after this many optimizer steps (-1 = run all epochs).
    public var maxSteps: Int = -1
    public var saveStrategy: SaveStrategy = .best
    /// What picks the best epoch (`best_epoch`, save_strategy "best"); TrainingArguments' name.
    public var metricForBestModel: Metric = .accuracy
    /// nil: true for every metric but loss.
    public var greaterIsBetter: Bool? = nil
    /// Compute threads; 0 = OMP_NUM_THREADS or every core.
    public var threads: Int = 0
    /// A step event every this many optimizer steps.
    public var loggingSteps: Int = 1
    /// Head for the model (see `LoadOptions.Head`).
    public var head: LoadOptions.Head = .auto
    /// Use only the first N training examples (0 = all); for quick runs and tests.
    public var maxTrainExamples: Int = 0
    /// Dropout on (the recipe); off makes a run a deterministic function of the weights.
    public var dropout: Bool = true
    /// Mixed precision (TrainingArguments' `bf16`): the linear layers' GEMMs in bf16, forward and
    /// backward; master weights, AdamW state, LayerNorm, softmax, loss and gradients in fp32.
    /// Needs AVX512-BF16 or AMX.
    public var bf16: Bool = false

    /// `path` (train_file or eval_file) with this config's format and columns.
    public func dataFile(_ path: String) -> DataFile {
        DataFile(path: path, format: dataFormat, textColumn: textColumn, textPairColumn: textPairColumn, labelColumn: labelColumn)
    }

    /// Whether a higher `metricForBestModel` is better.
    public var higherIsBetter: Bool { greaterIsBetter ?? (metricForBestModel != .loss) }

    public init(modelDirectory: String, trainFile: String) {
        self.modelDirectory = modelDirectory
        self.trainFile = trainFile
    }

    /// Throws `.invalidArgument` naming the key of the first value outside `TrainingLimits`, or of a
    /// combination that cannot run: max_steps 0, R-Drop without dropout, saving without output_dir.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ rule: String) throws {
            guard ok else { throw SentimentError.invalidArgument("\(field) must be \(rule)", field: field) }
        }
        func real(_ v: Double, _ field: String, _ limit: TrainingLimits.Real) throws {
            try check(limit.accepts(v), field, limit.rule)
        }
        func int(_ v: Int, _ field: String, _ range: ClosedRange<Int>) throws {
            try check(range.contains(v), field, "in \(range.lowerBound)...\(range.upperBound)")
        }
        typealias L = TrainingLimits
        try check(!modelDirectory.isEmpty, "model_dir", "a non-empty path")
        try check(!trainFile.isEmpty, "train_file", "a non-empty path")
        try real(learningRate, "learning_rate", L.learningRate)
        try int(trainBatchSize, "train_batch_size", L.batchSize)
        try int(evalBatchSize, "eval_batch_size", L.batchSize)
        try int(numTrainEpochs, "num_train_epochs", L.numTrainEpochs)
        try real(adamBeta1, "adam_beta1", L.adamBeta)
        try real(adamBeta2, "adam_beta2", L.adamBeta)
        try real(adamEpsilon, "adam_epsilon", L.adamEpsilon)
        try real(weightDecay, "weight_decay", L.weightDecay)
        try real(warmupRatio, "warmup_ratio", L.warmupRatio)
        try real(maxGradNorm, "max_grad_norm", L.maxGradNorm)
        try real(layerwiseLRDecay, "layerwise_lr_decay", L.layerwiseLRDecay)
        try real(emaDecay, "ema_decay", L.emaDecay)
        try real(rdropAlpha, "rdrop_alpha", L.rdropAlpha)
        try int(maxLength, "max_length", L.maxLength)
        try int(maxSteps, "max_steps", L.maxSteps)
        try check(maxSteps != 0, "max_steps", "> 0, or -1 for all epochs")
        try int(threads, "threads", L.threads)
        try int(loggingSteps, "logging_steps", L.loggingSteps)
        try int(maxTrainExamples, "max_train_examples", L.maxTrainExamples)
        if bf16 {
            let isa = try ISA.active()
            try check(isa.hasBF16, "bf16", "false on this CPU: bf16 needs AVX512-BF16 or AMX, and it runs \(isa.name)\(ISA.capNote)")
        }
        if let labels {
            try check((2...EncoderConfig.Limits.labels).contains(labels.count), "labels", "a list of 2 to \(EncoderConfig.Limits.labels) names")
            try check(labels.allSatisfy { !$0.isEmpty } && Set(labels).count == labels.count, "labels", "distinct non-empty names")
        }
        if rdropAlpha > 0, !dropout {
            throw SentimentError.invalidArgument("rdrop_alpha needs dropout on (\"dropout\": true)", field: "rdrop_alpha")
        }
        if saveStrategy != .no, (outputDirectory ?? "").isEmpty {
            throw SentimentError.invalidArgument(
                "output_dir is required unless save_strategy is \"no\"", field: "output_dir")
        }
    }
}

/// The values each numeric key of a train config accepts: the one list that the request parser
/// (Sources/Sentiment/Requests.swift) and `TrainingConfig.validate` both read.
public enum TrainingLimits {
    /// The values a real-valued key accepts, and the words its error message uses.
    public struct Real: Sendable {
        public let rule: String
        public let accepts: @Sendable (Double) -> Bool
    }

    public static let learningRate = Real(rule: "in (0, 1)") { $0 > 0 && $0 < 1 }
    public static let adamBeta = Real(rule: "in [0, 1)") { $0 >= 0 && $0 < 1 }
    public static let adamEpsilon = Real(rule: "in (0, 1)") { $0 > 0 && $0 < 1 }
    public static let weightDecay = Real(rule: "in [0, 1)") { $0 >= 0 && $0 < 1 }
    public static let warmupRatio = Real(rule: "in [0, 1]") { $0 >= 0 && $0 <= 1 }
    public static let maxGradNorm = Real(rule: ">= 0 (0 = no clipping)") { $0 >= 0 && $0.isFinite }
    public static let layerwiseLRDecay = Real(rule: "in (0, 1]") { $0 > 0 && $0 <= 1 }
    public static let emaDecay = Real(rule: "in [0, 1) (0 = off)") { $0 >= 0 && $0 < 1 }
    public static let rdropAlpha = Real(rule: "in [0, 100] (0 = off)") { $0 >= 0 && $0 <= 100 }
    public static let batchSize = 1...65_536
    public static let numTrainEpochs = 1...10_000
    public static let maxLength = ModelOptions.maxLengthRange
    /// -1 runs all epochs; 0 is rejected by `validate`.
    public static let maxSteps = -1...Int(Int32.max)
    public static let threads = ModelOptions.threadsRange
    public static let loggingSteps = 1...Int(Int32.max)
    public static let maxTrainExamples = 0...Int(Int32.max)
}

/// Metrics of one finished epoch (one row of the result's `epochs` table).
public struct EpochMetrics: Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var evalLoss: Double?
    public var evalAccuracy: Double?
    public var seconds: Double
    /// Every figure of the evaluation (nil without an eval file).
    public var evalMetrics: ClassificationMetrics? = nil

    /// The figure `metric` names; nil without an evaluation (f1: nil unless there are 2 labels).
    public func value(of metric: TrainingConfig.Metric) -> Double? {
        guard let m = evalMetrics else { return nil }
        switch metric {
        case .accuracy: return m.accuracy
        case .loss: return evalLoss
        case .macroF1: return m.macroF1
        case .mcc: return m.mcc
        case .f1: return m.perLabel.count == 2 ? m.perLabel[1].f1 : nil
        }
    }
}

/// What a run reports while it goes. The callback returns false to cancel: the run stops before
/// its next optimizer step (or, after `.eval`/`.saved`, before the next epoch) and returns what
/// finished with `cancelled: true`. The callback is the only cancellation point, so with
/// `logging_steps` N a run notices a cancel within N steps.
///
/// - `.step`: every `logging_steps` optimizer steps and after the last; `loss` is the mean over
///   the steps since the previous `.step`, `learningRate` the rate the latest step used,
///   `examplesPerSecond` over those steps' training time.
/// - `.eval`: at the end of every epoch (the last may be cut short by `max_steps`), with the
///   epoch's metrics (`evalLoss`/`evalAccuracy` nil without an eval file).
/// - `.saved`: after each checkpoint folder is written.
public enum TrainingEvent: Sendable {
    case step(epoch: Int, step: Int, totalSteps: Int, loss: Double, learningRate: Double, examplesPerSecond: Double)
    case eval(EpochMetrics)
    case saved(path: String)
}

/// The outcome of `Trainer.run`.
public struct TrainingResult: Sendable {
    public var epochs: [EpochMetrics]
    public var bestEpoch: Int?
    public var outputDirectory: String?
    public var trainExamples: Int
    /// Real (unpadded) tokens per second over the optimizer steps.
    public var trainTokensPerSecond: Double
    /// The matrix instructions the run computed with, and whether its GEMMs ran in bf16.
    public var isa: ISA = .avx2
    public var bf16 = false
    public var cancelled: Bool
    /// The label names trained (the saved config's `id2label`).
    public var labels: [String] = []
    /// What the run decided that the caller should know (e.g. a fresh classifier for new labels).
    public var notes: [String] = []
    /// Loss after every optimizer step, for curves.
    public var stepLosses: [Double]
    /// Optimizer steps taken.
    public var steps: Int = 0
    /// Seconds spent in training steps (forward, backward, clipping, update; no eval, no saving).
    public var trainSeconds: Double = 0
    /// Real tokens trained on (summed over steps).
    public var trainTokens: Int = 0
}
