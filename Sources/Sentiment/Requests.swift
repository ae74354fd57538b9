// The JSON requests of include/sentiment.h, each read into the SentimentCore options struct of
// its call. Defaults are the structs' own; unknown keys are rejected; every error names its key
// (the error document's "field"). `public` only for sentiment-bench: the .so exports sentiment_* alone.
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads a borrowed C string as the request object `argument` (the C parameter's name), which
/// may have only the keys `allowed`. NULL is MISUSE naming the argument.
func requestReader(_ json: UnsafePointer<CChar>?, argument: String, allowed: [String]) throws -> JSONObjectReader {
    guard let json else { throw SentimentError(.misuse, "\(argument) is NULL", field: argument) }
    let count = strlen(json)
    guard count <= maxRequestBytes else {
        throw SentimentError.invalidArgument(
            "\(argument) is \(count) bytes; at most \(maxRequestBytes) (16 MB) are accepted", field: argument)
    }
    let value = try JSON.parse(UnsafeBufferPointer(
        start: UnsafeRawPointer(json).assumingMemoryBound(to: UInt8.self), count: count))
    return try JSONObjectReader(value, .request(argument), unknownKeys: .reject(allowed: allowed))
}

/// Request and config JSON past this many bytes is refused before parsing (parsed, it takes
/// several times its size).
let maxRequestBytes = 16 << 20
/// At most this many texts (and text_pairs, labels) per call: the results of one call are
/// built in memory, about 1 KB per text.
let maxTexts = 100_000

extension JSONObjectReader {
    /// "texts", "text_pairs" or "labels" with at most `maxTexts` entries, counted before they are read.
    func capped(_ key: String) throws {
        if let n = value(key)?.arrayValue?.count, n > maxTexts {
            throw SentimentError.invalidArgument("\(key) has \(n) entries; at most \(maxTexts) per call", field: key)
        }
    }

    /// A real-valued key that `limit` accepts.
    func real(_ key: String, default fallback: Double, _ limit: TrainingLimits.Real) throws -> Double {
        try double(key, default: fallback, rule: limit.rule, limit.accepts)
    }

    /// "seed": any integer from 0 to Int.max.
    func seed(default fallback: UInt64) throws -> UInt64 {
        UInt64(try int("seed", in: 0...Int.max, default: Int(clamping: fallback)))
    }

    /// eval_steps / save_steps: a whole number of steps >= 1, or a fraction of the run in (0, 1).
    func stepInterval(_ key: String) throws -> TrainingConfig.StepInterval? {
        guard let v = value(key) else { return nil }
        if case .int = v { return .steps(try int(key, in: 1...Int(Int32.max)) ?? 1) }
        guard let f = v.doubleValue, f > 0, f < 1 else {
            throw SentimentError.invalidArgument(
                "\(key) must be a whole number of steps >= 1, or a fraction of the run in (0, 1); got \(JSONObjectReader.describe(v))",
                field: key)
        }
        return .fraction(f)
    }

    /// "resume_from_checkpoint": a folder, true (the newest checkpoint in output_dir) or false.
    func resume() throws -> TrainingConfig.Resume? {
        guard let v = value("resume_from_checkpoint") else { return nil }
        if let b = v.boolValue { return b ? .newest : nil }
        guard let path = v.stringValue, !path.isEmpty else {
            throw SentimentError.invalidArgument(
                "resume_from_checkpoint must be a checkpoint folder, or true for the newest in output_dir; got "
                    + JSONObjectReader.describe(v), field: "resume_from_checkpoint")
        }
        return .path(path)
    }

    /// "batch_size" of classify and evaluate (capped by tokens later, see `boundedBatchSize`).
    func batchSize(default fallback: Int) throws -> Int {
        try int("batch_size", in: 1...65_536, default: fallback)
    }
}

extension ModelOptions {
    /// sentiment_model_load's config_json.
    static func parse(_ configJSON: UnsafePointer<CChar>?) throws -> ModelOptions {
        let r = try requestReader(configJSON, argument: "config_json",
                                  allowed: ["model_dir", "precision", "max_length", "threads", "head", "seed"] + calibrationKeys)
        var o = ModelOptions(modelDirectory: try r.requiredPath("model_dir"))
        o.precision = try r.choice("precision", default: o.precision)
        o.maxLength = try r.int("max_length", in: ModelOptions.maxLengthRange, default: o.maxLength)
        o.threads = try r.int("threads", in: ModelOptions.threadsRange, default: o.threads)
        o.head = try r.choice("head", default: o.head)
        o.seed = try r.seed(default: o.seed)
        o.calibration = try r.calibration()
        return o
    }
}

extension TokenizeOptions {
    /// sentiment_tokenize's request_json for `model`, whose positions bound max_length.
    static func parse(_ requestJSON: UnsafePointer<CChar>?, model: SentimentModel) throws -> TokenizeOptions {
        let r = try requestReader(requestJSON, argument: "request_json", allowed: ["texts", "text_pairs", "max_length"])
        try r.capped("texts"); try r.capped("text_pairs")
        var o = TokenizeOptions(texts: try r.requiredStrings("texts"), model: model)
        o.textPairs = try r.pairs(texts: o.texts)
        o.maxLength = try r.int("max_length", in: 2...max(2, model.config.maxPositions), default: o.maxLength)
        return o
    }
}

extension ClassifyOptions {
    /// sentiment_classify's request_json.
    static func parse(_ requestJSON: UnsafePointer<CChar>?) throws -> ClassifyOptions {
        let r = try requestReader(requestJSON, argument: "request_json",
                                  allowed: ["texts", "text_pairs", "top_k", "long_text", "stride", "batch_size"])
        try r.capped("texts"); try r.capped("text_pairs")
        var o = ClassifyOptions(texts: try r.requiredStrings("texts"))
        o.textPairs = try r.pairs(texts: o.texts)
        // HF pipeline semantics: a number of labels, or null for all of them.
        o.topK = r.isNull("top_k") ? Int.max : try r.int("top_k", in: 1...Int(Int32.max))
        o.longText = try r.choice("long_text", default: o.longText)
        if r.has("stride") {
            guard o.longText == .window else {
                throw SentimentError.invalidArgument("stride needs \"long_text\": \"window\"", field: "stride")
            }
            o.stride = try r.int("stride", in: 0...ModelOptions.maxLengthRange.upperBound)
        }
        if o.longText == .window, o.textPairs != nil {
            throw SentimentError.invalidArgument("long_text \"window\" takes single texts, not text_pairs", field: "long_text")
        }
        o.batchSize = try r.batchSize(default: o.batchSize)
        return o
    }
}

extension EvaluateOptions {
    /// sentiment_evaluate's request_json: data_file, or texts with labels.
    static func parse(_ requestJSON: UnsafePointer<CChar>?) throws -> EvaluateOptions {
        let r = try requestReader(requestJSON, argument: "request_json",
                                  allowed: ["data_file", "texts", "text_pairs", "labels", "batch_size"] + JSONObjectReader.dataFileKeys)
        for key in ["texts", "text_pairs", "labels"] { try r.capped(key) }
        var o: EvaluateOptions
        if let path = try r.path("data_file") {
            guard !r.has("texts"), !r.has("labels"), !r.has("text_pairs") else {
                throw SentimentError.invalidArgument("give either data_file or texts+labels, not both", field: "data_file")
            }
            o = EvaluateOptions(data: .file(try r.dataFile(path: path)))
        } else if let texts = try r.strings("texts") {
            guard r.has("labels") else {
                throw SentimentError.invalidArgument("labels is required with texts", field: "labels")
            }
            // Ids, or the model's label names.
            let labels: EvaluateOptions.Labels
            if let first = r.value("labels")?.arrayValue?.first, first.stringValue != nil {
                labels = .names(try r.requiredStrings("labels"))
            } else {
                labels = .ids(try r.ints("labels") ?? [])
            }
            o = EvaluateOptions(data: .examples(texts: texts, pairs: try r.pairs(texts: texts), labels: labels))
        } else {
            throw SentimentError.invalidArgument("data_file or texts+labels is required", field: "data_file")
        }
        o.batchSize = try r.batchSize(default: o.batchSize)
        return o
    }
}

extension SaveOptions {
    /// sentiment_model_save's config_json.
    static func parse(_ configJSON: UnsafePointer<CChar>?) throws -> SaveOptions {
        let r = try requestReader(configJSON, argument: "config_json", allowed: ["output_dir", "precision"] + calibrationKeys)
        var o = SaveOptions(outputDirectory: try r.requiredPath("output_dir"))
        o.precision = try r.choice("precision", default: o.precision)
        o.calibration = try r.calibration()
        return o
    }
}

extension TrainingConfig {
    /// Every key of sentiment_train's config_json (the CLI's `train --help` lists them).
    public static let keys = [
        "model_dir", "train_file", "eval_file", "output_dir", "learning_rate", "train_batch_size",
        "eval_batch_size", "num_train_epochs", "seed", "adam_beta1", "adam_beta2", "adam_epsilon",
        "weight_decay", "lr_scheduler_type", "warmup_ratio", "max_grad_norm", "max_length", "max_steps",
        "save_strategy", "threads", "logging_steps", "head", "max_train_examples", "dropout",
        "layerwise_lr_decay", "ema_decay", "rdrop_alpha", "bf16", "labels", "metric_for_best_model",
        "greater_is_better", "eval_strategy", "evaluation_strategy", "eval_steps", "save_steps", "save_total_limit",
        "save_optimizer_state", "resume_from_checkpoint", "early_stopping_patience", "early_stopping_threshold",
        "gradient_accumulation_steps", "max_tokens_per_micro_batch", "warmup_steps", "lr_scheduler_kwargs",
    ] + JSONObjectReader.dataFileKeys

    /// sentiment_train's config_json.
    public static func parse(_ configJSON: UnsafePointer<CChar>?) throws -> TrainingConfig {
        typealias L = TrainingLimits
        let r = try requestReader(configJSON, argument: "config_json", allowed: keys)
        var c = TrainingConfig(modelDirectory: try r.requiredPath("model_dir"), trainFile: try r.requiredPath("train_file"))
        if r.has("eval_file") { c.evalFile = try r.requiredPath("eval_file") }
        let columns = try r.dataFile(path: c.trainFile)
        (c.dataFormat, c.textColumn, c.textPairColumn, c.labelColumn) =
            (columns.format, columns.textColumn, columns.textPairColumn, columns.labelColumn)
        if r.has("output_dir") { c.outputDirectory = try r.requiredPath("output_dir") }
        c.learningRate = try r.real("learning_rate", default: c.learningRate, L.learningRate)
        c.trainBatchSize = try r.int("train_batch_size", in: L.batchSize, default: c.trainBatchSize)
        c.evalBatchSize = try r.int("eval_batch_size", in: L.batchSize, default: c.evalBatchSize)
        c.numTrainEpochs = try r.int("num_train_epochs", in: L.numTrainEpochs, default: c.numTrainEpochs)
        c.seed = try r.seed(default: c.seed)
        c.adamBeta1 = try r.real("adam_beta1", default: c.adamBeta1, L.adamBeta)
        c.adamBeta2 = try r.real("adam_beta2", default: c.adamBeta2, L.adamBeta)
        c.adamEpsilon = try r.real("adam_epsilon", default: c.adamEpsilon, L.adamEpsilon)
        c.weightDecay = try r.real("weight_decay", default: c.weightDecay, L.weightDecay)
        c.lrSchedulerType = try r.choice("lr_scheduler_type", default: c.lrSchedulerType)
        c.warmupRatio = try r.real("warmup_ratio", default: c.warmupRatio, L.warmupRatio)
        c.maxGradNorm = try r.real("max_grad_norm", default: c.maxGradNorm, L.maxGradNorm)
        c.layerwiseLRDecay = try r.real("layerwise_lr_decay", default: c.layerwiseLRDecay, L.layerwiseLRDecay)
        c.emaDecay = try r.real("ema_decay", default: c.emaDecay, L.emaDecay)
        c.rdropAlpha = try r.real("rdrop_alpha", default: c.rdropAlpha, L.rdropAlpha)
        c.maxLength = try r.int("max_length", in: L.maxLength, default: c.maxLength)
        c.maxSteps = try r.int("max_steps", in: L.maxSteps, default: c.maxSteps)
        c.saveStrategy = try r.choice("save_strategy", default: c.saveStrategy)
        c.threads = try r.int("threads", in: L.threads, default: c.threads)
        c.loggingSteps = try r.int("logging_steps", in: L.loggingSteps, default: c.loggingSteps)
        c.head = try r.choice("head", default: c.head)
        c.maxTrainExamples = try r.int("max_train_examples", in: L.maxTrainExamples, default: c.maxTrainExamples)
        c.dropout = try r.bool("dropout", default: c.dropout)
        c.bf16 = try r.bool("bf16", default: c.bf16)
        c.labels = try r.strings("labels")
        if let metric = try r.string("metric_for_best_model") {
            // TrainingArguments accepts the name with or without "eval_".
            let name = metric.hasPrefix("eval_") ? String(metric.dropFirst(5)) : metric
            guard let m = TrainingConfig.Metric(rawValue: name) else {
                let names = TrainingConfig.Metric.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw SentimentError.invalidArgument(
                    "metric_for_best_model \"\(metric.prefix(40))\" is not one of \(names)", field: "metric_for_best_model")
            }
            c.metricForBestModel = m
        }
        if r.has("greater_is_better") { c.greaterIsBetter = try r.bool("greater_is_better", default: true) }
        if r.has("eval_strategy") && r.has("evaluation_strategy") {
            throw SentimentError.invalidArgument(
                "set eval_strategy or its old name evaluation_strategy, not both", field: "evaluation_strategy")
        }
        c.evalStrategy = try r.choice(r.has("evaluation_strategy") ? "evaluation_strategy" : "eval_strategy", default: c.evalStrategy)
        c.evalSteps = try r.stepInterval("eval_steps")
        c.saveSteps = try r.stepInterval("save_steps") ?? c.saveSteps
        c.saveTotalLimit = try r.int("save_total_limit", in: L.saveTotalLimit)
        if r.has("save_optimizer_state") { c.saveOptimizerState = try r.bool("save_optimizer_state", default: true) }
        c.resumeFromCheckpoint = try r.resume()
        c.earlyStoppingPatience = try r.int("early_stopping_patience", in: L.earlyStoppingPatience)
        c.earlyStoppingThreshold = try r.real("early_stopping_threshold", default: c.earlyStoppingThreshold, L.earlyStoppingThreshold)
        c.gradientAccumulationSteps = try r.int(
            "gradient_accumulation_steps", in: L.gradientAccumulationSteps, default: c.gradientAccumulationSteps)
        c.maxTokensPerMicroBatch = try r.int("max_tokens_per_micro_batch", in: L.maxTokensPerMicroBatch, default: 0)
        c.warmupSteps = try r.int("warmup_steps", in: L.warmupSteps, default: c.warmupSteps)
        if let kwargs = r.value("lr_scheduler_kwargs") {
            do {
                let k = try JSONObjectReader(
                    kwargs, .request("lr_scheduler_kwargs"), unknownKeys: .reject(allowed: ["num_cycles", "power", "lr_end"]))
                c.numCycles = try k.real("num_cycles", default: c.numCycles, L.numCycles)
                c.power = try k.real("power", default: c.power, L.power)
                c.lrEnd = try k.real("lr_end", default: c.lrEnd, L.lrEnd)
            } catch var e as SentimentError {
                if let f = e.field, f != "lr_scheduler_kwargs" { e.field = "lr_scheduler_kwargs." + f }
                throw e
            }
        }
        try c.validate()
        return c
    }
}

/// The keys of an int8 calibration (a quantizing load or save).
let calibrationKeys = ["calibration_file", "calibration_samples", "smoothquant_alpha", "outlier_channels"]

extension JSONObjectReader {
    /// `calibration_file` with `calibration_samples`, `smoothquant_alpha` and `outlier_channels`,
    /// or nil without a file (the others alone are refused).
    func calibration() throws -> CalibrationOptions? {
        guard has("calibration_file") else {
            if let key = calibrationKeys.dropFirst().first(where: { has($0) }) {
                throw SentimentError.invalidArgument("\(key) needs calibration_file", field: key)
            }
            return nil
        }
        var c = CalibrationOptions(file: try requiredPath("calibration_file"))
        c.samples = try int("calibration_samples", in: CalibrationOptions.samplesRange, default: c.samples)
        c.outlierChannels = try int("outlier_channels", in: CalibrationOptions.outlierChannelsRange, default: c.outlierChannels)
        c.alpha = Float(try double("smoothquant_alpha", default: Double(c.alpha), rule: "in [0, 1]") {
            CalibrationOptions.alphaRange.contains($0)
        })
        return c
    }

    /// The keys that say how to read a data file (`data_file`, `train_file`, `eval_file`).
    static let dataFileKeys = ["format", "text_column", "text_pair_column", "label_column"]

    /// `path` read as `format`, `text_column`, `text_pair_column` and `label_column` say.
    func dataFile(path: String) throws -> DataFile {
        var f = DataFile(path: path)
        if has("format") { f.format = try choice("format", default: DataFormat.tsv) }
        if has("text_column") { f.textColumn = try requiredString("text_column") }
        if has("text_pair_column") { f.textPairColumn = try requiredString("text_pair_column") }
        if has("label_column") { f.labelColumn = try requiredString("label_column") }
        return f
    }

    /// "text_pairs": one second text per text, or nil.
    func pairs(texts: [String]) throws -> [String]? {
        guard let pairs = try strings("text_pairs") else { return nil }
        guard pairs.count == texts.count else {
            throw SentimentError.invalidArgument(
                "text_pairs has \(pairs.count) entries but texts has \(texts.count)", field: "text_pairs")
        }
        return pairs
    }
}
