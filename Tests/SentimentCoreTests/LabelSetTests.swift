// Which labels a training run trains (LabelPlan, as Hugging Face's run_glue picks them), a
// 3-class run with names end to end, and picking the best epoch by another metric.
import Testing
@testable import SentimentCore

@Suite struct LabelPlanTests {
    /// A label column read from a JSON Lines file of these labels.
    func column(_ labels: [String]) throws -> LabelColumn {
        let tmp = try TempDir()
        let path = tmp.sub("d.jsonl")
        let lines = labels.map { "{\"text\": \"x\", \"label\": \($0)}" }
        try FileSystem.writeAtomically(path) { try $0.write(Array((lines.joined(separator: "\n") + "\n").utf8)) }
        return try DataRows.read(DataFile(path: path)).labels
    }

    let sst2 = ["NEGATIVE", "POSITIVE"]

    @Test func namesAreSortedAndReplaceTheCheckpointsWhenTheyDiffer() throws {
        let p = try LabelPlan.choose(requested: nil, column: column(["\"pos\"", "\"neutral\"", "\"neg\"", "\"pos\""]), checkpoint: sst2)
        #expect(p.labels == ["neg", "neutral", "pos"] && p.freshHead)
        #expect(p.note(classifierRead: false)
            == "labels \"neg\", \"neutral\", \"pos\" (the train file's labels); the classifier starts fresh (the checkpoint's has 2 labels)")
        // Unicode scalar order, as Python's sorted(): upper case before lower, "Z" before "a".
        let q = try LabelPlan.choose(requested: nil, column: column(["\"b\"", "\"Z\"", "\"a\""]), checkpoint: sst2)
        #expect(q.labels == ["Z", "a", "b"])
        // Same count, other names: renamed, the classifier kept.
        let r = try LabelPlan.choose(requested: nil, column: column(["\"good\"", "\"bad\""]), checkpoint: sst2)
        #expect(r.labels == ["bad", "good"] && !r.freshHead)
        #expect(r.note(classifierRead: true)
            == "the train file's labels (\"bad\", \"good\") replace the checkpoint's (\"NEGATIVE\", \"POSITIVE\"); its classifier is kept")
        #expect(r.note(classifierRead: false) == "labels \"bad\", \"good\" (the train file's labels); the classifier starts fresh")
    }

    @Test func theCheckpointsLabelsAreKeptWhenTheFileFitsThem() throws {
        for labels in [["\"positive\"", "\"NEGATIVE\""], ["\"POSITIVE\""], ["0", "1", "1"], ["1"]] {
            let p = try LabelPlan.choose(requested: nil, column: column(labels), checkpoint: sst2)
            #expect(p == LabelPlan(labels: sst2, freshHead: false) && p.note(classifierRead: true) == nil, "\(labels)")
        }
    }

    @Test func integersAboveTheCheckpointsGiveLabelNumbers() throws {
        let p = try LabelPlan.choose(requested: nil, column: column(["0", "2", "1"]), checkpoint: sst2)
        #expect(p.labels == ["LABEL_0", "LABEL_1", "LABEL_2"] && p.freshHead)
        #expect(p.note(classifierRead: true)?.contains("the train file's labels 0...2") == true)
    }

    @Test func requestedLabelsWin() throws {
        let p = try LabelPlan.choose(requested: ["bad", "meh", "good"], column: column(["\"good\""]), checkpoint: sst2)
        #expect(p.labels == ["bad", "meh", "good"] && p.freshHead)
        let same = try LabelPlan.choose(requested: sst2, column: column(["0"]), checkpoint: sst2)
        #expect(same == LabelPlan(labels: sst2, freshHead: false))
    }

    @Test func oneUnknownNameIsNotAClassifier() throws {
        let e = #expect(throws: SentimentError.self) {
            try LabelPlan.choose(requested: nil, column: column(["\"spam\"", "\"spam\""]), checkpoint: sst2)
        }
        #expect(e?.field == "labels" && e?.message.contains("train_file has one label (\"spam\")") == true)
    }
}

@Suite(.serialized) struct LabelSetTrainingTests {
    /// The tiny setup's examples with a third class (no cue word) and labels as names, in CSV.
    static func threeClassCSV(_ n: Int, seed: UInt64) -> String {
        var rng = SeededRandom(seed: seed)
        let rows = TinyTrainingSetup.tsv(n, &rng).split(separator: "\n").dropFirst()
        var out = ["text,label"]
        for (i, row) in rows.enumerated() {
            let parts = row.split(separator: "\t")
            guard parts.count == 2 else { continue }
            if i % 3 == 2 {
                let words = parts[0].split(separator: " ").filter { TinyTrainingSetup.neutral.contains(String($0)) }
                out.append("\"\(words.joined(separator: " "))\",neutral")
            } else {
                out.append("\"\(parts[0])\",\(parts[1] == "1" ? "pos" : "neg")")
            }
        }
        return out.joined(separator: "\r\n") + "\r\n"
    }

