// The encoder forward pass over packed batches (BERT and DistilBERT, post-LN blocks).
//
// Glossary: T = total tokens of the batch, S = sequences, D = hidden size, F = FFN size,
// H = heads, hd = D / H, L_s = length of sequence s, NL = number of labels.
//
// A batch is a list of token-id sequences, each already `[CLS] ... [SEP]`. All tokens are
// packed into one [T, D] matrix: every linear layer is one GEMM over real tokens only, and
// attention runs per (sequence, head) over that sequence's rows. This is exactly what HF
// computes with an attention mask (masked keys get weight exp(-huge) = 0), so a sentence's
// logits do not depend on what it is batched with. Token type is 0 everywhere; positions
// restart at 0 for every sequence.
//
//   embeddings -> NL x [ QKV -> attention -> out-proj (+res, LN) -> FFN in -> GELU -> FFN out (+res, LN) ]
//   -> [CLS] row -> head: DistilBERT pre_classifier -> ReLU -> classifier
//                          BERT pooler dense -> tanh -> classifier
//
// Inference computes the last layer for the [CLS] rows only (K and V still over all tokens):
// nothing else of that layer reaches the logits, and it removes ~14% of the work for 6 layers.
// `ForwardWorkspace.Mode.training` keeps every activation backward needs instead, and applies
// dropout where Hugging Face does when the workspace carries masks (`EncoderDropout`, set by
// `EncoderTrainer`; see EncoderBackward.swift).
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Packed batch

/// Token-id sequences packed back to back, with per-sequence offsets.
public struct PackedBatch: Sendable {
    /// [T] token ids, sequence after sequence.
    public let tokenIds: [Int32]
    /// [T] position of each token inside its sequence (0..<L_s).
    public let positions: [Int32]
    /// [S + 1] row offsets: sequence s is rows offsets[s]..<offsets[s+1].
    public let offsets: [Int]
    /// Longest sequence.
    public let maxLength: Int

    /// Number of sequences (S).
    public var count: Int { offsets.count - 1 }
    /// Total tokens (T).
    public var totalTokens: Int { tokenIds.count }
    /// L_s for every sequence.
    public var lengths: [Int] { (0..<count).map { offsets[$0 + 1] - offsets[$0] } }
    public func length(of s: Int) -> Int { offsets[s + 1] - offsets[s] }

    /// Packs `sequences`. Throws `.invalidArgument` for an empty sequence or a negative id
    /// (ids are checked against a model's vocabulary by `EncoderForward`). An empty list is allowed.
    public init(sequences: [[Int32]]) throws {
        var ids: [Int32] = [], pos: [Int32] = [], offs = [0]
        var total = 0, longest = 0
        for s in sequences { total += s.count }
        ids.reserveCapacity(total)
        pos.reserveCapacity(total)
        offs.reserveCapacity(sequences.count + 1)
        for (i, s) in sequences.enumerated() {
            guard !s.isEmpty else {
                throw SentimentError.invalidArgument("sequence \(i) is empty (it needs at least [CLS])", field: "input_ids")
            }
            for (j, t) in s.enumerated() {
                guard t >= 0 else {
                    throw SentimentError.invalidArgument("sequence \(i), token \(j): negative token id \(t)", field: "input_ids")
                }
                ids.append(t)
                pos.append(Int32(truncatingIfNeeded: j))
            }
            offs.append(ids.count)
            longest = Swift.max(longest, s.count)
        }
        tokenIds = ids
        positions = pos
        offsets = offs
        maxLength = longest
    }

    /// Convenience for `Int` ids (throws `.invalidArgument` for ids outside Int32).
    public init(sequences: [[Int]]) throws {
        var converted: [[Int32]] = []
        converted.reserveCapacity(sequences.count)
        for (i, s) in sequences.enumerated() {
            var row: [Int32] = []
            row.reserveCapacity(s.count)
            for (j, t) in s.enumerated() {
                guard let v = Int32(exactly: t) else {
                    throw SentimentError.invalidArgument("sequence \(i), token \(j): token id \(t) is out of range", field: "input_ids")
                }
                row.append(v)
            }
            converted.append(row)
        }
        try self.init(sequences: converted)
    }
}

// MARK: - Workspace

