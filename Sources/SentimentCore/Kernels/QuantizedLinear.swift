// Int8 linear layers for inference: our AVX-512 VNNI kernel (CKernels) where the CPU has VNNI and
// the shape fits, else oneDNN's u8 x s8 -> s32 matmul primitive (Matmul.swift), which runs on AMX
// tiles where the CPU has them, and on VNNI or AVX2 otherwise.
//
// Weights: int8 per output channel, symmetric:   W[n, k] ~ sw[n] * qw[n, k],        qw in -127...127.
// Activations: dynamic per row (token), asymmetric u8:  x[m, k] ~ sx[m] * (qx[m, k] - zx[m]), qx in 0...255.
// Then
//   y[m, n] = sx[m] * sw[n] * (acc[m, n] - zx[m] * colsum[n]) + bias[n]
// with acc = qx * qw^T accumulated in s32 and colsum[n] = sum_k qw[n, k] precomputed.
// With smoothing (SmoothQuant, Model/Calibration.swift) a layer also has per-input-channel factors
// s[k]: its weight columns are multiplied by s before quantizing, and each input row is
// multiplied by 1/s as it is quantized, so x W^T is unchanged and activation outliers move into
// the weights. A layer may also keep a few input channels in fp32 (OutlierColumns.swift).
// The s32 accumulation is exact (|acc| <= K * 255 * 127 < 2^31 for K < 66,000; both kernels use
// vpdpbusd, which does not saturate, and the kernel tests check them against an exact reference),
// and every other step works on one row, so a row's output does not depend on the other rows of
// the batch: batch-1 and batch-32 logits are bit-identical.
//
// Both compute the same exact s32 products, and the rest is ours: one C epilogue
// (CKernels/int8_dequant.c: dequantize, bias, the fp32 outlier products, then the GELU here
// through a callback), which the VNNI kernel applies to each register tile while it is in L1
// and the oneDNN path to the finished products. So the two give bit-identical logits (tested).
// Our kernel (Sources/CKernels/vnni_gemm.c) runs 2-4x faster than oneDNN's dnnl_gemm_u8s8s32
// for the small-M, K = 384/768 shapes of batch-1 inference and needs the weights in its VNNI
// layout (N % 16 == 0, K % 4 == 0). With AMX, other shapes and CPUs without
// VNNI, the weights are packed for the oneDNN primitive instead.
import CDnnl
import CKernels

#if canImport(Glibc)
import Glibc
#endif

/// Largest K for which the s32 accumulator cannot overflow (K * 255 * 127 < 2^31).
let int8MaxInnerDimension = Int(Int32.max) / (255 * 127)

/// Which GEMM runs the int8 layers.
public enum Int8Kernel {
    /// True when the VNNI kernel runs the int8 layers: this CPU has AVX-512 VNNI but no AMX (which
    /// oneDNN's primitive uses), `SENTIMENT_ISA` does not cap it below VNNI, and
    /// `SENTIMENT_INT8_GEMM` is not `onednn` (a switch for benchmarks and tests). Read once per process.
    public static let vnniPacked: Bool = {
        if let v = getenv("SENTIMENT_INT8_GEMM"), String(cString: v) == "onednn" { return false }
        guard let isa = try? ISA.active(), isa >= .avx512_vnni, isa < .amx else { return false }
        return int8_vnni_available() != 0
    }()

    /// Whether a [n, k] weight goes to the VNNI kernel (packed) or to oneDNN (row-major).
    static func packs(n: Int, k: Int, vnni: Bool = vnniPacked) -> Bool { vnni && n % 16 == 0 && k % 4 == 0 }
}

/// Aligned storage for int8 kernels (64 bytes, zero-filled). Throws `.noMemory`.
final class AlignedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count n: Int) throws {
        let raw = try MemoryGuard.allocateZeroed(count: n, stride: MemoryLayout<Element>.stride, what: "an int8 buffer of \(n) elements")
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(n, 1))
        count = n
    }

    deinit { free(pointer) }
}

// MARK: - Weights

