// The encoder backward pass (BERT and DistilBERT, post-LN blocks, packed batches), and
// `EncoderTrainer`: one training step's loss and gradients.
//
// Glossary as in EncoderForward.swift: T tokens, S sequences, D hidden, F FFN, H heads,
// hd = D / H, NL labels. Gradients use llm.c's `d` names.
//
// Backward mirrors the training-mode forward (`ForwardWorkspace.Mode.training`, which keeps every
// activation and applies dropout where Hugging Face does). The last layer is computed for the
// [CLS] rows only (`sparseLastLayer`, default on): nothing else of it reaches the loss, so only
// its K and V projections (and their gradients) cover every token; this saves ~1/7 of the work
// of a 6-layer model and gives the full layer's gradients (tested both ways against PyTorch):
//
//   loss = mean cross-entropy(logits)
//   head:   classifier <- dropout <- ReLU (DistilBERT) / tanh (BERT pooler) <- dense <- [CLS] rows
//   layers, last to first:
//     output LN <- residual + dropout(FFN out) <- GELU <- FFN in <- attention LN
//               <- residual + dropout(attention out-proj; BERT only) <- attention (dropout on P) <- Q, K, V
//   embeddings: dropout <- LN <- word + position (+ token type 0) rows (scatter-add)
//
// Dropout sites (probabilities from `EncoderConfig`):
//   BERT:       embeddings (hidden), attention probabilities (attention), attention out-proj
//               (hidden), FFN out (hidden)
//   DistilBERT: embeddings (dropout), attention probabilities (attention_dropout), FFN lin2
//               (dropout); no dropout after out_lin
//   head:       between the activation and the classifier (`classifierDropout`: DistilBERT's
//               seq_classif_dropout, BERT's classifier_dropout ?? hidden_dropout_prob)
// Masks are never stored: each site gets a key from SeededRandom(dropoutSeed) and both passes
// recompute the mask from it (see Kernels/Dropout.swift).

// MARK: - Dropout plan

/// The dropout masks of one training forward: one key per site and layer, drawn in a fixed
/// order from `SeededRandom(seed)` (the same seed gives the same masks on any thread count).
struct EncoderDropout {
    var embeddings: DropoutMask?
    var attention: [DropoutMask?]
    var attentionOutput: [DropoutMask?]
    var ffnOutput: [DropoutMask?]
    var head: DropoutMask?

    init(config c: EncoderConfig, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        embeddings = DropoutMask(p: c.hiddenDropout, key: rng.next())
        attention = []
        attentionOutput = []
        ffnOutput = []
        for _ in 0..<c.numLayers {
            let keys = (rng.next(), rng.next(), rng.next())
            attention.append(DropoutMask(p: c.attentionDropout, key: keys.0))
            attentionOutput.append(c.modelType == .bert ? DropoutMask(p: c.hiddenDropout, key: keys.1) : nil)
            ffnOutput.append(DropoutMask(p: c.hiddenDropout, key: keys.2))
        }
        head = DropoutMask(p: c.classifierDropout, key: rng.next())
    }
}

// MARK: - Trainer step

/// Loss and gradients of a classification batch: the training forward (dropout optional) and the
/// full backward. Reuses its buffers across calls (they grow to the largest batch seen).
/// Not thread-safe: one call at a time. The weights may be updated in place between calls
/// (the forward reads them directly, `WeightPacking.none`).
public final class EncoderTrainer {
    public let weights: EncoderWeights
    public var config: EncoderConfig { weights.config }
    let encoder: EncoderForward
    let workspace: ForwardWorkspace

    // Backward buffers.
    private var store: [Tensor] = []
    private var tokenCap = 0, seqCap = 0, scratchCap = 0
    private var gOut: UnsafeMutablePointer<Float>? = nil     // [T, D] gradient of the current layer's output
    private var gIn: UnsafeMutablePointer<Float>? = nil      // [T, D] gradient of its input
    private var gA: UnsafeMutablePointer<Float>? = nil       // [T, D]
    private var gB: UnsafeMutablePointer<Float>? = nil       // [T, D]
    private var gFfn: UnsafeMutablePointer<Float>? = nil     // [T, F]
    private var gQKV: UnsafeMutablePointer<Float>? = nil     // [T, 3D]
    private var gLogits: UnsafeMutablePointer<Float>? = nil  // [S, NL]
    private var gHead: UnsafeMutablePointer<Float>? = nil    // [S, D]
    private var gCls: UnsafeMutablePointer<Float>? = nil     // [S, D]
    private var gClsQ: UnsafeMutablePointer<Float>? = nil    // [S, D] sparse last layer: d(Q of [CLS])
    private var scratch: UnsafeMutablePointer<Float>? = nil
    private var labelBuffer: [Int] = []

