// Matrix products through oneDNN's row-major `dnnl_sgemm`, and the linear layer built on it.
//
// Dimension names used by all kernels (llm.c style):
//   M = rows (tokens or sequences), K = input features, N = output features.
// Hugging Face stores a linear weight as [out, in] = [N, K]; `WeightLayout.outIn`.
// Inference pre-transposes it once to [K, N] (`WeightLayout.inOut`), which oneDNN runs
// 1.2-1.9x faster for the small M of a single sentence (M = 25: 226 vs 122 GFLOP/s on 2 threads).
import CDnnl

/// How a linear layer's weight matrix is stored.
public enum WeightLayout: Sendable {
    /// [N, K] row-major (Hugging Face `nn.Linear.weight`).
    case outIn
    /// [K, N] row-major (the transpose; what `EncoderForward` packs at init).
    case inOut
}

/// C[M, N] = alpha * op(A) * op(B) + beta * C, all row-major.
/// op(A) is [M, K] (A is [K, M] when `transA`), op(B) is [K, N] (B is [N, K] when `transB`).
/// Throws `.internal` only if oneDNN rejects the arguments (a bug, never an input error).
@inline(__always)
public func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) throws {
    if m == 0 || n == 0 { return }
    if k == 0 {
        for r in 0..<m {
            let row = c + r * ldc
            for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
        return
    }
    let tN = CChar(UInt8(ascii: "N")), tT = CChar(UInt8(ascii: "T"))
    let status = Signals.held {
        dnnl_sgemm(transA ? tT : tN, transB ? tT : tN, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
                   a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
    }
    guard status == dnnl_success else {
        throw SentimentError(.internal, "dnnl_sgemm(m: \(m), n: \(n), k: \(k)) failed with status \(status.rawValue)")
    }
}

/// out[M, N] (row stride `ldOut`) = inp[M, K] (row stride `ldInp`) * W^T (+ bias[N] if given).
/// `weight` is [N, K] (`.outIn`) or [K, N] (`.inOut`), with row stride `ldWeight`
/// (defaults: K for `.outIn`, N for `.inOut`); a column slice of a wider packed matrix
/// is passed as a pointer offset plus its full row stride.
public func linearForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
    m: Int, k: Int, n: Int, ldOut: Int? = nil, ldInp: Int? = nil, ldWeight: Int? = nil
) throws {
    let ldo = ldOut ?? n
    try sgemm(
        transB: layout == .outIn, m: m, n: n, k: k, a: inp, lda: ldInp ?? k,
        b: weight, ldb: ldWeight ?? (layout == .outIn ? k : n), c: out, ldc: ldo)
    if let bias { addBiasRows(out, bias: bias, rows: m, cols: n, ld: ldo) }
}

/// x[r, c] += bias[c] for `rows` rows of `cols` (row stride `ld`).
public func addBiasRows(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int) {
    guard rows > 0, cols > 0 else { return }
    let full = cols & ~15, rem = cols - full
    Parallel.forRanges(rows, grain: Swift.max(1, 32768 / cols)) { range in
        for r in range {
            let row = x + r * ld
            var c = 0
            while c < full { store16(load16(row + c) + load16(bias + c), row + c); c += 16 }
            for j in full..<(full + rem) { row[j] += bias[j] }
        }
    }
}

/// dst[K, N] = src[N, K]^T (packs an HF [out, in] weight for `.inOut` use).
public func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
    // 32x32 tiles keep both sides in cache.
    let tile = 32
    var r0 = 0
    while r0 < rows {
        let r1 = Swift.min(rows, r0 + tile)
        var c0 = 0
        while c0 < cols {
            let c1 = Swift.min(cols, c0 + tile)
            for r in r0..<r1 {
                for c in c0..<c1 { dst[c * rows + r] = src[r * cols + c] }
            }
            c0 = c1
        }
        r0 = r1
    }
}

// MARK: - Backward

/// Backward of `linearForward` with an HF [N, K] (`.outIn`) weight, accumulating like llm.c:
///   dinp[M, K]    = dout[M, N] * W          (or += when `accumulateInput`; skipped when nil)
///   dweight[N, K] += dout^T * inp
///   dbias[N]      += sum over rows of dout
/// Row strides: `ldDout` (default N), `ldInp` (default K), `ldDinp` (default K); a column slice
/// of a wider matrix (e.g. the Q, K or V part of a fused [T, 3D] gradient) is a pointer offset
/// plus the full stride. `dweight` and `dbias` are dense ([N, K], [N]).
public func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    m: Int, k: Int, n: Int, ldDout: Int? = nil, ldInp: Int? = nil, ldDinp: Int? = nil,
    accumulateInput: Bool = false
) throws {
    guard m > 0, n > 0, k > 0 else { return }
    let ldo = ldDout ?? n
    if let dinp {
        try sgemm(m: m, n: k, k: n, a: dout, lda: ldo, b: weight, ldb: k,
                  beta: accumulateInput ? 1 : 0, c: dinp, ldc: ldDinp ?? k)
    }
    try sgemm(transA: true, m: n, n: k, k: m, a: dout, lda: ldo, b: inp, ldb: ldInp ?? k,
              beta: 1, c: dweight, ldc: k)
    if let dbias { addColumnSums(dbias, of: dout, rows: m, cols: n, ld: ldo) }
}

/// sums[c] += sum over r of x[r, c], for `rows` x `cols` (row stride `ld`).
/// Threads split the columns (16 at a time), so the result does not depend on the thread count.
public func addColumnSums(_ sums: UnsafeMutablePointer<Float>, of x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int) {
    guard rows > 0, cols > 0 else { return }
    let chunks = (cols + 15) / 16
    let parts = rows * cols >= 32768 ? Swift.min(chunks, Parallel.threads) : 1
    let perPart = (chunks + parts - 1) / parts
    Parallel.forEach(parts) { p in
        let c0 = p * perPart * 16, c1 = Swift.min(cols, (p + 1) * perPart * 16)
        var c = c0
        while c < c1 {
            let width = Swift.min(16, c1 - c)
            // Four row accumulators: float adds do not reassociate by themselves.
            var a0 = F16(), a1 = F16(), a2 = F16(), a3 = F16()
            var r = 0
            if width == 16 {
                while r + 4 <= rows {
                    let p0 = x + r * ld + c
                    a0 += load16(p0); a1 += load16(p0 + ld); a2 += load16(p0 + 2 * ld); a3 += load16(p0 + 3 * ld)
                    r += 4
                }
                while r < rows { a0 += load16(x + r * ld + c); r += 1 }
                store16(load16(sums + c) + ((a0 + a1) + (a2 + a3)), sums + c)
            } else {
                while r < rows { a0 += loadPartial16(x + r * ld + c, width, fill: 0); r += 1 }
                storePartial16(loadPartial16(sums + c, width, fill: 0) + a0, sums + c, width)
            }
            c += 16
        }
    }
}
