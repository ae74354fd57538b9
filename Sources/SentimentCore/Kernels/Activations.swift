// Elementwise activations: exact-erf GELU (as torch.nn.functional.gelu, approximate='none'),
// tanh (BERT pooler) and ReLU (DistilBERT pre_classifier).
import CKernels
#if canImport(Glibc)
import Glibc
#endif

// MARK: erf

/// erf(x) for 16 lanes, max abs error ~1e-7 (relative ~1e-7 for |x| < 1).
///   |x| < 1:  erf(x) = x * P(x^2)                        (degree-6 polynomial in x^2)
///   |x| >= 1: erf(x) = sign(x) (1 - exp(-x^2) Q(|x|))     (Q ~ erfcx on [1, 4], degree 8; |x| > 4 -> +-1)
/// Coefficients: near-minimax least-squares fits in double (fit error < 3e-9); the rest is float rounding.
@_transparent func erf16(_ x: F16) -> F16 {
    let ax = abs16(x)
    // Small |x|.
    let x2 = x * x
    var p = F16(repeating: 7.647_258_664_672_504e-05)
    p = F16(repeating: -7.942_404_454_297e-04).addingProduct(p, x2)
    p = F16(repeating: 5.179_755_806_074_9e-03).addingProduct(p, x2)
    p = F16(repeating: -2.684_859_517_733_057e-02).addingProduct(p, x2)
    p = F16(repeating: 1.128_343_023_319_606_5e-01).addingProduct(p, x2)
    p = F16(repeating: -3.761_260_599_957_916_3e-01).addingProduct(p, x2)
    p = F16(repeating: 1.128_379_158_415_599_8).addingProduct(p, x2)
    let small = x * p
    // Large |x|: t maps [1, 4] to [-1, 1].
    let a = min16(ax, F16(repeating: 4))
    let t = F16(repeating: -2.5 / 1.5).addingProduct(a, F16(repeating: 1 / 1.5))
    var q = F16(repeating: 2.738_142_415_131_558_3e-03)
    q = F16(repeating: 3.844_818_951_239_833_7e-03).addingProduct(q, t)
    q = F16(repeating: 6.187_802_274_353_477e-03).addingProduct(q, t)
    q = F16(repeating: -5.021_007_302_345_89e-03).addingProduct(q, t)
    q = F16(repeating: 1.165_638_121_524_062_6e-02).addingProduct(q, t)
    q = F16(repeating: -2.744_621_048_959_713_6e-02).addingProduct(q, t)
    q = F16(repeating: 5.605_796_481_128_161e-02).addingProduct(q, t)
    q = F16(repeating: -1.115_132_749_405_383_5e-01).addingProduct(q, t)
    q = F16(repeating: 2.108_076_051_803_693_7e-01).addingProduct(q, t)
    // exp(-a^2) with a^2 split exactly into hi + lo: exp(-hi) * (1 - lo).
    let hi = a * a
    let lo = (-hi).addingProduct(a, a)             // fma(a, a, -hi) = a^2 - hi exactly
    let e = exp16(-hi) * (F16(repeating: 1) - lo)
    let large = F16(repeating: 1) - e * q
    let signed = unsafeBitCast(
        unsafeBitCast(large, to: I16.self) | (unsafeBitCast(x, to: I16.self) & I16(repeating: Int32(bitPattern: 0x8000_0000))),
        to: F16.self)
    return signed.replacing(with: small, where: ax .< F16(repeating: 1))
}

@inline(__always) func erfScalar(_ x: Float) -> Float { erf16(F16(repeating: x))[0] }

/// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)).
@_transparent func gelu16(_ x: F16) -> F16 {
    let h = F16(repeating: 0.5) * x
    return h.addingProduct(h, erf16(x * F16(repeating: 0.707_106_781_186_547_5)))
}

// MARK: GELU

