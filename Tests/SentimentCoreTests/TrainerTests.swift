// Trainer.run end to end on the tiny DistilBERT of the training fixtures, with a made-up
// vocabulary and a small synthetic sentiment data set (fast): epochs, steps, max_steps, save
// strategies, cancellation, NaN stop, determinism, errors naming the field.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

/// A model folder (tiny-distilbert + a 256-token vocab.txt) and train/dev TSVs in a temp folder.
final class TinyTrainingSetup {
    let tmp: TempDir
    var model: String { tmp.sub("model") }
    var trainFile: String { tmp.sub("train.tsv") }
    var devFile: String { tmp.sub("dev.tsv") }
    var out: String { tmp.sub("out") }

    static let positive = ["good", "great", "fun", "charming", "lovely", "best", "brilliant", "moving"]
    static let negative = ["bad", "awful", "boring", "dull", "worst", "tedious", "flat", "mess"]
    static let neutral = ["the", "a", "movie", "film", "is", "was", "it", "and", "but", "this", "story", "plot",
                          "acting", "very", "quite", "really", "of", "to", "in", "with"]

    init(trainExamples: Int = 160, devExamples: Int = 48) throws {
        tmp = try TempDir()
        try FileSystem.makeDirectories(model)
        for name in ["config.json", "model.safetensors"] {
            try FileSystem.copyAtomically(from: TrainingFixtures.dir + "/tiny-distilbert/" + name,
                                          to: model + "/" + name, limit: 1 << 24)
        }
        var vocab = ["[PAD]"] + (1..<100).map { "[unused\($0)]" } + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab += Self.positive + Self.negative + Self.neutral
        vocab += (vocab.count..<256).map { "w\($0)" }
        try write(model + "/vocab.txt", vocab.joined(separator: "\n") + "\n")
        var rng = SeededRandom(seed: 11)
        try write(trainFile, Self.tsv(trainExamples, &rng))
        try write(devFile, Self.tsv(devExamples, &rng))
    }

