/// Every parameter of a sequence-classification encoder, in Hugging Face layout:
/// linear weights are [out, in] (row-major), biases [out], LayerNorm gamma/beta [D].
///
/// The same structure serves inference (loaded, then never mutated), training
/// (updated in place by the optimizer) and gradients (a zero-filled twin).
public final class EncoderWeights: @unchecked Sendable {
    public let config: EncoderConfig
    public var embeddings: EmbeddingWeights
    public var layers: [LayerWeights]
    public var head: HeadWeights

    public init(config: EncoderConfig, embeddings: EmbeddingWeights, layers: [LayerWeights], head: HeadWeights) {
        self.config = config
        self.embeddings = embeddings
        self.layers = layers
        self.head = head
    }

    /// A zero-filled twin with the same shapes (for gradients and optimizer moments).
    public static func zeros(like w: EncoderWeights) throws -> EncoderWeights {
        let z = { (t: Tensor) throws -> Tensor in try Tensor(shape: t.shape) }
        let e = w.embeddings
        return EncoderWeights(
            config: w.config,
            embeddings: EmbeddingWeights(
                word: try z(e.word), position: try z(e.position), tokenType: try e.tokenType.map(z),
                normWeight: try z(e.normWeight), normBias: try z(e.normBias)),
            layers: try w.layers.map { l in
                LayerWeights(
                    query: try z(l.query), queryBias: try z(l.queryBias),
                    key: try z(l.key), keyBias: try z(l.keyBias),
                    value: try z(l.value), valueBias: try z(l.valueBias),
                    attentionOut: try z(l.attentionOut), attentionOutBias: try z(l.attentionOutBias),
                    attentionNormWeight: try z(l.attentionNormWeight), attentionNormBias: try z(l.attentionNormBias),
                    ffnIn: try z(l.ffnIn), ffnInBias: try z(l.ffnInBias),
                    ffnOut: try z(l.ffnOut), ffnOutBias: try z(l.ffnOutBias),
                    outputNormWeight: try z(l.outputNormWeight), outputNormBias: try z(l.outputNormBias))
            },
            head: HeadWeights(
                dense: try z(w.head.dense), denseBias: try z(w.head.denseBias),
                classifier: try z(w.head.classifier), classifierBias: try z(w.head.classifierBias)))
    }

    /// Every tensor with a stable name, in a fixed order (for optimizers, norms and tests).
    /// Names are this library's canonical ones; checkpoint IO maps them to HF names.
    public var namedTensors: [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = [
            ("embeddings.word", embeddings.word),
            ("embeddings.position", embeddings.position),
        ]
        if let t = embeddings.tokenType { out.append(("embeddings.token_type", t)) }
        out.append(("embeddings.norm.weight", embeddings.normWeight))
        out.append(("embeddings.norm.bias", embeddings.normBias))
        for (i, l) in layers.enumerated() {
            let p = "layer.\(i)."
            out += [
                (p + "query.weight", l.query), (p + "query.bias", l.queryBias),
                (p + "key.weight", l.key), (p + "key.bias", l.keyBias),
                (p + "value.weight", l.value), (p + "value.bias", l.valueBias),
                (p + "attention_out.weight", l.attentionOut), (p + "attention_out.bias", l.attentionOutBias),
                (p + "attention_norm.weight", l.attentionNormWeight), (p + "attention_norm.bias", l.attentionNormBias),
                (p + "ffn_in.weight", l.ffnIn), (p + "ffn_in.bias", l.ffnInBias),
                (p + "ffn_out.weight", l.ffnOut), (p + "ffn_out.bias", l.ffnOutBias),
                (p + "output_norm.weight", l.outputNormWeight), (p + "output_norm.bias", l.outputNormBias),
            ]
        }
        out += [
            ("head.dense.weight", head.dense), ("head.dense.bias", head.denseBias),
            ("head.classifier.weight", head.classifier), ("head.classifier.bias", head.classifierBias),
        ]
        return out
    }

    public var parameterCount: Int { namedTensors.reduce(0) { $0 + $1.tensor.count } }
}

public struct EmbeddingWeights: @unchecked Sendable {
    public var word: Tensor          // [V, D]
    public var position: Tensor      // [P, D]
    public var tokenType: Tensor?    // [T, D] (BERT only; single-sentence input uses row 0)
    public var normWeight: Tensor    // [D]
    public var normBias: Tensor      // [D]

    public init(word: Tensor, position: Tensor, tokenType: Tensor?, normWeight: Tensor, normBias: Tensor) {
        self.word = word
        self.position = position
        self.tokenType = tokenType
        self.normWeight = normWeight
        self.normBias = normBias
    }
}

/// One post-LayerNorm transformer block (BERT and DistilBERT are the same block).
public struct LayerWeights: @unchecked Sendable {
    public var query: Tensor, queryBias: Tensor                    // [D, D], [D]
    public var key: Tensor, keyBias: Tensor                        // [D, D], [D]
    public var value: Tensor, valueBias: Tensor                    // [D, D], [D]
    public var attentionOut: Tensor, attentionOutBias: Tensor      // [D, D], [D]
    public var attentionNormWeight: Tensor, attentionNormBias: Tensor  // [D]
    public var ffnIn: Tensor, ffnInBias: Tensor                    // [F, D], [F]
    public var ffnOut: Tensor, ffnOutBias: Tensor                  // [D, F], [D]
    public var outputNormWeight: Tensor, outputNormBias: Tensor    // [D]

    public init(
        query: Tensor, queryBias: Tensor, key: Tensor, keyBias: Tensor, value: Tensor, valueBias: Tensor,
        attentionOut: Tensor, attentionOutBias: Tensor, attentionNormWeight: Tensor, attentionNormBias: Tensor,
        ffnIn: Tensor, ffnInBias: Tensor, ffnOut: Tensor, ffnOutBias: Tensor,
        outputNormWeight: Tensor, outputNormBias: Tensor
    ) {
        self.query = query; self.queryBias = queryBias
        self.key = key; self.keyBias = keyBias
        self.value = value; self.valueBias = valueBias
        self.attentionOut = attentionOut; self.attentionOutBias = attentionOutBias
        self.attentionNormWeight = attentionNormWeight; self.attentionNormBias = attentionNormBias
        self.ffnIn = ffnIn; self.ffnInBias = ffnInBias
        self.ffnOut = ffnOut; self.ffnOutBias = ffnOutBias
        self.outputNormWeight = outputNormWeight; self.outputNormBias = outputNormBias
    }
}

/// The classification head on the [CLS] hidden state. `config.headKind` says how `dense`
/// is used: DistilBERT's pre_classifier (ReLU) or BERT's pooler (tanh).
public struct HeadWeights: @unchecked Sendable {
    public var dense: Tensor, denseBias: Tensor                // [D, D], [D]
    public var classifier: Tensor, classifierBias: Tensor      // [L, D], [L]

    public init(dense: Tensor, denseBias: Tensor, classifier: Tensor, classifierBias: Tensor) {
        self.dense = dense; self.denseBias = denseBias
        self.classifier = classifier; self.classifierBias = classifierBias
    }
}
