// The training state a checkpoint folder holds beside the model, so `resume_from_checkpoint`
// continues a stopped run exactly where it was (the same step losses and final weights, bit
// for bit, as the uninterrupted run):
//
//   training_state.safetensors   F32: "weights.<name>" (the live weights; the folder's model is
//                                the average when ema_decay > 0), "exp_avg.<name>" and
//                                "exp_avg_sq.<name>" (AdamW's moments), "ema.<name>" (the average)
//   trainer_state.json           Hugging Face's fields (global_step, epoch, best_metric,
//                                best_model_checkpoint, log_history) and "sentiment": `RunState`
//                                plus the settings and data fingerprint a resumed run must repeat
//
// The schedule and every random draw are functions of (seed, epoch, step), so the step and the
// position in the epoch's order restore them; nothing else is stored for them.

/// Everything of a run that changes from step to step, besides the tensors.
struct RunState {
    var step = 0
    /// The epoch in progress (1-based) and how many examples of its order are done.
    var epoch = 1
    var position = 0
    var averageUpdates = 0
    /// The best evaluation so far, as "higher is better", and where it was.
    var bestScore: Double? = nil
    var bestEpoch: Int? = nil
    var bestStep: Int? = nil
    var bestMetric: Double? = nil
    var bestCheckpoint: String? = nil
    /// Evaluations in a row without an improvement (early stopping).
    var patience = 0
    var rows: [EpochMetrics] = []
    var stepLosses: [Double] = []
    /// Since the last row, and since the last `.step` event.
    var rowLoss = 0.0, rowSteps = 0
    var logLoss = 0.0, logSteps = 0, logExamples = 0
    var trainSeconds = 0.0, trainTokens = 0
    /// Set when the run ended for good (a resumed run then returns at once).
    var stopReason: StopReason? = nil

    static let tensorsFile = "training_state.safetensors"
    static let jsonFile = "trainer_state.json"
}

/// Reads and writes `RunState` with the run's tensors.
struct TrainingStateFiles {
    let weights: EncoderWeights
    let optimizer: AdamW
    let average: WeightAverage?
    /// The settings that shape the run's trajectory (`Trainer.settings`) and the data's fingerprint.
    let settings: JSON
    let dataHash: String
    let threads: Int
    /// Settings added after states were first saved, with the value older states had.
    static let addedLater: [String: JSON] = ["world_size": JSON(1)]

    /// Writes both files into `directory` (a checkpoint's staging folder).
    func write(_ state: RunState, into directory: String, header: JSON) throws {
        var entries: [SafeTensorsWriter.Entry] = []
        for ((name, w), (m, v)) in zip(weights.namedTensors, optimizer.moments) {
            entries.append(SafeTensorsWriter.Entry(name: "weights." + name, tensor: w))
            entries.append(SafeTensorsWriter.Entry(name: "exp_avg." + name, tensor: m))
            entries.append(SafeTensorsWriter.Entry(name: "exp_avg_sq." + name, tensor: v))
        }
        for (name, a) in average?.average.namedTensors ?? [] {
            entries.append(SafeTensorsWriter.Entry(name: "ema." + name, tensor: a))
        }
        try SafeTensorsWriter.write(entries, metadata: ["format": "sentiment-training-state"],
                                    to: FileSystem.join(directory, RunState.tensorsFile))
        var json = header
        json = json.setting("sentiment", JSON([
            "version": 1, "settings": settings, "train_data_hash": JSON(dataHash), "threads": JSON(threads),
            "optimizer_steps": JSON(optimizer.step), "state": state.json,
        ]))
        try FileSystem.writeAtomically(FileSystem.join(directory, RunState.jsonFile)) {
            try $0.write(Array((json.serialized(indent: 1) + "\n").utf8))
        }
    }

