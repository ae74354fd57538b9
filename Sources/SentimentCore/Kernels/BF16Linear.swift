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

/// `given` when the caller already rounded the operand, else `src` rounded into `buffer`
/// (which the caller has reserved).
private func roundedOperand(
    _ given: UnsafePointer<UInt16>?, _ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int,
    into buffer: AlignedBuffer<UInt16>
) -> UnsafePointer<UInt16> {
    if let given { return given }
    convertToBF16(src, rows: rows, cols: cols, ld: ld, into: buffer.pointer)
    return UnsafePointer(buffer.pointer)
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
/// for the input gradient (B = W). Inference packs the forward form once. Training keeps the fp32
/// master weight, packs each form on first use, and packs it again on the first use after
/// `refresh` (the optimizer changed the master), so a form no step uses costs nothing.
/// A weight may stack several weights along N (`init(stacking:)`: Q | K | V as one matmul).
/// Inference forms never change (safe to share); training ones change on use (one call at a time).
final class BF16Weight: @unchecked Sendable {
    let k: Int, n: Int
    /// The weights stacked, with their biases, in N order (nil: a single weight).
    let stack: Stack?
    /// The fp32 weight the packs are rounded from (training only), [n, k] with row stride `ld`.
    private let master: UnsafePointer<Float>?
    private let ld: Int
    private var forwardPack: PackedMatrix?, backwardPack: PackedMatrix?
    /// Whether each pack holds the master's current values.
    private var forwardFresh = false, backwardFresh = false

    /// Several [rows_i, K] weights and their biases, copied into one [N, K] fp32 matrix and one
    /// [N] bias (gathered again whenever the packs are refreshed).
    final class Stack {
        let parts: [(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int)]
        let weights: AlignedBuffer<Float>
        let bias: AlignedBuffer<Float>
        let k: Int
        /// Where each part's rows start, and N at the end.
        let offsets: [Int]
        private var fresh = false

        init(_ parts: [(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int)], k: Int) throws {
            self.parts = parts
            self.k = k
            var offsets = [0]
            for p in parts { offsets.append(offsets[offsets.count - 1] + p.rows) }
            self.offsets = offsets
            let n = offsets[offsets.count - 1]
            weights = try AlignedBuffer(count: n * k)
            bias = try AlignedBuffer(count: n)
            gather()
        }


        func gather() {
            guard !fresh else { return }
            var row = 0
            for p in parts {
                (weights.pointer + row * k).update(from: p.weight, count: p.rows * k)
                (bias.pointer + row).update(from: p.bias, count: p.rows)
                row += p.rows
            }
            fresh = true
        }

        func markStale() { fresh = false }
    }

    /// `weight` is [n, k] row-major with row stride `ld`. `training` keeps the pointer (the
    /// weight must outlive this) and packs the backward form too.
    init(_ weight: UnsafePointer<Float>, n: Int, k: Int, ld: Int, training: Bool) throws {
        self.k = k
        self.n = n
        self.ld = ld
        stack = nil
        master = training ? weight : nil
        if !training { (forwardPack, forwardFresh) = (try Self.pack(weight, n: n, k: k, ld: ld, forward: true), true) }
    }

    /// The `parts` ([rows_i, k] weights, row stride k, with their [rows_i] biases) stacked along
    /// N. `training` keeps the pointers and gathers them again after each `refresh`.
    init(stacking parts: [(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int)], k: Int, training: Bool)
        throws
    {
        let s = try Stack(parts, k: k)
        self.k = k
        n = parts.reduce(0) { $0 + $1.rows }
        ld = k
        stack = s
        master = training ? UnsafePointer(s.weights.pointer) : nil
        if !training {
            (forwardPack, forwardFresh) = (try Self.pack(s.weights.pointer, n: n, k: k, ld: k, forward: true), true)
        }
    }

    private static func pack(_ w: UnsafePointer<Float>, n: Int, k: Int, ld: Int, forward: Bool) throws -> PackedMatrix {
        forward
            ? try PackedMatrix(w, sourceType: .f32, transposed: true, ld: ld, k: k, n: n, type: .bf16)
            : try PackedMatrix(w, sourceType: .f32, transposed: false, ld: ld, k: n, n: k, type: .bf16)
    }

    /// The bias stacked with the weights (nil for a single weight, whose bias is the layer's).
    var stackedBias: UnsafePointer<Float>? { stack.map { UnsafePointer($0.bias.pointer) } }

    /// B = W^T for the forward, rounded from the current master.
    func forward() throws -> PackedMatrix { try current(&forwardPack, &forwardFresh, forward: true) }

    /// B = W for the input gradient (training only).
    func backward() throws -> PackedMatrix { try current(&backwardPack, &backwardFresh, forward: false) }

    private func current(_ pack: inout PackedMatrix?, _ fresh: inout Bool, forward: Bool) throws -> PackedMatrix {
        if let p = pack, fresh { return p }
        guard let master else { throw SentimentError(.internal, "bf16 weight \(n) x \(k) was packed for inference only") }
        stack?.gather()
        let p: PackedMatrix
        if let old = pack {
            try old.repack(from: master)
            p = old
        } else {
            p = try Self.pack(master, n: n, k: k, ld: ld, forward: forward)
            pack = p
        }
        fresh = true
        return p
    }

    /// The master changed (an optimizer step): each form is rounded again on its next use.
    func refresh() {
        guard master != nil else { return }
        forwardFresh = false
        backwardFresh = false
        stack?.markStale()
    }

    /// The weight as an HF [n, k] fp32 tensor (exact: the bf16 values).
    func unpacked() throws -> Tensor { try forward().unpacked() }
}

/// out[M, N] (row stride ldOut) = bf16(inp[M, K]) * bf16(W)^T (+ bias) (+ GELU), fp32 out.
/// `rounded`: inp already rounded (dense [M, K]); `inp` is then not read.
func bf16LinearForward(
    _ w: BF16Weight, inp: UnsafePointer<Float>, rows m: Int, ldInp: Int, out: UnsafeMutablePointer<Float>, ldOut: Int,
    bias: UnsafePointer<Float>?, gelu: Bool = false, rounded: UnsafePointer<UInt16>? = nil, scratch: BF16Scratch
) throws {
    guard m > 0 else { return }
    try scratch.reserve(rounded == nil ? m * w.k : 0)
    let a = roundedOperand(rounded, inp, rows: m, cols: w.k, ld: ldInp, into: scratch.first)
    let dense = ldOut == w.n
    if !dense { try scratch.reserveOutput(m * w.n) }
    let c = dense ? out : scratch.output.pointer
    try scratch.runner.run(
        MatmulShape(m: m, k: w.k, n: w.n, src: .bf16, lda: w.k, weights: .packed(.bf16), ldc: w.n,
                    bias: bias != nil, gelu: gelu),
        a: a, packed: try w.forward(), bias: bias, c: c)
    if !dense {
        let n = w.n
        Parallel.forRanges(m, grain: Swift.max(1, 65536 / n)) { rows in
            for r in rows { (out + r * ldOut).update(from: c + r * n, count: n) }
        }
    }
}

/// Backward of `bf16LinearForward` (without GELU), with `linearBackward`'s arguments and
/// accumulation rules (Gemm.swift); `w` must be packed for training. `grads` takes d(weight) and
/// d(bias) of each of `w`'s stacked parts in order (one pair for a single weight).
/// `rounded`: the forward's input already rounded (dense [M, K]); `inp` is then not read.
/// `roundedDout`: dout already rounded (dense [M, N]); dout is then read only for d(bias).
func bf16LinearBackward(
    dinp: UnsafeMutablePointer<Float>?, grads: [(weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?)],
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight w: BF16Weight,
    m: Int, k: Int, n: Int, ldDout: Int? = nil, ldInp: Int? = nil, ldDinp: Int? = nil,
    accumulateInput: Bool = false, rounded: UnsafePointer<UInt16>? = nil, roundedDout: UnsafePointer<UInt16>? = nil,
    scratch: BF16Scratch
) throws {
    guard m > 0, n > 0, k > 0 else { return }
    let offsets = w.stack?.offsets ?? [0, n]
    guard w.k == k, w.n == n, grads.count == offsets.count - 1 else {
        throw SentimentError(.internal, "bf16 weight \(w.n) x \(w.k) does not match this backward (\(n) x \(k), \(grads.count) parts)")
    }
    try scratch.reserve(roundedDout == nil ? m * n : 0, rounded == nil ? m * k : 0)
    let dy = roundedOperand(roundedDout, dout, rows: m, cols: n, ld: ldDout ?? n, into: scratch.first)
    if let dinp {
        guard (ldDinp ?? k) == k else { throw SentimentError(.internal, "bf16 input gradients must be dense") }
        try scratch.runner.run(
            MatmulShape(m: m, k: n, n: k, src: .bf16, lda: n, weights: .packed(.bf16), ldc: k, accumulate: accumulateInput),
            a: dy, packed: try w.backward(), c: dinp)
    }
    let x = roundedOperand(rounded, inp, rows: m, cols: k, ld: ldInp ?? k, into: scratch.second)
    // dW[N, K] += dout^T [N, M] * inp [M, K]: A is dout read transposed. Stacked parts: one
    // matmul into scratch, then each part's rows added into its gradient.
    let single = grads.count == 1
    if !single { try scratch.reserveOutput(n * k) }
    let dw = single ? grads[0].weight : scratch.output.pointer
    try scratch.runner.run(
        MatmulShape(m: n, k: m, n: k, src: .bf16, lda: n, transA: true, weights: .plain(.bf16, ld: k), ldc: k,
                    accumulate: single),
        a: dy, b: x, c: dw)
    for (i, g) in grads.enumerated() {
        let lo = offsets[i], rows = offsets[i + 1] - lo
        if !single {
            let src = UnsafePointer(dw + lo * k)
            Parallel.forRanges(rows * k, grain: 1 << 16) { r in
                for j in r { g.weight[j] += src[j] }
            }
        }
        if let db = g.bias { addColumnSums(db, of: dout + lo, rows: m, cols: rows, ld: ldDout ?? n) }
    }
}