/// A linear layer quantized per output channel: [N, K] int8 (Hugging Face [out, in] layout, or the
/// VNNI kernel's packed layout when `packed`), scales [N], column sums [N] and the float bias [N].
/// Immutable after init.
public final class Int8Matrix: @unchecked Sendable {
    public let n: Int, k: Int
    /// Weights in the VNNI kernel's layout (vnni_gemm.h) rather than row-major.
    let packed: Bool
    let weights: AlignedBuffer<Int8>
    let scales: AlignedBuffer<Float>
    let columnSums: AlignedBuffer<Int32>
    let bias: AlignedBuffer<Float>
    /// The smoothing factors s [K] the weight columns were multiplied by (nil: none), and what
    /// the inputs are multiplied by as they are quantized: 1/s, and 0 for the outlier columns.
    let smoothing: [Float]?
    let inputScale: AlignedBuffer<Float>?
    /// The input channels kept in fp32 (their int8 weight columns are zero).
    let outliers: OutlierColumns?
    /// Unless `packed`: the weights packed for oneDNN's matmul, for every row range `view` serves
    /// (the whole matrix, and each run of the parts it was stacked from).
    private var onednn: [Range<Int>: PackedMatrix] = [:]

    /// Quantizes `weight` ([N, K] row-major), its columns first multiplied by `smoothing` [K]
    /// when given and its `outlierColumns` kept in fp32 instead, and copies `bias` ([N]). Row n's
    /// scale is `knownScales[n]` when given (re-quantizing an int8 checkpoint's dequantized
    /// weights with its own scales, smoothing and outlier columns gives back exactly its
    /// integers), else max|W[n, :]| / 127 over the quantized columns (1 for a zero row).
    /// Throws `.invalidArgument` for a non-finite weight, scale or smoothing factor or bad outlier
    /// columns, `.format` for K too large. `vnni: false` keeps the weights row-major for oneDNN
    /// (tests compare the two kernels).
    public init(
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, n: Int, k: Int, knownScales: [Float]? = nil,
        smoothing: [Float]? = nil, outlierColumns: [Int] = [], vnni: Bool = Int8Kernel.vnniPacked
    ) throws {
        guard k <= int8MaxInnerDimension else {
            throw SentimentError.format("int8 linear layers need at most \(int8MaxInnerDimension) inputs, got \(k)")
        }
        if let s = knownScales, s.count != n {
            throw SentimentError.format("int8 weight has \(n) rows but \(s.count) scales")
        }
        self.n = n
        self.k = k
        packed = Int8Kernel.packs(n: n, k: k, vnni: vnni)
        let rowMajor = try AlignedBuffer<Int8>(count: n * k)
        scales = try AlignedBuffer(count: n)
        columnSums = try AlignedBuffer(count: n)
        self.bias = try AlignedBuffer(count: n)
        self.bias.pointer.update(from: bias, count: n)
        self.smoothing = smoothing
        if let smoothing {
            guard smoothing.count == k, smoothing.allSatisfy(Int8Scheme.isValidSmoothing) else {
                throw SentimentError.invalidArgument("int8 smoothing needs \(k) positive finite factors")
            }
        }
        let outliers = outlierColumns.isEmpty ? nil : try OutlierColumns(columns: outlierColumns, weight: weight, n: n, k: k)
        self.outliers = outliers
        var inputScale: AlignedBuffer<Float>? = nil
        if smoothing != nil || outliers != nil {
            let multiplier = try AlignedBuffer<Float>(count: k)
            for c in 0..<k { multiplier.pointer[c] = smoothing.map { 1 / $0[c] } ?? 1 }
            for c in outlierColumns { multiplier.pointer[c] = 0 }
            inputScale = multiplier
        }
        self.inputScale = inputScale
        let adjusted = try AlignedBuffer<Float>(count: inputScale == nil ? 0 : k)
        for r in 0..<n {
            var row = weight + r * k
            if inputScale != nil {
                for c in 0..<k { adjusted.pointer[c] = row[c] * (smoothing?[c] ?? 1) }
                for c in outlierColumns { adjusted.pointer[c] = 0 }
                row = UnsafePointer(adjusted.pointer)
            }
            let scale = knownScales?[r] ?? Int8Matrix.symmetricScale(row, count: k)
            guard scale.isFinite, scale > 0 else {
                throw SentimentError.invalidArgument("int8 weight row \(r) has scale \(scale); the weights must be finite")
            }
            scales.pointer[r] = scale
            columnSums.pointer[r] = quantizeSymmetric(row, count: k, scale: scale, into: rowMajor.pointer + r * k)
        }
        if packed {
            weights = try AlignedBuffer(count: n * k)
            int8_vnni_pack(rowMajor.pointer, n, k, weights.pointer)
        } else {
            weights = rowMajor
            try packForOneDNN([0..<n])
        }
    }