    /// Reads the state in `directory` into the tensors and returns it. Errors name
    /// resume_from_checkpoint (missing state, another run's settings or data) or the file.
    func read(from directory: String, notes: inout [String]) throws -> RunState {
        let jsonPath = FileSystem.join(directory, RunState.jsonFile)
        let tensorPath = FileSystem.join(directory, RunState.tensorsFile)
        for path in [jsonPath, tensorPath] where FileSystem.kind(path) != .file {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint \(directory) has no training state (\(FileSystem.baseName(path)) is missing): "
                    + "save with save_optimizer_state true to resume", field: "resume_from_checkpoint")
        }
        let doc: JSON
        do { doc = try JSON.parse(try FileSystem.readFile(jsonPath, limit: 256 << 20)) } catch var e as SentimentError {
            if e.status == .invalidArgument { e.status = .format }
            e.message = "\(jsonPath): \(e.message)"
            e.field = jsonPath
            throw e
        }
        let top = try JSONObjectReader(doc, .file(jsonPath), unknownKeys: .ignore)
        guard let mine = top.value("sentiment") else { throw top.error("has no \"sentiment\" section", key: "sentiment") }
        let r = try JSONObjectReader(mine, .file(jsonPath), unknownKeys: .ignore)
        guard let stored = r.value("settings")?.objectMembers else { throw r.error("has no settings", key: "settings") }
        for member in settings.objectMembers ?? [] {
            let theirs = stored.first { $0.key == member.key }?.value ?? TrainingStateFiles.addedLater[member.key] ?? .null
            guard theirs == member.value else {
                throw SentimentError.invalidArgument(
                    "resume_from_checkpoint \(directory) was trained with \(member.key) \(theirs.serialized()), "
                        + "this run has \(member.value.serialized()); a resumed run must repeat the original's settings",
                    field: member.key)
            }
        }
        guard try r.requiredString("train_data_hash") == dataHash else {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint \(directory) was trained on other data than this train_file "
                    + "(its examples, order or labels differ)", field: "train_file")
        }
        if let t = try r.int("threads", in: 0...Int(Int32.max)), t != threads {
            notes.append("resumed with \(threads) threads where the run had \(t): the steps may differ in the last bits")
        }
        guard let stateJSON = r.value("state") else { throw r.error("has no state", key: "state") }
        let state = try RunState(json: stateJSON, path: jsonPath)
        let steps = try r.requiredInt("optimizer_steps", in: 0...Int(Int32.max))

        let file = try SafeTensorsFile(path: tensorPath)
        func load(_ name: String, into t: Tensor) throws {
            guard let e = file[name] else {
                throw SentimentError.invalidArgument(
                    "resume_from_checkpoint \(directory): \(RunState.tensorsFile) has no tensor \(name): it is not a state of "
                        + "this model", field: "resume_from_checkpoint")
            }
            guard e.shape == t.shape, e.dtype == .f32 else {
                throw SentimentError.invalidArgument(
                    "resume_from_checkpoint \(directory): tensor \(name) is \(e.dtype.rawValue) \(e.shape), this model's "
                        + "is F32 \(t.shape): it is not a state of this model", field: "resume_from_checkpoint")
            }
            try file.withRawBytes(name) { raw in
                guard let base = raw.baseAddress, raw.count == t.count * 4 else { return }
                UnsafeMutableRawPointer(t.data).copyMemory(from: base, byteCount: t.count * 4)
            }
        }
        let expected = weights.namedTensors.count * 3 + (average?.average.namedTensors.count ?? 0)
        guard file.names.count == expected else {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint \(directory): \(RunState.tensorsFile) holds \(file.names.count) tensors, this run "
                    + "needs \(expected): it is not a state of this model and settings", field: "resume_from_checkpoint")
        }
        for ((name, w), (m, v)) in zip(weights.namedTensors, optimizer.moments) {
            try load("weights." + name, into: w)
            try load("exp_avg." + name, into: m)
            try load("exp_avg_sq." + name, into: v)
        }
        if let average {
            for (name, a) in average.average.namedTensors { try load("ema." + name, into: a) }
            average.restore(updates: state.averageUpdates)
        }
        optimizer.restore(step: steps)
        return state
    }

    /// The newest checkpoint with a training state in `outputDirectory`: its epoch-N and
    /// checkpoint-N folders and the folder itself, by their global_step.
    static func newest(in outputDirectory: String) throws -> String {
        var best: (step: Int, path: String)? = nil
        FileSystem.recoverAbandonedStaging(for: outputDirectory)   // subfolders a killed save moved
        let names = (try? FileSystem.listDirectory(outputDirectory)) ?? []
        for dir in [outputDirectory] + names.filter({ CheckpointFolders.step(ofName: $0) != nil }).map({ FileSystem.join(outputDirectory, $0) }) {
            let path = FileSystem.join(dir, RunState.jsonFile)
            guard FileSystem.kind(path) == .file, FileSystem.kind(FileSystem.join(dir, RunState.tensorsFile)) == .file,
                  let bytes = try? FileSystem.readFile(path, limit: 256 << 20), let doc = try? JSON.parse(bytes),
                  let step = doc["global_step"]?.int64Value.map(Int.init)
            else { continue }
            if best.map({ step > $0.step }) ?? true { best = (step, dir) }
        }
        guard let best else {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint true: output_dir \(outputDirectory) holds no checkpoint with a training state",
                field: "resume_from_checkpoint")
        }
        return best.path
    }
}

