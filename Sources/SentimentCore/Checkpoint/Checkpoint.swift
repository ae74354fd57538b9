// Loading and saving Hugging Face checkpoint folders (config.json + model.safetensors).
//
// The tensors read and written are those of Model/TensorSchema.swift (names with or without the
// `distilbert.` / `bert.` prefix; LayerNorm `gamma`/`beta` accepted for `weight`/`bias`).
// Everything else (embeddings.position_ids, MLM heads, unused heads) is ignored and listed
// in `LoadedCheckpoint.ignoredTensors`.

/// How to load a checkpoint.
public struct LoadOptions: Sendable, Equatable {
    /// Which classification head to build.
    public enum Head: String, Sendable, CaseIterable {
        /// BERT with `pooler` + `classifier` -> BERT pooler head; otherwise the DistilBERT head
        /// (`pre_classifier` + `classifier` when present, else fresh).
        case auto
        /// DistilBERT head: pre_classifier -> ReLU -> classifier. A BERT checkpoint's pooler is ignored.
        case distilbert
        /// BERT head: pooler -> tanh -> classifier (BERT checkpoints only). Missing parts are fresh.
        case bert
    }

    public var head: Head
    /// Seed for fresh head weights.
    public var seed: UInt64
    /// Label names, overriding config.json. Their count must match a loaded classifier.
    public var labels: [String]?
    /// Number of labels (LABEL_0, ...) when `labels` is nil, overriding config.json.
    public var numLabels: Int?
    /// Ignore the checkpoint's classifier (and pre_classifier) and initialize them fresh;
    /// a BERT pooler is part of the pretrained encoder and is kept.
    public var freshHead: Bool

    public init(head: Head = .auto, seed: UInt64 = 42, labels: [String]? = nil, numLabels: Int? = nil, freshHead: Bool = false) {
        self.head = head
        self.seed = seed
        self.labels = labels
        self.numLabels = numLabels
        self.freshHead = freshHead
    }
}

/// A checkpoint in memory.
public struct LoadedCheckpoint: @unchecked Sendable {
    public let directory: String
    public let weights: EncoderWeights
    /// config.json as read; `Checkpoint.save` keeps its unknown keys.
    public let rawConfig: JSON
    /// True when any head tensor was initialized here rather than read.
    public var freshHead: Bool { !freshTensors.isEmpty }
    /// Head tensors initialized here (normal(0, initializer_range) weights, zero biases), by HF name.
    public let freshTensors: [String]
    /// Checkpoint tensors read, by their name in the file.
    public let usedTensors: [String]
    /// Checkpoint tensors present but not used (e.g. `embeddings.position_ids`, an unused pooler).
    public let ignoredTensors: [String]
    /// `__metadata__` of the safetensors file(s).
    public let metadata: [String: String]
    /// The safetensors files read.
    public let files: [String]
    /// Their total size in bytes.
    public let fileBytes: Int
    /// Dtypes of the tensors read (e.g. ["F32"], ["BF16"], ["F32", "I8"]).
    public let sourceDTypes: [String]
    /// For an int8 checkpoint: the per-row scales of each int8 tensor, by canonical name
    /// (`EncoderWeights.namedTensors`); the tensor itself holds the dequantized values.
    public let int8Scales: [String: [Float]]
    /// For an int8 checkpoint: the smoothing factors of each smoothed int8 linear weight, and the
    /// input channels each keeps in fp32, by canonical name (the dequantized values are already
    /// divided by the factors and hold the fp32 columns).
    public let int8Smoothing: [String: [Float]]
    public let int8Outliers: [String: [Int]]
    /// Whether the checkpoint was written in int8 (metadata "quantization": "sentiment-int8").
    public var isInt8: Bool { metadata["quantization"] == Int8Scheme.name }

    public var config: EncoderConfig { weights.config }
    public var parameterCount: Int { weights.parameterCount }
}

