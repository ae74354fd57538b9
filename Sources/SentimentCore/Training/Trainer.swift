// The fine-tuning loop, as Hugging Face's Trainer runs it for sequence classification:
//
//   read the train file; pick the labels (LabelPlan: "labels", else the file's)
//   load checkpoint (fresh head seeded with `seed`) + tokenizer; tokenize the data files once
//   for each epoch: shuffle (Fisher-Yates, SeededRandom(shuffleSeed(seed, epoch))); for each batch:
//       loss, gradients (dropout masks from (seed, step))  -> stop on a NaN/inf loss
//       (rdrop_alpha > 0: the batch twice, plus the KL term between the two copies)
//       clip the global gradient norm (max_grad_norm)
//       AdamW step at the schedule's rate (linear/constant, warmup = ceil(total * warmup_ratio);
//       scaled per layer by layerwise_lr_decay)
//       fold the weights into their moving average (ema_decay > 0)
//       every logging_steps: a `.step` event (mean loss since the last one)
//   end of epoch (or max_steps): evaluate on eval_file, `.eval` event, save per save_strategy
//   (the best epoch by metric_for_best_model)
//   (evaluation and checkpoints use the averaged weights when ema_decay > 0)
//
// Batches are packed (no padding is computed). The progress callback returning false stops the
// run before the next step and returns what finished, with `cancelled: true`.
#if canImport(Glibc)
import Glibc
#endif

public enum Trainer {
    /// Runs `config` to completion, cancellation or error. Errors are `SentimentError`s whose
    /// `field` names the config key or file concerned; a loss that becomes NaN or infinite stops
    /// the run with `.error` (checkpoints saved before stay as they are).
    public static func run(
        config: TrainingConfig, progress: (TrainingEvent) -> Bool = { _ in true }
    ) throws -> TrainingResult {
        try run(config: config, progress: progress, beforeStep: nil)
    }

