// The transformer block, forward and backward: the one place it is written.
//
//   forward:  Q, K, V -> attention (dropout on P) -> out-proj (+ dropout, BERT) -> + rowInput -> LN
//             -> FFN in -> GELU -> FFN out (+ dropout) -> + attnNorm -> LN
//   backward: the same steps in reverse, from d(output) to d(input) and every weight gradient.
//
// `BlockRows` says which rows the block computes: every token, or the [CLS] row of each sequence
// (the last block: K and V still cover every token, as attention needs them). Dropout masks
// are indexed by token row, so a [CLS] row uses the mask row of its token.

/// The gradient buffers of a block's backward, one role each. [n, D] unless noted, n = the rows
/// the block computes (T or S).
struct BlockGradients {
    var ffnSum: UnsafeMutablePointer<Float>      // d(ffnSum)
    var ffnOut: UnsafeMutablePointer<Float>      // d(FFN out + bias): d(ffnSum) through the FFN-out dropout
    var ffn: UnsafeMutablePointer<Float>         // [n, F] d(GELU output), then (in place) d(FFN in + bias)
    var attnNorm: UnsafeMutablePointer<Float>    // d(attnNorm): d(ffnSum) through the residual + FFN in's
    var rowInput: UnsafeMutablePointer<Float>    // [CLS] rows: d(attnSum) through the residual + Q's
    var attnOut: UnsafeMutablePointer<Float>     // d(out-proj + bias): d(attnSum) through its dropout
    var context: UnsafeMutablePointer<Float>     // d(context)
    var qkv: UnsafeMutablePointer<Float>         // [T, 3D] d(Q | K | V)
    var queries: UnsafeMutablePointer<Float>     // [S, D] [CLS] rows: d(Q)
    var scratch: UnsafeMutablePointer<Float>     // attention backward, per thread
    var scratchPerThread: Int
}

