// The training loop (Trainer.run sets it up):
//
//   for each epoch: its order (Trainer.order: a shuffle of (seed, epoch)); buffers sized once
//   for its largest micro-batch
//   for each batch of train_batch_size:
//       micro-batches (gradient_accumulation_steps or max_tokens_per_micro_batch; MicroBatches):
//       loss and gradients added up, each weighted by its share of the batch, dropout masks from
//       (seed, step, micro-batch); rdrop_alpha > 0: each micro-batch twice plus the KL term
//       stop on a NaN/inf loss; clip the global gradient norm (max_grad_norm)
//       AdamW step at the schedule's rate (scaled per layer by layerwise_lr_decay)
//       fold the weights into their moving average (ema_decay > 0)
//       every logging_steps: a `.step` event (mean loss since the last one)
//       a row of the table per eval_strategy: evaluate on eval_file (with the averaged weights
//       when ema_decay > 0), `.eval` event, the best by metric_for_best_model, early stopping
//       save per save_strategy, with the training state (TrainingState.swift) when
//       save_optimizer_state; save_total_limit removes the oldest rotation folders
//
// Everything that changes from step to step lives in `state` (RunState), which is what a
// checkpoint's training state holds and a resumed run starts from.
//
// On several ranks (Collective.swift) each runs its shard of every batch and the gradients are
// summed before the step; rank 0 evaluates (every rank gets the figures) and saves.

final class TrainingRun {
    /// The tokenized data.
    struct Data {
        var ids: [[Int32]]
        var types: [[Int32]]?
        var labels: [Int]
        var eval: (ids: [[Int32]], types: [[Int32]]?, labels: [Int])?
    }

    let config: TrainingConfig
    let checkpoint: LoadedCheckpoint
    let data: Data
    let hooks: Trainer.Hooks
    let collective: Collective
    /// The gradients' sum over the ranks (nil on one rank).
    let gradientSum: GradientSum?
    var weights: EncoderWeights { checkpoint.weights }
    let stepper: GradientStep
    let gradients: EncoderWeights
    let gradientTensors: [Tensor]
    let optimizer: AdamW
    let average: WeightAverage?
    /// What evaluation and checkpoints see.
    var trained: EncoderWeights { average?.average ?? weights }
    let evaluator: EncoderForward
    let schedule: LearningRateSchedule
    let stateFiles: TrainingStateFiles
    let totalSteps: Int, stepsPerEpoch: Int, epochs: Int
    /// 2 with R-Drop (each sequence runs twice), else 1.
    let copies: Int
    let evalEvery: Int, saveEvery: Int
    var state = RunState()
    var result: TrainingResult
    private var rowStart = 0.0