    /// Packs rows `ranges` of the row-major weights for oneDNN's matmul.
    private func packForOneDNN(_ ranges: [Range<Int>]) throws {
        for r in ranges {
            onednn[r] = try PackedMatrix(
                weights.pointer + r.lowerBound * k, sourceType: .s8, transposed: true, ld: k, k: k, n: r.count, type: .s8)
        }
    }

    /// Stacks matrices with the same K and smoothing row-wise ([sum N, K]). A packed part's 16-row
    /// blocks start at row * K like row-major rows, so packed parts stack by plain concatenation too.
    init(stacking parts: [Int8Matrix]) throws {
        let k = parts.first?.k ?? 0
        guard parts.allSatisfy({ $0.k == k }) else { throw SentimentError(.internal, "stacked int8 matrices differ in K") }
        let smoothing = parts.first?.smoothing
        self.smoothing = smoothing
        inputScale = parts.first?.inputScale
        guard parts.allSatisfy({ $0.smoothing == smoothing && ($0.outliers == nil) == (parts.first?.outliers == nil) }) else {
            throw SentimentError(.internal, "stacked int8 matrices differ in smoothing or outlier columns")
        }
        let outlierParts = parts.compactMap(\.outliers)
        outliers = outlierParts.isEmpty ? nil : try OutlierColumns(stacking: outlierParts)
        let packed = parts.first?.packed ?? false
        self.packed = packed
        guard parts.allSatisfy({ $0.packed == packed }) else {
            throw SentimentError(.internal, "stacked int8 matrices differ in layout")
        }
        n = parts.reduce(0) { $0 + $1.n }
        self.k = k
        weights = try AlignedBuffer(count: n * k)
        scales = try AlignedBuffer(count: n)
        columnSums = try AlignedBuffer(count: n)
        bias = try AlignedBuffer(count: n)
        var r = 0
        for p in parts {
            (weights.pointer + r * k).update(from: p.weights.pointer, count: p.n * k)
            (scales.pointer + r).update(from: p.scales.pointer, count: p.n)
            (columnSums.pointer + r).update(from: p.columnSums.pointer, count: p.n)
            (bias.pointer + r).update(from: p.bias.pointer, count: p.n)
            r += p.n
        }
        if !packed {
            // Every run of consecutive parts (Q | K | V: Q, K, V, QK, KV, QKV).
            var starts = [0]
            for p in parts { starts.append(starts[starts.count - 1] + p.n) }
            var ranges: [Range<Int>] = []
            for i in 0..<parts.count { for j in (i + 1)...parts.count { ranges.append(starts[i]..<starts[j]) } }
            try packForOneDNN(ranges)
        }
    }

    /// All rows as the kernels see them.
    var linear: Int8Linear { view(0..<n) }

    /// Rows `range` (e.g. the K | V part of a fused Q | K | V matrix), without copying. When
    /// `packed`, the range must start and end at multiples of 16 (the parts it was stacked from).
    func view(_ range: Range<Int>) -> Int8Linear {
        let r = range.lowerBound
        return Int8Linear(
            weights: weights.pointer + r * k, scales: scales.pointer + r, columnSums: columnSums.pointer + r,
            bias: bias.pointer + r, inputScale: inputScale.map { UnsafePointer($0.pointer) }, smoothing: smoothing,
            outliers: outliers?.view(range), n: range.count, k: k, packed: packed, onednn: onednn[range])
    }

