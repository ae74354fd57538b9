// The buffers of a forward pass: activations per layer, the [CLS] rows, the head, scratch.

/// Pointers to one block's activations inside a `ForwardWorkspace`.
/// In inference mode every layer shares one set of buffers (and several roles alias);
/// in training mode each layer owns its buffers, which backward reads.
/// A block computing the [CLS] rows only (`BlockRows.cls`) reads `input` and writes `qkv` (K and V)
/// for every token, and holds S rows in every buffer from `rowInput` on.
struct LayerActivations {
    var input: UnsafeMutablePointer<Float>          // [T, D]  layer input (previous output)
    var inputRounded: UnsafeMutablePointer<UInt16>? // [T, D]  input in bf16: what Q|K|V and their backward read
                                                    //         (bf16 training, `ForwardWorkspace.keepsBF16Inputs`)
    var qkv: UnsafeMutablePointer<Float>            // [T, 3D] Q | K | V, bias included
    var probs: UnsafeMutablePointer<Float>?         // [sum_s H L_s^2] attention probabilities (training)
    var rowInput: UnsafeMutablePointer<Float>       // [n, D]  input of the rows computed (`input` for all rows)
    var queries: UnsafeMutablePointer<Float>?       // [S, D]  Q of the [CLS] rows (nil for all rows: Q is in qkv)
    var context: UnsafeMutablePointer<Float>        // [n, D]  attention output, heads concatenated
    var contextRounded: UnsafeMutablePointer<UInt16>? // [n, D] context in bf16 (out-proj and its backward; bf16 training)
    var attnSum: UnsafeMutablePointer<Float>        // [n, D]  out-proj + bias + rowInput (pre-LN)
    var attnMean: UnsafeMutablePointer<Float>?      // [n]
    var attnRstd: UnsafeMutablePointer<Float>?      // [n]
    var attnNorm: UnsafeMutablePointer<Float>       // [n, D]  LN(attnSum): FFN input and residual
    var attnNormRounded: UnsafeMutablePointer<UInt16>? // [n, D] attnNorm in bf16 (FFN in and its backward; bf16 training)
    var ffnPre: UnsafeMutablePointer<Float>?        // [n, F]  FFN in + bias, pre-GELU (training)
    var ffnAct: UnsafeMutablePointer<Float>         // [n, F]  GELU output (shared by every layer when rounded)
    var ffnRounded: UnsafeMutablePointer<UInt16>?   // [n, F]  GELU output in bf16 (FFN out and its backward; bf16 training)
    var ffnSum: UnsafeMutablePointer<Float>         // [n, D]  FFN out + bias + attnNorm (pre-LN)
    var outMean: UnsafeMutablePointer<Float>?       // [n]
    var outRstd: UnsafeMutablePointer<Float>?       // [n]
    var output: UnsafeMutablePointer<Float>         // [n, D]  LN(ffnSum)
    var outputRounded: UnsafeMutablePointer<UInt16>? // [n, D] output in bf16: the next layer's `inputRounded`
}

/// Which rows a transformer block computes.
enum BlockRows {
    /// Every token.
    case all
    /// The [CLS] (first) row of each sequence; K and V still cover every token. Nothing else of
    /// the last layer reaches the head, so this removes ~1/7 of a 6-layer model's work.
    case cls
}

/// Reusable buffers for `EncoderForward`: create one per thread (or per call) and pass it to
/// every call, so repeated calls do not allocate. Buffers grow to the largest batch seen.
/// Not thread-safe: one call at a time per workspace. The model itself never holds one.
public final class ForwardWorkspace {
    public enum Mode: Sendable, Equatable {
        /// Keeps nothing beyond what the next step needs; last layer on [CLS] rows only.
        case inference
        /// Keeps every activation the backward pass needs (per-layer buffers, LN statistics,
        /// pre-GELU values, attention probabilities, head pre-activations).
        case training
    }

    public let mode: Mode
    let d: Int, f: Int, numLayers: Int, numHeads: Int, headDim: Int, numLabels: Int

    /// Sizes of the batch of the last `prepare` (T, S).
    public private(set) var tokens = 0
    public private(set) var sequences = 0
    /// Row offsets of the current batch ([S + 1]) and, in training mode, where each sequence's
    /// attention probabilities start inside `LayerActivations.probs` ([S + 1]; per head H blocks of L_s^2).
    private(set) var offsets: [Int] = [0]
    private(set) var probOffsets: [Int] = [0]

    // Capacities of the current allocation.
    private var tokenCap = 0, seqCap = 0, probCap = 0, scratchCap = 0
    private var store: [Tensor] = []

