// Hugging Face tensor names and shapes for each slot of `EncoderWeights`.
//
// Names here are without the model prefix (`distilbert.` / `bert.`); checkpoints written by
// `AutoModelForSequenceClassification` carry it, bare encoders (`BertModel`, MiniLM) do not.
// The classification head (`pre_classifier`, `classifier`) never has a prefix; BERT's pooler does.

enum TensorNames {
    static func prefix(_ t: EncoderConfig.ModelType) -> String {
        t == .distilbert ? "distilbert." : "bert."
    }

    /// Embedding names in `EmbeddingWeights` order: word, position, [token type], norm weight, norm bias.
    static func embeddings(_ t: EncoderConfig.ModelType) -> [String] {
        switch t {
        case .distilbert:
            return [
                "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
            ]
        case .bert:
            return [
                "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight",
                "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
            ]
        }
    }

    static func embeddingShapes(_ c: EncoderConfig) -> [[Int]] {
        let d = c.hiddenSize
        let tokenTypes: [[Int]] = c.modelType == .bert ? [[c.typeVocabSize, d]] : []
        return [[c.vocabSize, d], [c.maxPositions, d]] + tokenTypes + [[d], [d]]
    }

    /// The 16 names of layer `i` in `LayerWeights` field order.
    static func layer(_ i: Int, _ t: EncoderConfig.ModelType) -> [String] {
        switch t {
        case .distilbert:
            let p = "transformer.layer.\(i)."
            return [
                "attention.q_lin.weight", "attention.q_lin.bias",
                "attention.k_lin.weight", "attention.k_lin.bias",
                "attention.v_lin.weight", "attention.v_lin.bias",
                "attention.out_lin.weight", "attention.out_lin.bias",
                "sa_layer_norm.weight", "sa_layer_norm.bias",
                "ffn.lin1.weight", "ffn.lin1.bias",
                "ffn.lin2.weight", "ffn.lin2.bias",
                "output_layer_norm.weight", "output_layer_norm.bias",
            ].map { p + $0 }
        case .bert:
            let p = "encoder.layer.\(i)."
            return [
                "attention.self.query.weight", "attention.self.query.bias",
                "attention.self.key.weight", "attention.self.key.bias",
                "attention.self.value.weight", "attention.self.value.bias",
                "attention.output.dense.weight", "attention.output.dense.bias",
                "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                "intermediate.dense.weight", "intermediate.dense.bias",
                "output.dense.weight", "output.dense.bias",
                "output.LayerNorm.weight", "output.LayerNorm.bias",
            ].map { p + $0 }
        }
    }

    static func layerShapes(_ c: EncoderConfig) -> [[Int]] {
        let d = c.hiddenSize, f = c.intermediateSize
        return [[d, d], [d], [d, d], [d], [d, d], [d], [d, d], [d], [d], [d], [f, d], [f], [d, f], [d], [d], [d]]
    }

    /// BERT pooler (under the model prefix).
    static let pooler = ["pooler.dense.weight", "pooler.dense.bias"]
    /// DistilBERT head (no prefix).
    static let preClassifier = ["pre_classifier.weight", "pre_classifier.bias"]
    static let classifier = ["classifier.weight", "classifier.bias"]

    /// Names to look a tensor up by, in order of preference: with the prefix, without it,
    /// then old-style LayerNorm `gamma`/`beta` for `*LayerNorm.weight/bias` and `*layer_norm.weight/bias`.
    static func candidates(_ name: String, prefix: String?) -> [String] {
        var bases = [name]
        if let prefix { bases = [prefix + name, name] }
        var out = bases
        let isNorm = name.contains("LayerNorm.") || name.contains("layer_norm.")
        if isNorm {
            for b in bases {
                if b.hasSuffix(".weight") { out.append(String(b.dropLast(".weight".count)) + ".gamma") }
                if b.hasSuffix(".bias") { out.append(String(b.dropLast(".bias".count)) + ".beta") }
            }
        }
        return out
    }
}
