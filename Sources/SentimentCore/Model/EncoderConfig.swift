/// Architecture of a BERT-family encoder, read from a Hugging Face `config.json`.
///
/// DistilBERT and BERT name their fields differently (`dim` vs `hidden_size`, ...);
/// this is the one vocabulary the rest of the library uses.
public struct EncoderConfig: Sendable, Equatable {
    public enum ModelType: String, Sendable { case distilbert, bert }
    /// Which classification head sits on the [CLS] hidden state.
    public enum HeadKind: String, Sendable {
        /// DistilBERT: pre_classifier (D x D) -> ReLU -> dropout -> classifier (L x D).
        case distilbert
        /// BERT: pooler dense (D x D) -> tanh -> dropout -> classifier (L x D).
        case bertPooler = "bert"
    }

    public var modelType: ModelType
    public var vocabSize: Int
    public var hiddenSize: Int            // D: distilbert `dim`, bert `hidden_size`
    public var numLayers: Int             // distilbert `n_layers`, bert `num_hidden_layers`
    public var numHeads: Int              // distilbert `n_heads`, bert `num_attention_heads`
    public var intermediateSize: Int      // distilbert `hidden_dim`, bert `intermediate_size`
    public var maxPositions: Int          // `max_position_embeddings`
    public var typeVocabSize: Int         // bert `type_vocab_size`; 0 for distilbert
    public var layerNormEps: Float        // bert `layer_norm_eps`; distilbert uses 1e-12
    public var hiddenDropout: Float       // distilbert `dropout`, bert `hidden_dropout_prob`
    public var attentionDropout: Float    // distilbert `attention_dropout`, bert `attention_probs_dropout_prob`
    public var classifierDropout: Float   // distilbert `seq_classif_dropout`, bert `classifier_dropout` ?? hidden dropout
    public var padTokenId: Int
    public var headKind: HeadKind
    /// Label names by id (`id2label`); count = number of labels.
    public var labels: [String]

    public var headDim: Int { hiddenSize / numHeads }
    public var numLabels: Int { labels.count }

    public init(
        modelType: ModelType, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int,
        intermediateSize: Int, maxPositions: Int = 512, typeVocabSize: Int = 0, layerNormEps: Float = 1e-12,
        hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, classifierDropout: Float = 0.2,
        padTokenId: Int = 0, headKind: HeadKind = .distilbert, labels: [String] = ["NEGATIVE", "POSITIVE"]
    ) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.classifierDropout = classifierDropout
        self.padTokenId = padTokenId
        self.headKind = headKind
        self.labels = labels
    }

    /// Parameters excluding the embedding tables (the GEMM work per token is about 2x this).
    public var encoderParameterCount: Int {
        let d = hiddenSize, f = intermediateSize
        let perLayer = 4 * (d * d + d) + (f * d + f) + (d * f + d) + 4 * d
        return numLayers * perLayer
    }
}