    // Activations (valid after a forward).
    var embSum: UnsafeMutablePointer<Float>? = nil     // [T, D] pre-LN embedding sum (training)
    var embMean: UnsafeMutablePointer<Float>? = nil    // [T] (training)
    var embRstd: UnsafeMutablePointer<Float>? = nil    // [T] (training)
    var layers: [LayerActivations] = []
    var cls: UnsafeMutablePointer<Float>? = nil        // [S, D] final hidden state of each [CLS]
    var clsInput: UnsafeMutablePointer<Float>? = nil   // [S, D] last layer's [CLS] input rows
    var clsQ: UnsafeMutablePointer<Float>? = nil       // [S, D] last layer's [CLS] queries
    var clsContext: UnsafeMutablePointer<Float>? = nil // [S, D] inference last layer
    var clsTmp: UnsafeMutablePointer<Float>? = nil     // [S, D] inference last layer: pre-LN sums
    var clsFfn: UnsafeMutablePointer<Float>? = nil     // [S, F] inference last layer
    var headPre: UnsafeMutablePointer<Float>? = nil    // [S, D] head dense + bias (training)
    var headAct: UnsafeMutablePointer<Float>? = nil    // [S, D] after ReLU / tanh
    var logitsBuffer: UnsafeMutablePointer<Float>? = nil // [S, NL]
    var scratch: UnsafeMutablePointer<Float>? = nil    // attention scratch, per thread
    private(set) var scratchPerThread = 0
    /// Dropout masks for the next training forward (nil: no dropout). Ignored in inference mode.
    var dropout: DropoutPlan? = nil
    /// Training mode: compute the last layer for the [CLS] rows only (`BlockRows.cls`), as
    /// inference always does. Set by `GradientStep`, whose backward knows this layout.
    var sparseLastLayer = false
    /// bf16 training: keep the inputs of the linear layers rounded to bf16 where a pass already
    /// writes them (LayerNorm and GELU outputs: `inputRounded`, `attnNormRounded`, `ffnRounded`)
    /// or rounds them (`contextRounded`), so the backward does not round them again; the GELU
    /// output only in bf16.
    /// Set by `GradientStep` before the first call.
    var keepsBF16Inputs = false
    private var roundedStore: [AlignedBuffer<UInt16>] = []
    /// Buffers of the int8 path (made on first int8 use).
    private var int8Buffers: Int8Scratch? = nil

    func int8Scratch() throws -> Int8Scratch {
        if let b = int8Buffers { return b }
        let b = try Int8Scratch()
        int8Buffers = b
        return b
    }

    /// Buffers and matmul primitives of the bf16 path (made on first bf16 use; the backward
    /// shares them).
    private var bf16Buffers: BF16Scratch? = nil

    func bf16Scratch() throws -> BF16Scratch {
        if let b = bf16Buffers { return b }
        let b = try BF16Scratch()
        bf16Buffers = b
        return b
    }

    public init(config: EncoderConfig, mode: Mode = .inference) {
        self.mode = mode
        d = config.hiddenSize
        f = config.intermediateSize
        numLayers = config.numLayers
        numHeads = config.numHeads
        headDim = config.numHeads > 0 ? config.hiddenSize / config.numHeads : 0
        numLabels = config.numLabels
    }

    func fits(_ c: EncoderConfig) -> Bool {
        c.hiddenSize == d && c.intermediateSize == f && c.numLayers == numLayers
            && c.numHeads == numHeads && c.numLabels == numLabels
    }

    /// Which rows layer `li` computes in this mode.
    func rows(ofLayer li: Int) -> BlockRows {
        li == numLayers - 1 && (mode == .inference || sparseLastLayer) ? .cls : .all
    }

    /// The activations of layer `li` as a block computing `rows` sees them. For the [CLS] rows,
    /// the input rows are gathered into `clsInput` (training) or `cls` (inference, where the
    /// LayerNorms then update `cls` in place), and the output is `cls`.
    func activations(ofLayer li: Int, rows: BlockRows) -> LayerActivations {
        var a = layers[li]
        guard rows == .cls, let cls, let clsQ else { return a }
        a.queries = clsQ
        a.output = cls
        switch mode {
        case .training:
            if let clsInput { a.rowInput = clsInput }
        case .inference:
            guard let clsContext, let clsTmp, let clsFfn else { return a }
            a.rowInput = cls; a.context = clsContext; a.attnSum = clsTmp; a.attnNorm = cls
            a.ffnAct = clsFfn; a.ffnSum = clsTmp
        }
        return a
    }

    /// Logits of the last forward, [S][NL].
    public var logits: [[Float]] {
        guard let p = logitsBuffer else { return [] }
        return (0..<sequences).map { s in Array(UnsafeBufferPointer(start: p + s * numLabels, count: numLabels)) }
    }

    /// Final hidden state of every [CLS] token of the last forward, [S][D].
    public var clsHidden: [[Float]] {
        guard let p = cls else { return [] }
        return (0..<sequences).map { s in Array(UnsafeBufferPointer(start: p + s * d, count: d)) }
    }