/// Pointers to one layer's activations inside a `ForwardWorkspace`.
/// In inference mode every layer shares one set of buffers (and several roles alias);
/// in training mode each layer owns its buffers, which backward reads.
struct LayerActivations {
    var input: UnsafeMutablePointer<Float>          // [T, D]  layer input (previous output)
    var qkv: UnsafeMutablePointer<Float>            // [T, 3D] Q | K | V, bias included
    var probs: UnsafeMutablePointer<Float>?         // [sum_s H L_s^2] attention probabilities (training)
    var context: UnsafeMutablePointer<Float>        // [T, D]  attention output, heads concatenated
    var attnSum: UnsafeMutablePointer<Float>        // [T, D]  out-proj + bias + input (pre-LN)
    var attnMean: UnsafeMutablePointer<Float>?      // [T]
    var attnRstd: UnsafeMutablePointer<Float>?      // [T]
    var attnNorm: UnsafeMutablePointer<Float>       // [T, D]  LN(attnSum): FFN input and residual
    var ffnPre: UnsafeMutablePointer<Float>?        // [T, F]  FFN in + bias, pre-GELU (training)
    var ffnAct: UnsafeMutablePointer<Float>         // [T, F]  GELU output
    var ffnSum: UnsafeMutablePointer<Float>         // [T, D]  FFN out + bias + attnNorm (pre-LN)
    var outMean: UnsafeMutablePointer<Float>?       // [T]
    var outRstd: UnsafeMutablePointer<Float>?       // [T]
    var output: UnsafeMutablePointer<Float>         // [T, D]  LN(ffnSum)
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
    var clsQ: UnsafeMutablePointer<Float>? = nil       // [S, D] inference last layer: Q of [CLS]
    var clsContext: UnsafeMutablePointer<Float>? = nil // [S, D]
    var clsTmp: UnsafeMutablePointer<Float>? = nil     // [S, D]
    var clsFfn: UnsafeMutablePointer<Float>? = nil     // [S, F]
    var headPre: UnsafeMutablePointer<Float>? = nil    // [S, D] head dense + bias (training)
    var headAct: UnsafeMutablePointer<Float>? = nil    // [S, D] after ReLU / tanh
    var logitsBuffer: UnsafeMutablePointer<Float>? = nil // [S, NL]
    var scratch: UnsafeMutablePointer<Float>? = nil    // attention scratch, per thread
    private(set) var scratchPerThread = 0
    /// Dropout masks for the next training forward (nil: no dropout). Ignored in inference mode.
    var dropout: EncoderDropout? = nil
    /// Training mode: compute the last layer for the [CLS] rows only (K and V still for every
    /// token), as inference does. Its `LayerActivations` then hold S rows (context, sums, norms,
    /// FFN), `clsQ` the [CLS] queries and `clsInput` the layer's [CLS] input rows; `output` is unused.
    /// Set by `EncoderTrainer`, whose backward knows this layout.
    var sparseLastLayer = false
    var clsInput: UnsafeMutablePointer<Float>? = nil   // [S, D] (training, sparse last layer)
    /// Buffers of the int8 path (made on first int8 use).
    private var int8Buffers: Int8Scratch? = nil

