// Hugging Face `config.json` <-> `EncoderConfig`, for DistilBERT and BERT.
//
// Required keys are the architecture sizes and `vocab_size`; everything else takes the
// Hugging Face default when absent or null. Anything we cannot run exactly (another
// activation, sinusoidal or relative positions, a decoder) is rejected with `.format`
// naming the file and the key.

extension EncoderConfig {
    /// Parses a DistilBERT or BERT `config.json`. `path` names the file in error messages.
    /// The head kind is left at `.distilbert`; the checkpoint loader decides it.
    public static func fromHuggingFace(_ json: JSON, path: String = "config.json") throws -> EncoderConfig {
        let r = ConfigReader(json: json, path: path)
        guard json.objectMembers != nil else { throw r.fail("is a JSON \(json.typeName), not an object", key: nil) }
        let modelType = try r.modelType()
        var c: EncoderConfig
        switch modelType {
        case .distilbert:
            let activation = try r.string("activation", default: "gelu")
            guard activation == "gelu" else {
                throw r.fail("activation \"\(activation)\" is not supported (only \"gelu\", the exact erf GELU)", key: "activation")
            }
            guard try r.bool("sinusoidal_pos_embds", default: false) == false else {
                throw r.fail("sinusoidal_pos_embds true is not supported (learned position embeddings only)", key: "sinusoidal_pos_embds")
            }
            c = EncoderConfig(
                modelType: .distilbert,
                vocabSize: try r.int("vocab_size", in: 1...Limits.vocab),
                hiddenSize: try r.int("dim", in: 1...Limits.hidden),
                numLayers: try r.int("n_layers", in: 1...Limits.layers),
                numHeads: try r.int("n_heads", in: 1...Limits.hidden),
                intermediateSize: try r.int("hidden_dim", in: 1...Limits.intermediate),
                maxPositions: try r.int("max_position_embeddings", in: 1...Limits.positions, default: 512),
                typeVocabSize: 0,
                layerNormEps: 1e-12,   // hard-coded in Hugging Face DistilBERT
                hiddenDropout: try r.probability("dropout", default: 0.1),
                attentionDropout: try r.probability("attention_dropout", default: 0.1),
                classifierDropout: try r.probability("seq_classif_dropout", default: 0.2))
        case .bert:
            let activation = try r.string("hidden_act", default: "gelu")
            guard activation == "gelu" else {
                throw r.fail("hidden_act \"\(activation)\" is not supported (only \"gelu\", the exact erf GELU)", key: "hidden_act")
            }
            let positions = try r.string("position_embedding_type", default: "absolute")
            guard positions == "absolute" else {
                throw r.fail("position_embedding_type \"\(positions)\" is not supported (only \"absolute\")", key: "position_embedding_type")
            }
            guard try r.bool("is_decoder", default: false) == false else {
                throw r.fail("is_decoder true is not supported (encoders only)", key: "is_decoder")
            }
            let hiddenDropout = try r.probability("hidden_dropout_prob", default: 0.1)
            c = EncoderConfig(
                modelType: .bert,
                vocabSize: try r.int("vocab_size", in: 1...Limits.vocab),
                hiddenSize: try r.int("hidden_size", in: 1...Limits.hidden),
                numLayers: try r.int("num_hidden_layers", in: 1...Limits.layers),
                numHeads: try r.int("num_attention_heads", in: 1...Limits.hidden),
                intermediateSize: try r.int("intermediate_size", in: 1...Limits.intermediate),
                maxPositions: try r.int("max_position_embeddings", in: 1...Limits.positions, default: 512),
                typeVocabSize: try r.int("type_vocab_size", in: 1...Limits.tokenTypes, default: 2),
                layerNormEps: try r.layerNormEps(),
                hiddenDropout: hiddenDropout,
                attentionDropout: try r.probability("attention_probs_dropout_prob", default: 0.1),
                classifierDropout: try r.probability("classifier_dropout", default: hiddenDropout))
        }
        let heads = modelType == .distilbert ? "n_heads" : "num_attention_heads"
        let hidden = modelType == .distilbert ? "dim" : "hidden_size"
        guard c.hiddenSize % c.numHeads == 0 else {
            throw r.fail("\(hidden) \(c.hiddenSize) is not divisible by \(heads) \(c.numHeads)", key: heads)
        }
        c.padTokenId = try r.int("pad_token_id", in: 0...(c.vocabSize - 1), default: 0)
        c.labels = try r.labels()
        return c
    }

    /// `initializer_range` (std of fresh weights), default 0.02.
    static func initializerRange(_ json: JSON, path: String) throws -> Double {
        let r = ConfigReader(json: json, path: path)
        let v = try r.double("initializer_range", default: 0.02)
        guard v > 0, v <= 1 else { throw r.fail("initializer_range \(v) must be in (0, 1]", key: "initializer_range") }
        return v
    }

