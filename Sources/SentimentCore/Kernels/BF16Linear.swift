// bf16 linear layers, forward and backward: operands rounded to bf16, products accumulated in
// fp32 by oneDNN's matmul (Matmul.swift), outputs and gradients in fp32.
//
//   forward:  out[M, N]   = bf16(inp) * bf16(W)^T (+ bias)
//   backward: dinp[M, K] (+)= bf16(dout) * bf16(W)
//             dW[N, K]    += bf16(dout)^T * bf16(inp)     (fp32 accumulation across calls)
//             dbias[N]    += column sums of dout (fp32)
// W stays fp32 in training (the master weights); `BF16Weight.refresh` rounds it again after
// each optimizer step.
import CKernels

/// A float rounded to bf16 (nearest, ties to even), as its 16 bits; NaN stays NaN.
@inline(__always)
func bf16Bits(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
    return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
}

/// dst[r, c] = bf16(src[r, c]) for `rows` x `cols` (src row stride `ld`; dst dense), with
/// CKernels' `bf16_from_f32` (AVX512-BF16 where the CPU has it).
func convertToBF16(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<UInt16>) {
    Parallel.forRanges(rows, grain: Swift.max(1, 65536 / Swift.max(cols, 1))) { range in
        if ld == cols {
            bf16_from_f32(src + range.lowerBound * ld, range.count * cols, dst + range.lowerBound * cols)
        } else {
            for r in range { bf16_from_f32(src + r * ld, cols, dst + r * cols) }
        }
    }
}

/// The bf16 path's per-call state: its matmul primitives and the rounded operands. Grows to the
/// largest call; one call at a time.
final class BF16Scratch {
    let runner = MatmulRunner()
    private(set) var first: AlignedBuffer<UInt16>
    private(set) var second: AlignedBuffer<UInt16>
    /// A dense fp32 output, for outputs with a row stride (oneDNN 2.6's brgemm matmul takes only
    /// dense outputs and falls back to its reference kernel otherwise).
    private(set) var output: AlignedBuffer<Float>

    init() throws {
        first = try AlignedBuffer(count: 0)
        second = try AlignedBuffer(count: 0)
        output = try AlignedBuffer(count: 0)
    }

    func reserveOutput(_ n: Int) throws {
        if n > output.count { output = try AlignedBuffer(count: n + n / 4) }
    }

    /// Room for `a` and `b` bf16 values in `first` and `second`.
    func reserve(_ a: Int, _ b: Int = 0) throws {
        if a > first.count { first = try AlignedBuffer(count: a + a / 4) }
        if b > second.count { second = try AlignedBuffer(count: b + b / 4) }
    }
}

/// A linear layer's weight W [N, K] in bf16: packed for the forward (B = W^T) and, in training,
/// for the input gradient (B = W), repacked from the fp32 master weight by `refresh`.
final class BF16Weight: @unchecked Sendable {
    let forward: PackedMatrix
    let backward: PackedMatrix?
    /// The fp32 weight these were rounded from (training only; inference keeps no fp32 copy).
    let master: UnsafePointer<Float>?
    var k: Int { forward.k }
    var n: Int { forward.n }

    /// Rounds `weight` ([n, k] row-major, row stride `ld`) once. `training` keeps the pointer
    /// (the weight must outlive this) and packs the backward form too.
    init(_ weight: UnsafePointer<Float>, n: Int, k: Int, ld: Int, training: Bool) throws {
        forward = try PackedMatrix(weight, sourceType: .f32, transposed: true, ld: ld, k: k, n: n, type: .bf16)
        backward = training
            ? try PackedMatrix(weight, sourceType: .f32, transposed: false, ld: ld, k: n, n: k, type: .bf16) : nil
        master = training ? weight : nil
    }

    /// Rounds the master weight again (after an optimizer step).
    func refresh() throws {
        guard let master else { return }
        try forward.repack(from: master)
        try backward?.repack(from: master)
    }
}

/// out[M, N] (row stride ldOut) = bf16(inp[M, K]) * bf16(W)^T (+ bias) (+ GELU), fp32 out.
/// `rounded`: inp already rounded (dense [M, K]); `inp` is then not read.
func bf16LinearForward(
    _ w: BF16Weight, inp: UnsafePointer<Float>, rows m: Int, ldInp: Int, out: UnsafeMutablePointer<Float>, ldOut: Int,
    bias: UnsafePointer<Float>?, gelu: Bool = false, rounded: UnsafePointer<UInt16>? = nil, scratch: BF16Scratch
) throws {
    guard m > 0 else { return }
    let a: UnsafePointer<UInt16>
    if let rounded {
        a = rounded
    } else {
        try scratch.reserve(m * w.k)
        convertToBF16(inp, rows: m, cols: w.k, ld: ldInp, into: scratch.first.pointer)
        a = UnsafePointer(scratch.first.pointer)
    }
    let dense = ldOut == w.n
    if !dense { try scratch.reserveOutput(m * w.n) }
    let c = dense ? out : scratch.output.pointer
    try scratch.runner.run(
        MatmulShape(m: m, k: w.k, n: w.n, src: .bf16, lda: w.k, weights: .packed(.bf16), ldc: w.n,
                    bias: bias != nil, gelu: gelu),
        a: a, packed: w.forward, bias: bias, c: c)
    if !dense {
        let n = w.n
        Parallel.forRanges(m, grain: Swift.max(1, 65536 / n)) { rows in
            for r in rows { (out + r * ldOut).update(from: c + r * n, count: n) }
        }
    }
}

/// Backward of `bf16LinearForward` (without GELU), with `linearBackward`'s arguments and
/// accumulation rules (Gemm.swift); `w` must be packed for training. `rounded`: the forward's
/// input already rounded (dense [M, K]); `inp` is then not read.
func bf16LinearBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight w: BF16Weight,
    m: Int, k: Int, n: Int, ldDout: Int? = nil, ldInp: Int? = nil, ldDinp: Int? = nil,
    accumulateInput: Bool = false, rounded: UnsafePointer<UInt16>? = nil, scratch: BF16Scratch
) throws {
    guard m > 0, n > 0, k > 0 else { return }
    guard let wb = w.backward, w.k == k, w.n == n else {
        throw SentimentError(.internal, "bf16 weight \(w.n) x \(w.k) is not packed for this backward (\(n) x \(k))")
    }
    try scratch.reserve(m * n, rounded == nil ? m * k : 0)
    let dy = scratch.first.pointer
    convertToBF16(dout, rows: m, cols: n, ld: ldDout ?? n, into: dy)
    if let dinp {
        guard (ldDinp ?? k) == k else { throw SentimentError(.internal, "bf16 input gradients must be dense") }
        try scratch.runner.run(
            MatmulShape(m: m, k: n, n: k, src: .bf16, lda: n, weights: .packed(.bf16), ldc: k, accumulate: accumulateInput),
            a: dy, packed: wb, c: dinp)
    }
    let x: UnsafePointer<UInt16>
    if let rounded {
        x = rounded
    } else {
        convertToBF16(inp, rows: m, cols: k, ld: ldInp ?? k, into: scratch.second.pointer)
        x = UnsafePointer(scratch.second.pointer)
    }
    // dW[N, K] += dout^T [N, M] * inp [M, K]: A is dout read transposed.
    try scratch.runner.run(
        MatmulShape(m: n, k: m, n: k, src: .bf16, lda: n, transA: true, weights: .plain(.bf16, ld: k), ldc: k,
                    accumulate: true),
        a: dy, b: x, c: dweight)
    if let dbias { addColumnSums(dbias, of: dout, rows: m, cols: n, ld: ldDout ?? n) }
}