    @Test func threeNamedClassesTrainAndSaveTheirNames() throws {
        let setup = try TinyTrainingSetup()
        let train = setup.tmp.sub("train3.csv"), dev = setup.tmp.sub("dev3.csv")
        try setup.write(train, Self.threeClassCSV(900, seed: 3))
        try setup.write(dev, Self.threeClassCSV(300, seed: 4))
        var c = setup.config(.best)
        (c.trainFile, c.evalFile, c.numTrainEpochs) = (train, dev, 4)
        let r = try Trainer.run(config: c)
        #expect(r.labels == ["neg", "neutral", "pos"])
        #expect(r.notes.count == 1 && r.notes[0].contains("the classifier starts fresh (the checkpoint's has 2 labels)"))
        let m = try #require(r.epochs.last?.evalMetrics)
        #expect(m.confusion.count == 3 && m.perLabel.map(\.support).reduce(0, +) == 300)
        // Chance is about 1/3; the cue words make it easy.
        #expect((r.epochs.last?.evalAccuracy ?? 0) > 0.8, "\(r.epochs.map { $0.evalAccuracy ?? 0 })")
        let saved = try Checkpoint.load(directory: setup.out)
        #expect(saved.config.labels == ["neg", "neutral", "pos"] && !saved.freshHead)
        let id2label = saved.rawConfig["id2label"]
        #expect(id2label?["0"]?.stringValue == "neg" && id2label?["2"]?.stringValue == "pos")
        #expect(saved.rawConfig["label2id"]?["neutral"]?.int64Value == 1)

        // Fine-tuning the saved 3-class model again keeps its head and labels.
        var again = setup.config(.no)
        (again.modelDirectory, again.trainFile, again.evalFile, again.maxSteps) = (setup.out, train, dev, 2)
        try FileSystem.copyAtomically(from: setup.model + "/vocab.txt", to: setup.out + "/vocab.txt", limit: 1 << 20)
        let r2 = try Trainer.run(config: again)
        #expect(r2.labels == ["neg", "neutral", "pos"] && r2.notes.isEmpty)
    }

    @Test func theBestEpochFollowsMetricForBestModel() throws {
        let setup = try TinyTrainingSetup()
        var c = setup.config(.no)
        c.numTrainEpochs = 4
        c.learningRate = 3e-3
        for metric in TrainingConfig.Metric.allCases {
            c.metricForBestModel = metric
            let r = try Trainer.run(config: c)
            let values = r.epochs.map { $0.value(of: metric) ?? .nan }
            let best = metric == .loss ? values.min() : values.max()
            // The first epoch reaching the best value (a later tie does not replace it).
            #expect(r.bestEpoch == (values.firstIndex(of: best ?? .nan) ?? -1) + 1, "\(metric) \(values)")
        }
        c.metricForBestModel = .loss
        c.greaterIsBetter = true
        let r = try Trainer.run(config: c)
        let losses = r.epochs.map { $0.evalLoss ?? 0 }
        #expect(r.bestEpoch == (losses.firstIndex(of: losses.max() ?? 0) ?? -1) + 1)
    }

    @Test func f1NeedsTwoLabels() throws {
        let setup = try TinyTrainingSetup()
        let train = setup.tmp.sub("train3.csv")
        try setup.write(train, Self.threeClassCSV(60, seed: 3))
        var c = setup.config(.no)
        (c.trainFile, c.evalFile, c.metricForBestModel) = (train, nil, .f1)
        let e = #expect(throws: SentimentError.self) { try Trainer.run(config: c) }
        #expect(e?.field == "metric_for_best_model" && e?.message.contains("use \"macro_f1\"") == true)
    }
}

@Suite struct PairHeadTests {
    @Test func pairsOnBERTTrainBERTsHead() throws {
        var c = TrainingConfig(modelDirectory: "m", trainFile: "t")
        #expect(try Trainer.pairHead(c, modelType: .bert) == .auto)   // single texts: as asked
        c.textPairColumn = "b"
        #expect(try Trainer.pairHead(c, modelType: .bert) == .bert)
        #expect(try Trainer.pairHead(c, modelType: .distilbert) == .auto)
        c.head = .distilbert
        let e = #expect(throws: SentimentError.self) { try Trainer.pairHead(c, modelType: .bert) }
        #expect(e?.field == "head" && e?.message.contains("no token types") == true)
        c.saveStrategy = .no   // nothing saved, nothing lost
        #expect(try Trainer.pairHead(c, modelType: .bert) == .distilbert)
    }
}
