// The trainer's schedule of evaluations and saves, early stopping, resuming a stopped run and
// gradient accumulation, on the tiny model of TrainerTests (fast).
import Testing
@testable import SentimentCore

@Suite(.serialized) struct TrainerScheduleTests {
    /// 160 examples at batch 16: 10 steps per epoch, 20 in all.
    func config(_ setup: TinyTrainingSetup, _ strategy: TrainingConfig.SaveStrategy = .no) -> TrainingConfig {
        var c = setup.config(strategy)
        c.numTrainEpochs = 2
        return c
    }

    @Test func evaluatesEveryNStepsAndAfterTheLast() throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup)
        c.evalStrategy = .steps
        c.evalSteps = .steps(3)
        var events: [EpochMetrics] = []
        let r = try Trainer.run(config: c) { e in
            if case let .eval(m) = e { events.append(m) }
            return true
        }
        #expect(r.epochs.map(\.step) == [3, 6, 9, 12, 15, 18, 20])
        #expect(r.epochs.map(\.epoch) == [1, 1, 1, 2, 2, 2, 2])
        #expect(events == r.epochs && r.epochs.allSatisfy { $0.evalAccuracy != nil })
        var previous = 0
        for row in r.epochs {
            let losses = r.stepLosses[previous..<row.step]
            #expect(abs(row.trainLoss - losses.reduce(0, +) / Double(losses.count)) < 1e-12)
            previous = row.step
        }
        #expect(r.stopReason == .finished && !r.cancelled)
        let best = try #require(r.bestStep)
        #expect(r.bestMetric == r.epochs.first { $0.step == best }?.evalAccuracy)
        #expect(r.bestMetric == r.epochs.compactMap(\.evalAccuracy).max())

        // A fraction is of the run's steps; "no" gives each epoch's train loss only.
        c.evalSteps = .fraction(0.25)
        #expect(try Trainer.run(config: c).epochs.map(\.step) == [5, 10, 15, 20])
        c.evalStrategy = .no
        let none = try Trainer.run(config: c)
        #expect(none.epochs.map(\.step) == [10, 20] && none.epochs.allSatisfy { $0.evalLoss == nil && $0.evalMetrics == nil })
    }

    @Test func savesEveryNStepsKeepingTheNewest() throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup, .steps)
        c.saveSteps = .steps(4)
        c.saveTotalLimit = 2
        var saved: [String] = []
        let r = try Trainer.run(config: c) { e in
            if case let .saved(path) = e { saved.append(path) }
            return true
        }
        #expect(saved == [4, 8, 12, 16, 20].map { setup.out + "/checkpoint-\($0)" } + [setup.out])
        let left = try FileSystem.listDirectory(setup.out).filter { $0.hasPrefix("checkpoint-") }.sorted()
        #expect(left == ["checkpoint-16", "checkpoint-20"])
        for dir in [setup.out + "/checkpoint-20", setup.out] {
            #expect(FileSystem.kind(dir + "/" + RunState.tensorsFile) == .file, "steps saves the state by default")
            _ = try Checkpoint.load(directory: dir)
        }
        let state = try JSON.parse(try readBytes(setup.out + "/checkpoint-20/" + RunState.jsonFile))
        #expect(state["global_step"]?.int64Value == 20 && state["epoch"]?.doubleValue == 2)
        #expect(state["log_history"]?.arrayValue?.count == r.epochs.count)

        // "last" saves no state unless asked.
        TempDir.remove(setup.out)
        c.saveStrategy = .last
        _ = try Trainer.run(config: c)
        #expect(FileSystem.kind(setup.out + "/" + RunState.jsonFile) == .missing)
    }

    @Test func earlyStoppingFollowsTheEvalHistory() throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup)
        c.evalStrategy = .steps
        c.evalSteps = .steps(2)
        c.earlyStoppingPatience = 2
        c.earlyStoppingThreshold = 0.05
        // Evaluations at steps 2, 4, ...: 0.6 and 0.8 improve; 0.82 is better but by less than the
        // threshold (1 without improvement); 0.7 makes 2: the run stops after step 8.
        let script: [Int: Double] = [2: 0.6, 4: 0.8, 6: 0.82, 8: 0.7, 10: 0.99]
        let r = try Trainer.run(config: c, progress: { _ in true }, hooks: Trainer.Hooks(scriptedMetric: { script[$0] ?? 0 }))
        #expect(r.steps == 8 && r.stopReason == .earlyStopping && !r.cancelled)
        #expect(r.epochs.map(\.step) == [2, 4, 6, 8])
        #expect(r.bestStep == 6 && r.bestMetric == 0.82)
        #expect(r.notes.contains { $0.contains("stopped early after step 8") }, "\(r.notes)")

        // Lower is better for the loss: a rising loss stops it too.
        c.metricForBestModel = .loss
        c.earlyStoppingThreshold = 0
        let losses: [Int: Double] = [2: 0.5, 4: 0.4, 6: 0.45, 8: 0.41, 10: 0.1]
        let l = try Trainer.run(config: c, progress: { _ in true }, hooks: Trainer.Hooks(scriptedMetric: { losses[$0] ?? 9 }))
        #expect(l.steps == 8 && l.stopReason == .earlyStopping && l.bestStep == 4)

        c.evalFile = nil
        #expect(throws: SentimentError.self) { try c.validate() }
    }

    /// A run stopped after `stopAt` (cancelled once checkpoint-`stopAt` is written), then resumed,
    /// equals the uninterrupted run: the same step losses, rows and final files, bit for bit.
    func resumeMatches(stopAt: Int, newest: Bool) throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup, .steps)
        c.saveSteps = .steps(5)
        c.rdropAlpha = 1
        c.emaDecay = 0.9
        c.evalStrategy = .steps
        c.evalSteps = .steps(3)
        let full = try Trainer.run(config: c)
        #expect(full.steps == 20 && full.stopReason == .finished)
        let fullModel = try readBytes(setup.out + "/model.safetensors")
        let fullState = try readBytes(setup.out + "/checkpoint-20/" + RunState.tensorsFile)

        TempDir.remove(setup.out)
        let stopped = try Trainer.run(config: c) { e in
            if case let .saved(path) = e, path.hasSuffix("/checkpoint-\(stopAt)") { return false }
            return true
        }
        #expect(stopped.cancelled && stopped.steps == stopAt && stopped.stopReason == .cancelled)
        c.resumeFromCheckpoint = newest ? .newest : .path(setup.out + "/checkpoint-\(stopAt)")
        let resumed = try Trainer.run(config: c)
        #expect(resumed.resumedFromStep == stopAt && resumed.steps == 20 && resumed.stopReason == .finished)
        #expect(resumed.stepLosses == full.stepLosses)
        #expect(resumed.epochs.map(\.step) == full.epochs.map(\.step))
        #expect(resumed.epochs.map(\.trainLoss) == full.epochs.map(\.trainLoss))
        #expect(resumed.epochs.map(\.evalLoss) == full.epochs.map(\.evalLoss))
        #expect(resumed.epochs.map(\.evalMetrics) == full.epochs.map(\.evalMetrics))
        #expect((resumed.bestStep, resumed.bestMetric) == (full.bestStep, full.bestMetric))
        #expect(try readBytes(setup.out + "/model.safetensors") == fullModel, "final (averaged) weights")
        #expect(try readBytes(setup.out + "/checkpoint-20/" + RunState.tensorsFile) == fullState, "live weights and moments")

        // Resuming the finished run returns at once with the same result.
        c.resumeFromCheckpoint = .path(setup.out + "/checkpoint-20")
        let again = try Trainer.run(config: c) { e in
            if case .step = e { Issue.record("a finished run took a step") }
            return true
        }
        #expect(again.steps == 20 && again.stepLosses == full.stepLosses && again.stopReason == .finished)
    }

    @Test func resumeMidEpochIsBitIdentical() throws { try resumeMatches(stopAt: 5, newest: false) }
    @Test func resumeAtAnEpochBoundaryIsBitIdentical() throws { try resumeMatches(stopAt: 10, newest: true) }

    @Test func resumeRefusesAnotherRunsState() throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup, .steps)
        c.saveSteps = .steps(10)
        c.maxSteps = 10
        _ = try Trainer.run(config: c)
        let dir = setup.out + "/checkpoint-10"
        func error(_ change: (inout TrainingConfig) -> Void) -> SentimentError? {
            var d = c
            d.maxSteps = -1
            d.resumeFromCheckpoint = .path(dir)
            change(&d)
            do { _ = try Trainer.run(config: d); return nil } catch let e as SentimentError { return e } catch { return nil }
        }
        // max_steps differs from the run that wrote it.
        #expect(error { _ in }?.field == "max_steps")
        #expect(error { $0.maxSteps = 10; $0.learningRate = 5e-4 }?.field == "learning_rate")
        #expect(error { $0.maxSteps = 10; $0.maxTrainExamples = 100 }?.field == "max_train_examples")
        #expect(error { $0.maxSteps = 10; $0.resumeFromCheckpoint = .path(setup.model) }?.field == "resume_from_checkpoint")
        #expect(error { $0.maxSteps = 10; $0.resumeFromCheckpoint = .path(setup.tmp.sub("nowhere")) }?.status == .io)
        // Another model (the tiny BERT, with the same vocabulary and labels).
        let bert = setup.tmp.sub("bert")
        try FileSystem.makeDirectories(bert)
        for name in ["config.json", "model.safetensors"] {
            try FileSystem.copyAtomically(from: TrainingFixtures.dir + "/tiny-bert/" + name, to: bert + "/" + name, limit: 1 << 24)
        }
        try FileSystem.copyAtomically(from: setup.model + "/vocab.txt", to: bert + "/vocab.txt", limit: 1 << 24)
        let other = error { $0.maxSteps = 10; $0.modelDirectory = bert }
        #expect(other?.field == "resume_from_checkpoint" && (other?.message.contains("not a state of this model") ?? false),
                "\(String(describing: other))")
        // Other data of the same size.
        var rng = SeededRandom(seed: 99)
        try setup.write(setup.tmp.sub("other.tsv"), TinyTrainingSetup.tsv(160, &rng))
        #expect(error { $0.maxSteps = 10; $0.trainFile = setup.tmp.sub("other.tsv") }?.field == "train_file")
        // A state with a tensor missing, or a broken trainer_state.json.
        let stateFile = dir + "/" + RunState.jsonFile
        let good = try readBytes(stateFile)
        try writeBytes(stateFile, Array("{\"sentiment\": {\"settings\": 3}}".utf8))
        #expect(error { $0.maxSteps = 10 }?.status == .format)
        try writeBytes(stateFile, good)
        let tensors = dir + "/" + RunState.tensorsFile
        let file = try SafeTensorsFile(path: tensors)
        let kept = try file.names.dropFirst().map { SafeTensorsWriter.Entry(name: $0, tensor: try file.floatTensor($0)) }
        try SafeTensorsWriter.write(kept, to: tensors)
        #expect(error { $0.maxSteps = 10 }?.field == "resume_from_checkpoint")
        // true with nothing to resume.
        TempDir.remove(setup.out)
        #expect(error { $0.maxSteps = 10; $0.resumeFromCheckpoint = .newest }?.field == "resume_from_checkpoint")
    }

    @Test func accumulatedMicroBatchesEqualTheBatch() throws {
        let setup = try TinyTrainingSetup()
        let weights = try Checkpoint.load(directory: setup.model).weights
        let tokenizer = try BertTokenizer.load(modelDirectory: setup.model)
        let rows = try DataRows.read(DataFile(path: setup.trainFile), field: "train_file").dataset(labelNames: weights.config.labels)
        let ids = tokenizer.encode(Array(rows.texts.prefix(16)), pairs: nil, maxLength: 32).ids
        let labels = Array(rows.labels.prefix(16))
        let step = try GradientStep(weights: weights)
        let whole = try EncoderWeights.zeros(like: weights), split = try EncoderWeights.zeros(like: weights)
        let wholeLoss = try step.lossAndGradients(
            batch: try PackedBatch(sequences: ids), labels: labels, gradients: whole, dropoutSeed: nil)
        for parts in [4, 5] {
            var loss = 0.0
            for (k, r) in MicroBatches.split(lengths: ids.map(\.count), parts: parts).enumerated() {
                let share = Double(r.count) / 16
                loss += share * (try step.lossAndGradients(
                    batch: try PackedBatch(sequences: Array(ids[r])), labels: Array(labels[r]), gradients: split,
                    dropoutSeed: nil, lossScale: Float(share), accumulate: k > 0))
            }
            #expect(abs(loss - wholeLoss) <= 1e-5 * abs(wholeLoss), "\(parts) parts: \(loss) vs \(wholeLoss)")
            let largest = whole.namedTensors.map { maxAbsDiff($0.tensor, $0.tensor).refMax }.max() ?? 0
            for ((name, a), (_, b)) in zip(split.namedTensors, whole.namedTensors) {
                let (diff, ref) = maxAbsDiff(a, b)
                if name.hasSuffix("key.bias") {
                    // Its exact gradient is 0 (softmax ignores a shift of a whole row): both are rounding noise.
                    #expect(diff <= 1e-6 * largest, "\(parts) parts, \(name): \(diff)")
                    continue
                }
                #expect(diff <= 1e-5 * ref, "\(parts) parts, \(name): \(diff) of \(ref)")
            }
        }
    }

    @Test func microBatchesSplitEvenlyOrByTokens() {
        #expect(MicroBatches.split(lengths: Array(repeating: 5, count: 10), parts: 4) == [0..<3, 3..<6, 6..<8, 8..<10])
        #expect(MicroBatches.split(lengths: [1, 2], parts: 4) == [0..<1, 1..<2])
        #expect(MicroBatches.split(lengths: [3, 3, 3, 9, 1], parts: 1, maxTokens: 6) == [0..<2, 2..<3, 3..<4, 4..<5])
        #expect(MicroBatches.split(lengths: [3, 3, 3], parts: 1, maxTokens: 12, copies: 2) == [0..<2, 2..<3])
    }

    @Test func accumulationFollowsTheUnsplitRun() throws {
        let setup = try TinyTrainingSetup()
        var c = config(setup)
        c.dropout = false
        c.maxSteps = 6
        let whole = try Trainer.run(config: c)
        c.gradientAccumulationSteps = 4
        let split = try Trainer.run(config: c)
        c.gradientAccumulationSteps = 1
        c.maxTokensPerMicroBatch = 64
        let byTokens = try Trainer.run(config: c)
        for other in [split, byTokens] {
            #expect(zip(other.stepLosses, whole.stepLosses).allSatisfy { abs($0 - $1) <= 1e-5 * abs($1) },
                    "\(other.stepLosses) vs \(whole.stepLosses)")
            #expect(other.trainTokens == whole.trainTokens)
        }
    }
}
