// What a training run reports: its events while it goes, the rows of its table and its result.

/// One row of the result's table: an evaluation (at an epoch's end, or every `eval_steps` steps),
/// or with `eval_strategy` "no" or no eval file, the train loss at an epoch's end.
public struct EpochMetrics: Sendable, Equatable {
    /// The epoch the row's step belongs to (1-based).
    public var epoch: Int
    public var step: Int
    /// The mean loss of the steps since the previous row.
    public var trainLoss: Double
    public var evalLoss: Double?
    public var evalAccuracy: Double?
    /// Seconds since the previous row (training, evaluation and saving).
    public var seconds: Double
    /// Every figure of the evaluation (nil without one).
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
/// its next optimizer step and returns what finished with `cancelled: true`. The callback is the
/// only cancellation point, so with `logging_steps` N a run notices a cancel within N steps.
///
/// - `.step`: every `logging_steps` optimizer steps and after the last; `loss` is the mean over
///   the steps since the previous `.step`, `learningRate` the rate the latest step used,
///   `examplesPerSecond` over those steps' training time.
/// - `.eval`: each row of the table as it is made (see `EpochMetrics`).
/// - `.saved`: after each checkpoint folder is written.
public enum TrainingEvent: Sendable {
    case step(epoch: Int, step: Int, totalSteps: Int, loss: Double, learningRate: Double, examplesPerSecond: Double)
    case eval(EpochMetrics)
    case saved(path: String)
}

/// Why a run ended (the result's `stop_reason`).
public enum StopReason: String, Sendable {
    /// Every epoch ran.
    case finished
    /// `max_steps` steps ran.
    case maxSteps = "max_steps"
    /// `early_stopping_patience` evaluations in a row did not improve.
    case earlyStopping = "early_stopping"
    /// The progress callback asked to stop.
    case cancelled
    /// An error stopped the run (a partial result goes with the error).
    case error
}

/// The outcome of `Trainer.run`.
public struct TrainingResult: Sendable {
    /// The rows of the table (`EpochMetrics`), in step order.
    public var epochs: [EpochMetrics]
    /// The epoch and step of the best evaluation by `metric_for_best_model`, and its value.
    public var bestEpoch: Int?
    public var bestStep: Int? = nil
    public var bestMetric: Double? = nil
    public var outputDirectory: String?
    public var trainExamples: Int
    /// Real (unpadded) tokens per second over the optimizer steps.
    public var trainTokensPerSecond: Double
    /// The matrix instructions the run computed with, and whether its GEMMs ran in bf16.
    public var isa: ISA = .avx2
    public var bf16 = false
    public var cancelled: Bool
    public var stopReason: StopReason = .finished
    /// The label names trained (the saved config's `id2label`).
    public var labels: [String] = []
    /// What the run decided that the caller should know (e.g. a fresh classifier for new labels).
    public var notes: [String] = []
    /// Loss after every optimizer step, for curves (a resumed run includes the steps before it).
    public var stepLosses: [Double]
    /// Optimizer steps taken (a resumed run counts from the start of the original run).
    public var steps: Int = 0
    /// The step a resumed run continued after (nil: it started from step 0).
    public var resumedFromStep: Int? = nil
    /// Seconds spent in training steps (forward, backward, clipping, update; no eval, no saving).
    public var trainSeconds: Double = 0
    /// Real tokens trained on (summed over steps).
    public var trainTokens: Int = 0
}
