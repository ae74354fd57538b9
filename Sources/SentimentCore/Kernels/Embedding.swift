// Token + position (+ token type) embeddings followed by LayerNorm, as HF BERT/DistilBERT:
//   x[t, :] = word[ids[t], :] (+ tokenType[types[t], :]) + position[positions[t], :]
//   out[t, :] = LayerNorm(x[t, :])
// `types` nil means type 0 for every token. Ids, positions and types must already be validated
// (EncoderForward checks them against the config).

/// `sum`, if given, receives x (the pre-norm sum, for backward); otherwise x is formed in `out`.
public func embeddingForward(
    out: UnsafeMutablePointer<Float>, sum: UnsafeMutablePointer<Float>? = nil,
    ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>, types: UnsafePointer<Int32>? = nil,
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
            if let table = tokenType {
                let tt = types.map { table + Int($0[t]) * cols } ?? table
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

// MARK: - Backward

/// Backward of `embeddingForward`:
///   dx = LayerNorm backward of `dout` (written over `dout`; dnormWeight/dnormBias accumulate)
///   dword[ids[t], :] += dx[t, :],  dposition[positions[t], :] += dx[t, :],  dtokenType[types[t], :] += dx[t, :]
/// (`types` nil: row 0 for every token)
/// The scatter-add is split over threads by columns (every thread sees every token, in order),
/// so repeated ids never race and the sums do not depend on the thread count.
public func embeddingBackward(
    dword: UnsafeMutablePointer<Float>, dposition: UnsafeMutablePointer<Float>, dtokenType: UnsafeMutablePointer<Float>?,
    dnormWeight: UnsafeMutablePointer<Float>, dnormBias: UnsafeMutablePointer<Float>,
    dout: UnsafeMutablePointer<Float>, sum: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    normWeight: UnsafePointer<Float>, ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
    types: UnsafePointer<Int32>? = nil, rows: Int, cols: Int
) {
    guard rows > 0, cols > 0 else { return }
    layerNormBackward(
        dinp: dout, dweight: dnormWeight, dbias: dnormBias, dout: dout, inp: sum, mean: mean, rstd: rstd,
        weight: normWeight, rows: rows, cols: cols)
    let chunks = (cols + 15) / 16
    let parts = Swift.min(chunks, rows * cols >= 16384 ? Parallel.threads : 1)
    let perPart = (chunks + parts - 1) / parts
    Parallel.forEach(parts) { part in
        let c0 = part * perPart * 16, c1 = Swift.min(cols, (part + 1) * perPart * 16)
        guard c0 < c1 else { return }
        let n = c1 - c0
        for t in 0..<rows {
            let dx = dout + t * cols + c0
            axpy(dword + Int(ids[t]) * cols + c0, 1, dx, n)
            axpy(dposition + Int(positions[t]) * cols + c0, 1, dx, n)
            if let dtt = dtokenType { axpy(dtt + (types.map { Int($0[t]) } ?? 0) * cols + c0, 1, dx, n) }
        }
    }
}

/// y[0..<n] += a * x[0..<n].
@inline(__always) func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    let av = F16(repeating: a)
    var c = 0
    while c + 16 <= n { store16(load16(y + c).addingProduct(av, load16(x + c)), y + c); c += 16 }
    if c < n {
        let r = n - c
        storePartial16(loadPartial16(y + c, r, fill: 0).addingProduct(av, loadPartial16(x + c, r, fill: 0)), y + c, r)
    }
}
