// The input channels an int8 layer keeps in fp32: an outlier split in the style of LLM.int8(),
// with the channels fixed by calibration (Model/Calibration.swift) rather than found per batch.
//
// A few input channels carry values far larger than the rest. Their weight columns are taken out
// of the int8 matrix (zero there, so the per-row weight scales ignore them) and their inputs out
// of the quantized rows (multiplier 0, so each token's step size ignores them too). Each output
// row then adds
//   y[m, n] += sum_j x[m, c_j] * W[n, c_j]
// in fp32, j in a fixed order, so a row's result does not depend on the other rows of the batch.

/// The fp32 part of an int8 layer: input channels `columns` and their weight columns, stored
/// transposed ([count, N]: row j holds W[:, columns[j]]) so that each output row adds `count`
/// contiguous scaled rows (`int8_dequant` in CKernels, with the dequantization). Immutable after init.
final class OutlierColumns: @unchecked Sendable {
    let count: Int, n: Int
    let columns: AlignedBuffer<Int32>
    let weights: AlignedBuffer<Float>

    /// Most channels a layer may keep in fp32.
    static let maxCount = 64

    /// Whether `columns` can be a layer's fp32 channels: at most `maxCount`, strictly
    /// increasing, each one of its `k` inputs.
    static func areValid(_ columns: [Int], inputs k: Int) -> Bool {
        columns.count <= Swift.min(k, maxCount) && columns.allSatisfy({ (0..<k).contains($0) })
            && zip(columns, columns.dropFirst()).allSatisfy({ $0 < $1 })
    }

    /// Columns `columns` (`areValid`) of `weight` ([N, K] row-major).
    init(columns: [Int], weight: UnsafePointer<Float>, n: Int, k: Int) throws {
        guard OutlierColumns.areValid(columns, inputs: k) else {
            throw SentimentError.invalidArgument(
                "int8 outlier columns must be at most \(OutlierColumns.maxCount) increasing input channels of \(k)")
        }
        count = columns.count
        self.n = n
        self.columns = try AlignedBuffer(count: count)
        weights = try AlignedBuffer(count: count * n)
        for (j, c) in columns.enumerated() {
            self.columns.pointer[j] = Int32(c)
            for r in 0..<n { weights.pointer[j * n + r] = weight[r * k + c] }
        }
    }

    /// Parts with the same columns stacked along N (Q | K | V).
    init(stacking parts: [OutlierColumns]) throws {
        let first = parts.first
        count = first?.count ?? 0
        n = parts.reduce(0) { $0 + $1.n }
        columns = try AlignedBuffer(count: count)
        weights = try AlignedBuffer(count: count * n)
        guard let first else { return }
        columns.pointer.update(from: first.columns.pointer, count: count)
        for p in parts where p.count != count || !(0..<count).allSatisfy({ p.columns.pointer[$0] == first.columns.pointer[$0] }) {
            throw SentimentError(.internal, "stacked int8 matrices keep different outlier columns")
        }
        var r0 = 0
        for p in parts {
            for j in 0..<count { (weights.pointer + j * n + r0).update(from: p.weights.pointer + j * p.n, count: p.n) }
            r0 += p.n
        }
    }

    /// Rows `range` of the weights (a part of a stacked matrix), without copying.
    func view(_ range: Range<Int>) -> OutlierView {
        OutlierView(columns: columns.pointer, weights: weights.pointer + range.lowerBound, ld: n, count: count)
    }

    var columnList: [Int] { view(0..<n).columnList }
}

/// Rows of an `OutlierColumns` as the int8 kernels read them (valid while it lives).
struct OutlierView {
    let columns: UnsafePointer<Int32>
    /// [count, ld]: row j holds the weights of column columns[j] for this view's outputs.
    let weights: UnsafePointer<Float>
    let ld: Int, count: Int

    /// xo[j] = x[columns[j]]: a row's outlier inputs, before it is quantized.
    @inline(__always)
    func gather(_ x: UnsafePointer<Float>, into xo: UnsafeMutablePointer<Float>) {
        for j in 0..<count { xo[j] = x[Int(columns[j])] }
    }

    /// The weights as [rows, count] (Hugging Face [out, in] order), for a checkpoint.
    func weightValues(rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * count)
        for r in 0..<rows { for j in 0..<count { out[r * count + j] = weights[j * ld + r] } }
        return out
    }

    var columnValues: [Int32] { Array(UnsafeBufferPointer(start: columns, count: count)) }
    var columnList: [Int] { columnValues.map { Int($0) } }
}