    /// Validates the weights (as `EncoderForward` does; throws `.format`).
    public init(weights: EncoderWeights) throws {
        self.weights = weights
        encoder = try EncoderForward(weights: weights, packing: .none)
        workspace = ForwardWorkspace(config: weights.config, mode: .training)
        workspace.sparseLastLayer = true
    }

    /// Whether the last layer is computed for the [CLS] rows only (the default; nothing else of
    /// it reaches the loss). Off computes it in full, for testing the two against each other.
    public var sparseLastLayer: Bool {
        get { workspace.sparseLastLayer }
        set { workspace.sparseLastLayer = newValue }
    }

    /// R-Drop's alpha (0 = off). When > 0, each batch must hold its sequences twice, sequence i
    /// again at i + S/2 with the same label, so dropout gives the two copies different masks; the
    /// loss is the mean cross-entropy over all S rows plus alpha/4 (KL(p || q) + KL(q || p)) per
    /// pair: R-Drop's loss (Liang et al. 2021, eq. 3) halved, so alpha means what it does there.
    public var rdropAlpha: Double = 0

    /// Logits [S][NL] of the last `lossAndGradients` call (with its dropout, if any).
    public var logits: [[Float]] { workspace.logits }

    /// Seconds spent in the forward and in the backward (incl. zeroing the gradients) by the last call.
    public private(set) var lastSeconds: (forward: Double, backward: Double) = (0, 0)

    /// Runs the training forward on `batch` and the backward of the mean cross-entropy against
    /// `labels`, writing d(loss)/d(parameter) into `gradients` (overwritten; a twin of the weights,
    /// e.g. `EncoderWeights.zeros(like:)`). `dropoutSeed` nil = no dropout (eval-mode forward);
    /// otherwise the masks are a function of the seed alone. Returns the loss.
    /// Throws `.invalidArgument` for bad ids, lengths or labels, `.misuse` for mismatched gradients.
    public func lossAndGradients(
        batch: PackedBatch, labels: [Int], gradients: EncoderWeights, dropoutSeed: UInt64?
    ) throws -> Double {
        let c = config
        guard batch.count > 0 else { throw SentimentError.invalidArgument("the batch is empty", field: "input_ids") }
        guard labels.count == batch.count else {
            throw SentimentError.invalidArgument(
                "\(batch.count) sequences but \(labels.count) labels", field: "labels")
        }
        for (i, y) in labels.enumerated() where y < 0 || y >= c.numLabels {
            throw SentimentError.invalidArgument("labels[\(i)] = \(y) is outside 0..<\(c.numLabels)", field: "labels")
        }
        if rdropAlpha > 0 {
            let half = batch.count / 2, mid = batch.offsets[half]
            guard batch.count % 2 == 0, 2 * mid == batch.totalTokens,
                  batch.tokenIds[..<mid].elementsEqual(batch.tokenIds[mid...]),
                  (0...half).allSatisfy({ batch.offsets[$0] + mid == batch.offsets[$0 + half] }),
                  labels[..<half].elementsEqual(labels[half...])
            else {
                throw SentimentError.invalidArgument(
                    "with rdrop_alpha the batch must hold its sequences twice (i and i + count/2)", field: "rdrop_alpha")
            }
        }
        let mine = weights.namedTensors, theirs = gradients.namedTensors
        guard mine.count == theirs.count, zip(mine, theirs).allSatisfy({ $0.tensor.shape == $1.tensor.shape }) else {
            throw SentimentError(.misuse, "the gradients do not have the shapes of the weights")
        }

        let t0 = Clock.now()
        workspace.dropout = dropoutSeed.map { EncoderDropout(config: c, seed: $0) }
        defer { workspace.dropout = nil }
        try encoder.forward(batch, workspace: workspace)
        let t1 = Clock.now()
        try prepare(batch)
        guard let logits = workspace.logitsBuffer else { throw SentimentError(.internal, "no logits after the forward") }
        labelBuffer = labels
        var loss = labelBuffer.withUnsafeBufferPointer { y in
            y.baseAddress.map { crossEntropyForward(logits: logits, labels: $0, rows: batch.count, classes: c.numLabels) } ?? 0
        }
        if rdropAlpha > 0 {
            loss += rdropAlpha / 2 * symmetricKLForward(logits: logits, pairs: batch.count / 2, classes: c.numLabels)
        }
        zero(gradients)
        try backward(batch, gradients: gradients)
        lastSeconds = (t1 - t0, Clock.now() - t1)
        return loss
    }