    /// max|x| / 127 over `count` floats (1 when all are zero; NaN/inf pass through for the caller to reject).
    static func symmetricScale(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m: Float = 0
        for i in 0..<count {
            let a = abs(x[i])
            if !(a <= m) { m = a }   // also catches NaN
        }
        return m == 0 ? 1 : m / 127
    }
}

/// q[i] = clamp(round(x[i] / scale), -127, 127); returns the sum of q.
@discardableResult
func quantizeSymmetric(_ x: UnsafePointer<Float>, count: Int, scale: Float, into q: UnsafeMutablePointer<Int8>) -> Int32 {
    var sum: Int32 = 0
    for i in 0..<count {
        let v = Swift.min(127, Swift.max(-127, (x[i] / scale).rounded(.toNearestOrEven)))
        q[i] = Int8(v)
        sum += Int32(q[i])
    }
    return sum
}

/// Row `q` ([k] int8) of a weight as floats, as an fp32 load of an int8 checkpoint reads it and a
/// float save of an int8 model writes it: q * scale, divided by the column's smoothing factor,
/// then the fp32 outlier columns set to `outlierValue(j)`.
func dequantizeRow(
    _ q: UnsafePointer<Int8>, count k: Int, scale: Float, smoothing: [Float]?, outlierColumns: [Int],
    outlierValue: (Int) -> Float, into out: UnsafeMutablePointer<Float>
) {
    for i in 0..<k { out[i] = Float(q[i]) * scale }
    if let smoothing { for i in 0..<k { out[i] /= smoothing[i] } }
    for (j, c) in outlierColumns.enumerated() { out[c] = outlierValue(j) }
}

/// A row range of an `Int8Matrix` (pointers into it; valid while the matrix lives).
struct Int8Linear {
    let weights: UnsafePointer<Int8>       // [N, K]
    let scales: UnsafePointer<Float>       // [N]
    let columnSums: UnsafePointer<Int32>   // [N]
    let bias: UnsafePointer<Float>         // [N]
    /// What inputs are multiplied by as they are quantized (1/s, 0 for outlier columns), or nil.
    let inputScale: UnsafePointer<Float>?
    /// The smoothing factors s [K] (what a checkpoint stores), or nil.
    let smoothing: [Float]?
    /// The input channels computed in fp32, or nil.
    let outliers: OutlierView?
    let n: Int, k: Int
    /// `weights` are in the VNNI kernel's layout (see vnni_gemm.h), not row-major.
    let packed: Bool
    /// Unless `packed`: the same rows packed for oneDNN's matmul.
    let onednn: PackedMatrix?

    /// The int8 weights as bytes ([N, K] row-major), for safetensors "I8".
    var weightBytes: [UInt8] {
        guard packed else { return Array(UnsafeRawBufferPointer(start: weights, count: n * k)) }
        var out = [UInt8](repeating: 0, count: n * k)
        out.withUnsafeMutableBytes { raw in
            if let p = raw.baseAddress { int8_vnni_unpack(weights, n, k, p.assumingMemoryBound(to: Int8.self)) }
        }
        return out
    }
    var scaleValues: [Float] { Array(UnsafeBufferPointer(start: scales, count: n)) }
}

// MARK: - Activations

