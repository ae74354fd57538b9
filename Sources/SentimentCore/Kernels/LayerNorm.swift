// LayerNorm over the last dimension (as torch.nn.LayerNorm, biased variance):
//   out[r, :] = (x[r, :] - mean_r) * rstd_r * weight + bias,   rstd_r = 1 / sqrt(var_r + eps)
// mean and rstd are optionally kept per row for the backward pass.
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// Normalizes one row; returns (mean, rstd). `out` may alias `x`.
@inline(__always) func layerNormRow(
    _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
    _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ cols: Int, _ eps: Float
) -> (mean: Float, rstd: Float) {
    let full = cols & ~15
    // Pass 1: mean (4 accumulators: float reductions do not auto-vectorize).
    var a0 = F16(), a1 = F16(), a2 = F16(), a3 = F16()
    var c = 0
    while c + 64 <= full {
        a0 += load16(x + c); a1 += load16(x + c + 16); a2 += load16(x + c + 32); a3 += load16(x + c + 48)
        c += 64
    }
    while c < full { a0 += load16(x + c); c += 16 }
    var sum = hsum16((a0 + a1) + (a2 + a3))
    for j in full..<cols { sum += x[j] }
    let mean = sum / Float(cols)
    // Pass 2: variance around the mean (two-pass: no cancellation).
    let m = F16(repeating: mean)
    a0 = F16(); a1 = F16(); a2 = F16(); a3 = F16()
    c = 0
    while c + 64 <= full {
        let d0 = load16(x + c) - m, d1 = load16(x + c + 16) - m
        let d2 = load16(x + c + 32) - m, d3 = load16(x + c + 48) - m
        a0 = a0.addingProduct(d0, d0); a1 = a1.addingProduct(d1, d1)
        a2 = a2.addingProduct(d2, d2); a3 = a3.addingProduct(d3, d3)
        c += 64
    }
    while c < full { let d = load16(x + c) - m; a0 = a0.addingProduct(d, d); c += 16 }
    var ss = hsum16((a0 + a1) + (a2 + a3))
    for j in full..<cols { let d = x[j] - mean; ss += d * d }
    let rstd = 1 / (ss / Float(cols) + eps).squareRoot()
    // Pass 3: scale and shift.
    let rs = F16(repeating: rstd)
    c = 0
    while c < full {
        let v = (load16(x + c) - m) * rs
        store16(load16(bias + c).addingProduct(v, load16(weight + c)), out + c)
        c += 16
    }
    for j in full..<cols { out[j] = (x[j] - mean) * rstd * weight[j] + bias[j] }
    return (mean, rstd)
}

/// out[r, :] = LayerNorm(inp[r, :]) for `rows` x `cols`; `out` may alias `inp`.
/// If `mean`/`rstd` ([rows]) are given they receive the row statistics.
public func layerNormForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols: Int, eps: Float,
    mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil
) {
    guard rows > 0, cols > 0 else { return }
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for r in range {
            let s = layerNormRow(inp + r * cols, out + r * cols, weight, bias, cols, eps)
            mean?[r] = s.mean
            rstd?[r] = s.rstd
        }
    }
}

/// The post-LN transformer residual, fused:
///   x[r, :] += linearBias + residual[r, :]      (x is a linear layer's output; keeps the pre-norm sum)
///   out[r, :] = LayerNorm(x[r, :])
/// `out` may alias `residual` (each row is read before it is written).
/// `rounded`: out rounded to bf16 too (each row while it is in cache).
public func residualLayerNormForward(
    x: UnsafeMutablePointer<Float>, linearBias: UnsafePointer<Float>?, residual: UnsafePointer<Float>,
    out: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float,
    mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil,
    rounded: UnsafeMutablePointer<UInt16>? = nil
) {
    guard rows > 0, cols > 0 else { return }
    let full = cols & ~15
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for r in range {
            let xr = x + r * cols, rr = residual + r * cols
            var c = 0
            if let lb = linearBias {
                while c < full { store16(load16(xr + c) + load16(lb + c) + load16(rr + c), xr + c); c += 16 }
                for j in full..<cols { xr[j] = xr[j] + lb[j] + rr[j] }
            } else {
                while c < full { store16(load16(xr + c) + load16(rr + c), xr + c); c += 16 }
                for j in full..<cols { xr[j] += rr[j] }
            }
            let s = layerNormRow(xr, out + r * cols, weight, bias, cols, eps)
            mean?[r] = s.mean
            rstd?[r] = s.rstd
            if let rounded { bf16_from_f32(out + r * cols, cols, rounded + r * cols) }
        }
    }
}

// MARK: - Backward

/// Backward of LayerNorm, from the row statistics the forward kept (llm.c's layernorm_backward):
///   xhat = (x - mean) * rstd,  g = weight * dout
///   dinp      = (g - mean(g) - xhat * mean(g * xhat)) * rstd     (overwrites; may alias `dout`)
///   dweight  += sum over rows of dout * xhat,   dbias += sum over rows of dout
/// Rows are split over threads; each part sums its own dweight/dbias, and the parts are added
/// in order (the same result for the same thread count).
public func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, rows: Int, cols: Int
) {
    guard rows > 0, cols > 0 else { return }
    let parts = Swift.max(1, Swift.min(Parallel.threads, rows / Swift.max(1, 8192 / cols)))
    let per = (rows + parts - 1) / parts
    let stride = roundUp16(cols)
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: parts * 2 * stride)
    partials.initialize(repeating: 0, count: parts * 2 * stride)
    defer { partials.deallocate() }
    let full = cols & ~15
    let invCols = 1 / Float(cols)
    Parallel.forEach(parts) { p in
        let dw = partials + p * 2 * stride, db = dw + stride
        for r in (p * per)..<Swift.min(rows, (p + 1) * per) {
            let x = inp + r * cols, dy = dout + r * cols, dx = dinp + r * cols
            let mu = mean[r], rs = rstd[r]
            let muV = F16(repeating: mu), rsV = F16(repeating: rs)
            // Pass 1: mean(g) and mean(g * xhat); dweight/dbias partials.
            var s0 = F16(), s1 = F16()
            var c = 0
            while c < full {
                let xhat = (load16(x + c) - muV) * rsV
                let d = load16(dy + c)
                let g = load16(weight + c) * d
                s0 += g
                s1 = s1.addingProduct(g, xhat)
                store16(load16(dw + c).addingProduct(d, xhat), dw + c)
                store16(load16(db + c) + d, db + c)
                c += 16
            }
            var sumG = hsum16(s0), sumGX = hsum16(s1)
            for j in full..<cols {
                let xhat = (x[j] - mu) * rs
                let g = weight[j] * dy[j]
                sumG += g
                sumGX += g * xhat
                dw[j] += dy[j] * xhat
                db[j] += dy[j]
            }
            let mG = sumG * invCols, mGX = sumGX * invCols
            let mGV = F16(repeating: mG), mGXV = F16(repeating: mGX)
            // Pass 2: dinp.
            c = 0
            while c < full {
                let xhat = (load16(x + c) - muV) * rsV
                let g = load16(weight + c) * load16(dy + c)
                store16(((g - mGV) - xhat * mGXV) * rsV, dx + c)
                c += 16
            }
            for j in full..<cols {
                let xhat = (x[j] - mu) * rs
                let g = weight[j] * dy[j]
                dx[j] = ((g - mG) - xhat * mGX) * rs
            }
        }
    }
    for p in 0..<parts {
        let dw = partials + p * 2 * stride, db = dw + stride
        for j in 0..<cols {
            dweight[j] += dw[j]
            dbias[j] += db[j]
        }
    }
}
