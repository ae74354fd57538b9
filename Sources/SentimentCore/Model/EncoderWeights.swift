/// Every parameter of a sequence-classification encoder, in Hugging Face layout:
/// linear weights are [out, in] (row-major), biases [out], LayerNorm gamma/beta [D].
/// Which tensors there are, their names and shapes: TensorSchema.swift.
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

    /// Weights whose every slot (`TensorSlot.all(config)`) is made by `make`.
    public convenience init(config c: EncoderConfig, make: (TensorSlot) throws -> Tensor) throws {
        func e(_ t: EmbeddingTensor) throws -> Tensor { try make(.embedding(t)) }
        func h(_ t: HeadTensor) throws -> Tensor { try make(.head(t)) }
        self.init(
            config: c,
            embeddings: EmbeddingWeights(
                word: try e(.word), position: try e(.position), tokenType: c.modelType == .bert ? try e(.tokenType) : nil,
                normWeight: try e(.normWeight), normBias: try e(.normBias)),
            layers: try (0..<c.numLayers).map { i in try LayerWeights { try make(.layer(i, $0)) } },
            head: HeadWeights(dense: try h(.dense), denseBias: try h(.denseBias),
                              classifier: try h(.classifier), classifierBias: try h(.classifierBias)))
    }

    /// A zero-filled twin with the same shapes (for gradients and optimizer moments).
    public static func zeros(like w: EncoderWeights) throws -> EncoderWeights {
        try EncoderWeights(config: w.config) { slot in
            guard let t = w[slot] else { throw SentimentError(.internal, "weights lack \(slot.name)") }
            return try Tensor(shape: t.shape)
        }
    }

    /// The tensor in `slot` (nil: token types of a DistilBERT model, or a layer out of range).
    public subscript(slot: TensorSlot) -> Tensor? {
        switch slot {
        case .embedding(let e): return embeddings[e]
        case .layer(let i, let t): return layers.indices.contains(i) ? layers[i][t] : nil
        case .head(let h): return head[h]
        }
    }

    /// Every tensor with its canonical name, in the schema's order (for optimizers, norms and
    /// tests; checkpoint IO maps the names to Hugging Face's).
    public var namedTensors: [(name: String, tensor: Tensor)] {
        TensorSlot.all(config).compactMap { slot in self[slot].map { (slot.name, $0) } }
    }

    public var parameterCount: Int { namedTensors.reduce(0) { $0 + $1.tensor.count } }

    /// Throws `.invalidArgument` naming the first tensor that is missing or whose shape is not
    /// the one its config gives (the one shape check of in-memory weights: encoders and saves).
    public func checkShapes() throws {
        let c = config
        guard layers.count == c.numLayers else {
            throw SentimentError.invalidArgument("the weights have \(layers.count) layers but the config says \(c.numLayers)")
        }
        for slot in TensorSlot.all(c) {
            let hf = slot.huggingFaceName(c.modelType, head: c.headKind).map { " (\($0))" } ?? ""
            guard let t = self[slot] else {
                throw SentimentError.invalidArgument("weight \(slot.name)\(hf) is missing", field: slot.name)
            }
            let expected = slot.shape(c)
            guard t.shape == expected else {
                throw SentimentError.invalidArgument(
                    "weight \(slot.name)\(hf) has shape \(t.shape), expected \(expected) from the config", field: slot.name)
            }
        }
    }
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

    public subscript(t: EmbeddingTensor) -> Tensor? {
        switch t {
        case .word: return word
        case .position: return position
        case .tokenType: return tokenType
        case .normWeight: return normWeight
        case .normBias: return normBias
        }
    }
}

/// One post-LayerNorm transformer block (BERT and DistilBERT are the same block): its 16
/// tensors, by `LayerTensor`.
public struct LayerWeights: @unchecked Sendable {
    private var tensors: [Tensor]

    /// A block whose every tensor is made by `make`, in `LayerTensor` order.
    public init(make: (LayerTensor) throws -> Tensor) rethrows {
        tensors = try LayerTensor.allCases.map(make)
    }

    public subscript(t: LayerTensor) -> Tensor {
        get { tensors[t.rawValue] }
        set { tensors[t.rawValue] = newValue }
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

    public subscript(t: HeadTensor) -> Tensor {
        switch t {
        case .dense: return dense
        case .denseBias: return denseBias
        case .classifier: return classifier
        case .classifierBias: return classifierBias
        }
    }
}
