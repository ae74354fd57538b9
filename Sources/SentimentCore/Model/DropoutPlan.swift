// Where dropout acts in a training forward, and the masks of one step.
//
// Sites (probabilities from `EncoderConfig`), where Hugging Face applies them:
//   BERT:       embeddings (hidden), attention probabilities (attention), attention out-proj
//               (hidden), FFN out (hidden)
//   DistilBERT: embeddings (dropout), attention probabilities (attention_dropout), FFN lin2
//               (dropout); no dropout after out_lin
//   head:       between the activation and the classifier (`classifierDropout`: DistilBERT's
//               seq_classif_dropout, BERT's classifier_dropout ?? hidden_dropout_prob)
// Masks are never stored: each site gets a key, and forward and backward recompute the mask
// from it (Kernels/Dropout.swift).

/// The masks of one transformer block (nil: no dropout at that site).
struct BlockDropout {
    var attention: DropoutMask?
    var attentionOutput: DropoutMask?
    var ffnOutput: DropoutMask?
}

/// The dropout masks of one training forward: one key per site and layer, drawn in a fixed
/// order from `SeededRandom(seed)` (the same seed gives the same masks on any thread count).
struct DropoutPlan {
    var embeddings: DropoutMask?
    var blocks: [BlockDropout]
    var head: DropoutMask?

    init(config c: EncoderConfig, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        embeddings = DropoutMask(p: c.hiddenDropout, key: rng.next())
        blocks = []
        for _ in 0..<c.numLayers {
            let keys = (rng.next(), rng.next(), rng.next())
            blocks.append(BlockDropout(
                attention: DropoutMask(p: c.attentionDropout, key: keys.0),
                attentionOutput: c.modelType == .bert ? DropoutMask(p: c.hiddenDropout, key: keys.1) : nil,
                ffnOutput: DropoutMask(p: c.hiddenDropout, key: keys.2)))
        }
        head = DropoutMask(p: c.classifierDropout, key: rng.next())
    }
}