    /// Sizes the backward buffers for `batch`.
    private func prepare(_ batch: PackedBatch) throws {
        let c = config
        let t = batch.totalTokens, s = batch.count, d = c.hiddenSize, f = c.intermediateSize
        let sc = Parallel.threads * attentionBackwardScratchPerThread(maxLength: batch.maxLength, headDim: c.headDim)
        guard t > tokenCap || s > seqCap || sc > scratchCap else { return }
        let tc = Swift.max(t, tokenCap + tokenCap / 4), scap = Swift.max(s, seqCap + seqCap / 4)
        store.removeAll()
        func make(_ n: Int) throws -> UnsafeMutablePointer<Float> {
            let x = try Tensor(shape: [Swift.max(n, 1)])
            store.append(x)
            return x.data
        }
        gOut = try make(tc * d); gIn = try make(tc * d); gA = try make(tc * d); gB = try make(tc * d)
        gFfn = try make(tc * f); gQKV = try make(tc * 3 * d)
        gLogits = try make(scap * c.numLabels); gHead = try make(scap * d); gCls = try make(scap * d)
        gClsQ = try make(scap * d)
        scratch = try make(Swift.max(sc, scratchCap))
        tokenCap = tc; seqCap = scap; scratchCap = Swift.max(sc, scratchCap)
    }

    private func zero(_ g: EncoderWeights) {
        for (_, t) in g.namedTensors {
            let p = t.data
            Parallel.forRanges(t.count, grain: 1 << 18) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
        }
    }

