// The encoder backward pass (BERT and DistilBERT, post-LN blocks, packed batches).
//
// Glossary as in EncoderForward.swift: T tokens, S sequences, D hidden, F FFN, H heads,
// hd = D / H, NL labels. Gradients use llm.c's names: `d` + the value they are the gradient of.
//
// Backward mirrors the training-mode forward (`ForwardWorkspace.Mode.training`, which keeps every
// activation and applies the `DropoutPlan`). By default the last block is computed for the
// [CLS] rows only (`BlockRows.cls`): nothing else of it reaches the loss, so only its K and V
// projections (and their gradients) cover every token. It gives the full layer's gradients
// (tested both ways against PyTorch):
//
//   head:   classifier <- dropout <- ReLU (DistilBERT) / tanh (BERT pooler) <- dense <- [CLS] rows
//   blocks, last to first: `blockBackward` (TransformerBlock.swift)
//   embeddings: dropout <- LN <- word + position (+ token type 0) rows (scatter-add)

/// Reusable buffers of the backward pass; they grow to the largest batch seen.
final class BackwardWorkspace {
    private var store: [Tensor] = []
    private var tokenCap = 0, seqCap = 0, scratchCap = 0
    /// [T, D] d(output) of the block being run backward, and d(its input); swapped per block.
    private(set) var dOutput: UnsafeMutablePointer<Float>? = nil
    private(set) var dInput: UnsafeMutablePointer<Float>? = nil
    private(set) var block: BlockGradients? = nil
    private(set) var dLogits: UnsafeMutablePointer<Float>? = nil    // [S, NL]
    private(set) var dHead: UnsafeMutablePointer<Float>? = nil      // [S, D] d(head activation), then d(head dense + bias)
    private(set) var dCls: UnsafeMutablePointer<Float>? = nil       // [S, D] d(final [CLS] hidden states)

    /// Sizes the buffers for `batch` (growing them by 25% more than it needs when they must grow).
    func prepare(for batch: PackedBatch, config c: EncoderConfig) throws {
        try reserve(batch.shape, config: c, headroom: true)
        block?.scratchPerThread = attentionBackwardScratchPerThread(maxLength: batch.maxLength, headDim: c.headDim)
    }

    /// Grows the buffers to hold a batch of `shape` (`headroom`: 25% more when they must grow).
    func reserve(_ shape: BatchShape, config c: EncoderConfig, headroom: Bool = false) throws {
        let t = shape.tokens, s = shape.sequences, d = c.hiddenSize, f = c.intermediateSize
        let perThread = attentionBackwardScratchPerThread(maxLength: shape.maxLength, headDim: c.headDim)
        let sc = Parallel.threads * perThread
        guard t > tokenCap || s > seqCap || sc > scratchCap else { return }
        let tc = Swift.max(t, headroom ? tokenCap + tokenCap / 4 : tokenCap)
        let scap = Swift.max(s, headroom ? seqCap + seqCap / 4 : seqCap)
        store.removeAll()
        func make(_ n: Int) throws -> UnsafeMutablePointer<Float> {
            let x = try Tensor(shape: [Swift.max(n, 1)])
            store.append(x)
            return x.data
        }
        dOutput = try make(tc * d); dInput = try make(tc * d)
        block = BlockGradients(
            ffnSum: try make(tc * d), ffnOut: try make(tc * d), ffn: try make(tc * f), attnNorm: try make(tc * d),
            rowInput: try make(scap * d), attnOut: try make(tc * d), context: try make(tc * d),
            qkv: try make(tc * 3 * d), queries: try make(scap * d),
            scratch: try make(Swift.max(sc, scratchCap)), scratchPerThread: perThread)
        dLogits = try make(scap * c.numLabels); dHead = try make(scap * d); dCls = try make(scap * d)
        tokenCap = tc; seqCap = scap; scratchCap = Swift.max(sc, scratchCap)
    }

    /// After a block: its d(input) becomes the next block's d(output).
    func swapBlockGradients() { swap(&dOutput, &dInput) }
}