    /// Sizes the buffers for `batch` (reallocating only when it grows past the capacity, then
    /// with 25% to spare).
    func prepare(for batch: PackedBatch, threads: Int) throws {
        let s = batch.count
        var po = [0]
        if mode == .training {
            po.reserveCapacity(s + 1)
            var acc = 0
            for i in 0..<s {
                let l = batch.length(of: i)
                acc += numHeads * l * l
                po.append(acc)
            }
        }
        try reserve(batch.shape, threads: threads, headroom: true)
        tokens = batch.totalTokens
        sequences = s
        offsets = batch.offsets
        probOffsets = po
        scratchPerThread = attentionScratchPerThread(maxLength: batch.maxLength, headDim: headDim)
    }

    /// Grows the buffers to hold a batch of `shape` (`headroom`: 25% more of whatever must grow).
    func reserve(_ shape: BatchShape, threads: Int, headroom: Bool = false) throws {
        let t = shape.tokens, s = shape.sequences
        let probs = mode == .training ? numHeads * shape.squaredLengths : 0
        let scratchNeed = Swift.max(1, threads) * attentionScratchPerThread(maxLength: shape.maxLength, headDim: headDim)
        guard t > tokenCap || s > seqCap || probs > probCap || scratchNeed > scratchCap else { return }
        func grown(_ need: Int, _ cap: Int) -> Int { Swift.max(need, headroom ? cap + cap / 4 : cap) }
        try allocate(
            tokens: grown(t, tokenCap), seqs: grown(s, seqCap), probs: grown(probs, probCap),
            scratch: Swift.max(scratchNeed, scratchCap))
    }

    private func allocate(tokens t: Int, seqs s: Int, probs: Int, scratch sc: Int) throws {
        store.removeAll()   // free the old buffers first
        roundedStore.removeAll()
        layers.removeAll()
        func make(_ n: Int) throws -> UnsafeMutablePointer<Float> {
            let x = try Tensor(shape: [Swift.max(n, 1)])
            store.append(x)
            return x.data
        }
        switch mode {
        case .inference:
            let hidden = try make(t * d), qkv = try make(t * 3 * d), ctx = try make(t * d)
            let tmp = try make(t * d), ffn = try make(t * f)
            let a = LayerActivations(
                input: hidden, inputRounded: nil, qkv: qkv, probs: nil, rowInput: hidden, queries: nil, context: ctx,
                contextRounded: nil, attnSum: tmp, attnMean: nil, attnRstd: nil, attnNorm: hidden, attnNormRounded: nil, ffnPre: nil,
                ffnAct: ffn, ffnRounded: nil, ffnSum: tmp, outMean: nil, outRstd: nil, output: hidden, outputRounded: nil)
            layers = Array(repeating: a, count: numLayers)
            embSum = nil; embMean = nil; embRstd = nil
            clsQ = try make(s * d); clsContext = try make(s * d); clsTmp = try make(s * d); clsFfn = try make(s * f)
            clsInput = nil; headPre = nil
        case .training:
            embSum = try make(t * d); embMean = try make(t); embRstd = try make(t)
            var input = try make(t * d)
            let sharedFFN = keepsBF16Inputs ? try make(t * f) : nil
            func rounded(_ n: Int) throws -> UnsafeMutablePointer<UInt16>? {
                guard keepsBF16Inputs else { return nil }
                let r = try AlignedBuffer<UInt16>(count: n)
                roundedStore.append(r)
                return r.pointer
            }
            var inputRounded = try rounded(t * d)
            for li in 0..<numLayers {
                let output = try make(t * d)
                let outputRounded = li + 1 < numLayers ? try rounded(t * d) : nil
                layers.append(LayerActivations(
                    input: input, inputRounded: inputRounded, qkv: try make(t * 3 * d), probs: try make(probs),
                    rowInput: input, queries: nil, context: try make(t * d), contextRounded: try rounded(t * d),
                    attnSum: try make(t * d),
                    attnMean: try make(t), attnRstd: try make(t), attnNorm: try make(t * d),
                    attnNormRounded: try rounded(t * d), ffnPre: try make(t * f), ffnAct: try sharedFFN ?? make(t * f),
                    ffnRounded: try rounded(t * f), ffnSum: try make(t * d), outMean: try make(t), outRstd: try make(t),
                    output: output, outputRounded: outputRounded))
                input = output
                inputRounded = outputRounded
            }
            clsQ = try make(s * d); clsInput = try make(s * d); clsContext = nil; clsTmp = nil; clsFfn = nil
            headPre = try make(s * d)
        }
        cls = try make(s * d)
        headAct = try make(s * d)
        logitsBuffer = try make(s * numLabels)
        scratch = try make(sc)
        tokenCap = t; seqCap = s; probCap = probs; scratchCap = sc
    }
}

/// into[s, :] = src[offsets[s], :] (the first row of every sequence).
func gatherRows(
    _ src: UnsafePointer<Float>, offsets: UnsafeBufferPointer<Int>, cols: Int, into dst: UnsafeMutablePointer<Float>
) {
    for s in 0..<(offsets.count - 1) {
        (dst + s * cols).update(from: src + offsets[s] * cols, count: cols)
    }
}