    /// Upper bounds well above any real BERT-family model, so a corrupt file fails early.
    enum Limits {
        static let vocab = 4_000_000
        static let hidden = 65_536
        static let layers = 512
        static let intermediate = 262_144
        static let positions = 65_536
        static let tokenTypes = 1_024
        static let labels = 100_000
    }

    /// Hugging Face's default names for `count` labels: NEGATIVE/POSITIVE for 2, else LABEL_i.
    static func defaultLabels(_ count: Int) -> [String] {
        count == 2 ? ["NEGATIVE", "POSITIVE"] : (0..<count).map { "LABEL_\($0)" }
    }

    /// `id2label` / `label2id` objects as Hugging Face writes them.
    static func labelMaps(_ labels: [String]) -> (id2label: JSON, label2id: JSON) {
        let id2label = JSON.object(labels.enumerated().map { JSON.Member(String($0.offset), .string($0.element)) })
        let label2id = JSON.object(labels.enumerated().map { JSON.Member($0.element, JSON($0.offset)) })
        return (id2label, label2id)
    }

    /// A complete `config.json` for this configuration, in its own model type, keys sorted as
    /// Hugging Face writes them.
    func huggingFaceJSON(architecture: String, initializerRange: Double = 0.02) -> JSON {
        let maps = EncoderConfig.labelMaps(labels)
        var members: [JSON.Member] = [JSON.Member("architectures", [JSON.string(architecture)])]
        switch modelType {
        case .distilbert:
            members += [
                JSON.Member("activation", "gelu"),
                JSON.Member("attention_dropout", JSON(attentionDropout)),
                JSON.Member("dim", JSON(hiddenSize)),
                JSON.Member("dropout", JSON(hiddenDropout)),
                JSON.Member("hidden_dim", JSON(intermediateSize)),
                JSON.Member("id2label", maps.id2label),
                JSON.Member("initializer_range", JSON(initializerRange)),
                JSON.Member("label2id", maps.label2id),
                JSON.Member("max_position_embeddings", JSON(maxPositions)),
                JSON.Member("model_type", "distilbert"),
                JSON.Member("n_heads", JSON(numHeads)),
                JSON.Member("n_layers", JSON(numLayers)),
                JSON.Member("pad_token_id", JSON(padTokenId)),
                JSON.Member("qa_dropout", JSON(hiddenDropout)),
                JSON.Member("seq_classif_dropout", JSON(classifierDropout)),
                JSON.Member("sinusoidal_pos_embds", false),
                JSON.Member("tie_word_embeddings", true),
                JSON.Member("vocab_size", JSON(vocabSize)),
            ]
        case .bert:
            members += [
                JSON.Member("attention_probs_dropout_prob", JSON(attentionDropout)),
                JSON.Member("classifier_dropout", classifierDropout == hiddenDropout ? .null : JSON(classifierDropout)),
                JSON.Member("hidden_act", "gelu"),
                JSON.Member("hidden_dropout_prob", JSON(hiddenDropout)),
                JSON.Member("hidden_size", JSON(hiddenSize)),
                JSON.Member("id2label", maps.id2label),
                JSON.Member("initializer_range", JSON(initializerRange)),
                JSON.Member("intermediate_size", JSON(intermediateSize)),
                JSON.Member("label2id", maps.label2id),
                JSON.Member("layer_norm_eps", JSON(layerNormEps)),
                JSON.Member("max_position_embeddings", JSON(maxPositions)),
                JSON.Member("model_type", "bert"),
                JSON.Member("num_attention_heads", JSON(numHeads)),
                JSON.Member("num_hidden_layers", JSON(numLayers)),
                JSON.Member("pad_token_id", JSON(padTokenId)),
                JSON.Member("position_embedding_type", "absolute"),
                JSON.Member("type_vocab_size", JSON(typeVocabSize)),
                JSON.Member("vocab_size", JSON(vocabSize)),
            ]
        }
        return .object(members.sorted { $0.key < $1.key })
    }

    /// The fields a checkpoint's tensors depend on, for comparing two configs.
    func architectureDifference(from other: EncoderConfig) -> String? {
        let pairs: [(String, Int, Int)] = [
            ("vocab_size", vocabSize, other.vocabSize), ("hidden size", hiddenSize, other.hiddenSize),
            ("layers", numLayers, other.numLayers), ("attention heads", numHeads, other.numHeads),
            ("intermediate size", intermediateSize, other.intermediateSize),
            ("max_position_embeddings", maxPositions, other.maxPositions),
            ("type_vocab_size", typeVocabSize, other.typeVocabSize),
        ]
        for (name, a, b) in pairs where a != b { return "\(name) \(a) vs \(b)" }
        if modelType != other.modelType { return "model_type \(modelType.rawValue) vs \(other.modelType.rawValue)" }
        if layerNormEps != other.layerNormEps { return "layer_norm_eps \(layerNormEps) vs \(other.layerNormEps)" }
        return nil
    }
}

