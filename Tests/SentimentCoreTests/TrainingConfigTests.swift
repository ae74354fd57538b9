import Testing
@testable import SentimentCore

@Suite struct TrainingConfigTests {
    @Test func defaultsAreTheSST2Recipe() {
        let c = TrainingConfig(modelDirectory: "m", trainFile: "t.tsv")
        #expect(c.learningRate == 2e-5)
        #expect(c.trainBatchSize == 256 && c.evalBatchSize == 256)
        #expect(c.numTrainEpochs == 5)
        #expect(c.seed == 42)
        #expect(c.adamBeta1 == 0.9 && c.adamBeta2 == 0.999 && c.adamEpsilon == 1e-8)
        #expect(c.lrSchedulerType == .linear)
        #expect(c.maxGradNorm == 1.0)
        #expect(c.saveStrategy == .best)
        #expect(c.maxSteps == -1)
        #expect(c.outputDirectory == nil && c.evalFile == nil)
    }

    @Test func validateNamesTheField() throws {
        var c = TrainingConfig(modelDirectory: "m", trainFile: "t.tsv")
        c.outputDirectory = "o"
        try c.validate()
        func rejects(_ field: String, _ change: (inout TrainingConfig) -> Void) {
            var bad = c
            change(&bad)
            do {
                try bad.validate()
                Issue.record("accepted a config bad in \(field)")
            } catch let e as SentimentError {
                #expect(e.status == .invalidArgument && e.field == field, "\(e.message)")
            } catch { Issue.record("unexpected \(error)") }
        }
        rejects("max_steps") { $0.maxSteps = 0 }
        rejects("rdrop_alpha") { $0.rdropAlpha = 1; $0.dropout = false }
        rejects("output_dir") { $0.outputDirectory = nil }
        var unsaved = c
        unsaved.outputDirectory = nil
        unsaved.saveStrategy = .no
        try unsaved.validate()
    }
}

