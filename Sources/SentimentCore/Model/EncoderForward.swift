// The encoder forward pass over packed batches (BERT and DistilBERT, post-LN blocks).
//
// Glossary: T = total tokens of the batch, S = sequences, D = hidden size, F = FFN size,
// H = heads, hd = D / H, L_s = length of sequence s, NL = number of labels.
//
// A batch is a list of token-id sequences, each already `[CLS] ... [SEP]`. All tokens are
// packed into one [T, D] matrix (`PackedBatch`): every linear layer is one GEMM over real tokens
// only, and attention runs per (sequence, head) over that sequence's rows. This is exactly what
// HF computes with an attention mask (masked keys get weight exp(-huge) = 0), so a sentence's
// logits do not depend on what it is batched with. Token types are the batch's (0 everywhere
// unless it carries them; BERT only); positions restart at 0 for every sequence.
//
//   embeddings -> NL x block (TransformerBlock.swift) -> [CLS] row
//   -> head: DistilBERT pre_classifier -> ReLU -> classifier
//            BERT pooler dense -> tanh -> classifier
//
// Inference computes the last block for the [CLS] rows only (`BlockRows.cls`). Training mode
// (`ForwardWorkspace.Mode.training`) keeps every activation backward needs, and applies dropout
// where Hugging Face does when the workspace carries a `DropoutPlan` (set by `GradientStep`).

/// Output of `EncoderForward.run`.
public struct ForwardOutput: Sendable {
    /// [S][NL] classifier logits.
    public var logits: [[Float]]
    /// [S][D] final hidden state of each [CLS] token (when requested).
    public var clsHidden: [[Float]]?
}

/// The encoder forward pass. Immutable after init and safe to share across threads: all
/// per-call state lives in a `ForwardWorkspace`.
public final class EncoderForward: @unchecked Sendable {
    public let config: EncoderConfig
    public let packing: WeightPacking
    /// Parameters of the model (the float weights' element count).
    public let parameterCount: Int
    let embeddings: EmbeddingWeights
    let head: HeadWeights
    /// `.none`: the weights, read on every call. Packed: nil (the encoder keeps `packed`, not the
    /// float linear weights).
    private let source: EncoderWeights?
    let packed: PackedWeights
    var layers: [PackedLayer] { packed.layers }
    /// The int8 weights when `packing` is `.int8`.
    public let quantized: QuantizedEncoderWeights?

    /// Checks the config (throws `.format`) and the weight shapes (`EncoderWeights.checkShapes`,
    /// `.invalidArgument`), and packs the weights (see `WeightPacking`).
    public init(weights: EncoderWeights, packing: WeightPacking = .transposed) throws {
        let c = weights.config
        let d = c.hiddenSize, f = c.intermediateSize
        guard c.numHeads > 0, d > 0, f > 0, d % c.numHeads == 0 else {
            throw SentimentError.format("hidden size \(d) is not a positive multiple of the \(c.numHeads) attention heads")
        }
        guard c.numLayers >= 1 else { throw SentimentError.format("the model has no layers") }
        guard c.numLabels > 0 else { throw SentimentError.format("the model has no labels") }
        guard c.vocabSize > 0, c.maxPositions > 0 else {
            throw SentimentError.format("vocabulary size and max positions must be positive")
        }
        try weights.checkShapes()
        let isa = try ISA.active()
        if case .bf16 = packing, !isa.hasBF16 {
            throw SentimentError.invalidArgument(
                "bf16 needs a CPU with AVX512-BF16 or AMX; this one runs \(isa.name)\(ISA.capNote)", field: "precision")
        }
        if case .int8(let qw) = packing {
            guard qw.layers.count == weights.layers.count, qw.hiddenSize == d else {
                throw SentimentError(.internal, "the int8 weights were made for a model of a different shape")
            }
            quantized = qw
        } else {
            quantized = nil
        }
        config = c
        self.packing = packing
        parameterCount = weights.parameterCount
        embeddings = weights.embeddings
        head = weights.head
        switch packing {
        case .none, .bf16(training: true): source = weights
        default: source = nil
        }
        packed = try PackedWeights(weights, packing: packing)
    }

