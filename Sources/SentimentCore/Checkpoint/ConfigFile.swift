// Hugging Face `config.json` <-> `EncoderConfig`, for DistilBERT and BERT.
//
// Required keys are the architecture sizes and `vocab_size`; everything else takes the
// Hugging Face default when absent or null, and keys of other programs are ignored. Anything
// we cannot run exactly (another activation, sinusoidal or relative positions, a decoder) is
// rejected with `.format` naming the file and the key.

extension EncoderConfig {
    /// Parses a DistilBERT or BERT `config.json`. `path` names the file in error messages.
    /// The head kind is left at `.distilbert`; the checkpoint loader decides it.
    public static func fromHuggingFace(_ json: JSON, path: String = "config.json") throws -> EncoderConfig {
        let r = try JSONObjectReader(json, .file(path), unknownKeys: .ignore)
        let modelType = try EncoderConfig.modelType(r)
        var c: EncoderConfig
        switch modelType {
        case .distilbert:
            let activation = try r.string("activation", default: "gelu")
            guard activation == "gelu" else {
                throw r.error("activation \"\(activation)\" is not supported (only \"gelu\", the exact erf GELU)", key: "activation")
            }
            guard try r.bool("sinusoidal_pos_embds", default: false) == false else {
                throw r.error("sinusoidal_pos_embds true is not supported (learned position embeddings only)", key: "sinusoidal_pos_embds")
            }
            c = EncoderConfig(
                modelType: .distilbert,
                vocabSize: try r.requiredInt("vocab_size", in: 1...Limits.vocab),
                hiddenSize: try r.requiredInt("dim", in: 1...Limits.hidden),
                numLayers: try r.requiredInt("n_layers", in: 1...Limits.layers),
                numHeads: try r.requiredInt("n_heads", in: 1...Limits.hidden),
                intermediateSize: try r.requiredInt("hidden_dim", in: 1...Limits.intermediate),
                maxPositions: try r.int("max_position_embeddings", in: 1...Limits.positions, default: 512),
                typeVocabSize: 0,
                layerNormEps: 1e-12,   // hard-coded in Hugging Face DistilBERT
                hiddenDropout: try r.probability("dropout", default: 0.1),
                attentionDropout: try r.probability("attention_dropout", default: 0.1),
                classifierDropout: try r.probability("seq_classif_dropout", default: 0.2))
        case .bert:
            let activation = try r.string("hidden_act", default: "gelu")
            guard activation == "gelu" else {
                throw r.error("hidden_act \"\(activation)\" is not supported (only \"gelu\", the exact erf GELU)", key: "hidden_act")
            }
            let positions = try r.string("position_embedding_type", default: "absolute")
            guard positions == "absolute" else {
                throw r.error("position_embedding_type \"\(positions)\" is not supported (only \"absolute\")", key: "position_embedding_type")
            }
            guard try r.bool("is_decoder", default: false) == false else {
                throw r.error("is_decoder true is not supported (encoders only)", key: "is_decoder")
            }
            let hiddenDropout = try r.probability("hidden_dropout_prob", default: 0.1)
            c = EncoderConfig(
                modelType: .bert,
                vocabSize: try r.requiredInt("vocab_size", in: 1...Limits.vocab),
                hiddenSize: try r.requiredInt("hidden_size", in: 1...Limits.hidden),
                numLayers: try r.requiredInt("num_hidden_layers", in: 1...Limits.layers),
                numHeads: try r.requiredInt("num_attention_heads", in: 1...Limits.hidden),
                intermediateSize: try r.requiredInt("intermediate_size", in: 1...Limits.intermediate),
                maxPositions: try r.int("max_position_embeddings", in: 1...Limits.positions, default: 512),
                typeVocabSize: try r.int("type_vocab_size", in: 1...Limits.tokenTypes, default: 2),
                layerNormEps: Float(try r.double("layer_norm_eps", default: 1e-12, rule: "in (0, 1)") { $0 > 0 && $0 < 1 }),
                hiddenDropout: hiddenDropout,
                attentionDropout: try r.probability("attention_probs_dropout_prob", default: 0.1),
                classifierDropout: try r.probability("classifier_dropout", default: hiddenDropout))
        }
        let heads = modelType == .distilbert ? "n_heads" : "num_attention_heads"
        let hidden = modelType == .distilbert ? "dim" : "hidden_size"
        guard c.hiddenSize % c.numHeads == 0 else {
            throw r.error("\(hidden) \(c.hiddenSize) is not divisible by \(heads) \(c.numHeads)", key: heads)
        }
        c.padTokenId = try r.int("pad_token_id", in: 0...(c.vocabSize - 1), default: 0)
        c.labels = try labels(r)
        return c
    }