    func int8Scratch() throws -> Int8Scratch {
        if let b = int8Buffers { return b }
        let b = try Int8Scratch()
        int8Buffers = b
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

    /// Sizes the buffers for `batch` (reallocating only when it grows past the capacity).
    func prepare(for batch: PackedBatch, threads: Int) throws {
        let t = batch.totalTokens, s = batch.count
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
        let probs = po.last ?? 0
        let perThread = attentionScratchPerThread(maxLength: batch.maxLength, headDim: headDim)
        let scratchNeed = Swift.max(1, threads) * perThread
        if t > tokenCap || s > seqCap || probs > probCap || scratchNeed > scratchCap {
            try allocate(
                tokens: Swift.max(t, tokenCap + tokenCap / 4), seqs: Swift.max(s, seqCap + seqCap / 4),
                probs: Swift.max(probs, probCap + probCap / 4), scratch: Swift.max(scratchNeed, scratchCap))
        }
        tokens = t
        sequences = s
        offsets = batch.offsets
        probOffsets = po
        scratchPerThread = perThread
    }

    private func allocate(tokens t: Int, seqs s: Int, probs: Int, scratch sc: Int) throws {
        store.removeAll()   // free the old buffers first
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
                input: hidden, qkv: qkv, probs: nil, context: ctx, attnSum: tmp, attnMean: nil, attnRstd: nil,
                attnNorm: hidden, ffnPre: nil, ffnAct: ffn, ffnSum: tmp, outMean: nil, outRstd: nil, output: hidden)
            layers = Array(repeating: a, count: numLayers)
            embSum = nil; embMean = nil; embRstd = nil
            clsQ = try make(s * d); clsContext = try make(s * d); clsTmp = try make(s * d); clsFfn = try make(s * f)
            headPre = nil
        case .training:
            embSum = try make(t * d); embMean = try make(t); embRstd = try make(t)
            var input = try make(t * d)
            for _ in 0..<numLayers {
                let output = try make(t * d)
                layers.append(LayerActivations(
                    input: input, qkv: try make(t * 3 * d), probs: try make(probs), context: try make(t * d),
                    attnSum: try make(t * d), attnMean: try make(t), attnRstd: try make(t),
                    attnNorm: try make(t * d), ffnPre: try make(t * f), ffnAct: try make(t * f),
                    ffnSum: try make(t * d), outMean: try make(t), outRstd: try make(t), output: output))
                input = output
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

// MARK: - Encoder

/// Output of `EncoderForward.run`.
public struct ForwardOutput: Sendable {
    /// [S][NL] classifier logits.
    public var logits: [[Float]]
    /// [S][D] final hidden state of each [CLS] token (when requested).
    public var clsHidden: [[Float]]?
}

/// How `EncoderForward` reads the linear weights.
public enum WeightPacking: Sendable {
    /// Copy every encoder linear weight once, transposed to [in, out] with Q|K|V fused (fastest).
    /// The encoder keeps the copies, not the originals (`EncoderForward.floatWeights` rebuilds
    /// them), so a caller that drops its `EncoderWeights` holds one copy. The other tensors of the
    /// `EncoderWeights` are read in place and must not change afterwards.
    case transposed
    /// Read the `EncoderWeights` tensors directly on every call (training: the optimizer updates
    /// them in place between calls).
    case none
    /// Run the linear layers in int8 (inference only; see QuantizedEncoder.swift). Everything else
    /// reads the `EncoderWeights`, which must not change afterwards. The encoder keeps the int8
    /// weights, not the float originals.
    case int8(QuantizedEncoderWeights)
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
    /// `.none`: the weights, read on every call. Packed: nil (the encoder keeps `layerVectors`, not
    /// the float linear weights).
    private let source: EncoderWeights?
    /// Every layer's biases and LayerNorm parameters.
    private let layerVectors: [LayerVectors]

    /// A linear layer as the GEMM sees it.
    struct Linear {
        enum Weight {
            /// Float weights in `layout` with leading dimension `ld`.
            case float(UnsafePointer<Float>, layout: WeightLayout, ld: Int)
            case int8(Int8Linear)
        }
        let weight: Weight
        /// The float bias (an int8 layer adds its own copy; the float FFN path reads this one).
        let bias: UnsafePointer<Float>
        let k: Int, n: Int
    }

    /// A layer's tensors other than its linear weights.
    private struct LayerVectors {
        let queryBias: Tensor, keyBias: Tensor, valueBias: Tensor, attentionOutBias: Tensor
        let attentionNormWeight: Tensor, attentionNormBias: Tensor
        let ffnInBias: Tensor, ffnOutBias: Tensor
        let outputNormWeight: Tensor, outputNormBias: Tensor

        init(_ l: LayerWeights) {
            queryBias = l.queryBias; keyBias = l.keyBias; valueBias = l.valueBias
            attentionOutBias = l.attentionOutBias
            attentionNormWeight = l.attentionNormWeight; attentionNormBias = l.attentionNormBias
            ffnInBias = l.ffnInBias; ffnOutBias = l.ffnOutBias
            outputNormWeight = l.outputNormWeight; outputNormBias = l.outputNormBias
        }
    }

    struct Layer {
        let q: Linear, k: Linear, v: Linear
        let qkv: Linear?        // fused [D, 3D] (packed only)
        let kv: Linear?         // columns D..<3D of the fused matrix (packed only)
        let attnOut: Linear, ffnIn: Linear, ffnOut: Linear
        let attnNormWeight: UnsafePointer<Float>, attnNormBias: UnsafePointer<Float>
        let outNormWeight: UnsafePointer<Float>, outNormBias: UnsafePointer<Float>
    }

    private let packed: [Tensor]   // keeps the packed copies alive
    let layers: [Layer]
    /// The int8 weights when `packing` is `.int8`.
    public let quantized: QuantizedEncoderWeights?

    /// Validates the weight shapes against `weights.config` (throws `.format`) and packs the
    /// weights (see `WeightPacking`).
    public init(weights: EncoderWeights, packing: WeightPacking = .transposed) throws {
        let c = weights.config
        self.config = c
        self.packing = packing
        self.parameterCount = weights.parameterCount
        self.embeddings = weights.embeddings
        self.head = weights.head
        self.layerVectors = weights.layers.map(LayerVectors.init)
        if case .none = packing { source = weights } else { source = nil }
        let d = c.hiddenSize, f = c.intermediateSize
        guard c.numHeads > 0, d > 0, f > 0, d % c.numHeads == 0 else {
            throw SentimentError.format("hidden size \(d) is not a positive multiple of the \(c.numHeads) attention heads")
        }
        guard c.numLayers >= 1, weights.layers.count == c.numLayers else {
            throw SentimentError.format("config has \(c.numLayers) layers but the weights have \(weights.layers.count)")
        }
        guard c.numLabels > 0 else { throw SentimentError.format("the model has no labels") }
        guard c.vocabSize > 0, c.maxPositions > 0 else {
            throw SentimentError.format("vocabulary size and max positions must be positive")
        }
        func check(_ t: Tensor, _ shape: [Int], _ name: String) throws {
            guard t.shape == shape else {
                throw SentimentError.format("tensor \(name) has shape \(t.shape), expected \(shape)", field: name)
            }
        }
        let e = weights.embeddings
        try check(e.word, [c.vocabSize, d], "embeddings.word")
        guard e.position.shape.count == 2, e.position.shape[1] == d, e.position.shape[0] >= c.maxPositions else {
            throw SentimentError.format("tensor embeddings.position has shape \(e.position.shape), expected [\(c.maxPositions), \(d)]")
        }
        if let tt = e.tokenType {
            guard tt.shape.count == 2, tt.shape[0] >= 1, tt.shape[1] == d else {
                throw SentimentError.format("tensor embeddings.token_type has shape \(tt.shape), expected [>=1, \(d)]")
            }
        }
        try check(e.normWeight, [d], "embeddings.norm.weight")
        try check(e.normBias, [d], "embeddings.norm.bias")
        for (i, l) in weights.layers.enumerated() {
            let p = "layer.\(i)."
            for (t, n) in [(l.query, "query"), (l.key, "key"), (l.value, "value"), (l.attentionOut, "attention_out")] {
                try check(t, [d, d], p + n + ".weight")
            }
            for (t, n) in [(l.queryBias, "query"), (l.keyBias, "key"), (l.valueBias, "value"), (l.attentionOutBias, "attention_out"),
                           (l.ffnOutBias, "ffn_out")] {
                try check(t, [d], p + n + ".bias")
            }
            try check(l.ffnIn, [f, d], p + "ffn_in.weight")
            try check(l.ffnInBias, [f], p + "ffn_in.bias")
            try check(l.ffnOut, [d, f], p + "ffn_out.weight")
            for (t, n) in [(l.attentionNormWeight, "attention_norm.weight"), (l.attentionNormBias, "attention_norm.bias"),
                           (l.outputNormWeight, "output_norm.weight"), (l.outputNormBias, "output_norm.bias")] {
                try check(t, [d], p + n)
            }
        }
        try check(weights.head.dense, [d, d], "head.dense.weight")
        try check(weights.head.denseBias, [d], "head.dense.bias")
        try check(weights.head.classifier, [c.numLabels, d], "head.classifier.weight")
        try check(weights.head.classifierBias, [c.numLabels], "head.classifier.bias")

        var keep: [Tensor] = []
        var prepared: [Layer] = []
        if case .int8(let qw) = packing {
            guard qw.layers.count == weights.layers.count, qw.hiddenSize == d else {
                throw SentimentError(.internal, "the int8 weights were made for a model of a different shape")
            }
            quantized = qw
        } else {
            quantized = nil
        }
        for (li, l) in weights.layers.enumerated() {
            func original(_ w: Tensor, _ b: Tensor) -> Linear {
                Linear(weight: .float(w.data, layout: .outIn, ld: w.shape[1]), bias: b.data, k: w.shape[1], n: w.shape[0])
            }
            func transposedCopy(_ w: Tensor, _ b: Tensor) throws -> Linear {
                let n = w.shape[0], k = w.shape[1]
                let t = try Tensor(shape: [k, n])
                transpose(w.data, rows: n, cols: k, into: t.data)
                keep.append(t)
                return Linear(weight: .float(t.data, layout: .inOut, ld: n), bias: b.data, k: k, n: n)
            }
            switch packing {
            case .int8(let qw):
                let ql = qw.layers[li]
                func int8(_ q: Int8Linear, _ b: Tensor) -> Linear {
                    Linear(weight: .int8(q), bias: b.data, k: q.k, n: q.n)
                }
                // qkv and kv carry a float bias only for their shape; an int8 layer adds its own.
                prepared.append(Layer(
                    q: int8(ql.qkv.view(0..<d), l.queryBias),
                    k: int8(ql.qkv.view(d..<(2 * d)), l.keyBias),
                    v: int8(ql.qkv.view((2 * d)..<(3 * d)), l.valueBias),
                    qkv: int8(ql.qkv.linear, l.queryBias), kv: int8(ql.qkv.view(d..<(3 * d)), l.keyBias),
                    attnOut: int8(ql.attnOut.linear, l.attentionOutBias),
                    ffnIn: int8(ql.ffnIn.linear, l.ffnInBias), ffnOut: int8(ql.ffnOut.linear, l.ffnOutBias),
                    attnNormWeight: l.attentionNormWeight.data, attnNormBias: l.attentionNormBias.data,
                    outNormWeight: l.outputNormWeight.data, outNormBias: l.outputNormBias.data))
            case .none:
                prepared.append(Layer(
                    q: original(l.query, l.queryBias), k: original(l.key, l.keyBias), v: original(l.value, l.valueBias),
                    qkv: nil, kv: nil, attnOut: original(l.attentionOut, l.attentionOutBias),
                    ffnIn: original(l.ffnIn, l.ffnInBias), ffnOut: original(l.ffnOut, l.ffnOutBias),
                    attnNormWeight: l.attentionNormWeight.data, attnNormBias: l.attentionNormBias.data,
                    outNormWeight: l.outputNormWeight.data, outNormBias: l.outputNormBias.data))
            case .transposed:
                // [D, 3D]: column j < D is query output j, then key, then value.
                let fused = try Tensor(shape: [d, 3 * d])
                let fusedBias = try Tensor(shape: [3 * d])
                for (slot, (w, b)) in [(l.query, l.queryBias), (l.key, l.keyBias), (l.value, l.valueBias)].enumerated() {
                    for o in 0..<d {
                        for i in 0..<d { fused.data[i * 3 * d + slot * d + o] = w.data[o * d + i] }
                        fusedBias.data[slot * d + o] = b.data[o]
                    }
                }
                keep += [fused, fusedBias]
                func slice(_ slot: Int, _ width: Int) -> Linear {
                    Linear(weight: .float(fused.data + slot * d, layout: .inOut, ld: 3 * d),
                           bias: fusedBias.data + slot * d, k: d, n: width)
                }
                prepared.append(Layer(
                    q: slice(0, d), k: slice(1, d), v: slice(2, d), qkv: slice(0, 3 * d), kv: slice(1, 2 * d),
                    attnOut: try transposedCopy(l.attentionOut, l.attentionOutBias),
                    ffnIn: try transposedCopy(l.ffnIn, l.ffnInBias), ffnOut: try transposedCopy(l.ffnOut, l.ffnOutBias),
                    attnNormWeight: l.attentionNormWeight.data, attnNormBias: l.attentionNormBias.data,
                    outNormWeight: l.outputNormWeight.data, outNormBias: l.outputNormBias.data))
            }
        }
        packed = keep
        layers = prepared
    }

    /// The float weights this encoder computes with, in Hugging Face layout. `.none`: the
    /// `EncoderWeights` it was made from. Packed: a new `EncoderWeights` whose linear weights are
    /// rebuilt from the encoder's copies (`.transposed`: transposed back, bit for bit; `.int8`:
    /// dequantized, q * scale) and whose other tensors are the encoder's own (do not modify them).
    public func floatWeights() throws -> EncoderWeights {
        if let source { return source }
        let rebuilt = try zip(layers, layerVectors).map { l, v in
            LayerWeights(
                query: try unpackedWeight(l.q), queryBias: v.queryBias,
                key: try unpackedWeight(l.k), keyBias: v.keyBias,
                value: try unpackedWeight(l.v), valueBias: v.valueBias,
                attentionOut: try unpackedWeight(l.attnOut), attentionOutBias: v.attentionOutBias,
                attentionNormWeight: v.attentionNormWeight, attentionNormBias: v.attentionNormBias,
                ffnIn: try unpackedWeight(l.ffnIn), ffnInBias: v.ffnInBias,
                ffnOut: try unpackedWeight(l.ffnOut), ffnOutBias: v.ffnOutBias,
                outputNormWeight: v.outputNormWeight, outputNormBias: v.outputNormBias)
        }
        return EncoderWeights(config: config, embeddings: embeddings, layers: rebuilt, head: head)
    }

    /// A linear layer's weight as a new [n, k] (Hugging Face [out, in]) tensor.
    private func unpackedWeight(_ lin: Linear) throws -> Tensor {
        let n = lin.n, k = lin.k
        let t = try Tensor(shape: [n, k])
        switch lin.weight {
        case .float(let w, .outIn, let ld):
            for o in 0..<n { (t.data + o * k).update(from: w + o * ld, count: k) }
        case .float(let w, .inOut, let ld):
            for o in 0..<n { for i in 0..<k { t.data[o * k + i] = w[i * ld + o] } }
        case .int8(let q):
            let bytes = q.weightBytes
            for o in 0..<n {
                let scale = q.scales[o]
                for i in 0..<k { t.data[o * k + i] = Float(Int8(bitPattern: bytes[o * k + i])) * scale }
            }
        }
        return t
    }

    /// Throws `.invalidArgument` unless every id is in 0..<vocabSize and every length in 1...maxPositions.
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
        guard ws.fits(config) else {
            throw SentimentError(.misuse, "the workspace was made for a model of a different shape")
        }
        if quantized != nil && ws.mode == .training {
            throw SentimentError(.misuse, "an int8 encoder runs inference only; train with the float weights")
        }
        try validate(batch)
        try ws.prepare(for: batch, threads: Parallel.threads)
        let t = batch.totalTokens, s = batch.count
        guard s > 0, let scratch = ws.scratch, let cls = ws.cls, let headAct = ws.headAct,
              let logits = ws.logitsBuffer, let first = ws.layers.first
        else { return }
        let d = config.hiddenSize, eps = config.layerNormEps
        let e = embeddings

        // Embeddings.
        batch.tokenIds.withUnsafeBufferPointer { ids in
            batch.positions.withUnsafeBufferPointer { pos in
                guard let idp = ids.baseAddress, let pp = pos.baseAddress else { return }
                embeddingForward(
                    out: first.input,
                    sum: ws.embSum, ids: idp, positions: pp,
                    word: e.word.data, position: e.position.data, tokenType: e.tokenType?.data,
                    normWeight: e.normWeight.data, normBias: e.normBias.data,
                    rows: t, cols: d, eps: eps, mean: ws.embMean, rstd: ws.embRstd)
            }
        }
        let dropout = ws.mode == .training ? ws.dropout : nil
        if let m = dropout?.embeddings { dropoutForward(first.input, rows: t, cols: d, mask: m) }

        try ws.offsets.withUnsafeBufferPointer { offs in
            try ws.probOffsets.withUnsafeBufferPointer { probOffs in
                for (li, layer) in layers.enumerated() {
                    let a = ws.layers[li]
                    if ws.mode == .inference && li == layers.count - 1 {
                        try lastLayerCLS(layer, a, ws: ws, offsets: offs, scratch: scratch, cls: cls)
                        break
                    }
                    if ws.mode == .training && ws.sparseLastLayer && li == layers.count - 1 {
                        try lastLayerCLSTraining(
                            layer, a, li: li, ws: ws, offsets: offs, probOffsets: probOffs, scratch: scratch, cls: cls,
                            dropout: dropout)
                        break
                    }
                    // Self-attention.
                    if let qkv = layer.qkv {
                        try apply(ws, qkv, inp: a.input, rows: t, out: a.qkv, ldOut: 3 * d)
                    } else {
                        try apply(ws, layer.q, inp: a.input, rows: t, out: a.qkv, ldOut: 3 * d)
                        try apply(ws, layer.k, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
                        try apply(ws, layer.v, inp: a.input, rows: t, out: a.qkv + 2 * d, ldOut: 3 * d)
                    }
                    attentionForward(
                        out: a.context, qkv: a.qkv, offsets: offs, numHeads: config.numHeads, headDim: config.headDim,
                        probs: a.probs, probOffsets: a.probs == nil ? nil : probOffs,
                        dropout: dropout?.attention[li],
                        scratch: scratch, scratchPerThread: ws.scratchPerThread)
                    // Dropout acts on dense(x) + bias, so with a mask the bias goes in before it.
                    let attnOutDrop = dropout?.attentionOutput[li]
                    try apply(ws, layer.attnOut, inp: a.context, rows: t, out: a.attnSum, ldOut: d, bias: attnOutDrop != nil)
                    if let m = attnOutDrop { dropoutForward(a.attnSum, rows: t, cols: d, mask: m) }
                    residualLayerNormForward(
                        x: a.attnSum, linearBias: attnOutDrop == nil ? layer.attnOut.bias : nil, residual: a.input,
                        out: a.attnNorm,
                        weight: layer.attnNormWeight, bias: layer.attnNormBias, rows: t, cols: d, eps: eps,
                        mean: a.attnMean, rstd: a.attnRstd)
                    // Feed-forward.
                    let ffnOutDrop = dropout?.ffnOutput[li]
                    try feedForward(
                        ws, layer, inp: a.attnNorm, rows: t, act: a.ffnAct, out: a.ffnSum, outBias: ffnOutDrop != nil,
                        preActivation: a.ffnPre)
                    if let m = ffnOutDrop { dropoutForward(a.ffnSum, rows: t, cols: d, mask: m) }
                    residualLayerNormForward(
                        x: a.ffnSum, linearBias: ffnOutDrop == nil ? layer.ffnOut.bias : nil, residual: a.attnNorm,
                        out: a.output,
                        weight: layer.outNormWeight, bias: layer.outNormBias, rows: t, cols: d, eps: eps,
                        mean: a.outMean, rstd: a.outRstd)
                    if li == layers.count - 1 {
                        gatherRows(a.output, offsets: offs, cols: d, into: cls)
                    }
                }
            }
        }

        // Classification head on the [CLS] rows.
        let h = head
        let pre = ws.headPre ?? headAct
        // int8: one row per GEMM call, so the float head cannot depend on the batch size either.
        let headRows = quantized == nil ? [(0, s)] : (0..<s).map { ($0, 1) }
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

    /// The last layer at inference: K and V for every token, everything else for [CLS] rows only.
    private func lastLayerCLS(
        _ layer: Layer, _ a: LayerActivations, ws: ForwardWorkspace, offsets: UnsafeBufferPointer<Int>,
        scratch: UnsafeMutablePointer<Float>, cls: UnsafeMutablePointer<Float>
    ) throws {
        guard let q = ws.clsQ, let ctx = ws.clsContext, let tmp = ws.clsTmp, let ffn = ws.clsFfn else { return }
        let t = ws.tokens, s = ws.sequences
        let d = config.hiddenSize, eps = config.layerNormEps
        if let kv = layer.kv {
            try apply(ws, kv, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
        } else {
            try apply(ws, layer.k, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
            try apply(ws, layer.v, inp: a.input, rows: t, out: a.qkv + 2 * d, ldOut: 3 * d)
        }
        gatherRows(a.input, offsets: offsets, cols: d, into: cls)
        try apply(ws, layer.q, inp: cls, rows: s, out: q, ldOut: d)
        attentionForward(
            out: ctx, qkv: a.qkv, queries: .first(q: q), offsets: offsets,
            numHeads: config.numHeads, headDim: config.headDim,
            scratch: scratch, scratchPerThread: ws.scratchPerThread)
        try apply(ws, layer.attnOut, inp: ctx, rows: s, out: tmp, ldOut: d, bias: false)
        residualLayerNormForward(
            x: tmp, linearBias: layer.attnOut.bias, residual: cls, out: cls,
            weight: layer.attnNormWeight, bias: layer.attnNormBias, rows: s, cols: d, eps: eps)
        try feedForward(ws, layer, inp: cls, rows: s, act: ffn, out: tmp, outBias: false)
        residualLayerNormForward(
            x: tmp, linearBias: layer.ffnOut.bias, residual: cls, out: cls,
            weight: layer.outNormWeight, bias: layer.outNormBias, rows: s, cols: d, eps: eps)
    }

    /// The last layer in training mode with `sparseLastLayer`: `lastLayerCLS` keeping what backward
    /// needs (S-row activations in `a`, P of the [CLS] queries, LN statistics), with dropout.
    /// Dropout rows are token rows (offsets[s]), as in the full layer.
    private func lastLayerCLSTraining(
        _ layer: Layer, _ a: LayerActivations, li: Int, ws: ForwardWorkspace, offsets: UnsafeBufferPointer<Int>,
        probOffsets: UnsafeBufferPointer<Int>, scratch: UnsafeMutablePointer<Float>, cls: UnsafeMutablePointer<Float>,
        dropout: EncoderDropout?
    ) throws {
        guard let q = ws.clsQ, let clsIn = ws.clsInput else { return }
        let t = ws.tokens, s = ws.sequences
        let d = config.hiddenSize, f = config.intermediateSize, eps = config.layerNormEps
        let rowIds = UnsafeBufferPointer(rebasing: offsets[0..<s])
        if let kv = layer.kv {
            try apply(ws, kv, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
        } else {
            try apply(ws, layer.k, inp: a.input, rows: t, out: a.qkv + d, ldOut: 3 * d)
            try apply(ws, layer.v, inp: a.input, rows: t, out: a.qkv + 2 * d, ldOut: 3 * d)
        }
        gatherRows(a.input, offsets: offsets, cols: d, into: clsIn)
        try apply(ws, layer.q, inp: clsIn, rows: s, out: q, ldOut: d)
        attentionForward(
            out: a.context, qkv: a.qkv, queries: .first(q: q), offsets: offsets,
            numHeads: config.numHeads, headDim: config.headDim, probs: a.probs, probOffsets: probOffsets,
            dropout: dropout?.attention[li], scratch: scratch, scratchPerThread: ws.scratchPerThread)
        let attnOutDrop = dropout?.attentionOutput[li]
        try apply(ws, layer.attnOut, inp: a.context, rows: s, out: a.attnSum, ldOut: d, bias: attnOutDrop != nil)
        if let m = attnOutDrop { dropoutForward(a.attnSum, rowIds: rowIds, cols: d, mask: m) }
        residualLayerNormForward(
            x: a.attnSum, linearBias: attnOutDrop == nil ? layer.attnOut.bias : nil, residual: clsIn, out: a.attnNorm,
            weight: layer.attnNormWeight, bias: layer.attnNormBias, rows: s, cols: d, eps: eps,
            mean: a.attnMean, rstd: a.attnRstd)
        try apply(ws, layer.ffnIn, inp: a.attnNorm, rows: s, out: a.ffnAct, ldOut: f, bias: false)
        biasGeluForward(x: a.ffnAct, bias: layer.ffnIn.bias, rows: s, cols: f, preActivation: a.ffnPre)
        let ffnOutDrop = dropout?.ffnOutput[li]
        try apply(ws, layer.ffnOut, inp: a.ffnAct, rows: s, out: a.ffnSum, ldOut: d, bias: ffnOutDrop != nil)
        if let m = ffnOutDrop { dropoutForward(a.ffnSum, rowIds: rowIds, cols: d, mask: m) }
        residualLayerNormForward(
            x: a.ffnSum, linearBias: ffnOutDrop == nil ? layer.ffnOut.bias : nil, residual: a.attnNorm, out: cls,
            weight: layer.outNormWeight, bias: layer.outNormBias, rows: s, cols: d, eps: eps,
            mean: a.outMean, rstd: a.outRstd)
    }

    /// out[rows, D] = FFN out(GELU(FFN in(inp) + bias)) (+ FFN out's bias if `outBias`); the GELU
    /// output goes to `act` ([rows, F]) and, if given, its input to `preActivation`. In int8 the
    /// GELU is fused into FFN in's dequantization, which also quantizes each row for FFN out.
    private func feedForward(
        _ ws: ForwardWorkspace, _ layer: Layer, inp: UnsafePointer<Float>, rows: Int, act: UnsafeMutablePointer<Float>,
        out: UnsafeMutablePointer<Float>, outBias: Bool, preActivation: UnsafeMutablePointer<Float>? = nil
    ) throws {
        let d = config.hiddenSize, f = config.intermediateSize
        if case .int8(let qIn) = layer.ffnIn.weight, case .int8(let qOut) = layer.ffnOut.weight, preActivation == nil {
            let scratch = try ws.int8Scratch()
            try scratch.reserve(rows: rows, k: Swift.max(d, f), n: Swift.max(d, f))
            quantizeRows(inp, rows: rows, k: d, ldInp: d, scratch: scratch)
            try int8LinearQuantized(qIn, rows: rows, out: act, ldOut: f, addBias: true, epilogue: .gelu, requantize: true,
                                    scratch: scratch)
            try int8LinearQuantized(qOut, rows: rows, out: out, ldOut: d, addBias: outBias, scratch: scratch)
            return
        }
        try apply(ws, layer.ffnIn, inp: inp, rows: rows, out: act, ldOut: f, bias: false)
        biasGeluForward(x: act, bias: layer.ffnIn.bias, rows: rows, cols: f, preActivation: preActivation)
        try apply(ws, layer.ffnOut, inp: act, rows: rows, out: out, ldOut: d, bias: outBias)
    }

    /// out[rows, n] (row stride ldOut) = inp[rows, k] * W^T (+ bias).
    @inline(__always)
    private func apply(
        _ ws: ForwardWorkspace, _ lin: Linear, inp: UnsafePointer<Float>, rows: Int, out: UnsafeMutablePointer<Float>,
        ldOut: Int, bias: Bool = true
    ) throws {
        switch lin.weight {
        case .int8(let q):
            try int8Linear(q, inp: inp, rows: rows, out: out, ldOut: ldOut, addBias: bias, scratch: try ws.int8Scratch())
        case .float(let w, let layout, let ld):
            try linearForward(
                out: out, inp: inp, weight: w, layout: layout, bias: bias ? lin.bias : nil,
                m: rows, k: lin.k, n: lin.n, ldOut: ldOut, ldWeight: ld)
        }
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