/// The rotation folders of output_dir: epoch-N (save_strategy "epoch") and checkpoint-N ("steps").
enum CheckpointFolders {
    static func name(epoch: Int) -> String { "epoch-\(epoch)" }
    static func name(step: Int) -> String { "checkpoint-\(step)" }

    /// N of "epoch-N" or "checkpoint-N"; nil for other names.
    static func step(ofName name: String) -> Int? {
        for prefix in ["epoch-", "checkpoint-"] where name.hasPrefix(prefix) {
            let digits = name.dropFirst(prefix.count)
            if !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int(digits) { return n }
        }
        return nil
    }

    /// Keeps the newest `limit` folders of `prefix` in `directory` and `keep` (the best
    /// evaluation's, as Hugging Face keeps it), and removes the others. Returns those removed.
    @discardableResult
    static func rotate(_ directory: String, prefix: String, limit: Int, keep: String?) -> [String] {
        let names = ((try? FileSystem.listDirectory(directory)) ?? []).filter { $0.hasPrefix(prefix) }
        let numbered = names.compactMap { n in step(ofName: n).map { (n, $0) } }.sorted { $0.1 < $1.1 }
        var removed: [String] = []
        for (name, _) in numbered.dropLast(limit) where keep.map({ FileSystem.baseName($0) != name }) ?? true {
            FileSystem.removeFolder(name, in: directory)   // fd-relative, never through a symlink
            removed.append(FileSystem.join(directory, name))
        }
        return removed
    }
}

// MARK: JSON form of RunState

extension RunState {
    var json: JSON {
        func opt(_ v: Int?) -> JSON { v.map { JSON($0) } ?? .null }
        func opt(_ v: Double?) -> JSON { v.map { JSON($0) } ?? .null }
        return JSON([
            "step": JSON(step), "epoch": JSON(epoch), "position": JSON(position),
            "average_updates": JSON(averageUpdates),
            "best_score": opt(bestScore), "best_epoch": opt(bestEpoch), "best_step": opt(bestStep),
            "best_metric": opt(bestMetric), "best_checkpoint": bestCheckpoint.map { JSON($0) } ?? .null,
            "patience": JSON(patience),
            "rows": .array(rows.map { row in
                JSON([
                    "epoch": JSON(row.epoch), "step": JSON(row.step), "train_loss": JSON(row.trainLoss),
                    "eval_loss": opt(row.evalLoss), "seconds": JSON(row.seconds),
                    "confusion": row.evalMetrics.map { m in .array(m.confusion.map { .array($0.map { JSON($0) }) }) } ?? .null,
                ])
            }),
            "step_losses": .array(stepLosses.map { JSON($0) }),
            "row_loss": JSON(rowLoss), "row_steps": JSON(rowSteps),
            "log_loss": JSON(logLoss), "log_steps": JSON(logSteps), "log_examples": JSON(logExamples),
            "train_seconds": JSON(trainSeconds), "train_tokens": JSON(trainTokens),
            "stop_reason": stopReason.map { JSON($0.rawValue) } ?? .null,
        ])
    }

