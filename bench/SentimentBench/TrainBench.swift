// Training throughput: optimizer steps (forward + backward + clip + AdamW) on packed batches of
// SST-2 sentences, in file order (batch k = sentences k*B ..< (k+1)*B; bench/train_bench.py
// feeds PyTorch the same batches, padded). Reports real (unpadded) tokens per second, the time
// split, and peak RSS.
#if canImport(Glibc)
import Glibc
#endif
import Sentiment   // the train config parser of sentiment_train
import SentimentCore

enum TrainBench {
    /// `sentiment-bench train --config FILE.json [--stop-after-epochs N]`: one Trainer.run with a
    /// train config (the C API's JSON keys), printing every event and the result; optionally
    /// cancelled after N epochs (the schedule still spans all of them, like a cut-short HF run).
    static func runConfig(_ path: String, stopAfterEpochs: Int?) throws {
        let text = String(decoding: try TokenizerBench.readFile(path), as: UTF8.self)
        let config = try text.withCString { try TrainingConfig.parse($0) }
        let start = Clock.now()
        let r = try Trainer.run(config: config) { e in
            print("[\(fmt(Clock.now() - start)) s] \(e)")
            fflush(nil)
            if case let .eval(m) = e, let stop = stopAfterEpochs, m.epoch >= stop { return false }
            return true
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("epochs: \(r.epochs)\(r.cancelled ? " (cancelled)" : "")")
        print("best epoch \(r.bestEpoch.map(String.init) ?? "-"), steps \(r.steps), \(fmt(r.trainTokensPerSecond)) train tokens/s, "
              + "\(fmt(r.trainSeconds)) s training, \(fmt(Clock.now() - start)) s in all, peak RSS \(Double(usage.ru_maxrss) / 1024) MB")
    }

    static func run(_ argv: [String]) throws {
        if argv.count >= 2, argv[0] == "--config" {
            let stop = argv.count == 4 && argv[2] == "--stop-after-epochs" ? Int(argv[3]) : nil
            return try runConfig(argv[1], stopAfterEpochs: stop)
        }
        var model = TokenizerBench.env("SENTIMENT_MODEL_DIR")
            ?? ((TokenizerBench.env("SENTIMENT_CACHE_DIR") ?? ((TokenizerBench.env("HOME") ?? "") + "/.cache/sentiment"))
                + "/models/all-MiniLM-L6-v2")
        var data = (TokenizerBench.env("SENTIMENT_DATA_DIR") ?? "../shared/data/sst2") + "/train.tsv"
        var batchSize = 256, steps = 6, warmup = 1, maxLength = 128, threads = 0
        var dropout = true, bf16 = false
        var i = 0
        while i < argv.count {
            let value = i + 1 < argv.count ? argv[i + 1] : ""
            switch argv[i] {
            case "--model": model = value
            case "--data": data = value
            case "--batch": batchSize = max(1, Int(value) ?? batchSize)
            case "--steps": steps = max(1, Int(value) ?? steps)
            case "--warmup": warmup = max(0, Int(value) ?? warmup)
            case "--max-length": maxLength = Int(value) ?? maxLength
            case "--threads": threads = Int(value) ?? threads
            case "--no-dropout": dropout = false; i -= 1
            case "--bf16": bf16 = true; i -= 1
            default: throw SentimentError.invalidArgument("unknown option \(argv[i])")
            }
            i += 2
        }
        if threads > 0 { Parallel.setThreads(threads) }

        let ckpt = try Checkpoint.load(directory: model, options: LoadOptions(head: .distilbert))
        let tok = try BertTokenizer.load(modelDirectory: model)
        let dataset = try LabeledDataset.read(DataFile(path: data), labelNames: ckpt.config.labels)
        let needed = (warmup + steps) * batchSize
        guard dataset.count >= needed else {
            throw SentimentError.invalidArgument("\(data) has \(dataset.count) sentences; need \(needed)")
        }
        let weights = ckpt.weights
        let trainer = try GradientStep(weights: weights, bf16: bf16)
        let grads = try EncoderWeights.zeros(like: weights)
        let gradTensors = grads.namedTensors.map(\.tensor)
        let optimizer = try AdamW(parameters: weights.namedTensors, hyper: AdamW.Hyperparameters())

        var tokens = 0, seconds = 0.0
        var fwd = 0.0, bwd = 0.0, clip = 0.0, adam = 0.0
        var losses: [Double] = []
        let batches = try (0..<(warmup + steps)).map { k in
            try PackedBatch(sequences: (k * batchSize..<(k + 1) * batchSize).map {
                tok.encode(dataset.texts[$0], maxLength: maxLength)
            })
        }
        // As the trainer does at each epoch's start: buffers sized once for the largest batch.
        try trainer.reserve(batches.map(\.shape).reduce(BatchShape()) { $0.union($1) })
        for (k, batch) in batches.enumerated() {
            let labels = Array(dataset.labels[k * batchSize..<(k + 1) * batchSize])
            let t0 = Clock.now()
            let loss = try trainer.lossAndGradients(
                batch: batch, labels: labels, gradients: grads, dropoutSeed: dropout ? UInt64(k) : nil)
            let t1 = Clock.now()
            clipGradientNorm(gradTensors, maxNorm: 1)
            let t2 = Clock.now()
            optimizer.update(gradients: gradTensors, lr: 2e-5)
            let t3 = Clock.now()
            losses.append(loss)
            if k >= warmup {
                tokens += batch.totalTokens
                seconds += t3 - t0
                fwd += trainer.lastSeconds.forward
                bwd += trainer.lastSeconds.backward
                clip += t2 - t1
                adam += t3 - t2
            }
            print("step \(k + 1)\(k < warmup ? " (warm-up)" : ""): \(batch.totalTokens) tokens, \(fmt(t3 - t0)) s, loss \(fmt(loss))")
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rssMB = Double(usage.ru_maxrss) / 1024
        let perStep = seconds / Double(steps)
        print("tokens/s \(fmt(Double(tokens) / seconds)) (\(tokens / steps) real tokens per step of \(batchSize)), "
              + "\(fmt(perStep)) s/step: forward \(fmt(fwd / Double(steps))), backward \(fmt(bwd / Double(steps))), "
              + "clip \(fmt(clip / Double(steps))), adamw \(fmt(adam / Double(steps))); peak RSS \(fmt(rssMB)) MB; threads \(Parallel.threads)")
        let gflop = 6.0 * Double(weights.config.encoderParameterCount) * Double(tokens) / seconds / 1e9
        print("~\(fmt(gflop)) GFLOP/s at 6 x \(weights.config.encoderParameterCount) non-embedding parameters per token")
        print("{\"bench\":\"train\",\"tokens_per_second\":\(Double(tokens) / seconds),\"seconds_per_step\":\(perStep),"
              + "\"forward\":\(fwd / Double(steps)),\"backward\":\(bwd / Double(steps)),\"clip\":\(clip / Double(steps)),"
              + "\"adamw\":\(adam / Double(steps)),\"tokens_per_step\":\(tokens / steps),\"batch\":\(batchSize),"
              + "\"encoder_parameters\":\(weights.config.encoderParameterCount),\"peak_rss_mb\":\(rssMB),\"threads\":\(Parallel.threads),\"dropout\":\(dropout)}")
    }

    static func fmt(_ x: Double) -> String {
        let r = (x * 1000).rounded() / 1000
        return "\(r)"
    }
}
