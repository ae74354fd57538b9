// sentiment_train and sentiment_train_distributed: parse the train config, run SentimentCore's
// Trainer on the calling thread (as one rank of a Collective over the host's allreduce), and
// turn its events and result into the JSON documents of include/sentiment.h.
import CSystem
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

public typealias AllreduceCallback = @convention(c) (UnsafeMutablePointer<Float>?, Int, UnsafeMutableRawPointer?) -> Int32

@_cdecl("sentiment_train")
public func sentiment_train(_ configJSON: UnsafePointer<CChar>?, _ callback: ProgressCallback?,
                            _ userData: UnsafeMutableRawPointer?, _ outJSON: OutJSON?) -> Int32 {
    Documents.runReturningStatus(outJSON) { try train(configJSON, collective: .single, callback, userData) }
}

@_cdecl("sentiment_train_distributed")
public func sentiment_train_distributed(
    _ configJSON: UnsafePointer<CChar>?, _ rank: Int32, _ worldSize: Int32,
    _ allreduce: AllreduceCallback?, _ allreduceData: UnsafeMutableRawPointer?,
    _ callback: ProgressCallback?, _ userData: UnsafeMutableRawPointer?, _ outJSON: OutJSON?
) -> Int32 {
    Documents.runReturningStatus(outJSON) {
        if worldSize > 1, allreduce == nil {
            throw SentimentError.invalidArgument("allreduce is NULL with world_size \(worldSize)", field: "allreduce")
        }
        let collective = try Collective(rank: Int(rank), worldSize: Int(worldSize)) { buffer in
            allreduce?(buffer.baseAddress, buffer.count, allreduceData) == 0
        }
        return try train(configJSON, collective: collective, callback, userData)
    }
}

/// Both entry points' run: the status and document to return.
private func train(
    _ configJSON: UnsafePointer<CChar>?, collective: Collective, _ callback: ProgressCallback?,
    _ userData: UnsafeMutableRawPointer?
) throws -> (Status, JSON) {
    let config = try TrainingConfig.parse(configJSON)
    // Only a run that saves writes its output_dir, so only such runs claim it (on rank 0).
    let claimed = config.saveStrategy == .no || !collective.isMain ? nil : config.outputDirectory
    let claim = try claimed.map { try ActiveOutputDirectories.shared.claim($0) }
    defer { claim.map { ActiveOutputDirectories.shared.release($0) } }

    let events = TrainingEvents(callback: callback, userData: userData)
    var partial: TrainingResult? = nil
    let result: TrainingResult
    do {
        result = try Trainer.run(config: config, collective: collective, progress: { events.forward($0) },
                                 partial: { partial = $0 })
    } catch let error as SentimentError {
        guard let partial else { throw error }
        return (error.status, Documents.error(error).setting("result", Documents.trainingResult(partial)))
    }
    let document = Documents.trainingResult(result)
    guard result.cancelled else { return (.ok, document) }
    let steps = result.steps
    let by = collective.isDistributed && !events.cancelled ? " by another rank" : ""
    let error = SentimentError(
        .cancelled, steps == 0 ? "training was cancelled\(by) before the first step"
            : "training was cancelled\(by) after step \(steps); \"result\" holds the partial result")
    return (.cancelled, Documents.error(error).setting("result", document))
}

/// Hands training events to the C callback as JSON. After the callback asks to cancel,
/// it is not called again and every later event answers "stop".
final class TrainingEvents {
    private let callback: ProgressCallback?
    private let userData: UnsafeMutableRawPointer?
    private(set) var cancelled = false

    init(callback: ProgressCallback?, userData: UnsafeMutableRawPointer?) {
        self.callback = callback
        self.userData = userData
    }

    /// True to continue the run.
    func forward(_ event: TrainingEvent) -> Bool {
        guard !cancelled else { return false }
        guard let callback else { return true }
        let text = Documents.trainingEvent(event).serialized()
        if text.withCString({ callback($0, userData) }) != 0 { cancelled = true }
        return !cancelled
    }
}

/// Output folders of the training runs in progress in this process. Two runs saving into
/// one folder would overwrite each other's checkpoints, so the second gets SENTIMENT_BUSY.
final class ActiveOutputDirectories: @unchecked Sendable {
    static let shared = ActiveOutputDirectories()

    /// Fork-safe: a child never inherits it held (csystem_fork_safe_mutex_init).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var active: Set<String> = []

    private init() { csystem_fork_safe_mutex_init(mutex) }