    init(
        config: TrainingConfig, checkpoint: LoadedCheckpoint, data: Data, threads: Int, hooks: Trainer.Hooks,
        collective: Collective = .single
    ) throws {
        self.config = config
        self.checkpoint = checkpoint
        self.data = data
        self.hooks = hooks
        self.collective = collective
        let weights = checkpoint.weights, model = weights.config
        let n = data.labels.count, batchSize = config.trainBatchSize
        stepsPerEpoch = (n + batchSize - 1) / batchSize
        totalSteps = config.maxSteps > 0 ? config.maxSteps : stepsPerEpoch * config.numTrainEpochs
        epochs = config.maxSteps > 0 ? (config.maxSteps + stepsPerEpoch - 1) / stepsPerEpoch : config.numTrainEpochs
        copies = config.rdropAlpha > 0 ? 2 : 1
        evalEvery = (config.evalSteps ?? .steps(config.loggingSteps)).steps(of: totalSteps)
        saveEvery = config.saveSteps.steps(of: totalSteps)
        var s = LearningRateSchedule(
            kind: config.lrSchedulerType, baseRate: Float(config.learningRate),
            warmupSteps: LearningRateSchedule.warmupSteps(steps: config.warmupSteps, ratio: config.warmupRatio, totalSteps: totalSteps),
            totalSteps: totalSteps)
        (s.numCycles, s.power, s.lrEnd) = (config.numCycles, config.power, config.lrEnd)
        schedule = s
        var hyper = AdamW.Hyperparameters()
        hyper.beta1 = Float(config.adamBeta1)
        hyper.beta2 = Float(config.adamBeta2)
        hyper.epsilon = Float(config.adamEpsilon)
        hyper.weightDecay = Float(config.weightDecay)
        stepper = try GradientStep(weights: weights, bf16: config.bf16)
        stepper.rdropAlpha = config.rdropAlpha
        gradients = try EncoderWeights.zeros(like: weights)
        gradientTensors = gradients.namedTensors.map(\.tensor)
        gradientSum = collective.isDistributed ? try GradientSum(gradientTensors) : nil
        let parameters = weights.namedTensors
        optimizer = try AdamW(
            parameters: parameters, hyper: hyper,
            rateScales: AdamW.layerwiseRateScales(
                parameters.map(\.name), layers: model.numLayers, decay: Float(config.layerwiseLRDecay)))
        average = config.emaDecay > 0 ? try WeightAverage(of: weights, decay: config.emaDecay) : nil
        evaluator = try EncoderForward(weights: average?.average ?? weights, packing: .none)
        stateFiles = TrainingStateFiles(
            weights: weights, optimizer: optimizer, average: average,
            settings: TrainingRun.settings(config, labels: model.labels, worldSize: collective.worldSize),
            dataHash: TrainingRun.hash(data), threads: threads)
        result = TrainingResult(
            epochs: [], bestEpoch: nil, outputDirectory: config.saveStrategy == .no ? nil : config.outputDirectory,
            trainExamples: n, trainTokensPerSecond: 0, cancelled: false, stepLosses: [])
        result.isa = try ISA.active()
        result.bf16 = config.bf16
        result.labels = model.labels
    }

    /// Continues from the training state in `directory` (see TrainingState.swift).
    func resume(from directory: String) throws {
        state = try stateFiles.read(from: directory, notes: &result.notes)
        result.resumedFromStep = state.step
    }

    /// Runs the loop; on an error, `partial` gets what finished before it is rethrown.
    func run(progress: (TrainingEvent) -> Bool, partial: ((TrainingResult) -> Void)? = nil) throws -> TrainingResult {
        do {
            return try loop(progress: progress)
        } catch {
            partial?(finish(.error))
            throw error
        }
    }

    private func loop(progress: (TrainingEvent) -> Bool) throws -> TrainingResult {
        let n = data.labels.count
        var stop = state.stopReason
        rowStart = Clock.now()
        epochLoop: while stop == nil, state.epoch <= epochs {
            let order = Trainer.order(n, seed: config.seed, epoch: state.epoch)
            if state.position < n { try reserve(order) }
            while stop == nil, state.position < n, state.step < totalSteps {
                let chunk = Array(order[state.position..<Swift.min(n, state.position + config.trainBatchSize)])
                let step = try trainStep(chunk)
                state.position += chunk.count
                state.step += 1
                state.trainSeconds += step.seconds
                state.trainTokens += step.tokens
                state.stepLosses.append(step.loss)
                state.rowLoss += step.loss; state.rowSteps += 1
                state.logLoss += step.loss; state.logSteps += 1; state.logExamples += chunk.count
                logSeconds += step.seconds
                var cancelled = false
                if state.step % config.loggingSteps == 0 || state.step == totalSteps {
                    let keepGoing = progress(.step(
                        epoch: state.epoch, step: state.step, totalSteps: totalSteps,
                        loss: state.logLoss / Double(state.logSteps), learningRate: Double(step.lr),
                        examplesPerSecond: Double(state.logExamples) / Swift.max(logSeconds, 1e-9)))
                    state.logLoss = 0; state.logSteps = 0; state.logExamples = 0; logSeconds = 0
                    if !keepGoing {
                        // Several ranks stop together, after the step's row and save (afterStep's vote).
                        guard collective.isDistributed else {
                            stop = .cancelled
                            break epochLoop
                        }
                        cancelled = true
                    }
                }
                stop = try afterStep(cancelled: cancelled, progress: progress)
            }
            if state.position >= n {
                state.epoch += 1
                state.position = 0
            }
        }
        return finish(stop ?? .finished)
    }