    init(json: JSON, path: String) throws {
        let r = try JSONObjectReader(json, .file(path), unknownKeys: .ignore)
        let count = 0...Int(Int64(Int32.max) * 64)
        func number(_ v: JSON?, _ key: String) throws -> Double {
            guard let d = v?.doubleValue else { throw r.error("\(key) is not a number", key: key) }
            return d
        }
        func optionalNumber(_ key: String) throws -> Double? { r.has(key) ? try number(r.value(key), key) : nil }
        step = try r.requiredInt("step", in: count)
        epoch = try r.requiredInt("epoch", in: 1...Int(Int32.max))
        position = try r.requiredInt("position", in: count)
        averageUpdates = try r.requiredInt("average_updates", in: count)
        bestScore = try optionalNumber("best_score")
        bestEpoch = try r.int("best_epoch", in: count)
        bestStep = try r.int("best_step", in: count)
        bestMetric = try optionalNumber("best_metric")
        bestCheckpoint = try r.string("best_checkpoint")
        patience = try r.requiredInt("patience", in: count)
        rowLoss = try number(r.value("row_loss"), "row_loss")
        rowSteps = try r.requiredInt("row_steps", in: count)
        logLoss = try number(r.value("log_loss"), "log_loss")
        logSteps = try r.requiredInt("log_steps", in: count)
        logExamples = try r.requiredInt("log_examples", in: count)
        trainSeconds = try number(r.value("train_seconds"), "train_seconds")
        trainTokens = try r.requiredInt("train_tokens", in: count)
        if let reason = try r.string("stop_reason") {
            guard let s = StopReason(rawValue: reason) else { throw r.error("stop_reason \"\(reason.prefix(40))\" is unknown", key: "stop_reason") }
            stopReason = s
        }
        guard let losses = r.value("step_losses")?.arrayValue, losses.count == step else {
            throw r.error("step_losses must list \(step) numbers", key: "step_losses")
        }
        stepLosses = try losses.map { try number($0, "step_losses") }
        rows = try (r.value("rows")?.arrayValue ?? []).map { row in
            let m = try JSONObjectReader(row, .file(path), unknownKeys: .ignore)
            var metrics = EpochMetrics(
                epoch: try m.requiredInt("epoch", in: 1...Int(Int32.max)), step: try m.requiredInt("step", in: count),
                trainLoss: try number(m.value("train_loss"), "train_loss"),
                evalLoss: m.has("eval_loss") ? try number(m.value("eval_loss"), "eval_loss") : nil,
                evalAccuracy: nil, seconds: try number(m.value("seconds"), "seconds"))
            if let confusion = m.value("confusion")?.arrayValue {
                let matrix = confusion.map { $0.arrayValue?.compactMap { $0.int64Value.map(Int.init) } ?? [] }
                guard !matrix.isEmpty, matrix.allSatisfy({ $0.count == matrix.count }) else {
                    throw m.error("confusion must be a square matrix of counts", key: "confusion")
                }
                let figures = ClassificationMetrics(confusion: matrix)
                metrics.evalMetrics = figures
                metrics.evalAccuracy = figures.accuracy
            }
            return metrics
        }
    }
}
