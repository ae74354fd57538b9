// The one table of an encoder's tensors: where each sits in `EncoderWeights`, its canonical
// name, its Hugging Face names and its shape. Loading, saving, zero twins, shape checks,
// packing, quantization and the optimizer's order all iterate it.
//
// Canonical names are this library's (`layer.3.ffn_in.weight`); Hugging Face names are given
// without the model prefix (`distilbert.` / `bert.`), which checkpoints written by
// `AutoModelForSequenceClassification` carry and bare encoders (`BertModel`, MiniLM) do not.
// The classification head (`pre_classifier`, `classifier`) never has the prefix; BERT's pooler does.

/// The rule that gives a tensor's shape from the config.
enum ShapeRule: Sendable {
    case vocabByHidden, positionsByHidden, tokenTypesByHidden
    case hidden, hiddenByHidden, ffn, ffnByHidden, hiddenByFFN
    case labels, labelsByHidden

    func shape(_ c: EncoderConfig) -> [Int] {
        let d = c.hiddenSize, f = c.intermediateSize, l = c.numLabels
        switch self {
        case .vocabByHidden: return [c.vocabSize, d]
        case .positionsByHidden: return [c.maxPositions, d]
        case .tokenTypesByHidden: return [c.typeVocabSize, d]
        case .hidden: return [d]
        case .hiddenByHidden: return [d, d]
        case .ffn: return [f]
        case .ffnByHidden: return [f, d]
        case .hiddenByFFN: return [d, f]
        case .labels: return [l]
        case .labelsByHidden: return [l, d]
        }
    }
}

/// A row of the table: canonical name (within its group), Hugging Face names, shape.
struct TensorSpec: Sendable {
    let name: String
    let distilbert: String?   // nil: DistilBERT has no such tensor
    let bert: String
    let shape: ShapeRule

    func huggingFace(_ t: EncoderConfig.ModelType) -> String? { t == .distilbert ? distilbert : bert }
}

/// The embedding tensors, in canonical order.
public enum EmbeddingTensor: Int, CaseIterable, Sendable {
    case word, position, tokenType, normWeight, normBias

    var spec: TensorSpec {
        switch self {
        case .word: return .init(name: "word", distilbert: "embeddings.word_embeddings.weight",
                                 bert: "embeddings.word_embeddings.weight", shape: .vocabByHidden)
        case .position: return .init(name: "position", distilbert: "embeddings.position_embeddings.weight",
                                     bert: "embeddings.position_embeddings.weight", shape: .positionsByHidden)
        case .tokenType: return .init(name: "token_type", distilbert: nil,
                                      bert: "embeddings.token_type_embeddings.weight", shape: .tokenTypesByHidden)
        case .normWeight: return .init(name: "norm.weight", distilbert: "embeddings.LayerNorm.weight",
                                       bert: "embeddings.LayerNorm.weight", shape: .hidden)
        case .normBias: return .init(name: "norm.bias", distilbert: "embeddings.LayerNorm.bias",
                                     bert: "embeddings.LayerNorm.bias", shape: .hidden)
        }
    }
}

/// The 16 tensors of a transformer block, in canonical order. Hugging Face names are relative to
/// `transformer.layer.N.` (DistilBERT) or `encoder.layer.N.` (BERT).
public enum LayerTensor: Int, CaseIterable, Sendable {
    case query, queryBias, key, keyBias, value, valueBias, attentionOut, attentionOutBias
    case attentionNormWeight, attentionNormBias, ffnIn, ffnInBias, ffnOut, ffnOutBias
    case outputNormWeight, outputNormBias

    var spec: TensorSpec {
        switch self {
        case .query: return .init(name: "query.weight", distilbert: "attention.q_lin.weight",
                                  bert: "attention.self.query.weight", shape: .hiddenByHidden)
        case .queryBias: return .init(name: "query.bias", distilbert: "attention.q_lin.bias",
                                      bert: "attention.self.query.bias", shape: .hidden)
        case .key: return .init(name: "key.weight", distilbert: "attention.k_lin.weight",
                                bert: "attention.self.key.weight", shape: .hiddenByHidden)
        case .keyBias: return .init(name: "key.bias", distilbert: "attention.k_lin.bias",
                                    bert: "attention.self.key.bias", shape: .hidden)
        case .value: return .init(name: "value.weight", distilbert: "attention.v_lin.weight",
                                  bert: "attention.self.value.weight", shape: .hiddenByHidden)
        case .valueBias: return .init(name: "value.bias", distilbert: "attention.v_lin.bias",
                                      bert: "attention.self.value.bias", shape: .hidden)
        case .attentionOut: return .init(name: "attention_out.weight", distilbert: "attention.out_lin.weight",
                                         bert: "attention.output.dense.weight", shape: .hiddenByHidden)
        case .attentionOutBias: return .init(name: "attention_out.bias", distilbert: "attention.out_lin.bias",
                                             bert: "attention.output.dense.bias", shape: .hidden)
        case .attentionNormWeight: return .init(name: "attention_norm.weight", distilbert: "sa_layer_norm.weight",
                                                bert: "attention.output.LayerNorm.weight", shape: .hidden)
        case .attentionNormBias: return .init(name: "attention_norm.bias", distilbert: "sa_layer_norm.bias",
                                              bert: "attention.output.LayerNorm.bias", shape: .hidden)
        case .ffnIn: return .init(name: "ffn_in.weight", distilbert: "ffn.lin1.weight",
                                  bert: "intermediate.dense.weight", shape: .ffnByHidden)
        case .ffnInBias: return .init(name: "ffn_in.bias", distilbert: "ffn.lin1.bias",
                                      bert: "intermediate.dense.bias", shape: .ffn)
        case .ffnOut: return .init(name: "ffn_out.weight", distilbert: "ffn.lin2.weight",
                                   bert: "output.dense.weight", shape: .hiddenByFFN)
        case .ffnOutBias: return .init(name: "ffn_out.bias", distilbert: "ffn.lin2.bias",
                                       bert: "output.dense.bias", shape: .hidden)
        case .outputNormWeight: return .init(name: "output_norm.weight", distilbert: "output_layer_norm.weight",
                                             bert: "output.LayerNorm.weight", shape: .hidden)
        case .outputNormBias: return .init(name: "output_norm.bias", distilbert: "output_layer_norm.bias",
                                           bert: "output.LayerNorm.bias", shape: .hidden)
        }
    }

