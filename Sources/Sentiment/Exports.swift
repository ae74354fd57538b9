// The C ABI: every function declared in include/sentiment.h. Each body parses its JSON
// request (Requests.swift), calls SentimentCore, and writes a result or error document;
// nothing here computes, and nothing here may trap on any input.
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

public typealias OutJSON = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
public typealias ProgressCallback = @convention(c) (UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Int32

let libraryVersion = "0.1.0"
let abiVersion: Int32 = 1

/// NUL-terminated static strings handed out by sentiment_version/sentiment_status_string
/// (built once, never mutated or freed, so sharing them across threads is safe).
nonisolated(unsafe) private let staticStrings: [String: UnsafeMutablePointer<CChar>] = {
    var table: [String: UnsafeMutablePointer<CChar>] = [:]
    for s in [libraryVersion, "unknown status"] + Status.allCases.map(\.summary) {
        if let p = strdup(s) { table[s] = p }
    }
    return table
}()
private let emptyCString: StaticString = ""

private func staticString(_ s: String) -> UnsafePointer<CChar> {
    if let p = staticStrings[s] { return UnsafePointer(p) }
    return UnsafeRawPointer(emptyCString.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("sentiment_version")
public func sentiment_version() -> UnsafePointer<CChar> { staticString(libraryVersion) }

@_cdecl("sentiment_abi_version")
public func sentiment_abi_version() -> Int32 { abiVersion }

@_cdecl("sentiment_status_string")
public func sentiment_status_string(_ status: Int32) -> UnsafePointer<CChar> {
    staticString(Status(rawValue: status)?.summary ?? "unknown status")
}

@_cdecl("sentiment_string_free")
public func sentiment_string_free(_ s: UnsafeMutablePointer<CChar>?) { free(s) }

// MARK: Models

@_cdecl("sentiment_model_load")
public func sentiment_model_load(_ configJSON: UnsafePointer<CChar>?, _ outModel: UnsafeMutablePointer<OpaquePointer?>?,
                                 _ outJSON: OutJSON?) -> Int32 {
    outModel?.pointee = nil
    return Documents.run(outJSON) {
        guard let outModel else { throw SentimentError(.misuse, "out_model is NULL", field: "out_model") }
        let model = try SentimentModel.load(try ModelOptions.parse(configJSON))
        let info = Documents.info(model)
        outModel.pointee = try ModelRegistry.shared.register(model)
        return info
    }
}

@_cdecl("sentiment_model_free")
public func sentiment_model_free(_ model: OpaquePointer?) {
    ModelRegistry.shared.remove(model)
}

@_cdecl("sentiment_model_info")
public func sentiment_model_info(_ model: OpaquePointer?, _ outJSON: OutJSON?) -> Int32 {
    Documents.run(outJSON) {
        Documents.info(try ModelRegistry.shared.model(model))
    }
}

@_cdecl("sentiment_tokenize")
public func sentiment_tokenize(_ model: OpaquePointer?, _ requestJSON: UnsafePointer<CChar>?, _ outJSON: OutJSON?) -> Int32 {
    Documents.run(outJSON) {
        let m = try ModelRegistry.shared.model(model)
        let request = try TokenizeOptions.parse(requestJSON, model: m)
        let encoded = m.tokenizer.encode(request.texts, pairs: request.textPairs, maxLength: request.maxLength)
        // The result tree and its text take about 90 bytes a token (measured); refuse what cannot fit.
        let tokenCount = encoded.ids.reduce(0) { $0 + $1.count }
        try MemoryGuard.check(bytes: tokenCount * tokenizeResultBytesPerToken, what: "the tokenize result of \(tokenCount) tokens")
        func rows(_ r: [[Int32]]) -> JSON { .array(r.map { .array($0.map { JSON(Int($0)) }) }) }
        let tokens = encoded.ids.map { JSON.array($0.map { JSON(m.tokenizer.token(forId: $0) ?? "[UNK]") }) }
        let doc = JSON(["input_ids": rows(encoded.ids), "tokens": .array(tokens)])
        return encoded.types.map { doc.setting("token_type_ids", rows($0)) } ?? doc
    }
}

/// What one token of a sentiment_tokenize result takes in memory (JSON tree and text), rounded up.
let tokenizeResultBytesPerToken = 128

/// At most this many tokens (texts x max_length) go through the encoder at once: a larger
/// batch_size is split, so no request can exhaust memory (results change only by float
/// rounding, as for any batch size).
let maxBatchTokens = 32_768

/// `requested` capped so one batch of `maxLength`-token texts stays within `maxBatchTokens`.
func boundedBatchSize(_ requested: Int, maxLength: Int) -> Int {
    max(1, min(requested, maxBatchTokens / max(1, maxLength)))
}

@_cdecl("sentiment_classify")
public func sentiment_classify(_ model: OpaquePointer?, _ requestJSON: UnsafePointer<CChar>?, _ outJSON: OutJSON?) -> Int32 {
    Documents.run(outJSON) {
        let m = try ModelRegistry.shared.model(model)
        let request = try ClassifyOptions.parse(requestJSON)
        let batchSize = boundedBatchSize(request.batchSize, maxLength: m.options.maxLength)
        let predictions = try m.classify(request.with(batchSize: batchSize))
        return JSON(["results": .array(predictions.map {
            Documents.prediction($0, topK: request.topK, labels: m.labels, windows: request.longText == .window)
        })])
    }
}

@_cdecl("sentiment_evaluate")
public func sentiment_evaluate(_ model: OpaquePointer?, _ requestJSON: UnsafePointer<CChar>?,
                               _ callback: ProgressCallback?, _ userData: UnsafeMutableRawPointer?,
                               _ outJSON: OutJSON?) -> Int32 {
    Documents.run(outJSON) {
        let m = try ModelRegistry.shared.model(model)
        let request = try EvaluateOptions.parse(requestJSON)
        let batchSize = boundedBatchSize(request.batchSize, maxLength: m.options.maxLength)
        let data = try request.dataset(labelNames: m.config.labels)
        let progress: ((Int, Int) -> Bool)? = callback.map { cb in
            { done, total in
                let event = JSON(["event": "progress", "examples": JSON(done), "total": JSON(total)]).serialized()
                return event.withCString { cb($0, userData) } == 0
            }
        }
        let result = try m.evaluate(data, batchSize: batchSize, progress: progress)
        return Documents.evaluation(result, labels: m.config.labels)
    }
}

@_cdecl("sentiment_model_save")
public func sentiment_model_save(_ model: OpaquePointer?, _ configJSON: UnsafePointer<CChar>?, _ outJSON: OutJSON?) -> Int32 {
    Documents.run(outJSON) {
        let m = try ModelRegistry.shared.model(model)
        let request = try SaveOptions.parse(configJSON)
        let files = try m.save(to: request.outputDirectory, precision: request.precision, calibration: request.calibration)
        return JSON(["output_dir": JSON(request.outputDirectory), "files": .array(files.map { JSON($0) })])
    }
}

// MARK: Documents

extension Documents {
    static func info(_ m: SentimentModel) -> JSON {
        let c = m.config
        return JSON([
            "model_dir": JSON(m.options.modelDirectory),
            "model_type": JSON(c.modelType.rawValue),
            "hidden_size": JSON(c.hiddenSize),
            "layers": JSON(c.numLayers),
            "heads": JSON(c.numHeads),
            "intermediate_size": JSON(c.intermediateSize),
            "vocab_size": JSON(c.vocabSize),
            "max_position_embeddings": JSON(c.maxPositions),
            "parameters": JSON(m.parameterCount),
            "precision": JSON(m.options.precision.rawValue),
            "isa": JSON(m.isa.name),
            "quantization": m.quantized.map { $0.config.json } ?? .null,
            "head": JSON(c.headKind.rawValue),
            "fresh_head": JSON(m.freshHead),
            "labels": .array(c.labels.map { JSON($0) }),
            "threads": JSON(m.threads),
            "max_length": JSON(m.options.maxLength),
            "load_seconds": JSON(m.loadSeconds),
            "version": JSON(libraryVersion),
            "abi_version": JSON(Int(abiVersion)),
        ])
    }

    /// sentiment_evaluate's result.
    static func evaluation(_ e: Evaluation, labels: [String]) -> JSON {
        let m = e.metrics
        return JSON([
            "examples": JSON(e.examples), "accuracy": JSON(e.accuracy), "loss": JSON(e.loss),
            "macro_f1": JSON(m.macroF1), "mcc": JSON(m.mcc),
            "per_label": .array(zip(labels, m.perLabel).map { name, l in
                JSON([
                    "label": JSON(name), "precision": JSON(l.precision), "recall": JSON(l.recall), "f1": JSON(l.f1),
                    "support": JSON(l.support),
                ])
            }),
            "confusion_matrix": .array(m.confusion.map { .array($0.map { JSON($0) }) }),
            "seconds": JSON(e.seconds),
        ])
    }

    /// One classify result; with `topK`, also its `topK` best labels ("labels", best first; ties
    /// in label order), and with `windows` the number of windows read.
    static func prediction(_ p: Prediction, topK: Int?, labels: [String], windows: Bool) -> JSON {
        var doc = JSON([
            "label": JSON(p.label), "label_id": JSON(p.labelId), "score": JSON(p.score),
            "probabilities": .array(p.probabilities.map { JSON($0) }),
            "logits": .array(p.logits.map { JSON($0) }),
        ])
        if let topK {
            let order = p.probabilities.indices.sorted { (p.probabilities[$0], $1) > (p.probabilities[$1], $0) }
            doc = doc.setting("labels", .array(order.prefix(topK).map { k in
                JSON(["label": JSON(k < labels.count ? labels[k] : "LABEL_\(k)"), "label_id": JSON(k),
                      "score": JSON(p.probabilities[k])])
            }))
        }
        return windows ? doc.setting("windows", JSON(p.windows)) : doc
    }
}