    static func tsv(_ n: Int, _ rng: inout SeededRandom) -> String {
        var lines = ["sentence\tlabel"]
        for _ in 0..<n {
            let label = Int(rng.next() % 2)
            var words: [String] = []
            for _ in 0..<(3 + Int(rng.next() % 10)) { words.append(neutral[Int(rng.next() % UInt64(neutral.count))]) }
            let cue = label == 1 ? positive : negative
            for _ in 0..<(1 + Int(rng.next() % 2)) {
                words.insert(cue[Int(rng.next() % UInt64(cue.count))], at: Int(rng.next() % UInt64(words.count + 1)))
            }
            lines.append(words.joined(separator: " ") + "\t\(label)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func write(_ path: String, _ text: String) throws {
        try FileSystem.writeAtomically(path) { try $0.write(Array(text.utf8)) }
    }

    func config(_ strategy: TrainingConfig.SaveStrategy = .no) -> TrainingConfig {
        var c = TrainingConfig(modelDirectory: model, trainFile: trainFile)
        c.evalFile = devFile
        c.outputDirectory = strategy == .no ? nil : out
        c.saveStrategy = strategy
        c.trainBatchSize = 16
        c.evalBatchSize = 32
        c.numTrainEpochs = 2
        c.learningRate = 1e-3
        c.maxLength = 32   // logging_steps stays at its default, 1: the cancel test relies on it
        c.threads = 1   // tiny matrices: one thread is faster, and immune to a busy machine
        return c
    }
}

@Suite(.serialized) struct TrainerTests {
    @Test func runsEpochsAndReports() throws {
        let setup = try TinyTrainingSetup(trainExamples: 800, devExamples: 200)
        var c = setup.config(.no)
        c.numTrainEpochs = 3
        var stepEvents: [(epoch: Int, step: Int, total: Int, loss: Double, lr: Double)] = []
        var evalEvents: [EpochMetrics] = []
        let r = try Trainer.run(config: c) { e in
            switch e {
            case let .step(epoch, step, total, loss, lr, eps):
                stepEvents.append((epoch, step, total, loss, lr))
                #expect(eps > 0)
            case let .eval(m): evalEvents.append(m)
            case .saved: Issue.record("save_strategy no saved")
            }
            return true
        }
        let perEpoch = 50   // 800 / 16
        #expect(r.steps == 3 * perEpoch && r.stepLosses.count == r.steps && !r.cancelled)
        #expect(r.epochs.map(\.epoch) == [1, 2, 3] && r.epochs.map(\.step) == [50, 100, 150])
        #expect(evalEvents == r.epochs)
        #expect(stepEvents.map(\.step) == Array(1...150) && stepEvents.allSatisfy { $0.total == 150 })
        #expect(stepEvents.map(\.epoch) == (1...3).flatMap { Array(repeating: $0, count: perEpoch) })
        // logging_steps 1: each event's loss is that step's loss; lr follows the linear decay.
        #expect(zip(stepEvents, r.stepLosses).allSatisfy { $0.loss == $1 })
        #expect(abs(stepEvents[0].lr - 1e-3) < 1e-9 && abs(stepEvents[149].lr - 1e-3 / 150) < 1e-9)
        for m in r.epochs {
            let losses = r.stepLosses[(m.step - perEpoch)..<m.step]
            #expect(abs(m.trainLoss - losses.reduce(0, +) / Double(perEpoch)) < 1e-12)
            #expect(m.evalLoss != nil && m.evalAccuracy != nil && m.seconds > 0)
        }
        // The cue words are easy: even this random tiny model learns them (97% when written).
        #expect((r.epochs.last?.evalAccuracy ?? 0) >= 0.9, "\(r.epochs)")
        #expect(r.epochs[2].trainLoss < r.epochs[0].trainLoss - 0.2)
        #expect(r.bestEpoch != nil && r.outputDirectory == nil && r.trainExamples == 800)
        #expect(r.trainTokens > 800 * 3 * 4 && r.trainTokensPerSecond > 0 && r.trainSeconds > 0)
    }

    @Test func loggingAveragesAndMaxSteps() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.no)
        c.loggingSteps = 4
        c.maxSteps = 13   // one full epoch (10 steps) and 3 of the next
        var events: [(step: Int, loss: Double)] = []
        let r = try Trainer.run(config: c) { e in
            if case let .step(_, step, total, loss, _, _) = e {
                events.append((step, loss))
                #expect(total == 13)
            }
            return true
        }
        #expect(r.steps == 13 && r.epochs.map(\.step) == [10, 13])
        #expect(events.map(\.step) == [4, 8, 12, 13])
        #expect(abs(events[1].loss - r.stepLosses[4..<8].reduce(0, +) / 4) < 1e-12)
        #expect(abs(events[3].loss - r.stepLosses[12]) < 1e-12)
    }