/// Typed, validated access to config.json keys. Null counts as absent.
struct ConfigReader {
    let json: JSON
    let path: String

    func fail(_ message: String, key: String?) -> SentimentError {
        SentimentError.format("\(path): \(message)", field: path)
    }

    private func value(_ key: String) -> JSON? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    func modelType() throws -> EncoderConfig.ModelType {
        if let v = value("model_type") {
            guard let s = v.stringValue else { throw fail("model_type is a \(v.typeName), not a string", key: "model_type") }
            guard let t = EncoderConfig.ModelType(rawValue: s) else {
                throw fail("model_type \"\(s)\" is not supported (distilbert or bert)", key: "model_type")
            }
            return t
        }
        // Very old configs have no model_type; tell the two apart by their size keys.
        if json["dim"] != nil || json["n_layers"] != nil { return .distilbert }
        if json["hidden_size"] != nil { return .bert }
        throw fail("missing key model_type (and no dim or hidden_size to infer it from)", key: "model_type")
    }

    func int(_ key: String, in range: ClosedRange<Int>, default d: Int? = nil) throws -> Int {
        guard let v = value(key) else {
            if let d { return d }
            throw fail("missing key \(key)", key: key)
        }
        guard let i = v.int64Value else { throw fail("\(key) must be an integer, found \(v.serialized())", key: key) }
        guard i >= Int64(range.lowerBound), i <= Int64(range.upperBound) else {
            throw fail("\(key) \(i) is out of range \(range.lowerBound)...\(range.upperBound)", key: key)
        }
        return Int(i)
    }

    func double(_ key: String, default d: Double) throws -> Double {
        guard let v = value(key) else { return d }
        guard let x = v.doubleValue else { throw fail("\(key) must be a number, found \(v.serialized())", key: key) }
        return x
    }

    func probability(_ key: String, default d: Float) throws -> Float {
        let x = try double(key, default: Double(d))
        guard x >= 0, x < 1 else { throw fail("\(key) \(x) must be in [0, 1)", key: key) }
        return Float(x)
    }

    func layerNormEps() throws -> Float {
        let x = try double("layer_norm_eps", default: 1e-12)
        guard x > 0, x < 1 else { throw fail("layer_norm_eps \(x) must be in (0, 1)", key: "layer_norm_eps") }
        return Float(x)
    }

    func string(_ key: String, default d: String) throws -> String {
        guard let v = value(key) else { return d }
        guard let s = v.stringValue else { throw fail("\(key) must be a string, found \(v.serialized())", key: key) }
        return s
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key) else { return d }
        guard let b = v.boolValue else { throw fail("\(key) must be true or false, found \(v.serialized())", key: key) }
        return b
    }

    /// `id2label` ("0", "1", ... contiguous), else `num_labels` (LABEL_i), else NEGATIVE/POSITIVE.
    func labels() throws -> [String] {
        let limit = EncoderConfig.Limits.labels
        let numLabels: Int? = value("num_labels") == nil ? nil : try int("num_labels", in: 1...limit)
        guard let v = value("id2label") else {
            if let n = numLabels { return (0..<n).map { "LABEL_\($0)" } }
            return EncoderConfig.defaultLabels(2)
        }
        guard let members = v.objectMembers else { throw fail("id2label is a \(v.typeName), not an object", key: "id2label") }
        guard !members.isEmpty, members.count <= limit else {
            throw fail("id2label must have 1 to \(limit) entries, found \(members.count)", key: "id2label")
        }
        var byId = [String?](repeating: nil, count: members.count)
        for m in members {
            // Canonical decimal ids only: "0", "1", ... (no sign, no leading zeros).
            guard let id = Int(m.key), id >= 0, String(id) == m.key else {
                throw fail("id2label key \"\(m.key)\" is not a label id (0, 1, ...)", key: "id2label")
            }
            guard id < members.count else {
                throw fail("id2label ids must be contiguous from 0; id \(id) with \(members.count) labels", key: "id2label")
            }
            guard let name = m.value.stringValue, !name.isEmpty else {
                throw fail("id2label[\"\(m.key)\"] must be a non-empty string", key: "id2label")
            }
            byId[id] = name
        }
        let labels = byId.compactMap { $0 }
        guard labels.count == members.count else {
            throw fail("id2label ids must be contiguous from 0", key: "id2label")
        }
        guard Set(labels).count == labels.count else {
            throw fail("id2label has duplicate label names \(labels)", key: "id2label")
        }
        if let n = numLabels, n != labels.count {
            throw fail("num_labels \(n) disagrees with the \(labels.count) entries of id2label", key: "num_labels")
        }
        return labels
    }
}
