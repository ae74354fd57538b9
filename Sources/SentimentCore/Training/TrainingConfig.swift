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
        /// Keep the checkpoint of the best evaluation by `metric_for_best_model` in output_dir.
        case best
        /// Save once, after the last step.
        case last
        /// Save after every epoch into output_dir/epoch-N (and the last step into output_dir).
        case epoch
        /// Save every `save_steps` steps into output_dir/checkpoint-N (and the last step into output_dir).
        case steps
        /// Do not save.
        case no
    }

    /// When the run evaluates on eval_file (TrainingArguments' `eval_strategy`).
    public enum EvalStrategy: String, Sendable, CaseIterable {
        /// At the end of every epoch.
        case epoch
        /// Every `eval_steps` steps, and after the last step.
        case steps
        /// Never (the table gets each epoch's train loss).
        case no
    }

    /// `resume_from_checkpoint`: a checkpoint folder, or the newest one in output_dir.
    public enum Resume: Sendable, Equatable {
        case path(String)
        case newest
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
    /// `lr_scheduler_kwargs`: cosine's `num_cycles`, polynomial's `power` and `lr_end`.
    public var numCycles: Double = 0.5
    public var power: Double = 1
    public var lrEnd: Double = 1e-7
    public var warmupRatio: Double = 0
    /// Warmup steps; when > 0 it wins over warmup_ratio.
    public var warmupSteps: Int = 0
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
    /// save_strategy "steps": every this many steps (a value in (0, 1): that fraction of the run's steps).
    public var saveSteps: StepInterval = .steps(500)
    /// Keep at most this many epoch-N / checkpoint-N folders (the oldest go first; the best
    /// evaluation's folder is kept). nil: all.
    public var saveTotalLimit: Int? = nil
    /// Whether every checkpoint folder also holds the training state that `resume_from_checkpoint`
    /// continues from. nil: true for save_strategy "steps" and "epoch".
    public var saveOptimizerState: Bool? = nil
    public var resumeFromCheckpoint: Resume? = nil
    public var evalStrategy: EvalStrategy = .epoch
    /// eval_strategy "steps": every this many steps; nil: logging_steps (as TrainingArguments).
    public var evalSteps: StepInterval? = nil
    /// Stop after this many evaluations in a row without an improvement of more than
    /// `early_stopping_threshold` over the best so far. nil: off.
    public var earlyStoppingPatience: Int? = nil
    public var earlyStoppingThreshold: Double = 0
    /// Split each batch into this many micro-batches whose gradients add up to the batch's.
    public var gradientAccumulationSteps: Int = 1
    /// Or: split each batch into micro-batches of at most this many tokens (0 = off).
    public var maxTokensPerMicroBatch: Int = 0
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

    /// Whether checkpoint folders hold the training state.
    public var savesTrainingState: Bool {
        saveStrategy != .no && (saveOptimizerState ?? (saveStrategy == .steps || saveStrategy == .epoch))
    }

    /// A number of steps, or a fraction of the run's steps (TrainingArguments' float form).
    public enum StepInterval: Sendable, Equatable {
        case steps(Int)
        case fraction(Double)

        /// The interval in steps for a run of `total` steps (at least 1).
        public func steps(of total: Int) -> Int {
            switch self {
            case .steps(let n): return n
            case .fraction(let f): return Swift.max(1, Int((Double(total) * f).rounded(.up)))
            }
        }
    }

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
        try int(warmupSteps, "warmup_steps", L.warmupSteps)
        try int(gradientAccumulationSteps, "gradient_accumulation_steps", L.gradientAccumulationSteps)
        try int(maxTokensPerMicroBatch, "max_tokens_per_micro_batch", L.maxTokensPerMicroBatch)
        try real(earlyStoppingThreshold, "early_stopping_threshold", L.earlyStoppingThreshold)
        try real(numCycles, "lr_scheduler_kwargs.num_cycles", L.numCycles)
        try real(power, "lr_scheduler_kwargs.power", L.power)
        try real(lrEnd, "lr_scheduler_kwargs.lr_end", L.lrEnd)
        if let p = earlyStoppingPatience { try int(p, "early_stopping_patience", L.earlyStoppingPatience) }
        if let n = saveTotalLimit { try int(n, "save_total_limit", L.saveTotalLimit) }
        for (interval, field) in [(saveSteps, "save_steps"), (evalSteps, "eval_steps")] {
            switch interval {
            case .steps(let n)?: try int(n, field, L.loggingSteps)
            case .fraction(let f)?: try check(f > 0 && f < 1, field, "a whole number of steps, or a fraction in (0, 1)")
            case nil: break
            }
        }
        if lrSchedulerType == .polynomial {
            try check(learningRate > lrEnd, "lr_scheduler_kwargs.lr_end", "below learning_rate (\(learningRate))")
        }
        if gradientAccumulationSteps > 1, maxTokensPerMicroBatch > 0 {
            throw SentimentError.invalidArgument(
                "set gradient_accumulation_steps or max_tokens_per_micro_batch, not both", field: "max_tokens_per_micro_batch")
        }
        if maxTokensPerMicroBatch > 0 {
            // With R-Drop each sequence runs twice in its micro-batch.
            let longest = maxLength * (rdropAlpha > 0 ? 2 : 1)
            try check(maxTokensPerMicroBatch >= longest, "max_tokens_per_micro_batch",
                      "at least max_length\(rdropAlpha > 0 ? " x 2 (R-Drop)" : "") = \(longest), so every sequence fits")
        }
        if earlyStoppingPatience != nil {
            try check(evalFile != nil && evalStrategy != .no, "early_stopping_patience",
                      "unset unless the run evaluates (eval_file, and eval_strategy \"epoch\" or \"steps\")")
        }
        if resumeFromCheckpoint == .newest, (outputDirectory ?? "").isEmpty {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint true looks in output_dir, which is not set", field: "resume_from_checkpoint")
        }
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
    public static let warmupSteps = 0...Int(Int32.max)
    public static let gradientAccumulationSteps = 1...65_536
    public static let maxTokensPerMicroBatch = 0...Int(Int32.max)
    public static let earlyStoppingPatience = 1...Int(Int32.max)
    public static let saveTotalLimit = 1...Int(Int32.max)
    public static let earlyStoppingThreshold = Real(rule: ">= 0") { $0 >= 0 && $0.isFinite }
    public static let numCycles = Real(rule: "> 0") { $0 > 0 && $0.isFinite }
    public static let power = Real(rule: "> 0") { $0 > 0 && $0.isFinite }
    public static let lrEnd = Real(rule: ">= 0") { $0 >= 0 && $0.isFinite }
}