    /// Claims `path` (by its canonical form) and returns the key to release, or throws BUSY.
    func claim(_ path: String) throws -> String {
        let key = ActiveOutputDirectories.canonical(path)
        pthread_mutex_lock(mutex)
        let inserted = active.insert(key).inserted
        pthread_mutex_unlock(mutex)
        guard inserted else {
            throw SentimentError(.busy, "output_dir \(path) is being written by another training run in this process",
                                 field: "output_dir")
        }
        return key
    }

    func release(_ key: String) {
        pthread_mutex_lock(mutex)
        active.remove(key)
        pthread_mutex_unlock(mutex)
    }

    /// An absolute path without symlinks, "." or ".." for an existing folder; for a folder
    /// not created yet, its resolved parent plus its name (or the absolute path as written).
    static func canonical(_ path: String) -> String {
        if let resolved = realPath(path) { return resolved }
        var absolute = path
        if !absolute.hasPrefix("/"), let cwd = realPath(".") { absolute = FileSystem.join(cwd, absolute) }
        while absolute.count > 1, absolute.hasSuffix("/") { absolute.removeLast() }
        let parent = FileSystem.directoryName(absolute)
        if let resolved = realPath(parent) { return FileSystem.join(resolved, FileSystem.baseName(absolute)) }
        return absolute
    }

    private static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

// MARK: Documents

extension Documents {
    /// A step loss curve has at most this many points; longer runs are averaged over
    /// buckets of consecutive steps, so a result stays small however long the run.
    static let curvePoints = 2000

    static func trainingEvent(_ event: TrainingEvent) -> JSON {
        switch event {
        case let .step(epoch, step, totalSteps, loss, learningRate, examplesPerSecond):
            return JSON([
                "event": "step", "epoch": JSON(epoch), "step": JSON(step), "total_steps": JSON(totalSteps),
                "loss": JSON(loss), "learning_rate": JSON(learningRate),
                "examples_per_second": JSON(examplesPerSecond),
            ])
        case let .eval(metrics):
            return epochMetrics(metrics).setting("event", "eval")
        case let .saved(path):
            return JSON(["event": "saved", "path": JSON(path)])
        }
    }

    static func epochMetrics(_ m: EpochMetrics) -> JSON {
        func figure(_ metric: TrainingConfig.Metric) -> JSON { m.value(of: metric).map { JSON($0) } ?? .null }
        var row = JSON([
            "epoch": JSON(m.epoch), "step": JSON(m.step), "train_loss": JSON(m.trainLoss),
            "eval_loss": m.evalLoss.map { JSON($0) } ?? .null,
            "eval_accuracy": m.evalAccuracy.map { JSON($0) } ?? .null,
            "eval_macro_f1": figure(.macroF1), "eval_mcc": figure(.mcc),
            "seconds": JSON(m.seconds),
        ])
        if m.evalMetrics?.perLabel.count == 2 { row = row.setting("eval_f1", figure(.f1)) }
        return row
    }

    static func trainingResult(_ r: TrainingResult) -> JSON {
        JSON([
            "epochs": .array(r.epochs.map(epochMetrics)),
            "best_epoch": r.bestEpoch.map { JSON($0) } ?? .null,
            "best_step": r.bestStep.map { JSON($0) } ?? .null,
            "best_metric": r.bestMetric.map { JSON($0) } ?? .null,
            "output_dir": r.outputDirectory.map { JSON($0) } ?? .null,
            "train_examples": JSON(r.trainExamples),
            "train_tokens_per_second": JSON(r.trainTokensPerSecond),
            "isa": JSON(r.isa.name),
            "bf16": JSON(r.bf16),
            "cancelled": JSON(r.cancelled),
            "stop_reason": JSON(r.stopReason.rawValue),
            "steps": JSON(r.steps),
            "resumed_from_step": r.resumedFromStep.map { JSON($0) } ?? .null,
            "labels": .array(r.labels.map { JSON($0) }),
            "notes": .array(r.notes.map { JSON($0) }),
            "curve": lossCurve(r.stepLosses),
        ])
    }

    /// `{"steps": [...], "loss": [...]}`: the loss of every optimizer step (1-based), or
    /// for long runs the mean over each bucket of steps, placed at the bucket's last step.
    static func lossCurve(_ losses: [Double]) -> JSON {
        let bucket = max(1, (losses.count + curvePoints - 1) / curvePoints)
        var steps: [JSON] = []
        var values: [JSON] = []
        var start = 0
        while start < losses.count {
            let end = min(start + bucket, losses.count)
            let mean = losses[start..<end].reduce(0, +) / Double(end - start)
            steps.append(JSON(end))
            values.append(JSON(mean))
            start = end
        }
        return JSON(["steps": .array(steps), "loss": .array(values)])
    }
}