/// Quantizes one row of `count` floats, each first multiplied by `multiplier[i]` when given (a
/// smoothed layer's 1/s), to u8 with its own scale and zero point (range widened to include 0):
/// x ~ scale * (q - zero).
@inline(__always)
func quantizeRowAsymmetric(
    _ x: UnsafePointer<Float>, count: Int, multiplier: UnsafePointer<Float>? = nil, into q: UnsafeMutablePointer<UInt8>
) -> (scale: Float, zero: Int32) {
    let full = count & ~15
    var lo = F16(repeating: 0), hi = F16(repeating: 0)
    var c = 0
    if let m = multiplier {
        while c < full {
            let v = load16(x + c) * load16(m + c)
            lo = min16(lo, v)
            hi = max16(hi, v)
            c += 16
        }
    } else {
        while c < full {
            let v = load16(x + c)
            lo = min16(lo, v)
            hi = max16(hi, v)
            c += 16
        }
    }
    var mn = -hmax16(-lo), mx = hmax16(hi)
    for i in full..<count {
        let v = multiplier.map { x[i] * $0[i] } ?? x[i]
        mn = Swift.min(mn, v)
        mx = Swift.max(mx, v)
    }
    var scale = (mx - mn) / 255
    if !(scale > 0) || !scale.isFinite { scale = 1 }
    let inv = 1 / scale
    let zero = Swift.min(255, Swift.max(0, (-mn * inv).rounded(.toNearestOrEven)))
    // A plain loop that vectorizes (SIMD `.rounded()` and float->int conversions scalarize):
    // v in [0, 255] plus 1.5 * 2^23 rounds v to the nearest integer (ties to even) in the low mantissa bits.
    let magic: Float = 12_582_912
    if let m = multiplier {
        for i in 0..<count {
            let v = (x[i] * m[i]) * inv + zero
            let c = v < 0 ? 0 : (v > 255 ? 255 : v)
            q[i] = UInt8(truncatingIfNeeded: (c + magic).bitPattern)
        }
    } else {
        for i in 0..<count {
            let v = x[i] * inv + zero
            let c = v < 0 ? 0 : (v > 255 ? 255 : v)
            q[i] = UInt8(truncatingIfNeeded: (c + magic).bitPattern)
        }
    }
    return (scale, Int32(zero))
}

/// Per-call buffers of the int8 path (quantized inputs, row scales, s32 accumulators) and its
/// oneDNN primitives. Grows to the largest call; one call at a time.
final class Int8Scratch {
    let runner = MatmulRunner()
    private(set) var input: AlignedBuffer<UInt8>
    private(set) var rowScale: AlignedBuffer<Float>
    private(set) var rowZero: AlignedBuffer<Int32>
    private(set) var acc: AlignedBuffer<Int32>
    /// The outlier inputs of the rows in `input` ([rows, count]), and of the rows a requantizing
    /// call writes for the next layer (swapped in when it is done).
    private(set) var outlierInput: AlignedBuffer<Float>
    private(set) var outlierNext: AlignedBuffer<Float>

    init() throws {
        input = try AlignedBuffer(count: 0)
        rowScale = try AlignedBuffer(count: 0)
        rowZero = try AlignedBuffer(count: 0)
        acc = try AlignedBuffer(count: 0)
        outlierInput = try AlignedBuffer(count: 0)
        outlierNext = try AlignedBuffer(count: 0)
    }

    func reserve(rows: Int, k: Int, n: Int, outliers: Int = 0) throws {
        if rows * k > input.count { input = try AlignedBuffer(count: rows * k) }
        if rows > rowScale.count {
            rowScale = try AlignedBuffer(count: rows)
            rowZero = try AlignedBuffer(count: rows)
        }
        if rows * n > acc.count { acc = try AlignedBuffer(count: rows * n) }
        if rows * outliers > outlierInput.count {
            outlierInput = try AlignedBuffer(count: rows * outliers)
            outlierNext = try AlignedBuffer(count: rows * outliers)
        }
    }

    /// The next layer's outlier inputs become the current ones.
    func swapOutlierBuffers() { swap(&outlierInput, &outlierNext) }
}

/// What the int8 epilogue applies after dequantization and bias.
enum Int8Epilogue {
    case none
    /// Exact-erf GELU.
    case gelu

    /// The C epilogue's `activate`: applied to each block of output as it is written.
    var block: (@convention(c) (UnsafeMutablePointer<Float>?, Int, Int, Int) -> Void)? {
        switch self {
        case .none: nil
        case .gelu: geluBlock
        }
    }
}

/// GELU in place on `rows` x `cols` floats (row stride `ld`): a block of int8 output.
private let geluBlock: @convention(c) (UnsafeMutablePointer<Float>?, Int, Int, Int) -> Void = { out, ld, rows, cols in
    guard let out else { return }
    for r in 0..<rows { geluForward(out: out + r * ld, inp: out + r * ld, count: cols) }
}

