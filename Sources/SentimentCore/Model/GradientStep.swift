// One training step's loss and gradients: the training forward (dropout optional), the loss
// (mean cross-entropy, plus R-Drop's KL term) and the full backward (EncoderBackward.swift).

/// Loss and gradients of a classification batch. Reuses its buffers across calls (they grow to
/// the largest batch seen). Not thread-safe: one call at a time. The weights may be updated in
/// place between calls (the forward reads them directly, `WeightPacking.none`; with `bf16`, each
/// call first rounds them to its bf16 copies, `WeightPacking.bf16(training: true)`).
public final class GradientStep {
    public let weights: EncoderWeights
    public var config: EncoderConfig { weights.config }
    let encoder: EncoderForward
    let workspace: ForwardWorkspace
    private let backwardWorkspace = BackwardWorkspace()

    /// Whether the linear layers' GEMMs run in bf16 (mixed precision: fp32 master weights,
    /// gradients, LayerNorm, softmax and loss).
    public let bf16: Bool

    /// Checks the weights (as `EncoderForward` does; `bf16` needs a CPU with AVX512-BF16 or AMX).
    public init(weights: EncoderWeights, bf16: Bool = false) throws {
        self.weights = weights
        self.bf16 = bf16
        encoder = try EncoderForward(weights: weights, packing: bf16 ? .bf16(training: true) : .none)
        workspace = ForwardWorkspace(config: weights.config, mode: .training)
        workspace.sparseLastLayer = true
        workspace.keepsBF16Inputs = bf16
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

    /// Sizes every buffer for batches up to `shape` now (the `BatchShape.union` of the batches to
    /// come), so no step reallocates when a larger batch arrives. Optional: each call grows them
    /// to its batch. Throws `.noMemory` when they do not fit.
    public func reserve(_ shape: BatchShape) throws {
        try workspace.reserve(shape, threads: Parallel.threads)
        try backwardWorkspace.reserve(shape, config: config)
        // The largest operands the bf16 layers round: d(FFN in) [T, F] and its input [T, D].
        if bf16 { try workspace.bf16Scratch().reserve(shape.tokens * config.intermediateSize, shape.tokens * config.hiddenSize) }
    }

    /// Runs the training forward on `batch` and the backward of the mean cross-entropy against
    /// `labels`, writing d(loss)/d(parameter) into `gradients` (overwritten; a twin of the weights,
    /// e.g. `EncoderWeights.zeros(like:)`). `dropoutSeed` nil = no dropout (eval-mode forward);
    /// otherwise the masks are a function of the seed alone. Returns the loss.
    ///
    /// Gradient accumulation: `accumulate` adds to `gradients` instead of overwriting them, and
    /// `lossScale` weighs this batch's loss (e.g. its share of the examples of a split batch), so
    /// the micro-batches of one batch add up to its gradient. The returned loss is unscaled.
    /// Throws `.invalidArgument` for bad ids, lengths or labels, `.misuse` for mismatched gradients.
    public func lossAndGradients(
        batch: PackedBatch, labels: [Int], gradients: EncoderWeights, dropoutSeed: UInt64?,
        lossScale: Float = 1, accumulate: Bool = false
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
                  batch.tokenTypes.map({ $0[..<mid].elementsEqual($0[mid...]) }) ?? true,
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
        encoder.refreshPackedWeights()
        workspace.dropout = dropoutSeed.map { DropoutPlan(config: c, seed: $0) }
        defer { workspace.dropout = nil }
        try encoder.forward(batch, workspace: workspace)
        let t1 = Clock.now()
        try backwardWorkspace.prepare(for: batch, config: c)
        guard let logits = workspace.logitsBuffer, let dLogits = backwardWorkspace.dLogits else {
            throw SentimentError(.internal, "no logits after the forward")
        }
        let s = batch.count, nl = c.numLabels
        var loss = 0.0
        labels.withUnsafeBufferPointer { y in
            guard let yp = y.baseAddress else { return }
            loss = crossEntropyForward(logits: logits, labels: yp, rows: s, classes: nl)
            crossEntropyBackward(dlogits: dLogits, logits: logits, labels: yp, rows: s, classes: nl)
        }
        if rdropAlpha > 0 {
            loss += rdropAlpha / 2 * symmetricKLForward(logits: logits, pairs: s / 2, classes: nl)
            symmetricKLBackward(dlogits: dLogits, logits: logits, pairs: s / 2, classes: nl, scale: rdropAlpha / 2)
        }
        if lossScale != 1 {
            let p = dLogits
            for i in 0..<(s * nl) { p[i] *= lossScale }
        }
        if !accumulate { zero(gradients) }
        try encoder.backward(batch, workspace: workspace, buffers: backwardWorkspace, weights: weights, gradients: gradients)
        lastSeconds = (t1 - t0, Clock.now() - t1)
        return loss
    }

    private func zero(_ g: EncoderWeights) {
        for (_, t) in g.namedTensors {
            let p = t.data
            Parallel.forRanges(t.count, grain: 1 << 18) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
        }
    }
}