    /// `beforeStep(step, weights)` (tests only) runs before each step's forward, with the 0-based step.
    static func run(
        config: TrainingConfig, progress: (TrainingEvent) -> Bool,
        beforeStep: ((Int, EncoderWeights) -> Void)?
    ) throws -> TrainingResult {
        try config.validate()
        Parallel.setThreads(SentimentModel.effectiveThreads(config.threads))

        // Model and tokenizer.
        guard FileSystem.kind(config.modelDirectory) == .directory else {
            throw SentimentError.io("model_dir \(config.modelDirectory) is not a readable directory", field: "model_dir")
        }
        // Labels: the train file's (or "labels"), reconciled with the checkpoint's.
        let trainRows = try DataRows.read(config.dataFile(config.trainFile), field: "train_file")
        let stored = try Checkpoint.config(directory: config.modelDirectory)
        let plan = try LabelPlan.choose(requested: config.labels, column: trainRows.labels, checkpoint: stored.labels)
        let head = try pairHead(config, modelType: stored.modelType)
        if config.metricForBestModel == .f1, plan.labels.count != 2 {
            throw SentimentError.invalidArgument(
                "metric_for_best_model \"f1\" is the F1 of label 1 of 2; with \(plan.labels.count) labels use \"macro_f1\"",
                field: "metric_for_best_model")
        }
        let checkpoint = try Checkpoint.load(
            directory: config.modelDirectory,
            options: LoadOptions(head: head, seed: config.seed, labels: plan.labels, freshHead: plan.freshHead))
        let weights = checkpoint.weights
        let model = weights.config
        guard config.maxLength <= model.maxPositions else {
            throw SentimentError.invalidArgument(
                "max_length \(config.maxLength) exceeds the model's \(model.maxPositions) positions", field: "max_length")
        }
        let tokenizer = try BertTokenizer.load(modelDirectory: config.modelDirectory)
        guard tokenizer.vocabSize <= model.vocabSize else {
            throw SentimentError.format(
                "vocab.txt has \(tokenizer.vocabSize) tokens but the model's embedding has \(model.vocabSize) rows",
                field: FileSystem.join(config.modelDirectory, "vocab.txt"))
        }
        if config.saveStrategy != .no {
            // Fail now, not after an epoch, if these weights cannot be written as an HF checkpoint.
            _ = try Checkpoint.huggingFaceTensors(weights)
            if let out = config.outputDirectory {
                do { try FileSystem.makeDirectories(out) } catch var e as SentimentError {
                    e.field = "output_dir"
                    throw e
                }
            }
        }

        // Data, tokenized once.
        let train = try (config.maxTrainExamples > 0 ? trainRows.prefix(config.maxTrainExamples) : trainRows)
            .dataset(labelNames: model.labels)
        guard train.count > 0 else {
            throw SentimentError.invalidArgument("\(config.trainFile) has no examples", field: "train_file")
        }
        let eval = try config.evalFile.map {
            try DataRows.read(config.dataFile($0), field: "eval_file").dataset(labelNames: model.labels)
        }
        if let eval, eval.count == 0 {
            throw SentimentError.invalidArgument("\(config.evalFile ?? "eval_file") has no examples", field: "eval_file")
        }
        let (trainIds, trainTypes) = tokenizer.encode(train.texts, pairs: train.pairs, maxLength: config.maxLength)
        let evalEncoded = eval.map { tokenizer.encode($0.texts, pairs: $0.pairs, maxLength: config.maxLength) }

        // Steps, schedule, optimizer.
        let n = train.count, batchSize = config.trainBatchSize
        let stepsPerEpoch = (n + batchSize - 1) / batchSize
        let totalSteps = config.maxSteps > 0 ? config.maxSteps : stepsPerEpoch * config.numTrainEpochs
        let epochs = config.maxSteps > 0 ? (config.maxSteps + stepsPerEpoch - 1) / stepsPerEpoch : config.numTrainEpochs
        let schedule = LearningRateSchedule(
            kind: config.lrSchedulerType, baseRate: Float(config.learningRate),
            warmupSteps: LearningRateSchedule.warmupSteps(ratio: config.warmupRatio, totalSteps: totalSteps),
            totalSteps: totalSteps)
        var hyper = AdamW.Hyperparameters()
        hyper.beta1 = Float(config.adamBeta1)
        hyper.beta2 = Float(config.adamBeta2)
        hyper.epsilon = Float(config.adamEpsilon)
        hyper.weightDecay = Float(config.weightDecay)
        let stepper = try GradientStep(weights: weights, bf16: config.bf16)
        stepper.rdropAlpha = config.rdropAlpha
        let gradients = try EncoderWeights.zeros(like: weights)
        let gradientTensors = gradients.namedTensors.map(\.tensor)
        let parameters = weights.namedTensors
        let optimizer = try AdamW(
            parameters: parameters, hyper: hyper,
            rateScales: AdamW.layerwiseRateScales(
                parameters.map(\.name), layers: model.numLayers, decay: Float(config.layerwiseLRDecay)))
        let average = config.emaDecay > 0 ? try WeightAverage(of: weights, decay: config.emaDecay) : nil
        // What evaluation and checkpoints see.
        let trained = average?.average ?? weights
        let evaluator = try EncoderForward(weights: trained, packing: .none)

        var result = TrainingResult(
            epochs: [], bestEpoch: nil, outputDirectory: config.saveStrategy == .no ? nil : config.outputDirectory,
            trainExamples: n, trainTokensPerSecond: 0, cancelled: false, stepLosses: [])
        result.isa = try ISA.active()
        result.bf16 = config.bf16
        result.labels = model.labels
        result.notes = plan.note(classifierRead: !checkpoint.freshTensors.contains { $0.hasSuffix("classifier.weight") })
            .map { [$0] } ?? []
        var step = 0, trainSeconds = 0.0, trainTokens = 0
        // The best `metric_for_best_model` so far, as "higher is better".
        var best = -Double.infinity
        // Since the last `.step` event.
        var logLoss = 0.0, logSteps = 0, logExamples = 0, logSeconds = 0.0

        func save(_ directory: String) throws {
            try Checkpoint.save(
                weights: trained, rawConfig: checkpoint.rawConfig, tokenizerFrom: config.modelDirectory, to: directory,
                metadata: ["trained_by": "sentiment", "global_step": String(step)])
        }

        epochLoop: for epoch in 1...epochs {
            let epochStart = Clock.now()
            var order = Array(0..<n)
            var rng = SeededRandom(seed: Trainer.shuffleSeed(config.seed, epoch: epoch))
            if n > 1 {
                for i in stride(from: n - 1, to: 0, by: -1) {
                    order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
                }
            }
            // Size the buffers once for the epoch's largest batch (R-Drop: each sequence twice).
            let copies = config.rdropAlpha > 0 ? 2 : 1
            var largest = BatchShape()
            for lo in stride(from: 0, to: n, by: batchSize) {
                let lengths = order[lo..<Swift.min(n, lo + batchSize)].map { trainIds[$0].count }
                largest = largest.union(BatchShape(lengths: Array(repeating: lengths, count: copies).joined()))
            }
            do {
                try stepper.reserve(largest)
            } catch var e as SentimentError where e.status == .noMemory {
                e.message = "epoch \(epoch)'s largest batch (\(largest.sequences) sequences, \(largest.tokens) tokens): "
                    + "\(e.message); lower train_batch_size or max_length (checkpoints saved before it are kept)"
                e.field = "train_batch_size"
                throw e
            }
            var epochLoss = 0.0, epochSteps = 0
            var b = 0
            while b < n, step < totalSteps {
                let chunk = order[b..<Swift.min(n, b + batchSize)]
                b += batchSize
                let t0 = Clock.now()
                let sequences = chunk.map { trainIds[$0] }, chunkLabels = chunk.map { train.labels[$0] }
                let types = trainTypes.map { t in chunk.map { t[$0] } }
                let batch = try PackedBatch(
                    sequences: copies == 2 ? sequences + sequences : sequences,
                    tokenTypes: types.map { copies == 2 ? $0 + $0 : $0 })
                let labels = copies == 2 ? chunkLabels + chunkLabels : chunkLabels
                beforeStep?(step, weights)
                let dropoutSeed = config.dropout ? Trainer.dropoutSeed(config.seed, step: step) : nil
                let loss: Double
                do {
                    loss = try stepper.lossAndGradients(
                        batch: batch, labels: labels, gradients: gradients, dropoutSeed: dropoutSeed)
                } catch var e as SentimentError where e.status == .noMemory {
                    e.message = "step \(step + 1) (\(batch.count) sequences, \(batch.totalTokens) tokens): \(e.message); "
                        + "lower train_batch_size or max_length (checkpoints saved before it are kept)"
                    e.field = "train_batch_size"
                    throw e
                }
                guard loss.isFinite else {
                    throw SentimentError(
                        .error,
                        "loss became NaN at step \(step + 1) (epoch \(epoch), loss \(loss)); training stopped and "
                            + "checkpoints saved before it are kept; try a lower learning_rate",
                        field: "learning_rate")
                }
                let norm = config.maxGradNorm > 0
                    ? clipGradientNorm(gradientTensors, maxNorm: Float(config.maxGradNorm))
                    : gradientNorm(gradientTensors)
                guard norm.isFinite else {
                    throw SentimentError(
                        .error,
                        "loss became NaN at step \(step + 1) (epoch \(epoch)): the gradient norm is \(norm) with loss "
                            + "\(loss); training stopped and checkpoints saved before it are kept; try a lower learning_rate",
                        field: "learning_rate")
                }
                let lr = schedule.rate(afterSteps: step)
                optimizer.update(gradients: gradientTensors, lr: lr)
                average?.update()
                step += 1
                let seconds = Clock.now() - t0
                trainSeconds += seconds
                trainTokens += batch.totalTokens / copies
                result.stepLosses.append(loss)
                epochLoss += loss
                epochSteps += 1
                logLoss += loss; logSteps += 1; logExamples += chunk.count; logSeconds += seconds
                if step % config.loggingSteps == 0 || step == totalSteps {
                    let keepGoing = progress(.step(
                        epoch: epoch, step: step, totalSteps: totalSteps, loss: logLoss / Double(logSteps),
                        learningRate: Double(lr), examplesPerSecond: Double(logExamples) / Swift.max(logSeconds, 1e-9)))
                    logLoss = 0; logSteps = 0; logExamples = 0; logSeconds = 0
                    if !keepGoing {
                        result.cancelled = true
                        break epochLoop
                    }
                }
            }

            // End of epoch (the last one may be cut short by max_steps).
            var metrics = EpochMetrics(
                epoch: epoch, step: step, trainLoss: epochLoss / Double(Swift.max(epochSteps, 1)),
                evalLoss: nil, evalAccuracy: nil, seconds: 0)
            if let eval, let evalEncoded {
                let m = try evaluate(
                    evaluator, sequences: evalEncoded.ids, tokenTypes: evalEncoded.types, labels: eval.labels,
                    batchSize: config.evalBatchSize)
                metrics.evalLoss = m.loss
                metrics.evalAccuracy = m.metrics.accuracy
                metrics.evalMetrics = m.metrics
            }
            let score = metrics.value(of: config.metricForBestModel).map { config.higherIsBetter ? $0 : -$0 }
            metrics.seconds = Clock.now() - epochStart
            result.epochs.append(metrics)
            var keepGoing = progress(.eval(metrics))
            let last = epoch == epochs || step >= totalSteps
            var targets: [String] = []
            if let out = config.outputDirectory {
                switch config.saveStrategy {
                case .no: break
                case .last: if last { targets = [out] }
                case .epoch: targets = [FileSystem.join(out, "epoch-\(epoch)")] + (last ? [out] : [])
                case .best:
                    // Without eval data every epoch counts as the best so far.
                    if score.map({ $0 > best }) ?? true { targets = [out] }
                }
            }
            if let score, score > best {
                best = score
                result.bestEpoch = epoch
            }
            for dir in targets {
                try save(dir)
                keepGoing = progress(.saved(path: dir)) && keepGoing
            }
            if !keepGoing && !last {
                result.cancelled = true
                break
            }
            if step >= totalSteps { break }
        }

        result.steps = step
        result.trainSeconds = trainSeconds
        result.trainTokens = trainTokens
        result.trainTokensPerSecond = trainSeconds > 0 ? Double(trainTokens) / trainSeconds : 0
        return result
    }