/// Quantizes inp[M, K] (row stride `ldInp`) into `scratch.input` with per-row scales, as the
/// input of `w` (times its `inputScale` when smoothed).
func quantizeRows(_ inp: UnsafePointer<Float>, rows: Int, for w: Int8Linear, ldInp: Int, scratch: Int8Scratch) {
    let q = scratch.input.pointer, s = scratch.rowScale.pointer, z = scratch.rowZero.pointer
    let k = w.k, multiplier = w.inputScale, outliers = w.outliers, xo = scratch.outlierInput.pointer
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / Swift.max(k, 1))) { range in
        for r in range {
            if let outliers { outliers.gather(inp + r * ldInp, into: xo + r * outliers.count) }
            let (scale, zero) = quantizeRowAsymmetric(inp + r * ldInp, count: k, multiplier: multiplier, into: q + r * k)
            s[r] = scale
            z[r] = zero
        }
    }
}

/// out[M, N] (row stride `ldOut`) = dequant(quantized input in `scratch` * W^T) (+ bias) (+ GELU).
/// The input must already be in `scratch` (`quantizeRows`). With `requantizeFor` (the next
/// layer, whose K is this one's N), each finished output row is quantized back into
/// `scratch.input` as that layer's input. Throws `.internal` if oneDNN rejects the call.
func int8LinearQuantized(
    _ w: Int8Linear, rows m: Int, out: UnsafeMutablePointer<Float>, ldOut: Int,
    addBias: Bool, epilogue: Int8Epilogue = .none, requantizeFor next: Int8Linear? = nil, scratch: Int8Scratch
) throws {
    guard m > 0, w.n > 0 else { return }
    let n = w.n, k = w.k
    let requantize = next != nil
    let step = Int8Epilogue.Step(w, out: out, ldOut: ldOut, addBias: addBias, epilogue: epilogue, next: next, scratch: scratch)
    defer { if next?.outliers != nil { scratch.swapOutlierBuffers() } }
    let a = UnsafePointer(scratch.input.pointer), acc = scratch.acc.pointer
    let requantGrain = Swift.max(1, 32768 / n)
    // The VNNI kernel dequantizes (and applies the GELU to) each register tile as it finishes;
    // what is left is requantizing.
    if w.packed && m * n * k < 1 << 20 {
        // A few microseconds of work: not worth waking the other threads.
        step.withDequant(rows: 0) { int8_vnni_gemm_u8s8s32(a, k, m, w.weights, k, 0, n, acc, n, $0) }
        if requantize { step.requantize(rows: 0..<m) }
        return
    } else if w.packed && n / 16 >= 4 * Parallel.threads {
        // Columns split over the threads (16-column blocks). Requantizing needs whole rows, so it
        // is a second pass.
        Parallel.forRanges(n / 16, grain: 4) { blocks in
            let cols = (blocks.lowerBound * 16)..<(blocks.upperBound * 16)
            step.withDequant(rows: 0) {
                int8_vnni_gemm_u8s8s32(a, k, m, w.weights, k, cols.lowerBound, cols.upperBound, acc, n, $0)
            }
        }
    } else if w.packed {
        // Few columns: rows split over the threads, in whole register tiles.
        // (Requantizing here would overwrite input rows another thread may still be reading.)
        Parallel.forRanges(m, grain: 6) { rows in
            step.withDequant(rows: rows.lowerBound) {
                int8_vnni_gemm_u8s8s32(a + rows.lowerBound * k, k, rows.count, w.weights, k, 0, n, acc + rows.lowerBound * n, n, $0)
            }
        }
    } else {
        guard let matrix = w.onednn else { throw SentimentError(.internal, "int8 rows not packed for oneDNN") }
        try scratch.runner.run(
            MatmulShape(m: m, k: k, n: n, src: .u8, lda: k, weights: .packed(.s8), dst: .s32, ldc: n),
            a: a, packed: matrix, c: acc)
        // The GEMM is complete, so each thread can requantize its own finished rows.
        Parallel.forRanges(m, grain: requantGrain) { rows in
            step.withDequant(rows: 0) { int8_dequantize(acc, n, rows.lowerBound, rows.upperBound, 0, n, $0) }
            if requantize { step.requantize(rows: rows) }
        }
        return
    }
    // The VNNI paths above: requantizing needs whole rows and every thread's GEMM done.
    if requantize { Parallel.forRanges(m, grain: requantGrain) { step.requantize(rows: $0) } }
}

