// The linear weights of every block as the GEMMs read them (`WeightPacking`), and the float
// weights rebuilt from them for saves.

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
    /// Run the linear layers in bf16 with fp32 accumulation (BF16Linear.swift). Inference keeps
    /// only the packed bf16 copies. `training` reads the `EncoderWeights` as fp32 master weights
    /// (as `.none`) and keeps bf16 copies for both directions, rounded again by
    /// `EncoderForward.refreshPackedWeights` after each optimizer step.
    case bf16(training: Bool)

    /// Whether the linear layers' output rows are computed one row at a time in every part of the
    /// forward the packing runs, so logits do not depend on the batch (int8, bf16).
    var isBatchInvariant: Bool {
        switch self {
        case .int8, .bf16: return true
        case .none, .transposed: return false
        }
    }
}

/// A linear layer as the GEMM sees it.
struct Linear {
    enum Weight {
        /// Float weights in `layout` with leading dimension `ld`.
        case float(UnsafePointer<Float>, layout: WeightLayout, ld: Int)
        case int8(Int8Linear)
        case bf16(BF16Weight)
    }
    let weight: Weight
    /// The float bias (an int8 layer adds its own copy; the float FFN path reads this one).
    let bias: UnsafePointer<Float>
    let k: Int, n: Int

    var isBF16: Bool {
        if case .bf16 = weight { return true }
        return false
    }

    /// The weight as a new [n, k] (Hugging Face [out, in]) tensor: copied, transposed back, or
    /// dequantized (q * scale, divided by the smoothing factor of its column; the fp32 outlier
    /// columns as they are).
    func unpacked() throws -> Tensor {
        let t = try Tensor(shape: [n, k])
        switch weight {
        case .float(let w, .outIn, let ld):
            for o in 0..<n { (t.data + o * k).update(from: w + o * ld, count: k) }
        case .float(let w, .inOut, let ld):
            for o in 0..<n { for i in 0..<k { t.data[o * k + i] = w[i * ld + o] } }
        case .int8(let q):
            let columns = q.outliers?.columnList ?? []
            q.weightBytes.withUnsafeBytes { raw in
                guard let bytes = raw.baseAddress?.assumingMemoryBound(to: Int8.self) else { return }
                for o in 0..<n {
                    dequantizeRow(bytes + o * k, count: k, scale: q.scales[o], smoothing: q.smoothing, outlierColumns: columns,
                                  outlierValue: { j in q.outliers.map { $0.weights[j * $0.ld + o] } ?? 0 }, into: t.data + o * k)
                }
            }
        case .bf16(let w):
            return try w.unpacked()
        }
        return t
    }
}

/// One block's weights as the forward pass reads them.
struct PackedLayer {
    let q: Linear, k: Linear, v: Linear
    let qkv: Linear?        // fused [D, 3D] (transposed and int8; bf16 training: stacked)
    let kv: Linear?         // K and V of the fused matrix (the same)
    let attnOut: Linear, ffnIn: Linear, ffnOut: Linear
    let attnNormWeight: UnsafePointer<Float>, attnNormBias: UnsafePointer<Float>
    let outNormWeight: UnsafePointer<Float>, outNormBias: UnsafePointer<Float>

    /// The packed form of a linear weight of the schema.
    func linear(_ t: LayerTensor) -> Linear? {
        switch t {
        case .query: return q
        case .key: return k
        case .value: return v
        case .attentionOut: return attnOut
        case .ffnIn: return ffnIn
        case .ffnOut: return ffnOut
        default: return nil
        }
    }
}

/// Every block's packed weights, and what they need to stay alive.
struct PackedWeights {
    let layers: [PackedLayer]
    /// The packed copies (transposed and fused).
    private let copies: [Tensor]
    /// Every block's tensors other than its linear weights (biases, LayerNorm parameters).
    private let vectors: [[LayerTensor: Tensor]]

