// The fine-tuning loop, as Hugging Face's Trainer runs it for sequence classification:
//
//   read the train file; pick the labels (LabelPlan: "labels", else the file's)
//   load checkpoint (fresh head seeded with `seed`) + tokenizer; tokenize the data files once
//   resume_from_checkpoint: the weights, moments, average and counters from a saved state
//   then the loop of TrainingRun.swift: batches, micro-batches, evaluation, early stopping, saving
//
// The progress callback returning false stops the run before the next step and returns what
// finished, with `cancelled: true`.
#if canImport(Glibc)
import Glibc
#endif

public enum Trainer {
    /// Runs `config` to completion, cancellation or error. Errors are `SentimentError`s whose
    /// `field` names the config key or file concerned; a loss that becomes NaN or infinite stops
    /// the run with `.error` (checkpoints saved before stay as they are).
    /// With `collective` of several ranks, this process is one rank of a data-parallel run
    /// (Collective.swift); every rank returns the same result. An error after the first step
    /// hands `partial` the result of the steps that finished (stop reason `.error`) first.
    public static func run(
        config: TrainingConfig, collective: Collective = .single, progress: (TrainingEvent) -> Bool = { _ in true },
        partial: ((TrainingResult) -> Void)? = nil
    ) throws -> TrainingResult {
        try run(config: config, progress: progress, hooks: Hooks(), collective: collective, partial: partial)
    }

    /// Test hooks: `beforeStep(step, weights)` runs before each step's forward (0-based step);
    /// `scriptedMetric(step)` replaces each evaluation's `metric_for_best_model` figure.
    struct Hooks {
        var beforeStep: ((Int, EncoderWeights) -> Void)? = nil
        var scriptedMetric: ((Int) -> Double)? = nil
    }

    static func run(
        config: TrainingConfig, progress: (TrainingEvent) -> Bool,
        beforeStep: ((Int, EncoderWeights) -> Void)?
    ) throws -> TrainingResult {
        try run(config: config, progress: progress, hooks: Hooks(beforeStep: beforeStep))
    }

    static func run(
        config: TrainingConfig, progress: (TrainingEvent) -> Bool, hooks: Hooks, collective: Collective = .single,
        partial: ((TrainingResult) -> Void)? = nil
    ) throws -> TrainingResult {
        try config.validate()
        // Ranks agree that all of them are ready (only rank 0 reads eval_file and makes output_dir),
        // so none waits in the first step's allreduce for one that failed.
        let run: TrainingRun
        do {
            run = try prepare(config: config, hooks: hooks, collective: collective)
        } catch {
            if collective.isDistributed { _ = try? collective.tally(.failed, at: 0) }
            throw error
        }
        let votes = try collective.tally(.goOn, at: 0)
        if votes.failures > 0 { throw collective.peerFailed(votes.failures, at: "the set-up of the run") }
        return try run.run(progress: progress) { if $0.steps > 0 { partial?($0) } }
    }

    /// Reads, checks and tokenizes everything the run needs, and resumes its state.
    private static func prepare(config: TrainingConfig, hooks: Hooks, collective: Collective) throws -> TrainingRun {
        let threads = SentimentModel.effectiveThreads(config.threads)
        Parallel.setThreads(threads)

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
        let model = checkpoint.weights.config
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
            _ = try Checkpoint.huggingFaceTensors(checkpoint.weights)
            if let out = config.outputDirectory, collective.isMain {
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
        // Only rank 0 evaluates.
        let eval = try (collective.isMain ? config.evalFile : nil).map {
            try DataRows.read(config.dataFile($0), field: "eval_file").dataset(labelNames: model.labels)
        }
        if let eval, eval.count == 0 {
            throw SentimentError.invalidArgument("\(config.evalFile ?? "eval_file") has no examples", field: "eval_file")
        }
        let (trainIds, trainTypes) = tokenizer.encode(train.texts, pairs: train.pairs, maxLength: config.maxLength)
        let data = TrainingRun.Data(
            ids: trainIds, types: trainTypes, labels: train.labels,
            eval: eval.map { e in
                let (ids, types) = tokenizer.encode(e.texts, pairs: e.pairs, maxLength: config.maxLength)
                return (ids, types, e.labels)
            })

        let run = try TrainingRun(
            config: config, checkpoint: checkpoint, data: data, threads: threads, hooks: hooks, collective: collective)
        run.result.notes = plan.note(classifierRead: !checkpoint.freshTensors.contains { $0.hasSuffix("classifier.weight") })
            .map { [$0] } ?? []
        if let resume = config.resumeFromCheckpoint {
            let directory: String
            switch resume {
            case .path(let p):
                guard FileSystem.kind(p) == .directory else {
                    throw SentimentError.io("resume_from_checkpoint \(p) is not a readable directory", field: "resume_from_checkpoint")
                }
                directory = p
            case .newest: directory = try TrainingStateFiles.newest(in: config.outputDirectory ?? "")
            }
            try run.resume(from: directory)
        }
        return run
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

    /// The dropout seed of optimizer step `step` (0-based) and its micro-batch `micro`: a function
    /// of the run seed, the step and the micro-batch only (micro-batch 0 is the whole batch's).
    static func dropoutSeed(_ seed: UInt64, step: Int, micro: Int = 0) -> UInt64 {
        var rng = SeededRandom(seed: seed ^ 0x5EED_D80F_0000_0000)
        let base = rng.next() &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
        return micro == 0 ? base : base ^ (UInt64(micro) &* 0xD1B5_4A32_D192_ED03)
    }

    /// Epoch `epoch`'s order of `n` examples (Fisher-Yates with `shuffleSeed`).
    static func order(_ n: Int, seed: UInt64, epoch: Int) -> [Int] {
        var order = Array(0..<n)
        var rng = SeededRandom(seed: shuffleSeed(seed, epoch: epoch))
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
        }
        return order
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