    /// The master weights changed (`.bf16(training: true)`, after each optimizer step): their bf16
    /// copies are rounded again on next use. Nothing for other packings.
    public func refreshPackedWeights() {
        if case .bf16(training: true) = packing { packed.refresh() }
    }

    /// The float weights this encoder computes with, in Hugging Face layout. `.none` and bf16
    /// training: the `EncoderWeights` it was made from (the master weights). Packed: a new `EncoderWeights` whose linear weights are
    /// rebuilt from the encoder's copies (`.transposed`: transposed back, bit for bit; `.int8`:
    /// dequantized, q * scale) and whose other tensors are the encoder's own (do not modify them).
    public func floatWeights() throws -> EncoderWeights {
        if let source { return source }
        return EncoderWeights(config: config, embeddings: embeddings, layers: try packed.floatLayers(), head: head)
    }

    /// Throws `.invalidArgument` unless every id is in 0..<vocabSize, every length in 1...maxPositions,
    /// and (BERT) every token type in 0..<typeVocabSize.
    public func validate(_ batch: PackedBatch) throws {
        let vocab = config.vocabSize, maxLen = config.maxPositions
        for s in 0..<batch.count {
            let len = batch.length(of: s)
            guard len >= 1, len <= maxLen else {
                throw SentimentError.invalidArgument(
                    "sequence \(s) has \(len) tokens; the model accepts 1...\(maxLen)", field: "input_ids")
            }
        }
        for (i, t) in batch.tokenIds.enumerated() where t < 0 || Int(t) >= vocab {
            let s = (batch.offsets.lastIndex(where: { $0 <= i }) ?? 0)
            throw SentimentError.invalidArgument(
                "sequence \(s), token \(i - batch.offsets[s]): id \(t) is outside the vocabulary 0..<\(vocab)",
                field: "input_ids")
        }
        if let types = batch.tokenTypes, embeddings.tokenType != nil {
            let n = config.typeVocabSize
            for (i, t) in types.enumerated() where t < 0 || Int(t) >= n {
                let s = (batch.offsets.lastIndex(where: { $0 <= i }) ?? 0)
                throw SentimentError.invalidArgument(
                    "sequence \(s), token \(i - batch.offsets[s]): token type \(t) is outside 0..<\(n)",
                    field: "token_type_ids")
            }
        }
    }

    // MARK: Calls

    /// Logits [S][NL] for `batch`. Creates the workspace on first use (inference mode) and reuses it.
    public func logits(_ batch: PackedBatch, workspace: inout ForwardWorkspace?) throws -> [[Float]] {
        try run(batch, workspace: &workspace).logits
    }

    /// Logits with a throwaway workspace.
    public func logits(_ batch: PackedBatch) throws -> [[Float]] {
        var ws: ForwardWorkspace? = nil
        return try logits(batch, workspace: &ws)
    }

    /// Logits and, if `includeCLSHidden`, the final [CLS] hidden states.
    public func run(
        _ batch: PackedBatch, workspace: inout ForwardWorkspace?, includeCLSHidden: Bool = false
    ) throws -> ForwardOutput {
        let ws: ForwardWorkspace
        if let w = workspace, w.fits(config) {
            ws = w
        } else {
            ws = ForwardWorkspace(config: config, mode: .inference)
            workspace = ws
        }
        try forward(batch, workspace: ws)
        return ForwardOutput(logits: ws.logits, clsHidden: includeCLSHidden ? ws.clsHidden : nil)
    }

    /// The forward pass into `ws` (logits, [CLS] states, and in training mode every activation).
    /// Throws `.invalidArgument` for bad ids/lengths and `.misuse` for a workspace of another shape.
    public func forward(_ batch: PackedBatch, workspace ws: ForwardWorkspace) throws {
        // Inference holds the signals once for all its oneDNN calls and parallel regions (two
        // system calls each otherwise); training per call, so that a long step does not delay them.
        if ws.mode == .training {
            try pass(batch, workspace: ws)
        } else {
            try Signals.held { try pass(batch, workspace: ws) }
        }
    }