    /// The result of the steps run so far, stopped for `stop`.
    func finish(_ stop: StopReason) -> TrainingResult {
        result.epochs = state.rows
        (result.bestEpoch, result.bestStep, result.bestMetric) = (state.bestEpoch, state.bestStep, state.bestMetric)
        result.stepLosses = state.stepLosses
        result.steps = state.step
        result.stopReason = stop
        result.cancelled = stop == .cancelled
        result.trainSeconds = state.trainSeconds
        result.trainTokens = state.trainTokens
        result.trainTokensPerSecond = state.trainSeconds > 0 ? Double(state.trainTokens) / state.trainSeconds : 0
        return result
    }

    /// Training seconds since the last `.step` event (not part of the saved state).
    private var logSeconds = 0.0

    // MARK: One step

    /// One optimizer step on the examples `chunk` (indices into the data).
    private func trainStep(_ chunk: [Int]) throws -> (loss: Double, lr: Float, seconds: Double, tokens: Int) {
        let t0 = Clock.now()
        let shards = microBatches(chunk.map { data.ids[$0].count })
        let micros = shards.reduce(0) { $0 + $1.count }
        // Dropout masks follow the micro-batch's place in the whole step, whichever rank runs it.
        let firstMicro = shards[..<collective.rank].reduce(0) { $0 + $1.count }
        hooks.beforeStep?(state.step, weights)
        var loss = 0.0, tokens = 0
        var failure: Error? = nil
        do {
            let mine = shards[collective.rank]
            if mine.isEmpty { gradientTensors.forEach { $0.fill(0) } }
            for (k, range) in mine.enumerated() {
                let members = chunk[range]
                let sequences = members.map { data.ids[$0] }, labels = members.map { data.labels[$0] }
                let types = data.types.map { t in members.map { t[$0] } }
                let batch = try PackedBatch(
                    sequences: copies == 2 ? sequences + sequences : sequences,
                    tokenTypes: types.map { copies == 2 ? $0 + $0 : $0 })
                // Each micro-batch's mean loss weighs its share of the batch's examples.
                let share = micros == 1 ? 1 : Double(members.count) / Double(chunk.count)
                let dropoutSeed = config.dropout
                    ? Trainer.dropoutSeed(config.seed, step: state.step, micro: firstMicro + k) : nil
                do {
                    let l = try stepper.lossAndGradients(
                        batch: batch, labels: copies == 2 ? labels + labels : labels, gradients: gradients,
                        dropoutSeed: dropoutSeed, lossScale: Float(share), accumulate: k > 0)
                    loss += micros == 1 ? l : share * l
                } catch let e as SentimentError where e.status == .noMemory {
                    throw outOfMemory(e, "step \(state.step + 1) (\(batch.count) sequences, \(batch.totalTokens) tokens)")
                }
                tokens += batch.totalTokens / copies
            }
        } catch {
            failure = error
        }
        if let gradientSum {
            // Every rank takes part in the sum, also one that failed, so none is left waiting.
            let sums = try gradientSum.sum(
                collective, extras: [Float(loss), Float(tokens), failure == nil ? 0 : 1], step: state.step + 1)
            if let failure { throw failure }
            if sums[2] > 0 { throw collective.peerFailed(Int(sums[2]), at: "step \(state.step + 1)") }
            (loss, tokens) = (Double(sums[0]), Int(sums[1]))
        } else if let failure {
            throw failure
        }
        guard loss.isFinite else {
            throw SentimentError(
                .error,
                "loss became NaN at step \(state.step + 1) (epoch \(state.epoch), loss \(loss)); training stopped and "
                    + "checkpoints saved before it are kept; try a lower learning_rate",
                field: "learning_rate")
        }
        let norm = config.maxGradNorm > 0
            ? clipGradientNorm(gradientTensors, maxNorm: Float(config.maxGradNorm))
            : gradientNorm(gradientTensors)
        guard norm.isFinite else {
            throw SentimentError(
                .error,
                "loss became NaN at step \(state.step + 1) (epoch \(state.epoch)): the gradient norm is \(norm) with loss "
                    + "\(loss); training stopped and checkpoints saved before it are kept; try a lower learning_rate",
                field: "learning_rate")
        }
        let lr = schedule.rate(afterSteps: state.step)
        optimizer.update(gradients: gradientTensors, lr: lr)
        average?.update()
        state.averageUpdates = average?.updates ?? 0
        return (loss, lr, Clock.now() - t0, tokens)
    }

