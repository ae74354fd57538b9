/// A fine-tuning run, named after Hugging Face `TrainingArguments`. Defaults are the GLUE
/// SST-2 recipe (lr 2e-5, batch 256, 5 epochs, Adam (0.9, 0.999, 1e-8), linear decay, seed 42).
public struct TrainingConfig: Sendable, Equatable {
    public enum SaveStrategy: String, Sendable, CaseIterable {
        /// Keep the checkpoint of the epoch with the best eval accuracy in output_dir.
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

    public init(modelDirectory: String, trainFile: String) {
        self.modelDirectory = modelDirectory
        self.trainFile = trainFile
    }

    /// Every key `parse` accepts.
    public static let keys = [
        "model_dir", "train_file", "eval_file", "output_dir", "learning_rate", "train_batch_size",
        "eval_batch_size", "num_train_epochs", "seed", "adam_beta1", "adam_beta2", "adam_epsilon",
        "weight_decay", "lr_scheduler_type", "warmup_ratio", "max_grad_norm", "max_length", "max_steps",
        "save_strategy", "threads", "logging_steps", "head", "max_train_examples", "dropout",
        "layerwise_lr_decay", "ema_decay", "rdrop_alpha",
    ]

    /// Reads a train config object; every error names its key.
    public static func parse(_ json: JSON) throws -> TrainingConfig {
        let f = try JSONFields(json, what: "config_json", allowed: keys)
        var c = TrainingConfig(modelDirectory: try f.requiredString("model_dir"), trainFile: try f.requiredString("train_file"))
        if f.has("eval_file") { c.evalFile = try f.requiredString("eval_file") }
        if f.has("output_dir") { c.outputDirectory = try f.requiredString("output_dir") }
        c.learningRate = try f.double("learning_rate", default: c.learningRate, rule: "in (0, 1)") { $0 > 0 && $0 < 1 }
        c.trainBatchSize = try f.int("train_batch_size", default: c.trainBatchSize, range: 1...65_536)
        c.evalBatchSize = try f.int("eval_batch_size", default: c.evalBatchSize, range: 1...65_536)
        c.numTrainEpochs = try f.int("num_train_epochs", default: c.numTrainEpochs, range: 1...10_000)
        c.seed = UInt64(try f.int("seed", default: 42, range: 0...Int.max))
        c.adamBeta1 = try f.double("adam_beta1", default: c.adamBeta1, rule: "in [0, 1)") { $0 >= 0 && $0 < 1 }
        c.adamBeta2 = try f.double("adam_beta2", default: c.adamBeta2, rule: "in [0, 1)") { $0 >= 0 && $0 < 1 }
        c.adamEpsilon = try f.double("adam_epsilon", default: c.adamEpsilon, rule: "in (0, 1)") { $0 > 0 && $0 < 1 }
        c.weightDecay = try f.double("weight_decay", default: c.weightDecay, rule: "in [0, 1)") { $0 >= 0 && $0 < 1 }
        c.lrSchedulerType = try f.choice("lr_scheduler_type", default: c.lrSchedulerType)
        c.warmupRatio = try f.double("warmup_ratio", default: c.warmupRatio, rule: "in [0, 1]") { $0 >= 0 && $0 <= 1 }
        c.maxGradNorm = try f.double("max_grad_norm", default: c.maxGradNorm, rule: ">= 0 (0 = no clipping)") {
            $0 >= 0 && $0.isFinite
        }
        c.layerwiseLRDecay = try f.double("layerwise_lr_decay", default: c.layerwiseLRDecay, rule: "in (0, 1]") {
            $0 > 0 && $0 <= 1
        }
        c.emaDecay = try f.double("ema_decay", default: c.emaDecay, rule: "in [0, 1) (0 = off)") { $0 >= 0 && $0 < 1 }
        c.rdropAlpha = try f.double("rdrop_alpha", default: c.rdropAlpha, rule: "in [0, 100] (0 = off)") { $0 >= 0 && $0 <= 100 }
        c.maxLength = try f.int("max_length", default: c.maxLength, range: 2...512)
        c.maxSteps = try f.int("max_steps", default: c.maxSteps, range: -1...Int(Int32.max))
        guard c.maxSteps != 0 else {
            throw SentimentError.invalidArgument("max_steps must be > 0, or -1 for all epochs", field: "max_steps")
        }
        c.saveStrategy = try f.choice("save_strategy", default: c.saveStrategy)
        c.threads = try f.int("threads", default: c.threads, range: 0...1024)
        c.loggingSteps = try f.int("logging_steps", default: c.loggingSteps, range: 1...Int(Int32.max))
        c.head = try f.choice("head", default: c.head)
        c.maxTrainExamples = try f.int("max_train_examples", default: c.maxTrainExamples, range: 0...Int(Int32.max))
        c.dropout = try f.bool("dropout", default: c.dropout)
        if c.rdropAlpha > 0, !c.dropout {
            throw SentimentError.invalidArgument("rdrop_alpha needs dropout on (\"dropout\": true)", field: "rdrop_alpha")
        }
        if c.saveStrategy != .no, c.outputDirectory == nil {
            throw SentimentError.invalidArgument(
                "output_dir is required unless save_strategy is \"no\"", field: "output_dir")
        }
        return c
    }
}

/// Metrics of one finished epoch (one row of the result's `epochs` table).
public struct EpochMetrics: Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var evalLoss: Double?
    public var evalAccuracy: Double?
    public var seconds: Double
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
    public var cancelled: Bool
    /// Loss after every optimizer step, for curves.
    public var stepLosses: [Double]
    /// Optimizer steps taken.
    public var steps: Int = 0
    /// Seconds spent in training steps (forward, backward, clipping, update; no eval, no saving).
    public var trainSeconds: Double = 0
    /// Real tokens trained on (summed over steps).
    public var trainTokens: Int = 0
}