    private func pass(_ batch: PackedBatch, workspace ws: ForwardWorkspace) throws {
        guard ws.fits(config) else {
            throw SentimentError(.misuse, "the workspace was made for a model of a different shape")
        }
        if quantized != nil && ws.mode == .training {
            throw SentimentError(.misuse, "an int8 encoder runs inference only; train with the float weights")
        }
        if case .bf16(training: false) = packing, ws.mode == .training {
            throw SentimentError(.misuse, "a bf16 inference encoder keeps no master weights; train with .bf16(training: true)")
        }
        try validate(batch)
        try ws.prepare(for: batch, threads: Parallel.threads)
        let t = batch.totalTokens, s = batch.count
        guard s > 0, let cls = ws.cls, let headAct = ws.headAct,
              let logits = ws.logitsBuffer, let first = ws.layers.first
        else { return }
        let d = config.hiddenSize, eps = config.layerNormEps
        let e = embeddings

        // Embeddings.
        batch.tokenIds.withUnsafeBufferPointer { ids in
            batch.positions.withUnsafeBufferPointer { pos in
                batch.withTypes { types in
                    guard let idp = ids.baseAddress, let pp = pos.baseAddress else { return }
                    embeddingForward(
                        out: first.input,
                        sum: ws.embSum, ids: idp, positions: pp, types: types,
                        word: e.word.data, position: e.position.data, tokenType: e.tokenType?.data,
                        normWeight: e.normWeight.data, normBias: e.normBias.data,
                        rows: t, cols: d, eps: eps, mean: ws.embMean, rstd: ws.embRstd)
                }
            }
        }
        let dropout = ws.mode == .training ? ws.dropout : nil
        if let m = dropout?.embeddings { dropoutForward(first.input, rows: t, cols: d, mask: m) }
        if let r = first.inputRounded { convertToBF16(first.input, rows: t, cols: d, ld: d, into: r) }

        // Blocks. The last one's [CLS] rows end in `cls`.
        try ws.offsets.withUnsafeBufferPointer { offs in
            try ws.probOffsets.withUnsafeBufferPointer { probOffs in
                for li in layers.indices {
                    let rows = ws.rows(ofLayer: li)
                    let a = ws.activations(ofLayer: li, rows: rows)
                    try blockForward(li, a, rows: rows, ws: ws, offsets: offs, probOffsets: probOffs,
                                     dropout: dropout?.blocks[li])
                    if li == layers.count - 1 && rows == .all { gatherRows(a.output, offsets: offs, cols: d, into: cls) }
                }
            }
        }

        // Classification head on the [CLS] rows.
        let h = head
        let pre = ws.headPre ?? headAct
        // int8 and bf16: one row per GEMM call, so the float head cannot depend on the batch size either.
        let headRows = packing.isBatchInvariant ? (0..<s).map { ($0, 1) } : [(0, s)]
        for (r0, m) in headRows {
            try sgemm(transB: true, m: m, n: d, k: d, a: cls + r0 * d, lda: d, b: h.dense.data, ldb: d, c: pre + r0 * d, ldc: d)
        }
        addBiasRows(pre, bias: h.denseBias.data, rows: s, cols: d, ld: d)
        if pre != headAct { headAct.update(from: pre, count: s * d) }
        switch config.headKind {
        case .distilbert: biasReluForward(x: headAct, bias: nil, rows: s, cols: d)
        case .bertPooler: biasTanhForward(x: headAct, bias: nil, rows: s, cols: d)
        }
        if let m = dropout?.head { dropoutForward(headAct, rows: s, cols: d, mask: m) }
        let nl = config.numLabels
        for (r0, m) in headRows {
            try sgemm(transB: true, m: m, n: nl, k: d, a: headAct + r0 * d, lda: d, b: h.classifier.data, ldb: d,
                      c: logits + r0 * nl, ldc: nl)
        }
        addBiasRows(logits, bias: h.classifierBias.data, rows: s, cols: nl, ld: nl)
    }
}