@Suite struct OptimizerPieceTests {
    @Test func linearScheduleWithWarmup() {
        // HF get_linear_schedule_with_warmup(num_warmup_steps=2, num_training_steps=10).
        let s = LearningRateSchedule(kind: .linear, baseRate: 1, warmupSteps: 2, totalSteps: 10)
        let expected: [Float] = [0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0]
        for (k, e) in expected.enumerated() { #expect(abs(s.rate(afterSteps: k) - e) < 1e-7, "step \(k)") }
        #expect(LearningRateSchedule.warmupSteps(ratio: 0.06, totalSteps: 1320) == 80)   // ceil(79.2)
        #expect(LearningRateSchedule.warmupSteps(steps: 5, ratio: 0.06, totalSteps: 1320) == 5)   // warmup_steps wins
    }

    /// Every schedule against transformers' get_scheduler (tools/fixtures/make_schedule_fixtures.py).
    @Test func schedulesMatchTransformers() throws {
        let path = FileSystem.directoryName(#filePath) + "/Fixtures/schedules/schedules.json"
        let doc = try JSON.parse(try FileSystem.readFile(path, limit: 1 << 20))
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count == 7)
        for c in cases {
            let name = try #require(c["kind"]?.stringValue)
            let kind = try #require(LearningRateSchedule.Kind(rawValue: name))
            let base = try #require(c["base"]?.doubleValue)
            let warmup = try #require(c["warmup"]?.int64Value), total = try #require(c["total"]?.int64Value)
            var s = LearningRateSchedule(kind: kind, baseRate: Float(base), warmupSteps: Int(warmup), totalSteps: Int(total))
            if let v = c["kwargs"]?["num_cycles"]?.doubleValue { s.numCycles = v }
            if let v = c["kwargs"]?["power"]?.doubleValue { s.power = v }
            if let v = c["kwargs"]?["lr_end"]?.doubleValue { s.lrEnd = v }
            let list = try #require(c["rates"]?.arrayValue)
            let rates = list.compactMap { $0.doubleValue }
            #expect(rates.count == s.totalSteps)
            for (k, expected) in rates.enumerated() {
                let got = Double(s.rate(afterSteps: k))
                #expect(abs(got - expected) <= 1e-7 * 1e-3 + 1e-7 * abs(expected), "\(name) \(c["kwargs"] ?? .null) step \(k): \(got) vs \(expected)")
            }
        }
    }

    @Test func clipping() throws {
        let a = try Tensor(shape: [2], values: [3, 0])
        let b = try Tensor(shape: [1], values: [4])
        let norm = clipGradientNorm([a, b], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(a.data[0] - 3 / (5 + 1e-6)) < 1e-6 && abs(b.data[0] - 4 / (5 + 1e-6)) < 1e-6)
        let c = try Tensor(shape: [1], values: [0.5])
        clipGradientNorm([c], maxNorm: 1)
        #expect(c.data[0] == 0.5)
    }

    @Test func adamWFirstStepMovesByLearningRate() throws {
        // With bias correction, the first Adam step is lr * g / (|g| + eps) = ~lr * sign(g).
        let p = try Tensor(shape: [3], values: [1, 1, 1])
        let bias = try Tensor(shape: [1], values: [1])
        var hyper = AdamW.Hyperparameters()
        hyper.weightDecay = 0.1
        let opt = try AdamW(parameters: [("layer.0.query.weight", p), ("layer.0.query.bias", bias)], hyper: hyper)
        let g = try Tensor(shape: [3], values: [0.5, -2, 0])
        let gb = try Tensor(shape: [1], values: [1])
        opt.update(gradients: [g, gb], lr: 0.01)
        let decayed: Float = 1 - 0.01 * 0.1
        #expect(abs(p.data[0] - (decayed - 0.01)) < 1e-6)
        #expect(abs(p.data[1] - (decayed + 0.01)) < 1e-6)
        #expect(abs(p.data[2] - decayed) < 1e-6)
        #expect(abs(bias.data[0] - 0.99) < 1e-6)    // biases are not decayed
        #expect(AdamW.isDecayed("layer.0.output_norm.weight") == false)
    }

    @Test func layerwiseRateScales() throws {
        let names = ["embeddings.word", "embeddings.norm.bias", "layer.0.query.weight", "layer.5.ffn_out.bias",
                     "layer.3.key.weight", "head.dense.weight", "head.classifier.bias"]
        let scales = AdamW.layerwiseRateScales(names, layers: 6, decay: 0.5)
        let expectedScales: [Float] = [1.0 / 128, 1.0 / 128, 1.0 / 64, 0.5, 1.0 / 8, 1, 1]
        #expect(scales == expectedScales)
        #expect(AdamW.layerwiseRateScales(names, layers: 6, decay: 1).allSatisfy { $0 == 1 })

        // A scaled tensor moves by the scaled rate, its weight decay too.
        let a = try Tensor(shape: [2], values: [1, 1]), b = try Tensor(shape: [2], values: [1, 1])
        var hyper = AdamW.Hyperparameters()
        hyper.weightDecay = 0.5
        let opt = try AdamW(parameters: [("layer.0.query.weight", a), ("layer.1.query.weight", b)], hyper: hyper,
                            rateScales: [1, 0.25])
        let g = try Tensor(shape: [2], values: [1, -1])
        opt.update(gradients: [g, g], lr: 0.01)
        func expected(_ rate: Float, _ sign: Float) -> Float { 1 - rate * 0.5 - sign * rate }
        #expect(abs(a.data[0] - expected(0.01, 1)) < 1e-6 && abs(a.data[1] - expected(0.01, -1)) < 1e-6)
        #expect(abs(b.data[0] - expected(0.0025, 1)) < 1e-6 && abs(b.data[1] - expected(0.0025, -1)) < 1e-6)
        #expect(throws: SentimentError.self) {
            _ = try AdamW(parameters: [("layer.0.query.weight", a)], hyper: hyper, rateScales: [1, 1])
        }
    }
}