    /// `initializer_range` (std of fresh weights), default 0.02.
    static func initializerRange(_ json: JSON, path: String) throws -> Double {
        let r = try JSONObjectReader(json, .file(path), unknownKeys: .ignore)
        return try r.double("initializer_range", default: 0.02, rule: "in (0, 1]") { $0 > 0 && $0 <= 1 }
    }

    /// `model_type`; very old configs have none, and their size keys tell the two apart.
    private static func modelType(_ r: JSONObjectReader) throws -> ModelType {
        if let s = try r.string("model_type") {
            guard let t = ModelType(rawValue: s) else {
                throw r.error("model_type \"\(s)\" is not supported (distilbert or bert)", key: "model_type")
            }
            return t
        }
        if r.has("dim") || r.has("n_layers") { return .distilbert }
        if r.has("hidden_size") { return .bert }
        throw r.error("missing key model_type (and no dim or hidden_size to infer it from)", key: "model_type")
    }

    /// `id2label` ("0", "1", ... contiguous), else `num_labels` (LABEL_i), else NEGATIVE/POSITIVE.
    private static func labels(_ r: JSONObjectReader) throws -> [String] {
        let limit = Limits.labels
        let numLabels = try r.int("num_labels", in: 1...limit)
        guard let v = r.value("id2label") else {
            if let n = numLabels { return (0..<n).map { "LABEL_\($0)" } }
            return defaultLabels(2)
        }
        guard let members = v.objectMembers else { throw r.error("id2label is a \(v.typeName), not an object", key: "id2label") }
        guard !members.isEmpty, members.count <= limit else {
            throw r.error("id2label must have 1 to \(limit) entries, found \(members.count)", key: "id2label")
        }
        var byId = [String?](repeating: nil, count: members.count)
        for m in members {
            // Canonical decimal ids only: "0", "1", ... (no sign, no leading zeros).
            guard let id = Int(m.key), id >= 0, String(id) == m.key else {
                throw r.error("id2label key \"\(m.key)\" is not a label id (0, 1, ...)", key: "id2label")
            }
            guard id < members.count else {
                throw r.error("id2label ids must be contiguous from 0; id \(id) with \(members.count) labels", key: "id2label")
            }
            guard let name = m.value.stringValue, !name.isEmpty else {
                throw r.error("id2label[\"\(m.key)\"] must be a non-empty string", key: "id2label")
            }
            byId[id] = name
        }
        let labels = byId.compactMap { $0 }
        guard labels.count == members.count else {
            throw r.error("id2label ids must be contiguous from 0", key: "id2label")
        }
        guard Set(labels).count == labels.count else {
            throw r.error("id2label has duplicate label names \(labels)", key: "id2label")
        }
        if let n = numLabels, n != labels.count {
            throw r.error("num_labels \(n) disagrees with the \(labels.count) entries of id2label", key: "num_labels")
        }
        return labels
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

extension JSONObjectReader {
    /// A dropout probability in [0, 1).
    func probability(_ key: String, default fallback: Float) throws -> Float {
        Float(try double(key, default: Double(fallback), rule: "in [0, 1)") { $0 >= 0 && $0 < 1 })
    }
}