extension EncoderForward {
    /// Block `li` over `rows`, from `a.input` to `a.output`, keeping what `a` has room for
    /// (training: LN statistics, pre-GELU values, attention probabilities).
    func blockForward(
        _ li: Int, _ a: LayerActivations, rows: BlockRows, ws: ForwardWorkspace,
        offsets: UnsafeBufferPointer<Int>, probOffsets: UnsafeBufferPointer<Int>, dropout: BlockDropout?
    ) throws {
        guard let scratch = ws.scratch else { throw SentimentError(.internal, "attention scratch missing") }
        let layer = layers[li]
        let t = ws.tokens, d = config.hiddenSize, eps = config.layerNormEps
        let n = rows == .all ? t : ws.sequences
        let queries: AttentionQueries
        switch rows {
        case .all:
            if let qkv = layer.qkv {
                try apply(ws, qkv, inp: a.input, rows: t, out: a.qkv, ldOut: 3 * d, rounded: a.inputRounded)
            } else {
                try apply(ws, layer.q, inp: a.input, rows: t, out: a.qkv, ldOut: 3 * d)
                try apply(ws, layer.k, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
                try apply(ws, layer.v, inp: a.input, rows: t, out: a.qkv + 2 * d, ldOut: 3 * d)
            }
            queries = .all
        case .cls:
            guard let q = a.queries else { throw SentimentError(.internal, "[CLS] query buffer missing") }
            if let kv = layer.kv {
                try apply(ws, kv, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d, rounded: a.inputRounded)
            } else {
                try apply(ws, layer.k, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
                try apply(ws, layer.v, inp: a.input, rows: t, out: a.qkv + 2 * d, ldOut: 3 * d)
            }
            gatherRows(a.input, offsets: offsets, cols: d, into: a.rowInput)
            try apply(ws, layer.q, inp: a.rowInput, rows: n, out: q, ldOut: d)
            queries = .first(q: q)
        }
        attentionForward(
            out: a.context, qkv: a.qkv, queries: queries, offsets: offsets,
            numHeads: config.numHeads, headDim: config.headDim,
            probs: a.probs, probOffsets: a.probs == nil ? nil : probOffsets, dropout: dropout?.attention,
            scratch: scratch, scratchPerThread: ws.scratchPerThread)
        // Dropout acts on dense(x) + bias, so with a mask the bias goes in before it.
        let attnOutDrop = dropout?.attentionOutput
        if let r = a.contextRounded, layer.attnOut.isBF16 { convertToBF16(a.context, rows: n, cols: d, ld: d, into: r) }
        try apply(ws, layer.attnOut, inp: a.context, rows: n, out: a.attnSum, ldOut: d, bias: attnOutDrop != nil,
                  rounded: a.contextRounded)
        if let m = attnOutDrop { blockDropout(a.attnSum, rows: rows, count: n, offsets: offsets, mask: m) }
        residualLayerNormForward(
            x: a.attnSum, linearBias: attnOutDrop == nil ? layer.attnOut.bias : nil, residual: a.rowInput,
            out: a.attnNorm, weight: layer.attnNormWeight, bias: layer.attnNormBias, rows: n, cols: d, eps: eps,
            mean: a.attnMean, rstd: a.attnRstd, rounded: a.attnNormRounded)
        let ffnOutDrop = dropout?.ffnOutput
        try feedForward(
            ws, layer, inp: a.attnNorm, inpRounded: a.attnNormRounded, rows: n, act: a.ffnAct, out: a.ffnSum,
            outBias: ffnOutDrop != nil, preActivation: a.ffnPre, rounded: a.ffnRounded)
        if let m = ffnOutDrop { blockDropout(a.ffnSum, rows: rows, count: n, offsets: offsets, mask: m) }
        residualLayerNormForward(
            x: a.ffnSum, linearBias: ffnOutDrop == nil ? layer.ffnOut.bias : nil, residual: a.attnNorm,
            out: a.output, weight: layer.outNormWeight, bias: layer.outNormBias, rows: n, cols: d, eps: eps,
            mean: a.outMean, rstd: a.outRstd, rounded: a.outputRounded)
    }

    /// Backward of `blockForward` from the activations a training forward kept in `a`: writes
    /// `dInput` ([T, D]) from `dOutput` ([n, D]) and adds every weight gradient into `g`.
    /// `w` holds the float weights the forward read (`.none`), or the master weights of its bf16
    /// copies in `layer` (`.bf16(training: true)`), which the backward then multiplies by.
    func blockBackward(
        _ a: LayerActivations, rows: BlockRows, layer: PackedLayer, weights w: LayerWeights, gradients g: LayerWeights,
        dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, buffers b: BlockGradients,
        tokens t: Int, offsets: UnsafeBufferPointer<Int>, probOffsets: UnsafeBufferPointer<Int>, dropout: BlockDropout?,
        ws: ForwardWorkspace
    ) throws {
        guard let outMean = a.outMean, let outRstd = a.outRstd, let attnMean = a.attnMean, let attnRstd = a.attnRstd,
              let ffnPre = a.ffnPre, let probs = a.probs
        else { throw SentimentError(.internal, "training activations missing") }
        let d = config.hiddenSize, f = config.intermediateSize
        let n = rows == .all ? t : offsets.count - 1
        // For all rows, the rows' input is the layer input: its gradient goes straight to dInput.
        let dRowInput = rows == .all ? dInput : b.rowInput
        // A linear layer's backward in the precision its forward ran in; `lin` is the packed form
        // of the weights `wts` (one, or several stacked: bf16 Q | K | V and K | V).
        func linear(
            _ wts: [LayerTensor], _ lin: Linear?, dinp: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
            inp: UnsafePointer<Float>, m: Int, k: Int, n: Int, ldDout: Int? = nil, accumulateInput: Bool = false,
            rounded: UnsafePointer<UInt16>? = nil, roundedDout: UnsafePointer<UInt16>? = nil
        ) throws {
            let grads = try wts.map { wt in
                guard let bt = wt.bias else { throw SentimentError(.internal, "\(wt) is not a linear weight") }
                return (weight: g[wt].data, bias: Optional(g[bt].data))
            }
            if case .bf16(let bw)? = lin?.weight {
                try bf16LinearBackward(
                    dinp: dinp, grads: grads, dout: dout, inp: inp, weight: bw, m: m, k: k, n: n,
                    ldDout: ldDout, accumulateInput: accumulateInput, rounded: rounded, roundedDout: roundedDout,
                    scratch: try ws.bf16Scratch())
            } else {
                guard wts.count == 1 else { throw SentimentError(.internal, "stacked float weights have no backward") }
                try linearBackward(
                    dinp: dinp, dweight: grads[0].weight, dbias: grads[0].bias, dout: dout, inp: inp, weight: w[wts[0]].data,
                    m: m, k: k, n: n, ldDout: ldDout, accumulateInput: accumulateInput)
            }
        }
        func linear(
            _ wt: LayerTensor, dinp: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
            m: Int, k: Int, n: Int, ldDout: Int? = nil, accumulateInput: Bool = false, rounded: UnsafePointer<UInt16>? = nil,
            roundedDout: UnsafePointer<UInt16>? = nil
        ) throws {
            try linear([wt], layer.linear(wt), dinp: dinp, dout: dout, inp: inp, m: m, k: k, n: n, ldDout: ldDout,
                       accumulateInput: accumulateInput, rounded: rounded, roundedDout: roundedDout)
        }

        // Output LayerNorm, FFN out (through its dropout), GELU, FFN in.
        layerNormBackward(
            dinp: b.ffnSum, dweight: g[.outputNormWeight].data, dbias: g[.outputNormBias].data, dout: dOutput,
            inp: a.ffnSum, mean: outMean, rstd: outRstd, weight: w[.outputNormWeight].data, rows: n, cols: d)
        var dFfnOut = UnsafePointer(b.ffnSum)
        if let m = dropout?.ffnOutput {
            b.ffnOut.update(from: b.ffnSum, count: n * d)
            blockDropoutBackward(b.ffnOut, rows: rows, count: n, offsets: offsets, mask: m)
            dFfnOut = UnsafePointer(b.ffnOut)
        }
        try linear(.ffnOut, dinp: b.ffn, dout: dFfnOut, inp: a.ffnAct, m: n, k: f, n: d, rounded: a.ffnRounded.map { UnsafePointer($0) })
        // bf16: GELU's backward also rounds d(FFN in) for FFN in's backward (into the bf16
        // scratch's first buffer, which bf16LinearBackward leaves alone when given it).
        var dFfnRounded: UnsafeMutablePointer<UInt16>? = nil
        if layer.ffnIn.isBF16 {
            let sc = try ws.bf16Scratch()
            try sc.reserve(n * f)
            dFfnRounded = sc.first.pointer
        }
        geluBackward(dinp: b.ffn, dout: b.ffn, preActivation: ffnPre, rows: n, cols: f, rounded: dFfnRounded)
        b.attnNorm.update(from: b.ffnSum, count: n * d)
        try linear(.ffnIn, dinp: b.attnNorm, dout: b.ffn, inp: a.attnNorm, m: n, k: d, n: f, accumulateInput: true,
                   rounded: a.attnNormRounded.map { UnsafePointer($0) }, roundedDout: dFfnRounded.map { UnsafePointer($0) })

        // Attention LayerNorm (d(attnSum) is d(rowInput) through the residual), out-projection
        // (through its dropout), attention.
        layerNormBackward(
            dinp: dRowInput, dweight: g[.attentionNormWeight].data, dbias: g[.attentionNormBias].data,
            dout: b.attnNorm, inp: a.attnSum, mean: attnMean, rstd: attnRstd, weight: w[.attentionNormWeight].data,
            rows: n, cols: d)
        var dAttnOut = UnsafePointer(dRowInput)
        if let m = dropout?.attentionOutput {
            b.attnOut.update(from: dRowInput, count: n * d)
            blockDropoutBackward(b.attnOut, rows: rows, count: n, offsets: offsets, mask: m)
            dAttnOut = UnsafePointer(b.attnOut)
        }
        try linear(.attentionOut, dinp: b.context, dout: dAttnOut, inp: a.context, m: n, k: d, n: d,
                   rounded: a.contextRounded.map { UnsafePointer($0) })

        // Q, K, V projections: their input gradients add into dInput (and, for the [CLS] rows,
        // Q's into dRowInput, which then adds into its tokens' rows).
        switch rows {
        case .all:
            attentionBackward(
                dqkv: b.qkv, dout: b.context, qkv: a.qkv, probs: probs, probOffsets: probOffsets, offsets: offsets,
                numHeads: config.numHeads, headDim: config.headDim, dropout: dropout?.attention,
                scratch: b.scratch, scratchPerThread: b.scratchPerThread)
            if let qkv = layer.qkv, qkv.isBF16 {   // bf16 training's stacked Q | K | V
                try linear([.query, .key, .value], qkv, dinp: dInput, dout: b.qkv, inp: a.input, m: t, k: d, n: 3 * d,
                           accumulateInput: true, rounded: a.inputRounded.map { UnsafePointer($0) })
            } else {
                for (slot, wt) in [LayerTensor.query, .key, .value].enumerated() {
                    try linear(wt, dinp: dInput, dout: b.qkv + slot * d, inp: a.input, m: t, k: d, n: d, ldDout: 3 * d,
                               accumulateInput: true)
                }
            }
        case .cls:
            guard let q = a.queries else { throw SentimentError(.internal, "[CLS] query buffer missing") }
            attentionBackward(
                dqkv: b.qkv, dout: b.context, qkv: a.qkv, queries: .first(q: q), dqFirst: b.queries,
                probs: probs, probOffsets: probOffsets, offsets: offsets,
                numHeads: config.numHeads, headDim: config.headDim, dropout: dropout?.attention,
                scratch: b.scratch, scratchPerThread: b.scratchPerThread)
            try linear(.query, dinp: dRowInput, dout: b.queries, inp: a.rowInput, m: n, k: d, n: d, accumulateInput: true)
            if let kv = layer.kv, kv.isBF16 {
                try linear([.key, .value], kv, dinp: dInput, dout: b.qkv + d, inp: a.input, m: t, k: d, n: 2 * d,
                           ldDout: 3 * d, rounded: a.inputRounded.map { UnsafePointer($0) })
            } else {
                try linear(.key, dinp: dInput, dout: b.qkv + d, inp: a.input, m: t, k: d, n: d, ldDout: 3 * d)
                try linear(.value, dinp: dInput, dout: b.qkv + 2 * d, inp: a.input, m: t, k: d, n: d, ldDout: 3 * d,
                           accumulateInput: true)
            }
            for i in 0..<n { axpy(dInput + offsets[i] * d, 1, dRowInput + i * d, d) }
        }
    }

    /// Dropout on `count` rows of a block: token rows 0..<count, or the [CLS] rows (mask rows offsets[i]).
    private func blockDropout(
        _ x: UnsafeMutablePointer<Float>, rows: BlockRows, count: Int, offsets: UnsafeBufferPointer<Int>, mask: DropoutMask
    ) {
        switch rows {
        case .all: dropoutForward(x, rows: count, cols: config.hiddenSize, mask: mask)
        case .cls: dropoutForward(x, rowIds: UnsafeBufferPointer(rebasing: offsets[0..<count]), cols: config.hiddenSize, mask: mask)
        }
    }

    /// The gradient through `blockDropout` (in place).
    private func blockDropoutBackward(
        _ dx: UnsafeMutablePointer<Float>, rows: BlockRows, count: Int, offsets: UnsafeBufferPointer<Int>, mask: DropoutMask
    ) {
        switch rows {
        case .all: dropoutBackward(dx, rows: count, cols: config.hiddenSize, mask: mask)
        case .cls: dropoutBackward(dx, rowIds: UnsafeBufferPointer(rebasing: offsets[0..<count]), cols: config.hiddenSize, mask: mask)
        }
    }

    /// out[rows, D] = FFN out(GELU(FFN in(inp) + bias)) (+ FFN out's bias if `outBias`); the GELU
    /// output goes to `act` ([rows, F]) and, if given, its input to `preActivation`, and rounded
    /// to bf16 into `rounded` if given (which FFN out then reads). In int8 the GELU is fused into
    /// FFN in's dequantization, which also quantizes each row for FFN out.
    private func feedForward(
        _ ws: ForwardWorkspace, _ layer: PackedLayer, inp: UnsafePointer<Float>, inpRounded: UnsafeMutablePointer<UInt16>? = nil,
        rows: Int, act: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>, outBias: Bool, preActivation: UnsafeMutablePointer<Float>? = nil,
        rounded: UnsafeMutablePointer<UInt16>? = nil
    ) throws {
        let d = config.hiddenSize, f = config.intermediateSize
        if case .int8(let qIn) = layer.ffnIn.weight, case .int8(let qOut) = layer.ffnOut.weight, preActivation == nil {
            let scratch = try ws.int8Scratch()
            try scratch.reserve(rows: rows, k: Swift.max(d, f), n: Swift.max(d, f),
                                outliers: Swift.max(qIn.outliers?.count ?? 0, qOut.outliers?.count ?? 0))
            quantizeRows(inp, rows: rows, for: qIn, ldInp: d, scratch: scratch)
            try int8LinearQuantized(qIn, rows: rows, out: act, ldOut: f, addBias: true, epilogue: .gelu, requantizeFor: qOut,
                                    scratch: scratch)
            try int8LinearQuantized(qOut, rows: rows, out: out, ldOut: d, addBias: outBias, scratch: scratch)
            return
        }
        if case .bf16(let w) = layer.ffnIn.weight, preActivation == nil {
            // Bias and GELU run as the matmul's post-ops.
            try bf16LinearForward(w, inp: inp, rows: rows, ldInp: d, out: act, ldOut: f, bias: layer.ffnIn.bias, gelu: true,
                                  scratch: try ws.bf16Scratch())
        } else {
            try apply(ws, layer.ffnIn, inp: inp, rows: rows, out: act, ldOut: f, bias: false, rounded: inpRounded)
            biasGeluForward(x: act, bias: layer.ffnIn.bias, rows: rows, cols: f, preActivation: preActivation,
                            rounded: preActivation != nil && layer.ffnOut.isBF16 ? rounded : nil)
        }
        if let rounded, case .bf16(let w) = layer.ffnOut.weight {
            if preActivation == nil { convertToBF16(act, rows: rows, cols: f, ld: f, into: rounded) }
            try bf16LinearForward(w, inp: act, rows: rows, ldInp: f, out: out, ldOut: d, bias: outBias ? layer.ffnOut.bias : nil,
                                  rounded: rounded, scratch: try ws.bf16Scratch())
            return
        }
        try apply(ws, layer.ffnOut, inp: act, rows: rows, out: out, ldOut: d, bias: outBias)
    }

    /// out[rows, n] (row stride ldOut) = inp[rows, k] * W^T (+ bias). `rounded`: inp in bf16
    /// (dense), which a bf16 layer then reads instead.
    @inline(__always)
    private func apply(
        _ ws: ForwardWorkspace, _ lin: Linear, inp: UnsafePointer<Float>, rows: Int, out: UnsafeMutablePointer<Float>,
        ldOut: Int, bias: Bool = true, rounded: UnsafeMutablePointer<UInt16>? = nil
    ) throws {
        switch lin.weight {
        case .int8(let q):
            try int8Linear(q, inp: inp, rows: rows, out: out, ldOut: ldOut, addBias: bias, scratch: try ws.int8Scratch())
        case .bf16(let w):
            try bf16LinearForward(w, inp: inp, rows: rows, ldInp: lin.k, out: out, ldOut: ldOut, bias: bias ? lin.bias : nil,
                                  rounded: rounded.map { UnsafePointer($0) }, scratch: try ws.bf16Scratch())
        case .float(let w, let layout, let ld):
            try linearForward(
                out: out, inp: inp, weight: w, layout: layout, bias: bias ? lin.bias : nil,
                m: rows, k: lin.k, n: lin.n, ldOut: ldOut, ldWeight: ld)
        }
    }
}
