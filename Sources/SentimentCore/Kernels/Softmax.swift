// Softmax over the last dimension, with max subtraction (as torch.softmax).
//
//   softmaxForward: out[r, :] = exp(inp[r, :] - max) / sum(exp(inp[r, :] - max))
//
// `exp16` is the vectorized exp the other kernels (erf, attention) share.

/// exp(x) for 16 lanes: Cody-Waite reduction x = n*ln2 + r, |r| <= ln2/2, degree-6 polynomial
/// (Cephes expf coefficients), 2^n built from the exponent bits. Relative error ~1-2 ulp.
/// Inputs below -87.3 return ~1e-38 (not 0), above 88.7 return ~FLT_MAX; NaN is not handled.
@_transparent func exp16(_ x: F16) -> F16 {
    let lo = F16(repeating: -87.336_54), hi = F16(repeating: 88.722_83)
    let xc = min16(max16(x, lo), hi)
    // n = round(x / ln2) with the 1.5*2^23 trick: the sum's low mantissa bits hold n.
    let magic = F16(repeating: 12_582_912.0)
    let shifted = xc * F16(repeating: 1.442_695_04) + magic
    let n = shifted - magic
    var r = xc.addingProduct(n, F16(repeating: -0.693_359_375))
    r = r.addingProduct(n, F16(repeating: 2.121_944_4e-4))
    var p = F16(repeating: 1.987_569_15e-4)
    p = F16(repeating: 1.398_199_95e-3).addingProduct(p, r)
    p = F16(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = F16(repeating: 4.166_579_59e-2).addingProduct(p, r)
    p = F16(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = F16(repeating: 5.000_000_1e-1).addingProduct(p, r)
    let r2 = r * r
    p = (r + F16(repeating: 1)).addingProduct(p, r2)
    let ni = unsafeBitCast(shifted, to: I16.self) &- unsafeBitCast(magic, to: I16.self)
    let scale = unsafeBitCast((ni &+ I16(repeating: 127)) &<< I16(repeating: 23), to: F16.self)
    return p * scale
}

/// Scalar exp with the same polynomial (for tails and tests).
@inline(__always) func expScalar(_ x: Float) -> Float { exp16(F16(repeating: x))[0] }

/// In-place softmax of one row of `n` floats. Returns nothing; the row sums to 1.
@inline(__always) func softmaxRowInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let full = n & ~15, rem = n - full
    // max
    var m0 = F16(repeating: -Float.infinity), m1 = m0
    var j = 0
    while j + 32 <= full {
        m0 = max16(m0, load16(p + j)); m1 = max16(m1, load16(p + j + 16)); j += 32
    }
    if j < full { m0 = max16(m0, load16(p + j)) }
    if rem > 0 { m1 = max16(m1, loadPartial16(p + full, rem, fill: -Float.infinity)) }
    let mx = F16(repeating: hmax16(max16(m0, m1)))
    // exp and sum
    var s0 = F16(), s1 = F16()
    j = 0
    while j + 32 <= full {
        let e0 = exp16(load16(p + j) - mx), e1 = exp16(load16(p + j + 16) - mx)
        store16(e0, p + j); store16(e1, p + j + 16)
        s0 += e0; s1 += e1; j += 32
    }
    if j < full { let e = exp16(load16(p + j) - mx); store16(e, p + j); s0 += e }
    if rem > 0 {
        var e = exp16(loadPartial16(p + full, rem, fill: 0) - mx)
        e = e.replacing(with: 0, where: laneIndex16() .>= I16(repeating: Int32(rem)))
        storePartial16(e, p + full, rem)
        s1 += e
    }
    let inv = F16(repeating: 1 / hsum16(s0 + s1))
    j = 0
    while j + 16 <= full { store16(load16(p + j) * inv, p + j); j += 16 }
    if rem > 0 { storePartial16(loadPartial16(p + full, rem, fill: 0) * inv, p + full, rem) }
}

/// Softmax of the first `n` floats of a row whose buffer holds `roundUp16(n)` floats (scratch
/// rows in attention): full-width vector ops with the tail masked; the padding lanes end as 0.
@inline(__always) func softmaxPaddedRowInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let chunks = (n + 15) >> 4
    let last = (chunks - 1) << 4
    let tailMask = laneIndex16() .>= I16(repeating: Int32(n - last))
    let ninf = F16(repeating: -Float.infinity)
    store16(load16(p + last).replacing(with: ninf, where: tailMask), p + last)
    var m = load16(p)
    var j = 16
    while j < n { m = max16(m, load16(p + j)); j += 16 }
    let mx = F16(repeating: hmax16(m))
    var s = F16()
    j = 0
    while j < last {
        let e = exp16(load16(p + j) - mx)
        store16(e, p + j)
        s += e
        j += 16
    }
    let e = exp16(load16(p + last) - mx).replacing(with: 0, where: tailMask)
    store16(e, p + last)
    s += e
    let inv = F16(repeating: 1 / hsum16(s))
    j = 0
    while j < n { store16(load16(p + j) * inv, p + j); j += 16 }
}