extension Int8Epilogue {
    /// What follows the s32 GEMM, on any rectangle of it: the C epilogue (dequantize, add the
    /// bias and the fp32 outlier products, then the GELU through a callback); and requantizing
    /// finished rows as the next layer's input.
    struct Step {
        let n: Int
        let rowScale: UnsafeMutablePointer<Float>, rowZero: UnsafeMutablePointer<Int32>
        let input: UnsafeMutablePointer<UInt8>
        let scales: UnsafePointer<Float>, columnSums: UnsafePointer<Int32>, bias: UnsafePointer<Float>?
        let out: UnsafeMutablePointer<Float>, ldOut: Int
        let epilogue: Int8Epilogue
        /// This layer's fp32 columns and the outlier inputs of its rows.
        let outliers: OutlierView?, outlierInput: UnsafePointer<Float>
        /// The next layer's input multiplier and fp32 columns, which `requantize` applies and gathers.
        let nextInputScale: UnsafePointer<Float>?
        let nextOutliers: OutlierView?, outlierNext: UnsafeMutablePointer<Float>

        init(_ w: Int8Linear, out: UnsafeMutablePointer<Float>, ldOut: Int, addBias: Bool, epilogue: Int8Epilogue,
             next: Int8Linear? = nil, scratch: Int8Scratch) {
            n = w.n
            rowScale = scratch.rowScale.pointer
            rowZero = scratch.rowZero.pointer
            input = scratch.input.pointer
            scales = w.scales
            columnSums = w.columnSums
            bias = addBias ? w.bias : nil
            self.out = out
            self.ldOut = ldOut
            self.epilogue = epilogue
            outliers = w.outliers
            outlierInput = UnsafePointer(scratch.outlierInput.pointer)
            nextInputScale = next?.inputScale
            nextOutliers = next?.outliers
            outlierNext = scratch.outlierNext.pointer
        }

        /// Calls `body` with the C epilogue of rows `r0...` (its row 0 is row r0 of the layer).
        func withDequant(rows r0: Int, _ body: (UnsafePointer<int8_dequant>) -> Void) {
            let count = outliers?.count ?? 0
            var d = int8_dequant(
                row_scale: rowScale + r0, row_zero: rowZero + r0, col_scale: scales, col_sum: columnSums, bias: bias,
                outlier_x: outlierInput + r0 * count, outlier_w: outliers?.weights, outlier_count: count,
                outlier_ld: outliers?.ld ?? 0, out: out + r0 * ldOut, ldo: ldOut, activate: epilogue.block)
            withUnsafePointer(to: &d) { body($0) }
        }

        /// Quantizes finished rows of out into the input buffer (N becomes the next layer's K),
        /// replacing their scales and zero points. Only after every column of these rows is finished.
        func requantize(rows: Range<Int>) {
            for r in rows {
                if let o = nextOutliers { o.gather(out + r * ldOut, into: outlierNext + r * o.count) }
                let (scale, zero) = quantizeRowAsymmetric(out + r * ldOut, count: n, multiplier: nextInputScale,
                                                          into: input + r * n)
                rowScale[r] = scale
                rowZero[r] = zero
            }
        }
    }
}

/// out[M, N] = int8(inp[M, K]) * W^T (+ bias) (+ GELU): quantize, GEMM, dequantize in one call.
func int8Linear(
    _ w: Int8Linear, inp: UnsafePointer<Float>, rows m: Int, ldInp: Int? = nil,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, addBias: Bool = true, epilogue: Int8Epilogue = .none,
    scratch: Int8Scratch
) throws {
    try scratch.reserve(rows: m, k: w.k, n: w.n, outliers: w.outliers?.count ?? 0)
    quantizeRows(inp, rows: m, for: w, ldInp: ldInp ?? w.k, scratch: scratch)
    try int8LinearQuantized(w, rows: m, out: out, ldOut: ldOut ?? w.n, addBias: addBias, epilogue: epilogue, scratch: scratch)
}