    /// The head to train. Sentence pairs on BERT need BERT's own head: a BERT encoder with the
    /// DistilBERT head is saved as DistilBERT, which has no token types (type 1 would be lost),
    /// so "auto" picks the pooler head and "distilbert" is refused when the run saves.
    static func pairHead(_ config: TrainingConfig, modelType: EncoderConfig.ModelType) throws -> LoadOptions.Head {
        guard config.textPairColumn != nil, modelType == .bert else { return config.head }
        switch config.head {
        case .auto, .bert: return .bert
        case .distilbert:
            guard config.saveStrategy == .no else {
                throw SentimentError.invalidArgument(
                    "sentence pairs on a BERT checkpoint need head \"bert\" or \"auto\": one with the DistilBERT head is "
                        + "saved as DistilBERT, which has no token types", field: "head")
            }
            return .distilbert
        }
    }

    /// The seed of epoch `epoch`'s shuffle (1-based). Epoch 1 uses `seed` itself; later epochs step
    /// by an odd 64-bit constant, so nearby seeds never share an epoch's order (`seed ^ (epoch - 1)`,
    /// used before, gave seed 43's first epoch the order of seed 42's second).
    static func shuffleSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        seed &+ UInt64(epoch - 1) &* 0x9E37_79B9_7F4A_7C15
    }

    /// The dropout seed of optimizer step `step` (0-based): a function of the run seed and the step only.
    static func dropoutSeed(_ seed: UInt64, step: Int) -> UInt64 {
        var rng = SeededRandom(seed: seed ^ 0x5EED_D80F_0000_0000)
        return rng.next() &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Mean cross-entropy and the metrics of `sequences` against `labels`, in batches of `batchSize`.
    static func evaluate(
        _ encoder: EncoderForward, sequences: [[Int32]], tokenTypes: [[Int32]]?, labels: [Int], batchSize: Int
    ) throws -> (loss: Double, metrics: ClassificationMetrics) {
        var workspace: ForwardWorkspace? = nil
        var rows: [[Float]] = []
        rows.reserveCapacity(sequences.count)
        var i = 0
        while i < sequences.count {
            let j = Swift.min(sequences.count, i + batchSize)
            let batch = try PackedBatch(sequences: Array(sequences[i..<j]), tokenTypes: tokenTypes.map { Array($0[i..<j]) })
            rows += try encoder.logits(batch, workspace: &workspace)
            i = j
        }
        let loss = SentimentModel.lossAndAccuracy(logits: rows, labels: labels).loss
        return (loss, ClassificationMetrics(
            labels: labels, predictions: rows.map(SentimentModel.argmax), classes: encoder.config.numLabels))
    }
}