    /// Sizes the buffers for the largest micro-batch this rank runs in the epoch with this order.
    private func reserve(_ order: [Int]) throws {
        let n = order.count, batchSize = config.trainBatchSize
        var largest = BatchShape()
        for lo in stride(from: 0, to: n, by: batchSize) {
            let lengths = order[lo..<Swift.min(n, lo + batchSize)].map { data.ids[$0].count }
            for r in microBatches(lengths)[collective.rank] {
                largest = largest.union(BatchShape(lengths: Array(repeating: lengths[r], count: copies).joined()))
            }
        }
        do {
            try stepper.reserve(largest)
        } catch let e as SentimentError where e.status == .noMemory {
            throw outOfMemory(e, "epoch \(state.epoch)'s largest batch (\(largest.sequences) sequences, \(largest.tokens) tokens)")
        }
    }

    /// The micro-batches of a batch of sequences with these lengths, per rank.
    private func microBatches(_ lengths: [Int]) -> [[Range<Int>]] {
        MicroBatches.shards(
            lengths: lengths, ranks: collective.worldSize, parts: config.gradientAccumulationSteps,
            maxTokens: config.maxTokensPerMicroBatch, copies: copies)
    }

    /// A NOMEM error of `what`, with what to change.
    private func outOfMemory(_ error: SentimentError, _ what: String) -> SentimentError {
        var e = error
        e.message = "\(what): \(e.message); lower train_batch_size or max_length, or split batches with "
            + "gradient_accumulation_steps (checkpoints saved before it are kept)"
        e.field = "train_batch_size"
        return e
    }

    // MARK: After a step: the table, early stopping, saving

    /// Makes the step's row (if one is due), saves what save_strategy asks for and returns why
    /// the run stops after this step (nil: it goes on). `cancelled`: the step's event asked to
    /// stop (on several ranks, which all stop here when one does).
    private func afterStep(cancelled: Bool, progress: (TrainingEvent) -> Bool) throws -> StopReason? {
        let epochEnds = state.position >= data.labels.count
        let final = state.step >= totalSteps
        var stop: StopReason? = final ? (config.maxSteps > 0 ? .maxSteps : .finished) : nil
        let rowDue = config.evalStrategy == .steps ? state.step % evalEvery == 0 || final : epochEnds || final
        var keepGoing = !cancelled
        var improved = false
        if rowDue {
            let (row, better) = try makeRow()
            improved = better
            if let p = config.earlyStoppingPatience, state.patience >= p, stop == nil {
                stop = .earlyStopping
                result.notes.append(
                    "stopped early after step \(state.step) (epoch \(state.epoch)): \(p) evaluations without an improvement "
                        + "of eval_\(config.metricForBestModel.rawValue) by more than \(config.earlyStoppingThreshold)"
                        + (state.bestMetric.map { "; the best was \($0) at step \(state.bestStep ?? 0)" } ?? ""))
            }
            keepGoing = progress(.eval(row))
        }
        // A run that ends says so in the state it saves (resuming it returns at once).
        let last = stop != nil
        if last { state.stopReason = stop }

        var targets: [String] = []
        var rotation: (folder: String, prefix: String)? = nil
        if let out = config.outputDirectory, collective.isMain {
            switch config.saveStrategy {
            case .no: break
            case .last: break
            case .best: if rowDue && improved { targets = [out] }
            case .epoch:
                if epochEnds || final { rotation = (CheckpointFolders.name(epoch: state.epoch), "epoch-") }
            case .steps:
                if state.step % saveEvery == 0 { rotation = (CheckpointFolders.name(step: state.step), "checkpoint-") }
            }
            if let rotation { targets.append(FileSystem.join(out, rotation.folder)) }
            if last, config.saveStrategy != .no, config.saveStrategy != .best { targets.append(out) }
            if let rotation, improved { state.bestCheckpoint = FileSystem.join(out, rotation.folder) }
        }
        var failure: Error? = nil
        do {
            for dir in targets {
                try save(dir)
                keepGoing = progress(.saved(path: dir)) && keepGoing
            }
        } catch {
            failure = error
        }
        if let rotation, let limit = config.saveTotalLimit, let out = config.outputDirectory, failure == nil {
            CheckpointFolders.rotate(out, prefix: rotation.prefix, limit: limit, keep: state.bestCheckpoint)
        }
        let votes = try collective.tally(failure != nil ? .failed : keepGoing ? .goOn : .cancel, at: state.step)
        if let failure { throw failure }
        if votes.failures > 0 { throw collective.peerFailed(votes.failures, at: "step \(state.step)'s save") }
        if votes.cancels > 0 && stop == nil { stop = .cancelled }
        return stop
    }