    @Test func sameSeedSameRunOtherSeedOtherRun() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.last)
        c.maxSteps = 12
        #expect(c.dropout)
        func run(_ seed: UInt64) throws -> (losses: [Double], weights: [UInt8]) {
            c.seed = seed
            let r = try Trainer.run(config: c)
            return (r.stepLosses, try readBytes(setup.out + "/model.safetensors"))
        }
        let a = try run(42), b = try run(42), other = try run(43)
        #expect(a.losses == b.losses)
        #expect(a.weights == b.weights)
        #expect(a.losses != other.losses)
        #expect(a.weights != other.weights)
        // Dropout masks and shuffles do not depend on the thread count; only float summation
        // order in GEMMs and reductions does.
        c.threads = 2
        let twoThreads = try run(42)
        #expect(zip(a.losses, twoThreads.losses).allSatisfy { abs($0 - $1) < 1e-4 }, "\(a.losses) vs \(twoThreads.losses)")
    }

    @Test func nearbySeedsShuffleDifferently() {
        // Every (seed, epoch) of a small seed sweep gets its own shuffle seed, so no two runs
        // of the sweep see an epoch in the same order.
        var seen = Set<UInt64>()
        for seed in UInt64(0)..<64 {
            #expect(Trainer.shuffleSeed(seed, epoch: 1) == seed)
            for epoch in 1...10 { seen.insert(Trainer.shuffleSeed(seed, epoch: epoch)) }
        }
        #expect(seen.count == 64 * 10)
    }

    @Test func saveStrategies() throws {
        let setup = try TinyTrainingSetup()
        func run(_ s: TrainingConfig.SaveStrategy) throws -> (TrainingResult, [String]) {
            TempDir.remove(setup.out)
            var saved: [String] = []
            let r = try Trainer.run(config: setup.config(s)) { e in
                if case let .saved(path) = e { saved.append(path) }
                return true
            }
            return (r, saved)
        }
        let (_, epochSaves) = try run(.epoch)
        #expect(epochSaves == [setup.out + "/epoch-1", setup.out + "/epoch-2", setup.out])
        for dir in epochSaves { #expect(FileSystem.kind(dir + "/model.safetensors") == .file, "\(dir)") }
        let reloaded = try Checkpoint.load(directory: setup.out + "/epoch-1")
        #expect(reloaded.config.modelType == .distilbert && !reloaded.freshHead)
        #expect(FileSystem.kind(setup.out + "/vocab.txt") == .file)

        let (_, lastSaves) = try run(.last)
        #expect(lastSaves == [setup.out])
        #expect(FileSystem.kind(setup.out + "/epoch-1") == .missing)

        let (noResult, noSaves) = try run(.no)
        #expect(noSaves.isEmpty && noResult.outputDirectory == nil && FileSystem.kind(setup.out) == .missing)

        // best: the folder holds the best epoch's weights: reloaded, they score its accuracy.
        var c = setup.config(.best)
        c.numTrainEpochs = 4
        c.learningRate = 3e-3
        TempDir.remove(setup.out)
        var saved: [String] = []
        let best = try Trainer.run(config: c) { e in
            if case let .saved(path) = e { saved.append(path) }
            return true
        }
        let bestEpoch = try #require(best.bestEpoch)
        let accuracies = best.epochs.compactMap(\.evalAccuracy)
        #expect(accuracies[bestEpoch - 1] == accuracies.max())
        #expect(saved.allSatisfy { $0 == setup.out } && !saved.isEmpty)
        let model = try SentimentModel.load({ var o = ModelOptions(modelDirectory: setup.out); o.maxLength = 32; return o }())
        let dev = try LabeledDataset.read(DataFile(path: setup.devFile), labelNames: ["NEGATIVE", "POSITIVE"])
        let score = try model.evaluate(dev)
        #expect(abs(score.accuracy - accuracies[bestEpoch - 1]) < 1e-12, "saved \(score.accuracy), epochs \(accuracies)")
        #expect(abs(score.loss - (best.epochs[bestEpoch - 1].evalLoss ?? 0)) < 1e-4)
    }

    @Test func cancellationStopsWithinOneStep() throws {
        let setup = try TinyTrainingSetup()
        var calls = 0
        let r = try Trainer.run(config: setup.config(.epoch)) { e in
            if case .step = e { calls += 1; return calls < 3 }
            return true
        }
        #expect(r.cancelled && r.steps == 3 && r.stepLosses.count == 3 && r.epochs.isEmpty)
        #expect(FileSystem.kind(setup.out + "/epoch-1") == .missing)

        // Cancelled at the end of epoch 1: that epoch is evaluated and saved, nothing more runs.
        TempDir.remove(setup.out)
        let r2 = try Trainer.run(config: setup.config(.epoch)) { e in
            if case .eval = e { return false }
            return true
        }
        #expect(r2.cancelled && r2.steps == 10 && r2.epochs.count == 1)
        #expect(FileSystem.kind(setup.out + "/epoch-1/model.safetensors") == .file)
        #expect(FileSystem.kind(setup.out + "/epoch-2") == .missing)
    }

    @Test func nanLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.epoch)
        c.numTrainEpochs = 3
        var partial: TrainingResult? = nil
        do {
            let hooks = Trainer.Hooks(beforeStep: { step, w in
                if step == 13 { w.layers[0][.ffnIn].data[5] = .nan }   // inside epoch 2
            })
            _ = try Trainer.run(config: c, progress: { _ in true }, hooks: hooks, partial: { partial = $0 })
            Issue.record("expected an error")
        } catch let e as SentimentError {
            #expect(e.status == .error)
            #expect(e.message.hasPrefix("loss became NaN at step 14"), "\(e.message)")
        }
        // The error comes with the 13 steps that finished.
        #expect(partial?.steps == 13 && partial?.stopReason == .error && partial?.stepLosses.count == 13)
        #expect(partial?.epochs.count == 1 && partial?.cancelled == false)
        let good = try Checkpoint.load(directory: setup.out + "/epoch-1")
        #expect(good.weights.namedTensors.allSatisfy { $0.tensor.array.allSatisfy(\.isFinite) })
        #expect(FileSystem.kind(setup.out + "/epoch-2") == .missing)
        #expect(FileSystem.kind(setup.out + "/model.safetensors") == .missing)
    }

    @Test func emaDecaySavesTheAverageOfTheStepsWeights() throws {
        // Dropout off: a run is a function of the weights, so the run without the average gives
        // the weights after each step, and the run with it must save their debiased average
        // sum_s d^(t-s) w_s (1-d)/(1-d^t) while training the same weights.
        let setup = try TinyTrainingSetup()
        var c = setup.config(.last)
        c.dropout = false
        c.maxSteps = 4
        func values(_ w: EncoderWeights) -> [[Float]] {
            w.namedTensors.map { Array(UnsafeBufferPointer(start: $0.tensor.data, count: $0.tensor.count)) }
        }
        func run(ema: Double) throws -> (seen: [[[Float]]], saved: [[Float]], result: TrainingResult) {
            c.emaDecay = ema
            var seen: [[[Float]]] = []
            let r = try Trainer.run(config: c, progress: { _ in true }, beforeStep: { _, w in seen.append(values(w)) })
            return (seen, values(try Checkpoint.load(directory: setup.out).weights), r)
        }
        let plain = try run(ema: 0)
        let averaged = try run(ema: 0.5)
        #expect(plain.seen == averaged.seen, "the average must not change what is trained")
        #expect(plain.result.stepLosses == averaged.result.stepLosses)
        // Weights after steps 1...4: what step 2...4 saw, then the plain run's checkpoint.
        let steps = Array(plain.seen.dropFirst()) + [plain.saved]
        let d = 0.5, t = steps.count
        var worst = 0.0, moved = 0.0
        for k in plain.saved.indices {
            for i in plain.saved[k].indices {
                var sum = 0.0
                for s in 1...t { sum += pow(d, Double(t - s)) * Double(steps[s - 1][k][i]) }
                let expected = sum * (1 - d) / (1 - pow(d, Double(t)))
                worst = max(worst, abs(Double(averaged.saved[k][i]) - expected))
                moved = max(moved, abs(Double(plain.saved[k][i]) - expected))
            }
        }
        #expect(worst < 1e-6, "max abs error \(worst)")
        #expect(moved > 1e-4, "the average must differ from the last step's weights (\(moved))")
        // Evaluation scores the averaged weights too: the eval loss differs from the plain run's.
        #expect(plain.result.epochs.last?.evalLoss != averaged.result.epochs.last?.evalLoss)

        #expect(throws: SentimentError.self) { _ = try WeightAverage(of: try Checkpoint.load(directory: setup.out).weights, decay: 1) }
    }

    @Test func errorsNameTheField() throws {
        let setup = try TinyTrainingSetup()
        func expectError(_ c: TrainingConfig, _ status: Status, _ field: String, _ text: String? = nil) {
            do {
                _ = try Trainer.run(config: c)
                Issue.record("expected an error for \(field)")
            } catch let e as SentimentError {
                #expect(e.status == status && e.field == field, "\(e.status) \(e.field ?? "nil"): \(e.message)")
                if let text { #expect(e.message.contains(text), "\(e.message)") }
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        var c = setup.config()
        c.trainFile = setup.tmp.sub("missing.tsv")
        expectError(c, .io, "train_file")
        c = setup.config()
        c.evalFile = setup.tmp.sub("missing.tsv")
        expectError(c, .io, "eval_file")
        try setup.write(setup.tmp.sub("bad.tsv"), "sentence\tlabel\ngood film\t1\nbad film\tseven\n")
        c = setup.config()
        c.trainFile = setup.tmp.sub("bad.tsv")
        expectError(c, .format, "train_file", "bad.tsv:3")
        c = setup.config()
        c.maxLength = 64   // the tiny model has 40 positions
        expectError(c, .invalidArgument, "max_length")
        c = setup.config()
        c.modelDirectory = setup.tmp.sub("nowhere")
        expectError(c, .io, "model_dir")
        c = setup.config()
        c.trainBatchSize = 0
        expectError(c, .invalidArgument, "train_batch_size")
        c = setup.config(.best)
        c.outputDirectory = nil
        expectError(c, .invalidArgument, "output_dir")
        c = setup.config()
        c.emaDecay = 1
        expectError(c, .invalidArgument, "ema_decay")
    }
}
