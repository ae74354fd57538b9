// Token + position (+ token type) embeddings followed by LayerNorm, as HF BERT/DistilBERT:
//   x[t, :] = word[ids[t], :] (+ tokenType[0, :]) + position[positions[t], :]
//   out[t, :] = LayerNorm(x[t, :])
// Ids and positions must already be validated (EncoderForward checks them against the config).

/// `sum`, if given, receives x (the pre-norm sum, for backward); otherwise x is formed in `out`.
public func embeddingForward(
    out: UnsafeMutablePointer<Float>, sum: UnsafeMutablePointer<Float>? = nil,
    ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
    word: UnsafePointer<Float>, position: UnsafePointer<Float>, tokenType: UnsafePointer<Float>?,
    normWeight: UnsafePointer<Float>, normBias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float,
    mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil
) {
    guard rows > 0, cols > 0 else { return }
    let full = cols & ~15
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for t in range {
            let x = (sum ?? out) + t * cols
            let w = word + Int(ids[t]) * cols
            let p = position + Int(positions[t]) * cols
            var c = 0
            if let tt = tokenType {
                while c < full { store16((load16(w + c) + load16(tt + c)) + load16(p + c), x + c); c += 16 }
                for j in full..<cols { x[j] = (w[j] + tt[j]) + p[j] }
            } else {
                while c < full { store16(load16(w + c) + load16(p + c), x + c); c += 16 }
                for j in full..<cols { x[j] = w[j] + p[j] }
            }
            let s = layerNormRow(x, out + t * cols, normWeight, normBias, cols, eps)
            mean?[t] = s.mean
            rstd?[t] = s.rstd
        }
    }
}
