/// A fine-tuning run, named after Hugging Face `TrainingArguments`. Defaults are the GLUE
/// SST-2 recipe (lr 2e-5, batch 256, 5 epochs, Adam (0.9, 0.999, 1e-8), linear decay, seed 42).
public struct TrainingConfig: Sendable, Equatable {
    public enum SaveStrategy: String, Sendable {
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
    public var maxLength: Int = 128
    /// Stop after this many optimizer steps (-1 = run all epochs).
    public var maxSteps: Int = -1
    public var saveStrategy: SaveStrategy = .best
    /// Compute threads; 0 = OMP_NUM_THREADS or every core.
    public var threads: Int = 0
    /// A step event every this many optimizer steps.
    public var loggingSteps: Int = 10
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
    ]

    /// Reads a train config object; every error names its key.
    public static func parse(_ json: JSON) throws -> TrainingConfig {
        guard let members = json.objectMembers else {
            throw SentimentError.invalidArgument("config_json must be a JSON object, got \(json.typeName)", field: "config_json")
        }
        var values: [String: JSON] = [:]
        for m in members {
            guard keys.contains(m.key) else {
                throw SentimentError.invalidArgument(
                    "unknown key \"\(m.key)\" (expected one of: \(keys.joined(separator: ", ")))", field: m.key)
            }
            if m.value != .null { values[m.key] = m.value }
        }
        func string(_ k: String) throws -> String? {
            guard let v = values[k] else { return nil }
            guard let s = v.stringValue, !s.isEmpty else {
                throw SentimentError.invalidArgument("\(k) must be a non-empty string", field: k)
            }
            return s
        }
        func number(_ k: String, _ fallback: Double, _ valid: (Double) -> Bool, _ rule: String) throws -> Double {
            guard let v = values[k] else { return fallback }
            guard let d = v.doubleValue, valid(d) else {
                throw SentimentError.invalidArgument("\(k) must be \(rule), got \(v.serialized())", field: k)
            }
            return d
        }
        func integer(_ k: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = values[k] else { return fallback }
            guard let i = v.int64Value, let n = Int(exactly: i), range.contains(n) else {
                throw SentimentError.invalidArgument(
                    "\(k) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v.serialized())", field: k)
            }
            return n
        }
        func choice<T: RawRepresentable>(_ k: String, _ fallback: T) throws -> T where T.RawValue == String {
            guard let s = try string(k) else { return fallback }
            guard let v = T(rawValue: s) else {
                throw SentimentError.invalidArgument("\(k) \"\(s)\" is not an accepted value", field: k)
            }
            return v
        }
        guard let model = try string("model_dir") else {
            throw SentimentError.invalidArgument("model_dir is required", field: "model_dir")
        }
        guard let train = try string("train_file") else {
            throw SentimentError.invalidArgument("train_file is required", field: "train_file")
        }
        var c = TrainingConfig(modelDirectory: model, trainFile: train)
        c.evalFile = try string("eval_file")
        c.outputDirectory = try string("output_dir")
        c.learningRate = try number("learning_rate", c.learningRate, { $0 > 0 && $0 < 1 }, "in (0, 1)")
        c.trainBatchSize = try integer("train_batch_size", c.trainBatchSize, 1...65_536)
        c.evalBatchSize = try integer("eval_batch_size", c.evalBatchSize, 1...65_536)
        c.numTrainEpochs = try integer("num_train_epochs", c.numTrainEpochs, 1...10_000)
        c.seed = UInt64(try integer("seed", 42, 0...Int.max))
        c.adamBeta1 = try number("adam_beta1", c.adamBeta1, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        c.adamBeta2 = try number("adam_beta2", c.adamBeta2, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        c.adamEpsilon = try number("adam_epsilon", c.adamEpsilon, { $0 > 0 && $0 < 1 }, "in (0, 1)")
        c.weightDecay = try number("weight_decay", c.weightDecay, { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        c.lrSchedulerType = try choice("lr_scheduler_type", c.lrSchedulerType)
        c.warmupRatio = try number("warmup_ratio", c.warmupRatio, { $0 >= 0 && $0 <= 1 }, "in [0, 1]")
        c.maxGradNorm = try number("max_grad_norm", c.maxGradNorm, { $0 >= 0 && $0.isFinite }, ">= 0 (0 = no clipping)")
        c.maxLength = try integer("max_length", c.maxLength, 2...512)
        c.maxSteps = try integer("max_steps", c.maxSteps, -1...Int(Int32.max))
        guard c.maxSteps != 0 else {
            throw SentimentError.invalidArgument("max_steps must be > 0, or -1 for all epochs", field: "max_steps")
        }
        c.saveStrategy = try choice("save_strategy", c.saveStrategy)
        c.threads = try integer("threads", c.threads, 0...1024)
        c.loggingSteps = try integer("logging_steps", c.loggingSteps, 1...Int(Int32.max))
        c.head = try choice("head", c.head)
        c.maxTrainExamples = try integer("max_train_examples", c.maxTrainExamples, 0...Int(Int32.max))
        if let v = values["dropout"] {
            guard let b = v.boolValue else {
                throw SentimentError.invalidArgument("dropout must be true or false", field: "dropout")
            }
            c.dropout = b
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

/// What a run reports while it goes. The callback returns false to cancel.
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
}