    private func backward(_ batch: PackedBatch, gradients g: EncoderWeights) throws {
        let c = config, ws = workspace, w = weights
        let t = batch.totalTokens, s = batch.count, d = c.hiddenSize, f = c.intermediateSize, nl = c.numLabels
        guard var gOut, var gIn, let gA, let gB, let gFfn, let gQKV, let gLogits, let gHead, let gCls, let gClsQ, let scratch,
              let logits = ws.logitsBuffer, let cls = ws.cls, let headAct = ws.headAct, let headPre = ws.headPre,
              let embSum = ws.embSum, let embMean = ws.embMean, let embRstd = ws.embRstd
        else { throw SentimentError(.internal, "training buffers missing") }
        let dropout = ws.dropout

        // Head.
        labelBuffer.withUnsafeBufferPointer { y in
            if let yp = y.baseAddress { crossEntropyBackward(dlogits: gLogits, logits: logits, labels: yp, rows: s, classes: nl) }
        }
        if rdropAlpha > 0 {
            symmetricKLBackward(dlogits: gLogits, logits: logits, pairs: s / 2, classes: nl, scale: rdropAlpha / 2)
        }
        try linearBackward(
            dinp: gHead, dweight: g.head.classifier.data, dbias: g.head.classifierBias.data,
            dout: gLogits, inp: headAct, weight: w.head.classifier.data, m: s, k: d, n: nl)
        if let m = dropout?.head { dropoutBackward(gHead, rows: s, cols: d, mask: m) }
        switch c.headKind {
        case .distilbert: reluBackward(dinp: gHead, dout: gHead, preActivation: headPre, count: s * d)
        case .bertPooler: tanhBackward(dinp: gHead, dout: gHead, preActivation: headPre, count: s * d)
        }
        try linearBackward(
            dinp: gCls, dweight: g.head.dense.data, dbias: g.head.denseBias.data,
            dout: gHead, inp: cls, weight: w.head.dense.data, m: s, k: d, n: d)
        // Only the [CLS] rows of the last layer's output reach the head.
        let sparse = ws.sparseLastLayer
        if !sparse {
            gOut.update(repeating: 0, count: t * d)
            for i in 0..<s { (gOut + batch.offsets[i] * d).update(from: gCls + i * d, count: d) }
        }
        let attentionScratch = attentionBackwardScratchPerThread(maxLength: batch.maxLength, headDim: c.headDim)

        // Layers, last to first. gOut: gradient of the layer output; gIn: of its input.
        try ws.offsets.withUnsafeBufferPointer { offs in
            try ws.probOffsets.withUnsafeBufferPointer { probOffs in
                for li in stride(from: c.numLayers - 1, through: 0, by: -1) {
                    let a = ws.layers[li], lw = w.layers[li], lg = g.layers[li]
                    guard let outMean = a.outMean, let outRstd = a.outRstd, let attnMean = a.attnMean,
                          let attnRstd = a.attnRstd, let ffnPre = a.ffnPre, let probs = a.probs
                    else { throw SentimentError(.internal, "layer \(li): training activations missing") }

                    if sparse && li == c.numLayers - 1 {
                        // The last layer for the [CLS] rows only (EncoderForward.lastLayerCLSTraining):
                        // S-row activations; K and V, hence their gradients, for every token.
                        guard let clsQ = ws.clsQ, let clsIn = ws.clsInput else {
                            throw SentimentError(.internal, "sparse last layer: [CLS] buffers missing")
                        }
                        let rowIds = UnsafeBufferPointer(rebasing: offs[0..<s])
                        layerNormBackward(
                            dinp: gA, dweight: lg.outputNormWeight.data, dbias: lg.outputNormBias.data, dout: gCls,
                            inp: a.ffnSum, mean: outMean, rstd: outRstd, weight: lw.outputNormWeight.data, rows: s, cols: d)
                        var dY2 = gA
                        if let m = dropout?.ffnOutput[li] {
                            gB.update(from: gA, count: s * d)
                            dropoutForward(gB, rowIds: rowIds, cols: d, mask: m)
                            dY2 = gB
                        }
                        try linearBackward(
                            dinp: gFfn, dweight: lg.ffnOut.data, dbias: lg.ffnOutBias.data,
                            dout: dY2, inp: a.ffnAct, weight: lw.ffnOut.data, m: s, k: f, n: d)
                        geluBackward(dinp: gFfn, dout: gFfn, preActivation: ffnPre, count: s * f)
                        try linearBackward(
                            dinp: gA, dweight: lg.ffnIn.data, dbias: lg.ffnInBias.data,
                            dout: gFfn, inp: a.attnNorm, weight: lw.ffnIn.data, m: s, k: d, n: f, accumulateInput: true)
                        // gB = d(attnSum) = d([CLS] input rows) through the residual.
                        layerNormBackward(
                            dinp: gB, dweight: lg.attentionNormWeight.data, dbias: lg.attentionNormBias.data, dout: gA,
                            inp: a.attnSum, mean: attnMean, rstd: attnRstd, weight: lw.attentionNormWeight.data,
                            rows: s, cols: d)
                        var dY1 = gB
                        if let m = dropout?.attentionOutput[li] {
                            gHead.update(from: gB, count: s * d)
                            dropoutForward(gHead, rowIds: rowIds, cols: d, mask: m)
                            dY1 = gHead
                        }
                        try linearBackward(
                            dinp: gA, dweight: lg.attentionOut.data, dbias: lg.attentionOutBias.data,
                            dout: dY1, inp: a.context, weight: lw.attentionOut.data, m: s, k: d, n: d)
                        attentionBackward(
                            dqkv: gQKV, dout: gA, qkv: a.qkv, queries: .first(q: clsQ), dqFirst: gClsQ,
                            probs: probs, probOffsets: probOffs, offsets: offs,
                            numHeads: c.numHeads, headDim: c.headDim, dropout: dropout?.attention[li],
                            scratch: scratch, scratchPerThread: attentionScratch)
                        try linearBackward(
                            dinp: gB, dweight: lg.query.data, dbias: lg.queryBias.data, dout: gClsQ, inp: clsIn,
                            weight: lw.query.data, m: s, k: d, n: d, accumulateInput: true)
                        try linearBackward(
                            dinp: gIn, dweight: lg.key.data, dbias: lg.keyBias.data, dout: gQKV + d, inp: a.input,
                            weight: lw.key.data, m: t, k: d, n: d, ldDout: 3 * d)
                        try linearBackward(
                            dinp: gIn, dweight: lg.value.data, dbias: lg.valueBias.data, dout: gQKV + 2 * d, inp: a.input,
                            weight: lw.value.data, m: t, k: d, n: d, ldDout: 3 * d, accumulateInput: true)
                        for i in 0..<s { axpy(gIn + offs[i] * d, 1, gB + i * d, d) }
                        swap(&gOut, &gIn)
                        continue
                    }

                    // Output LayerNorm: gA = d(ffnSum) = d(attnNorm) through the residual.
                    layerNormBackward(
                        dinp: gA, dweight: lg.outputNormWeight.data, dbias: lg.outputNormBias.data, dout: gOut,
                        inp: a.ffnSum, mean: outMean, rstd: outRstd, weight: lw.outputNormWeight.data, rows: t, cols: d)
                    // FFN out (through its dropout), GELU, FFN in (adds into gA).
                    var dY2 = gA
                    if let m = dropout?.ffnOutput[li] {
                        gB.update(from: gA, count: t * d)
                        dropoutBackward(gB, rows: t, cols: d, mask: m)
                        dY2 = gB
                    }
                    try linearBackward(
                        dinp: gFfn, dweight: lg.ffnOut.data, dbias: lg.ffnOutBias.data,
                        dout: dY2, inp: a.ffnAct, weight: lw.ffnOut.data, m: t, k: f, n: d)
                    geluBackward(dinp: gFfn, dout: gFfn, preActivation: ffnPre, count: t * f)
                    try linearBackward(
                        dinp: gA, dweight: lg.ffnIn.data, dbias: lg.ffnInBias.data,
                        dout: gFfn, inp: a.attnNorm, weight: lw.ffnIn.data, m: t, k: d, n: f, accumulateInput: true)

                    // Attention LayerNorm: gIn = d(attnSum) = d(input) through the residual.
                    layerNormBackward(
                        dinp: gIn, dweight: lg.attentionNormWeight.data, dbias: lg.attentionNormBias.data, dout: gA,
                        inp: a.attnSum, mean: attnMean, rstd: attnRstd, weight: lw.attentionNormWeight.data,
                        rows: t, cols: d)
                    var dY1 = gIn
                    if let m = dropout?.attentionOutput[li] {
                        gB.update(from: gIn, count: t * d)
                        dropoutBackward(gB, rows: t, cols: d, mask: m)
                        dY1 = gB
                    }
                    // Out-projection: gA = d(context).
                    try linearBackward(
                        dinp: gA, dweight: lg.attentionOut.data, dbias: lg.attentionOutBias.data,
                        dout: dY1, inp: a.context, weight: lw.attentionOut.data, m: t, k: d, n: d)
                    attentionBackward(
                        dqkv: gQKV, dout: gA, qkv: a.qkv, probs: probs, probOffsets: probOffs, offsets: offs,
                        numHeads: c.numHeads, headDim: c.headDim, dropout: dropout?.attention[li],
                        scratch: scratch, scratchPerThread: attentionScratch)
                    // Q, K, V projections (add into gIn).
                    let qkvParts = [(lw.query, lg.query, lg.queryBias), (lw.key, lg.key, lg.keyBias),
                                    (lw.value, lg.value, lg.valueBias)]
                    for (slot, (wt, gw, gb)) in qkvParts.enumerated() {
                        try linearBackward(
                            dinp: gIn, dweight: gw.data, dbias: gb.data, dout: gQKV + slot * d, inp: a.input,
                            weight: wt.data, m: t, k: d, n: d, ldDout: 3 * d, accumulateInput: true)
                    }
                    swap(&gOut, &gIn)
                }
            }
        }

        // Embeddings: gOut is now d(embedding output).
        if let m = dropout?.embeddings { dropoutBackward(gOut, rows: t, cols: d, mask: m) }
        let e = w.embeddings, ge = g.embeddings
        batch.tokenIds.withUnsafeBufferPointer { ids in
            batch.positions.withUnsafeBufferPointer { pos in
                guard let idp = ids.baseAddress, let pp = pos.baseAddress else { return }
                embeddingBackward(
                    dword: ge.word.data, dposition: ge.position.data, dtokenType: ge.tokenType?.data,
                    dnormWeight: ge.normWeight.data, dnormBias: ge.normBias.data,
                    dout: gOut, sum: embSum, mean: embMean, rstd: embRstd, normWeight: e.normWeight.data,
                    ids: idp, positions: pp, rows: t, cols: d)
            }
        }
    }
}