    /// Appends the row of this step to the table (evaluating when the run does) and updates the
    /// best evaluation and the early-stopping count. Returns the row and whether it is the best so
    /// far (without an evaluation every row counts as the best, for save_strategy "best").
    private func makeRow() throws -> (EpochMetrics, Bool) {
        var row = EpochMetrics(
            epoch: state.epoch, step: state.step, trainLoss: state.rowLoss / Double(Swift.max(state.rowSteps, 1)),
            evalLoss: nil, evalAccuracy: nil, seconds: 0)
        if config.evalStrategy != .no, config.evalFile != nil {
            let m = try evaluation()
            row.evalLoss = m.loss
            row.evalAccuracy = m.metrics.accuracy
            row.evalMetrics = m.metrics
        }
        var value = row.value(of: config.metricForBestModel)
        if let scripted = hooks.scriptedMetric, value != nil { value = scripted(state.step) }
        var better = true
        if let value {
            let score = config.higherIsBetter ? value : -value
            better = state.bestScore.map { score > $0 } ?? true
            let enough = state.bestScore.map { score - $0 > config.earlyStoppingThreshold } ?? true
            state.patience = better && enough ? 0 : state.patience + 1
            if better {
                (state.bestScore, state.bestEpoch, state.bestStep, state.bestMetric) = (score, state.epoch, state.step, value)
            }
        }
        let now = Clock.now()
        row.seconds = now - rowStart
        rowStart = now
        state.rows.append(row)
        state.rowLoss = 0
        state.rowSteps = 0
        return (row, better)
    }

    /// The evaluation on eval_file: rank 0's, on every rank (the loss in two floats, so that
    /// every rank gets the same Double).
    private func evaluation() throws -> (loss: Double, metrics: ClassificationMetrics) {
        var figures: (loss: Double, metrics: ClassificationMetrics)? = nil
        var failure: Error? = nil
        if collective.isMain, let e = data.eval {
            do {
                figures = try Trainer.evaluate(
                    evaluator, sequences: e.ids, tokenTypes: e.types, labels: e.labels, batchSize: config.evalBatchSize)
            } catch {
                failure = error
            }
        }
        guard collective.isDistributed else {
            guard let figures else { throw failure ?? SentimentError(.internal, "eval_file was not read") }
            return figures
        }
        let classes = weights.config.numLabels
        var mine = [Float](repeating: 0, count: 3 + classes * classes)
        if let f = figures {
            let high = Float(f.loss)
            mine[1] = high
            mine[2] = Float(f.loss - Double(high))
            for (i, count) in f.metrics.confusion.joined().enumerated() { mine[3 + i] = Float(count) }
        } else if collective.isMain {
            mine[0] = 1
        }
        let sums = try collective.sum(mine, what: "step \(state.step)'s evaluation")
        if let failure { throw failure }
        if sums[0] > 0 { throw collective.peerFailed(1, at: "step \(state.step)'s evaluation") }
        let confusion = (0..<classes).map { t in (0..<classes).map { p in Int(sums[3 + t * classes + p]) } }
        return (Double(sums[1]) + Double(sums[2]), ClassificationMetrics(confusion: confusion))
    }