/// `softmaxPaddedRowInPlace` on 4 rows at `p + r * stride` in lockstep: the four dependency
/// chains (max -> exp -> sum -> scale) overlap instead of running one after another.
@inline(__always) func softmax4PaddedRowsInPlace(_ p: UnsafeMutablePointer<Float>, stride: Int, _ n: Int) {
    let p0 = p, p1 = p + stride, p2 = p + 2 * stride, p3 = p + 3 * stride
    let chunks = (n + 15) >> 4
    let last = (chunks - 1) << 4
    let tailMask = laneIndex16() .>= I16(repeating: Int32(n - last))
    let ninf = F16(repeating: -Float.infinity)
    store16(load16(p0 + last).replacing(with: ninf, where: tailMask), p0 + last)
    store16(load16(p1 + last).replacing(with: ninf, where: tailMask), p1 + last)
    store16(load16(p2 + last).replacing(with: ninf, where: tailMask), p2 + last)
    store16(load16(p3 + last).replacing(with: ninf, where: tailMask), p3 + last)
    var m0 = load16(p0), m1 = load16(p1), m2 = load16(p2), m3 = load16(p3)
    var j = 16
    while j < n {
        m0 = max16(m0, load16(p0 + j)); m1 = max16(m1, load16(p1 + j))
        m2 = max16(m2, load16(p2 + j)); m3 = max16(m3, load16(p3 + j))
        j += 16
    }
    let x0 = F16(repeating: hmax16(m0)), x1 = F16(repeating: hmax16(m1))
    let x2 = F16(repeating: hmax16(m2)), x3 = F16(repeating: hmax16(m3))
    var s0 = F16(), s1 = F16(), s2 = F16(), s3 = F16()
    j = 0
    while j < last {
        let e0 = exp16(load16(p0 + j) - x0), e1 = exp16(load16(p1 + j) - x1)
        let e2 = exp16(load16(p2 + j) - x2), e3 = exp16(load16(p3 + j) - x3)
        store16(e0, p0 + j); store16(e1, p1 + j); store16(e2, p2 + j); store16(e3, p3 + j)
        s0 += e0; s1 += e1; s2 += e2; s3 += e3
        j += 16
    }
    let e0 = exp16(load16(p0 + last) - x0).replacing(with: 0, where: tailMask)
    let e1 = exp16(load16(p1 + last) - x1).replacing(with: 0, where: tailMask)
    let e2 = exp16(load16(p2 + last) - x2).replacing(with: 0, where: tailMask)
    let e3 = exp16(load16(p3 + last) - x3).replacing(with: 0, where: tailMask)
    store16(e0, p0 + last); store16(e1, p1 + last); store16(e2, p2 + last); store16(e3, p3 + last)
    s0 += e0; s1 += e1; s2 += e2; s3 += e3
    let i0 = F16(repeating: 1 / hsum16(s0)), i1 = F16(repeating: 1 / hsum16(s1))
    let i2 = F16(repeating: 1 / hsum16(s2)), i3 = F16(repeating: 1 / hsum16(s3))
    j = 0
    while j < n {
        store16(load16(p0 + j) * i0, p0 + j); store16(load16(p1 + j) * i1, p1 + j)
        store16(load16(p2 + j) * i2, p2 + j); store16(load16(p3 + j) * i3, p3 + j)
        j += 16
    }
}

/// out[r, :] = softmax(inp[r, :]) for `rows` rows of `cols`; `out` may alias `inp`.
public func softmaxForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int, cols: Int
) {
    guard rows > 0, cols > 0 else { return }
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for r in range {
            let o = out + r * cols
            if UnsafePointer(o) != inp + r * cols { o.update(from: inp + r * cols, count: cols) }
            softmaxRowInPlace(o, cols)
        }
    }
}

// MARK: - Backward

/// Softmax backward for one row of `n`: dinp[j] = p[j] * (dout[j] - sum_k dout[k] p[k]).
/// `dinp` may alias `dout`.
@inline(__always) func softmaxBackwardRow(
    _ dinp: UnsafeMutablePointer<Float>, _ dout: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int
) {
    let full = n & ~15, rem = n - full
    var a0 = F16(), a1 = F16()
    var j = 0
    while j + 32 <= full {
        a0 = a0.addingProduct(load16(dout + j), load16(p + j))
        a1 = a1.addingProduct(load16(dout + j + 16), load16(p + j + 16))
        j += 32
    }
    if j < full { a0 = a0.addingProduct(load16(dout + j), load16(p + j)) }
    if rem > 0 { a1 = a1.addingProduct(loadPartial16(dout + full, rem, fill: 0), loadPartial16(p + full, rem, fill: 0)) }
    let dot = F16(repeating: hsum16(a0 + a1))
    j = 0
    while j < full { store16(load16(p + j) * (load16(dout + j) - dot), dinp + j); j += 16 }
    if rem > 0 {
        let v = loadPartial16(p + full, rem, fill: 0) * (loadPartial16(dout + full, rem, fill: 0) - dot)
        storePartial16(v, dinp + full, rem)
    }
}

/// dinp[r, :] = softmax backward of `probs[r, :]` (the forward output) for `rows` x `cols`.
public func softmaxBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, probs: UnsafePointer<Float>, rows: Int, cols: Int
) {
    guard rows > 0, cols > 0 else { return }
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for r in range { softmaxBackwardRow(dinp + r * cols, dout + r * cols, probs + r * cols, cols) }
    }
}
