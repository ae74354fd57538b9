// LayerNorm over the last dimension (as torch.nn.LayerNorm, biased variance):
//   out[r, :] = (x[r, :] - mean_r) * rstd_r * weight + bias,   rstd_r = 1 / sqrt(var_r + eps)
// mean and rstd are optionally kept per row for the backward pass.
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
public func residualLayerNormForward(
    x: UnsafeMutablePointer<Float>, linearBias: UnsafePointer<Float>?, residual: UnsafePointer<Float>,
    out: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, cols: Int, eps: Float,
    mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil
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
        }
    }
}