/// x[r, c] = gelu(x[r, c] + bias[c]) in place over `rows` x `cols` (row stride `cols`).
/// If `preActivation` is given, x + bias is stored there too (what GELU's backward needs); if
/// `rounded` is, the result rounded to bf16 too (`bf16_from_f32`, each row while it is in cache).
public func biasGeluForward(
    x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int,
    preActivation: UnsafeMutablePointer<Float>? = nil, rounded: UnsafeMutablePointer<UInt16>? = nil
) {
    guard rows > 0, cols > 0 else { return }
    let full = cols & ~15, rem = cols - full
    Parallel.forRanges(rows, grain: Swift.max(1, 8192 / cols)) { range in
        for r in range {
            let row = x + r * cols
            let pre = preActivation.map { $0 + r * cols }
            var c = 0
            while c < full {
                var v = load16(row + c)
                if let bias { v += load16(bias + c) }
                if let pre { store16(v, pre + c) }
                store16(gelu16(v), row + c)
                c += 16
            }
            if rem > 0 {
                var v = loadPartial16(row + full, rem, fill: 0)
                if let bias { v += loadPartial16(bias + full, rem, fill: 0) }
                if let pre { storePartial16(v, pre + full, rem) }
                storePartial16(gelu16(v), row + full, rem)
            }
            if let rounded { bf16_from_f32(row, cols, rounded + r * cols) }
        }
    }
}

/// out[i] = gelu(inp[i]) for `count` floats (out may alias inp).
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
    if UnsafePointer(out) != inp { out.update(from: inp, count: count) }
    biasGeluForward(x: out, bias: nil, rows: 1, cols: count)
}

// MARK: tanh, ReLU (classification heads: [nSeq, D], tiny)

/// x = tanh(x + bias) in place, rows x cols.
public func biasTanhForward(x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        for c in 0..<cols { row[c] = tanhf(row[c] + (bias?[c] ?? 0)) }
    }
}

/// x = max(x + bias, 0) in place, rows x cols.
public func biasReluForward(x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        for c in 0..<cols {
            let v = row[c] + (bias?[c] ?? 0)
            row[c] = v > 0 ? v : 0
        }
    }
}

// MARK: - Backward

/// gelu'(x) = 0.5 (1 + erf(x / sqrt 2)) + x * exp(-x^2 / 2) / sqrt(2 pi)   (exact erf form).
@_transparent func geluDerivative16(_ x: F16) -> F16 {
    let cdf = F16(repeating: 0.5).addingProduct(F16(repeating: 0.5), erf16(x * F16(repeating: 0.707_106_781_186_547_5)))
    let pdf = exp16(F16(repeating: -0.5) * x * x) * F16(repeating: 0.398_942_280_401_432_7)
    return cdf.addingProduct(x, pdf)
}

/// dinp = dout * gelu'(preActivation) over `rows` x `cols` (dinp may alias dout); if `rounded` is
/// given, dinp rounded to bf16 too (`bf16_from_f32`, each row while it is in cache).
public func geluBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, preActivation: UnsafePointer<Float>,
    rows: Int, cols: Int, rounded: UnsafeMutablePointer<UInt16>? = nil
) {
    guard rows > 0, cols > 0 else { return }
    let full = cols & ~15, rem = cols - full
    Parallel.forRanges(rows, grain: Swift.max(1, 8192 / cols)) { range in
        for r in range {
            let o = r * cols
            var c = 0
            while c < full {
                store16(load16(dout + o + c) * geluDerivative16(load16(preActivation + o + c)), dinp + o + c)
                c += 16
            }
            if rem > 0 {
                let g = loadPartial16(dout + o + full, rem, fill: 0) * geluDerivative16(loadPartial16(preActivation + o + full, rem, fill: 0))
                storePartial16(g, dinp + o + full, rem)
            }
            if let rounded { bf16_from_f32(dinp + o, cols, rounded + o) }
        }
    }
}

/// dinp = dout * (1 - tanh(pre)^2), rows x cols (dinp may alias dout). `preActivation` is the
/// tanh input (the forward may have applied dropout to the tanh output in place).
public func tanhBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, preActivation: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count {
        let y = tanhf(preActivation[i])
        dinp[i] = dout[i] * (1 - y * y)
    }
}

/// dinp = dout where pre > 0, else 0 (dinp may alias dout).
public func reluBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, preActivation: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count { dinp[i] = preActivation[i] > 0 ? dout[i] : 0 }
}