    /// The six linear weights, in the order the block applies them (Q, K, V first).
    static let linearWeights: [LayerTensor] = [.query, .key, .value, .attentionOut, .ffnIn, .ffnOut]

    /// The bias of a linear weight (the tensor after it in the table).
    var bias: LayerTensor? {
        LayerTensor.linearWeights.contains(self) ? LayerTensor(rawValue: rawValue + 1) : nil
    }

    static func prefix(_ i: Int, _ t: EncoderConfig.ModelType) -> String {
        t == .distilbert ? "transformer.layer.\(i)." : "encoder.layer.\(i)."
    }
}

/// The classification head's tensors. Their Hugging Face names depend on the head kind:
/// `dense` is BERT's pooler (under the model prefix) or DistilBERT's pre_classifier (no prefix).
public enum HeadTensor: Int, CaseIterable, Sendable {
    case dense, denseBias, classifier, classifierBias

    var name: String {
        switch self {
        case .dense: return "dense.weight"
        case .denseBias: return "dense.bias"
        case .classifier: return "classifier.weight"
        case .classifierBias: return "classifier.bias"
        }
    }

    var shape: ShapeRule {
        switch self {
        case .dense: return .hiddenByHidden
        case .denseBias: return .hidden
        case .classifier: return .labelsByHidden
        case .classifierBias: return .labels
        }
    }

    /// The Hugging Face name and whether the model prefix applies.
    func huggingFace(_ kind: EncoderConfig.HeadKind) -> (name: String, prefixed: Bool) {
        switch (self, kind) {
        case (.dense, .bertPooler): return ("pooler.dense.weight", true)
        case (.denseBias, .bertPooler): return ("pooler.dense.bias", true)
        case (.dense, .distilbert): return ("pre_classifier.weight", false)
        case (.denseBias, .distilbert): return ("pre_classifier.bias", false)
        case (.classifier, _): return ("classifier.weight", false)
        case (.classifierBias, _): return ("classifier.bias", false)
        }
    }
}

/// Where a tensor sits in `EncoderWeights`.
public enum TensorSlot: Hashable, Sendable {
    case embedding(EmbeddingTensor)
    case layer(Int, LayerTensor)
    case head(HeadTensor)

    /// Every slot of a model with config `c`, in canonical order (token types for BERT only).
    public static func all(_ c: EncoderConfig) -> [TensorSlot] {
        let embeddings = EmbeddingTensor.allCases.filter { $0 != .tokenType || c.modelType == .bert }
        return embeddings.map { .embedding($0) }
            + (0..<c.numLayers).flatMap { i in LayerTensor.allCases.map { .layer(i, $0) } }
            + HeadTensor.allCases.map { .head($0) }
    }

    /// The canonical name (`embeddings.word`, `layer.0.query.weight`, `head.dense.weight`).
    public var name: String {
        switch self {
        case .embedding(let e): return "embeddings." + e.spec.name
        case .layer(let i, let t): return "layer.\(i)." + t.spec.name
        case .head(let h): return "head." + h.name
        }
    }

    /// The shape config `c` gives it.
    public func shape(_ c: EncoderConfig) -> [Int] {
        switch self {
        case .embedding(let e): return e.spec.shape.shape(c)
        case .layer(_, let t): return t.spec.shape.shape(c)
        case .head(let h): return h.shape.shape(c)
        }
    }

    /// The Hugging Face name in a checkpoint of `type` with head `kind`, with the model prefix
    /// where it applies (nil: no such tensor in that layout).
    func huggingFaceName(_ type: EncoderConfig.ModelType, head kind: EncoderConfig.HeadKind) -> String? {
        let prefix = HuggingFaceNames.prefix(type)
        switch self {
        case .embedding(let e): return e.spec.huggingFace(type).map { prefix + $0 }
        case .layer(let i, let t): return t.spec.huggingFace(type).map { prefix + LayerTensor.prefix(i, type) + $0 }
        case .head(let h):
            let n = h.huggingFace(kind)
            return n.prefixed ? prefix + n.name : n.name
        }
    }
}

/// Name lookups shared by checkpoint loading and saving.
enum HuggingFaceNames {
    static func prefix(_ t: EncoderConfig.ModelType) -> String { t == .distilbert ? "distilbert." : "bert." }

    /// Names to look a tensor up by, in order of preference: `name` as given (with the model
    /// prefix if it has one), without the prefix, then old-style LayerNorm `gamma`/`beta` for
    /// `*LayerNorm.weight/bias` and `*layer_norm.weight/bias`.
    static func candidates(_ name: String, prefix: String) -> [String] {
        var bases = [name]
        if name.hasPrefix(prefix) { bases.append(String(name.dropFirst(prefix.count))) }
        var out = bases
        if name.contains("LayerNorm.") || name.contains("layer_norm.") {
            for b in bases {
                if b.hasSuffix(".weight") { out.append(String(b.dropLast(".weight".count)) + ".gamma") }
                if b.hasSuffix(".bias") { out.append(String(b.dropLast(".bias".count)) + ".beta") }
            }
        }
        return out
    }
}