/// An int8 tensor to save: [rows, ...] int8 bytes, one F32 scale per row and, for a calibrated
/// linear weight, one F32 smoothing factor per column and the columns kept in fp32 with their
/// weights ([rows, count]).
public struct Int8Tensor: Sendable {
    public let bytes: [UInt8]
    public let scales: [Float]
    public let smoothing: [Float]?
    public let outlierColumns: [Int32]?
    public let outlierWeights: [Float]?
    public init(bytes: [UInt8], scales: [Float], smoothing: [Float]? = nil, outlierColumns: [Int32]? = nil,
                outlierWeights: [Float]? = nil) {
        self.bytes = bytes
        self.scales = scales
        self.smoothing = smoothing
        self.outlierColumns = outlierColumns
        self.outlierWeights = outlierWeights
    }
}

/// What `Checkpoint.save` wrote.
public struct SavedCheckpoint: Sendable, Equatable {
    public let directory: String
    /// Layout written: a BERT encoder with the DistilBERT head is written as DistilBERT.
    public let modelType: EncoderConfig.ModelType
    public let architecture: String
    /// Files written, in order (model.safetensors first, then config.json, then tokenizer files).
    public let files: [String]
}

public enum Checkpoint {
    static let configName = "config.json"
    static let configLimit = 16 << 20
    /// Tokenizer files copied by `save` when present in the source folder.
    public static let tokenizerFiles = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]

    // MARK: Loading

    /// Reads config.json and the safetensors file(s) of a Hugging Face checkpoint folder.
    /// Missing folder or files -> `.io`; malformed config or tensors -> `.format` naming the
    /// file and tensor or key; contradictory options -> `.invalidArgument`.
    public static func load(directory: String, options: LoadOptions = LoadOptions()) throws -> LoadedCheckpoint {
        switch FileSystem.kind(directory) {
        case .directory: break
        case .missing: throw SentimentError.io("model directory \(directory) does not exist", field: directory)
        default: throw SentimentError.io("\(directory) is not a directory", field: directory)
        }
        let configPath = FileSystem.join(directory, configName)
        let raw = try readConfig(configPath)
        var config = try EncoderConfig.fromHuggingFace(raw, path: configPath)
        let initRange = try EncoderConfig.initializerRange(raw, path: configPath)
        config.labels = try labels(config.labels, options: options)

        var files = try CheckpointFiles(directory: directory)
        let type = config.modelType
        let prefix = HuggingFaceNames.prefix(type)
        func candidates(_ slot: TensorSlot, head kind: EncoderConfig.HeadKind) -> [String] {
            slot.huggingFaceName(type, head: kind).map { HuggingFaceNames.candidates($0, prefix: prefix) } ?? []
        }
        func load(_ slot: TensorSlot) throws -> Tensor {
            try files.load(candidates(slot, head: config.headKind), shape: slot.shape(config))
        }

        // Encoder. Check the vocabulary first for a clearer message than a shape mismatch.
        if let word = files.find(candidates(.embedding(.word), head: config.headKind)), let (file, e) = files.entry(word),
            e.shape.count == 2, e.shape[1] == config.hiddenSize, e.shape[0] != config.vocabSize
        {
            throw SentimentError.format(
                "vocab_size in \(configPath) is \(config.vocabSize) but tensor \(word) in \(file.path) has \(e.shape[0]) rows", field: word)
        }
        var tensors: [TensorSlot: Tensor] = [:]
        for slot in TensorSlot.all(config) {
            if case .head = slot { continue }
            tensors[slot] = try load(slot)
        }

        // Head: pick the kind, then read what the checkpoint has and initialize the rest.
        let has = { (parts: [HeadTensor], kind: EncoderConfig.HeadKind) -> Bool in
            parts.allSatisfy { files.find(candidates(.head($0), head: kind)) != nil }
        }
        let hasPooler = type == .bert && has([.dense, .denseBias], .bertPooler)
        let hasClassifier = has([.classifier, .classifierBias], .distilbert)
        let hasPreClassifier = has([.dense, .denseBias], .distilbert)
        switch options.head {
        case .auto: config.headKind = hasPooler && hasClassifier ? .bertPooler : .distilbert
        case .distilbert: config.headKind = .distilbert
        case .bert:
            guard type == .bert else {
                throw SentimentError.invalidArgument("the BERT pooler head needs a BERT checkpoint; \(directory) is DistilBERT", field: "head")
            }
            config.headKind = .bertPooler
        }
        if type == .bert && config.headKind == .distilbert {
            // The DistilBERT head brings its own dropout (DistilBertForSequenceClassification's
            // seq_classif_dropout, default 0.2), not BERT's classifier_dropout; it is what a save
            // (as DistilBERT) writes back.
            config.classifierDropout = try JSONObjectReader(raw, .file(configPath), unknownKeys: .ignore).probability("seq_classif_dropout", default: 0.2)
        }
        // A classifier belongs to the head it was trained with: BERT's only with a pooler,
        // DistilBERT's only with a pre_classifier (a BERT checkpoint's own classifier sits on the pooler).
        // `freshHead` replaces the classifier (and pre_classifier); a BERT pooler is pretrained and kept.
        let denseFound = config.headKind == .bertPooler ? hasPooler : (hasPreClassifier && !options.freshHead)
        let classifierFound = !options.freshHead && hasClassifier && (config.headKind == .bertPooler || hasPreClassifier)

        let d = config.hiddenSize, l = config.numLabels
        if classifierFound, let (file, e) = files.entry("classifier.weight"),
            e.shape.count == 2, e.shape[1] == d, e.shape[0] != l
        {
            let why = options.labels != nil || options.numLabels != nil
                ? "but \(l) labels were requested; load with a fresh head to replace it"
                : "but \(configPath) has \(l) labels (id2label)"
            let error = "tensor classifier.weight in \(file.path) has \(e.shape[0]) rows (labels) \(why)"
            throw options.labels != nil || options.numLabels != nil
                ? SentimentError.invalidArgument(error, field: "classifier.weight")
                : SentimentError.format(error, field: "classifier.weight")
        }
        var rng = SeededRandom(seed: options.seed)
        var fresh: [String] = []
        /// A linear layer of the head: read, or normal(0, initializer_range) weights and zero biases.
        func headLinear(_ weight: HeadTensor, _ bias: HeadTensor, found: Bool) throws {
            let w = TensorSlot.head(weight), b = TensorSlot.head(bias)
            if found {
                tensors[w] = try load(w)
                tensors[b] = try load(b)
                return
            }
            let t = try Tensor(shape: w.shape(config))
            for i in 0..<t.count { t.data[i] = Float(rng.nextNormal() * initRange) }
            tensors[w] = t
            tensors[b] = try Tensor(shape: b.shape(config))
            fresh += [w, b].compactMap { $0.huggingFaceName(type, head: config.headKind) }
        }
        try headLinear(.dense, .denseBias, found: denseFound)
        try headLinear(.classifier, .classifierBias, found: classifierFound)

        let weights = try EncoderWeights(config: config) { slot in
            guard let t = tensors[slot] else { throw SentimentError(.internal, "\(slot.name) was not loaded") }
            return t
        }
        let used = files.used
        let dtypes = Set(used.compactMap { files.entry($0)?.1.dtype.rawValue }).sorted()
        var scales: [String: [Float]] = [:], smoothing: [String: [Float]] = [:], outliers: [String: [Int]] = [:]
        for (name, t) in weights.namedTensors {
            if let s = files.rowScales[ObjectIdentifier(t)] { scales[name] = s }
            if let s = files.columnSmoothing[ObjectIdentifier(t)] { smoothing[name] = s }
            if let c = files.outlierColumns[ObjectIdentifier(t)] { outliers[name] = c }
        }
        return LoadedCheckpoint(
            directory: directory, weights: weights, rawConfig: raw, freshTensors: fresh,
            usedTensors: used.sorted(), ignoredTensors: files.allNames.filter { !used.contains($0) },
            metadata: files.metadata, files: files.files.map(\.path), fileBytes: files.totalBytes, sourceDTypes: dtypes,
            int8Scales: scales, int8Smoothing: smoothing, int8Outliers: outliers)
    }

    static func readConfig(_ path: String) throws -> JSON {
        let bytes = try FileSystem.readFile(path, limit: configLimit)
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch let e as SentimentError where e.status == .invalidArgument {
            throw SentimentError.format("\(path) is not valid JSON (\(e.message))", field: path)
        }
        guard json.objectMembers != nil else {
            throw SentimentError.format("\(path): is a JSON \(json.typeName), not an object", field: path)
        }
        return json
    }

    private static func labels(_ fromConfig: [String], options: LoadOptions) throws -> [String] {
        if let labels = options.labels {
            guard !labels.isEmpty, labels.count <= EncoderConfig.Limits.labels else {
                throw SentimentError.invalidArgument("labels must have 1 to \(EncoderConfig.Limits.labels) names", field: "labels")
            }
            guard labels.allSatisfy({ !$0.isEmpty }), Set(labels).count == labels.count else {
                throw SentimentError.invalidArgument("label names must be non-empty and distinct", field: "labels")
            }
            if let n = options.numLabels, n != labels.count {
                throw SentimentError.invalidArgument("num_labels \(n) disagrees with \(labels.count) labels", field: "num_labels")
            }
            return labels
        }
        if let n = options.numLabels {
            guard n >= 1, n <= EncoderConfig.Limits.labels else {
                throw SentimentError.invalidArgument("num_labels must be 1 to \(EncoderConfig.Limits.labels)", field: "num_labels")
            }
            return n == fromConfig.count ? fromConfig : (0..<n).map { "LABEL_\($0)" }
        }
        return fromConfig
    }

    // MARK: Saving

    /// Writes `weights` as a Hugging Face checkpoint folder loadable by
    /// `AutoModelForSequenceClassification.from_pretrained(directory)`: model.safetensors (F32,
    /// prefixed HF names), config.json (`rawConfig` with architectures, id2label, label2id set;
    /// other keys kept), and the tokenizer files found in `tokenizerFrom`. Each file is written
    /// atomically; the folder is created if needed.
    ///
    /// A BERT encoder with the DistilBERT head has no Hugging Face BERT class, so it is written
    /// as DistilBERT (same block; token type 0 folded into the position embeddings). That is
    /// exact only for LayerNorm eps 1e-12 (DistilBERT hard-codes it); otherwise `.invalidArgument`.
    /// It is exact only for single-sentence input: the other token types (pairs' type 1) are lost.
    ///
    /// `int8` (canonical name -> int8 rows and scales) writes those tensors as I8 plus an F32
    /// `<name>_scale` tensor, with the scheme in the safetensors metadata (`Int8Scheme`); such a
    /// checkpoint loads with `load` (dequantized) and, at precision int8, with its exact integers.
    ///
    /// `bf16` writes the float tensors as BF16 (rounded to nearest even) and says `"bfloat16"` in
    /// config.json's `dtype` / `torch_dtype`; otherwise they are F32 and it says `"float32"`.
    ///
    /// The files are written as one set (`FileSystem.writeDirectoryAtomically`, config.json
    /// last), so a crash mid-save never leaves a folder that fails to load. `alsoWrite` adds
    /// files of its own to the set (it gets the staging folder), e.g. a training state.
    /// An I/O error names "output_dir" as its field.
    @discardableResult
    public static func save(
        weights: EncoderWeights, rawConfig: JSON, tokenizerFrom sourceDirectory: String?, to directory: String,
        metadata: [String: String] = [:], int8: [String: Int8Tensor] = [:], bf16: Bool = false,
        alsoWrite: ((String) throws -> Void)? = nil
    ) throws -> SavedCheckpoint {
        let staged: SavedCheckpoint
        do {
            staged = try FileSystem.writeDirectoryAtomically(directory, last: configName) { staging in
                let saved = try saveFiles(weights: weights, rawConfig: rawConfig, tokenizerFrom: sourceDirectory, to: staging,
                                          metadata: metadata, int8: int8, bf16: bf16)
                try alsoWrite?(staging)
                return saved
            }
        } catch var e as SentimentError where e.status == .io {
            e.field = "output_dir"   // the request key of both callers, not a staging file's path
            if !e.message.contains(directory) { e.message = "cannot save \(directory): " + e.message }
            throw e
        }
        return SavedCheckpoint(directory: directory, modelType: staged.modelType, architecture: staged.architecture,
                               files: staged.files.map { FileSystem.join(directory, FileSystem.baseName($0)) })
    }

    static func saveFiles(
        weights: EncoderWeights, rawConfig: JSON, tokenizerFrom sourceDirectory: String?, to directory: String,
        metadata: [String: String], int8: [String: Int8Tensor], bf16: Bool = false
    ) throws -> SavedCheckpoint {
        let c = weights.config
        try checkShapes(weights)
        let plan = try huggingFaceTensors(weights)
        let architecture = plan.type == .distilbert ? "DistilBertForSequenceClassification" : "BertForSequenceClassification"
        var configJSON = try outputConfig(c, rawConfig: rawConfig, type: plan.type, architecture: architecture)
        // The dtype keys say what the tensors are written as, whatever the source's were
        // (`dtype` in transformers 5, `torch_dtype` before; a bf16 save names it even when absent).
        let dtypeKeys = ["torch_dtype", "dtype"].filter { configJSON[$0] != nil }
        for key in dtypeKeys.isEmpty && bf16 ? ["torch_dtype"] : dtypeKeys {
            configJSON = configJSON.setting(key, bf16 ? "bfloat16" : "float32")
        }

        try FileSystem.makeDirectories(directory)
        var written: [String] = []
        let modelPath = FileSystem.join(directory, CheckpointFiles.single)
        var canonical: [ObjectIdentifier: String] = [:]
        for (name, t) in weights.namedTensors { canonical[ObjectIdentifier(t)] = name }
        var entries: [SafeTensorsWriter.Entry] = []
        for (name, t) in plan.tensors {
            guard let key = canonical[ObjectIdentifier(t)], let q = int8[key] else {
                entries.append(bf16 ? try SafeTensorsWriter.Entry(name: name, bf16Of: t) : SafeTensorsWriter.Entry(name: name, tensor: t))
                continue
            }
            entries.append(try SafeTensorsWriter.Entry(name: name, dtype: "I8", shape: t.shape, bytes: q.bytes))
            let scales = try Tensor(shape: [q.scales.count], values: q.scales)
            entries.append(SafeTensorsWriter.Entry(name: name + Int8Scheme.scaleSuffix, tensor: scales))
            if let s = q.smoothing {
                let smoothing = try Tensor(shape: [s.count], values: s)
                entries.append(SafeTensorsWriter.Entry(name: name + Int8Scheme.smoothingSuffix, tensor: smoothing))
            }
            if let columns = q.outlierColumns, let w = q.outlierWeights, !columns.isEmpty {
                let bytes = columns.flatMap { c in withUnsafeBytes(of: c.littleEndian) { Array($0) } }
                entries.append(try SafeTensorsWriter.Entry(
                    name: name + Int8Scheme.outlierColumnsSuffix, dtype: "I32", shape: [columns.count], bytes: bytes))
                let weight = try Tensor(shape: [q.scales.count, columns.count], values: w)
                entries.append(SafeTensorsWriter.Entry(name: name + Int8Scheme.outlierWeightSuffix, tensor: weight))
            }
        }
        var meta = metadata.merging(["format": "pt"]) { mine, _ in mine }
        if !int8.isEmpty {
            meta["quantization"] = Int8Scheme.name
            meta["quantization_scheme"] = Int8Scheme.description
        }
        try SafeTensorsWriter.write(entries, metadata: meta, to: modelPath)
        written.append(modelPath)
        let configPath = FileSystem.join(directory, configName)
        try FileSystem.writeAtomically(configPath) { try $0.write(Array((configJSON.serialized(indent: 2) + "\n").utf8)) }
        written.append(configPath)

        if let source = sourceDirectory {
            for name in tokenizerFiles {
                let from = FileSystem.join(source, name), to = FileSystem.join(directory, name)
                guard FileSystem.kind(from) == .file else { continue }
                if let a = FileSystem.identity(from), let b = FileSystem.identity(to), a == b { continue }  // saving in place
                try FileSystem.copyAtomically(from: from, to: to, limit: 256 << 20)
                written.append(to)
            }
        }
        return SavedCheckpoint(directory: directory, modelType: plan.type, architecture: architecture, files: written)
    }

    /// Output layout and HF-named tensors (with prefix), in the schema's order.
    static func huggingFaceTensors(_ w: EncoderWeights) throws -> (type: EncoderConfig.ModelType, tensors: [(String, Tensor)]) {
        let c = w.config
        let type: EncoderConfig.ModelType
        var position = w.embeddings.position
        switch (c.modelType, c.headKind) {
        case (.distilbert, .bertPooler):
            throw SentimentError.invalidArgument("a DistilBERT encoder has no pooler; it cannot have the BERT head", field: "head")
        case (.bert, .bertPooler), (.distilbert, .distilbert):
            type = c.modelType
        case (.bert, .distilbert):
            guard c.layerNormEps == Float(1e-12) else {
                throw SentimentError.invalidArgument(
                    "cannot save a BERT encoder with layer_norm_eps \(c.layerNormEps) and the DistilBERT head: Hugging Face has no BERT class with a pre_classifier, and DistilBERT (the exact equivalent) hard-codes LayerNorm eps 1e-12; use the BERT pooler head for this model",
                    field: "layer_norm_eps")
            }
            type = .distilbert
            // Single-sentence input always uses token type 0: fold that row into every position.
            // Pair input (token type 1) is then not representable.
            position = try position.copy()
            if let tokenType = w.embeddings.tokenType {
                let d = c.hiddenSize
                for r in 0..<position.shape[0] {
                    for k in 0..<d { position.data[r * d + k] += tokenType.data[k] }
                }
            }
        }
        var out: [(String, Tensor)] = []
        for slot in TensorSlot.all(c.withModelType(type)) {
            guard let name = slot.huggingFaceName(type, head: c.headKind), let t = w[slot] else {
                throw SentimentError.invalidArgument("the weights have no \(slot.name)", field: slot.name)
            }
            out.append((name, slot == .embedding(.position) ? position : t))
        }
        return (type, out)
    }

    /// Weights must match their own config before anything is written.
    private static func checkShapes(_ w: EncoderWeights) throws {
        let c = w.config
        guard !c.labels.isEmpty, Set(c.labels).count == c.labels.count, c.labels.allSatisfy({ !$0.isEmpty }) else {
            throw SentimentError.invalidArgument("label names must be non-empty and distinct: \(c.labels)", field: "labels")
        }
        try w.checkShapes()
    }

    /// config.json to write: `rawConfig` updated when it describes the same architecture,
    /// else (no raw config, or BERT written as DistilBERT) generated from `c`.
    private static func outputConfig(
        _ c: EncoderConfig, rawConfig: JSON, type: EncoderConfig.ModelType, architecture: String
    ) throws -> JSON {
        let maps = EncoderConfig.labelMaps(c.labels)
        guard rawConfig.objectMembers != nil, !(rawConfig.objectMembers ?? []).isEmpty else {
            return c.huggingFaceJSON(architecture: architecture)
        }
        let parsed: EncoderConfig
        do {
            parsed = try EncoderConfig.fromHuggingFace(rawConfig, path: "rawConfig")
        } catch let e as SentimentError {
            throw SentimentError.invalidArgument("the config to save is not valid: \(e.message)", field: "config")
        }
        if let diff = c.architectureDifference(from: parsed) {
            throw SentimentError.invalidArgument("the config to save does not describe these weights (weights vs config: \(diff))", field: "config")
        }
        let initRange = (try? EncoderConfig.initializerRange(rawConfig, path: "rawConfig")) ?? 0.02
        if type != c.modelType {
            // BERT written as DistilBERT: a fresh DistilBERT config, keeping the raw values we can.
            var out = c.withModelType(.distilbert).huggingFaceJSON(architecture: architecture, initializerRange: initRange)
            let carried = [
                ("hidden_dropout_prob", "dropout"), ("hidden_dropout_prob", "qa_dropout"),
                ("attention_probs_dropout_prob", "attention_dropout"),
            ]
            for (from, to) in carried { if let v = rawConfig[from], v.doubleValue != nil { out = out.setting(to, v) } }
            return out
        }
        var out = rawConfig
            .setting("architectures", [JSON.string(architecture)])
            .setting("id2label", maps.id2label)
            .setting("label2id", maps.label2id)
        if out["num_labels"] != nil { out = out.setting("num_labels", JSON(c.numLabels)) }
        return out
    }
}

extension EncoderConfig {
    /// The same sizes viewed as another model type (BERT written as DistilBERT drops token types).
    func withModelType(_ t: ModelType) -> EncoderConfig {
        var c = self
        c.modelType = t
        if t == .distilbert { c.typeVocabSize = 0 }
        return c
    }
}