extension EncoderForward {
    /// The backward pass of the training forward in `ws` on `batch`, from d(logits) in
    /// `buffers.dLogits`: adds d(loss)/d(parameter) into `g` (zero it first). `w` holds the float
    /// weights the forward read (`WeightPacking.none`).
    func backward(
        _ batch: PackedBatch, workspace ws: ForwardWorkspace, buffers bw: BackwardWorkspace,
        weights w: EncoderWeights, gradients g: EncoderWeights
    ) throws {
        let c = config
        let t = batch.totalTokens, s = batch.count, d = c.hiddenSize, nl = c.numLabels
        guard let blockBuffers = bw.block, let dLogits = bw.dLogits, let dHead = bw.dHead, let dCls = bw.dCls,
              let cls = ws.cls, let headAct = ws.headAct, let headPre = ws.headPre,
              let embSum = ws.embSum, let embMean = ws.embMean, let embRstd = ws.embRstd
        else { throw SentimentError(.internal, "training buffers missing") }
        let dropout = ws.dropout

        // Head.
        try linearBackward(
            dinp: dHead, dweight: g.head.classifier.data, dbias: g.head.classifierBias.data,
            dout: dLogits, inp: headAct, weight: w.head.classifier.data, m: s, k: d, n: nl)
        if let m = dropout?.head { dropoutBackward(dHead, rows: s, cols: d, mask: m) }
        switch c.headKind {
        case .distilbert: reluBackward(dinp: dHead, dout: dHead, preActivation: headPre, count: s * d)
        case .bertPooler: tanhBackward(dinp: dHead, dout: dHead, preActivation: headPre, count: s * d)
        }
        try linearBackward(
            dinp: dCls, dweight: g.head.dense.data, dbias: g.head.denseBias.data,
            dout: dHead, inp: cls, weight: w.head.dense.data, m: s, k: d, n: d)

        // Blocks, last to first. Only the [CLS] rows of the last block's output reach the head.
        let last = c.numLayers - 1
        if ws.rows(ofLayer: last) == .all, let dOutput = bw.dOutput {
            dOutput.update(repeating: 0, count: t * d)
            for i in 0..<s { (dOutput + batch.offsets[i] * d).update(from: dCls + i * d, count: d) }
        }
        try ws.offsets.withUnsafeBufferPointer { offs in
            try ws.probOffsets.withUnsafeBufferPointer { probOffs in
                for li in stride(from: last, through: 0, by: -1) {
                    guard let dOutput = bw.dOutput, let dInput = bw.dInput else {
                        throw SentimentError(.internal, "backward buffers missing")
                    }
                    let rows = ws.rows(ofLayer: li)
                    try blockBackward(
                        ws.activations(ofLayer: li, rows: rows), rows: rows, layer: layers[li], weights: w.layers[li],
                        gradients: g.layers[li],
                        dOutput: li == last && rows == .cls ? dCls : dOutput, dInput: dInput, buffers: blockBuffers,
                        tokens: t, offsets: offs, probOffsets: probOffs, dropout: dropout?.blocks[li], ws: ws)
                    bw.swapBlockGradients()
                }
            }
        }

        // Embeddings: dOutput is now d(embedding output).
        guard let dEmbeddings = bw.dOutput else { throw SentimentError(.internal, "backward buffers missing") }
        if let m = dropout?.embeddings { dropoutBackward(dEmbeddings, rows: t, cols: d, mask: m) }
        let e = w.embeddings, ge = g.embeddings
        batch.tokenIds.withUnsafeBufferPointer { ids in
            batch.positions.withUnsafeBufferPointer { pos in
                batch.withTypes { types in
                    guard let idp = ids.baseAddress, let pp = pos.baseAddress else { return }
                    embeddingBackward(
                        dword: ge.word.data, dposition: ge.position.data, dtokenType: ge.tokenType?.data,
                        dnormWeight: ge.normWeight.data, dnormBias: ge.normBias.data,
                        dout: dEmbeddings, sum: embSum, mean: embMean, rstd: embRstd, normWeight: e.normWeight.data,
                        ids: idp, positions: pp, types: types, rows: t, cols: d)
                }
            }
        }
    }
}