    /// Packs `weights` (whose shapes the caller has checked).
    init(_ weights: EncoderWeights, packing: WeightPacking) throws {
        let d = weights.config.hiddenSize
        var copies: [Tensor] = []
        var layers: [PackedLayer] = []
        for (li, l) in weights.layers.enumerated() {
            func block(q: Linear, k: Linear, v: Linear, qkv: Linear?, kv: Linear?, rest: (LayerTensor) throws -> Linear)
                rethrows -> PackedLayer
            {
                PackedLayer(
                    q: q, k: k, v: v, qkv: qkv, kv: kv,
                    attnOut: try rest(.attentionOut), ffnIn: try rest(.ffnIn), ffnOut: try rest(.ffnOut),
                    attnNormWeight: l[.attentionNormWeight].data, attnNormBias: l[.attentionNormBias].data,
                    outNormWeight: l[.outputNormWeight].data, outNormBias: l[.outputNormBias].data)
            }
            func bias(_ t: LayerTensor) -> UnsafePointer<Float> { UnsafePointer(l[t.bias ?? t].data) }
            switch packing {
            case .none:
                func original(_ t: LayerTensor) -> Linear {
                    let w = l[t]
                    return Linear(weight: .float(w.data, layout: .outIn, ld: w.shape[1]), bias: bias(t),
                                  k: w.shape[1], n: w.shape[0])
                }
                layers.append(block(q: original(.query), k: original(.key), v: original(.value), qkv: nil, kv: nil,
                                    rest: original))
            case .transposed:
                // [D, 3D]: column j < D is query output j, then key, then value.
                let fused = try Tensor(shape: [d, 3 * d])
                let fusedBias = try Tensor(shape: [3 * d])
                for (slot, t) in [LayerTensor.query, .key, .value].enumerated() {
                    let w = l[t], b = l[t.bias ?? t]
                    for o in 0..<d {
                        for i in 0..<d { fused.data[i * 3 * d + slot * d + o] = w.data[o * d + i] }
                        fusedBias.data[slot * d + o] = b.data[o]
                    }
                }
                copies += [fused, fusedBias]
                func slice(_ slot: Int, _ width: Int) -> Linear {
                    Linear(weight: .float(fused.data + slot * d, layout: .inOut, ld: 3 * d),
                           bias: fusedBias.data + slot * d, k: d, n: width)
                }
                func transposedCopy(_ t: LayerTensor) throws -> Linear {
                    let w = l[t], n = w.shape[0], k = w.shape[1]
                    let copy = try Tensor(shape: [k, n])
                    transpose(w.data, rows: n, cols: k, into: copy.data)
                    copies.append(copy)
                    return Linear(weight: .float(copy.data, layout: .inOut, ld: n), bias: bias(t), k: k, n: n)
                }
                layers.append(try block(q: slice(0, d), k: slice(1, d), v: slice(2, d), qkv: slice(0, 3 * d),
                                        kv: slice(1, 2 * d), rest: transposedCopy))
            case .bf16(let training):
                // A column slice of a packed matrix is not a pointer offset, so Q, K and V are
                // packed on their own; training also stacks Q | K | V and K | V (packed on first
                // use, BF16Weight), for one matmul per direction instead of three.
                func rounded(_ t: LayerTensor) throws -> Linear {
                    let w = l[t], n = w.shape[0], k = w.shape[1]
                    let b = try BF16Weight(w.data, n: n, k: k, ld: k, training: training)
                    return Linear(weight: .bf16(b), bias: bias(t), k: k, n: n)
                }
                func stacked(_ ts: [LayerTensor]) throws -> Linear {
                    let b = try BF16Weight(
                        stacking: ts.map { (weight: UnsafePointer(l[$0].data), bias: bias($0), rows: l[$0].shape[0]) },
                        k: d, training: true)
                    guard let fusedBias = b.stackedBias else { throw SentimentError(.internal, "stacked weight without bias") }
                    return Linear(weight: .bf16(b), bias: fusedBias, k: d, n: b.n)
                }
                layers.append(try block(
                    q: rounded(.query), k: rounded(.key), v: rounded(.value),
                    qkv: training ? stacked([.query, .key, .value]) : nil, kv: training ? stacked([.key, .value]) : nil,
                    rest: rounded))
            case .int8(let qw):
                let ql = qw.layers[li]
                // qkv and kv carry a float bias only for their shape; an int8 layer adds its own.
                func int8(_ q: Int8Linear, _ t: LayerTensor) -> Linear {
                    Linear(weight: .int8(q), bias: bias(t), k: q.k, n: q.n)
                }
                func rest(_ t: LayerTensor) -> Linear {
                    switch t {
                    case .attentionOut: return int8(ql.attnOut.linear, t)
                    case .ffnIn: return int8(ql.ffnIn.linear, t)
                    default: return int8(ql.ffnOut.linear, t)
                    }
                }
                layers.append(block(
                    q: int8(ql.qkv.view(0..<d), .query), k: int8(ql.qkv.view(d..<(2 * d)), .key),
                    v: int8(ql.qkv.view((2 * d)..<(3 * d)), .value),
                    qkv: int8(ql.qkv.linear, .query), kv: int8(ql.qkv.view(d..<(3 * d)), .key), rest: rest))
            }
        }
        self.layers = layers
        self.copies = copies
        vectors = weights.layers.map { l in
            Dictionary(uniqueKeysWithValues: LayerTensor.allCases.filter { !LayerTensor.linearWeights.contains($0) }
                .map { ($0, l[$0]) })
        }
    }

    /// The master weights changed (`.bf16(training: true)`): the bf16 copies are rounded again
    /// on their next use.
    func refresh() {
        for l in layers {
            for lin in LayerTensor.linearWeights.compactMap({ l.linear($0) }) + [l.qkv, l.kv].compactMap({ $0 }) {
                if case .bf16(let w) = lin.weight { w.refresh() }
            }
        }
    }

    /// Every block's float weights in Hugging Face layout: linear weights rebuilt from the packed
    /// ones (`Linear.unpacked`), the other tensors the ones packed from (do not modify them).
    func floatLayers() throws -> [LayerWeights] {
        try zip(layers, vectors).map { packed, v in
            try LayerWeights { t in
                if let lin = packed.linear(t) { return try lin.unpacked() }
                guard let tensor = v[t] else { throw SentimentError(.internal, "layer tensor \(t) was not kept") }
                return tensor
            }
        }
    }
}