    private func save(_ directory: String) throws {
        let header = huggingFaceState()
        let writeState: ((String) throws -> Void)? = config.savesTrainingState
            ? { [self] staging in try stateFiles.write(state, into: staging, header: header) } : nil
        try Checkpoint.save(
            weights: trained, rawConfig: checkpoint.rawConfig, tokenizerFrom: config.modelDirectory, to: directory,
            metadata: ["trained_by": "sentiment", "global_step": String(state.step)], alsoWrite: writeState)
    }

    /// trainer_state.json's Hugging Face fields.
    private func huggingFaceState() -> JSON {
        let perEpoch = Double(stepsPerEpoch)
        func epochFraction(_ step: Int) -> JSON { JSON(Double(step) / perEpoch) }
        let history: [JSON] = state.rows.map { row in
            var entry = JSON(["epoch": epochFraction(row.step), "step": JSON(row.step), "loss": JSON(row.trainLoss)])
            if let loss = row.evalLoss { entry = entry.setting("eval_loss", JSON(loss)) }
            for metric in [TrainingConfig.Metric.accuracy, .macroF1, .mcc] {
                if let v = row.value(of: metric) { entry = entry.setting("eval_" + metric.rawValue, JSON(v)) }
            }
            return entry
        }
        return JSON([
            "global_step": JSON(state.step), "epoch": epochFraction(state.step), "max_steps": JSON(totalSteps),
            "num_train_epochs": JSON(epochs), "train_batch_size": JSON(config.trainBatchSize),
            "logging_steps": JSON(config.loggingSteps), "eval_steps": JSON(evalEvery), "save_steps": JSON(saveEvery),
            "best_metric": state.bestMetric.map { JSON($0) } ?? .null,
            "best_model_checkpoint": state.bestCheckpoint.map { JSON($0) } ?? .null,
            "log_history": .array(history),
        ])
    }

    // MARK: What a resumed run must repeat

    /// The settings that shape the weights' trajectory, as the training state records them.
    static func settings(_ c: TrainingConfig, labels: [String], worldSize: Int) -> JSON {
        JSON([
            "learning_rate": JSON(c.learningRate), "train_batch_size": JSON(c.trainBatchSize),
            "num_train_epochs": JSON(c.numTrainEpochs), "max_steps": JSON(c.maxSteps), "seed": JSON(String(c.seed)),
            "adam_beta1": JSON(c.adamBeta1), "adam_beta2": JSON(c.adamBeta2), "adam_epsilon": JSON(c.adamEpsilon),
            "weight_decay": JSON(c.weightDecay), "lr_scheduler_type": JSON(c.lrSchedulerType.rawValue),
            "lr_scheduler_kwargs": JSON(["num_cycles": JSON(c.numCycles), "power": JSON(c.power), "lr_end": JSON(c.lrEnd)]),
            "warmup_ratio": JSON(c.warmupRatio), "warmup_steps": JSON(c.warmupSteps), "max_grad_norm": JSON(c.maxGradNorm),
            "layerwise_lr_decay": JSON(c.layerwiseLRDecay), "ema_decay": JSON(c.emaDecay), "rdrop_alpha": JSON(c.rdropAlpha),
            "max_length": JSON(c.maxLength), "head": JSON(c.head.rawValue), "max_train_examples": JSON(c.maxTrainExamples),
            "dropout": JSON(c.dropout), "bf16": JSON(c.bf16),
            "gradient_accumulation_steps": JSON(c.gradientAccumulationSteps),
            "max_tokens_per_micro_batch": JSON(c.maxTokensPerMicroBatch),
            "labels": .array(labels.map { JSON($0) }), "world_size": JSON(worldSize),
        ])
    }

    /// FNV-1a over the tokenized training data and labels, as hex.
    static func hash(_ d: Data) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: Int64) {
            var x = UInt64(bitPattern: v)
            for _ in 0..<8 {
                h = (h ^ (x & 0xFF)) &* 0x100_0000_01B3
                x >>= 8
            }
        }
        mix(Int64(d.ids.count))
        for (i, s) in d.ids.enumerated() {
            mix(Int64(s.count))
            for t in s { mix(Int64(t)) }
            for t in d.types?[i] ?? [] { mix(Int64(t)) }
            mix(Int64(d.labels[i]))
        }
        return String(h, radix: 16)
    }
}
