// Dropout (inverted, as torch.nn.Dropout in training mode): each element is zeroed with
// probability p and the kept ones are scaled by 1 / (1 - p).
//
// The mask is not stored: element (row, col) is kept when a counter-based hash of
// (key, row, col) is at or above p * 2^32. Forward and backward recompute the same mask from
// the same key, any thread may handle any row, and the result depends only on the key (which
// the trainer derives from the run seed and the step), never on the thread count or schedule.
//
//   dropoutForward:  x[r, c]  = keep(r, c) ? x[r, c] * scale : 0      (in place)
//   dropoutBackward: dx[r, c] = keep(r, c) ? dx[r, c] * scale : 0     (the same operation)

/// One dropout site's mask for one step.
public struct DropoutMask: Sendable, Equatable {
    /// Drop probability.
    public let p: Float
    /// Per-call key (derive a fresh one per site and step).
    public let key: UInt64
    let threshold: UInt32
    let scale: Float

    /// nil when `p` is 0 (nothing to do).
    public init?(p: Float, key: UInt64) {
        guard p > 0 else { return nil }
        self.p = Swift.min(p, 1)
        self.key = key
        threshold = p >= 1 ? UInt32.max : UInt32(Swift.min(Double(p) * 4_294_967_296.0, 4_294_967_295.0).rounded())
        scale = p >= 1 ? 0 : 1 / (1 - p)
    }

    /// The key of row `row` (SplitMix64 finalizer of key + row * golden ratio).
    @inline(__always) func rowKey(_ row: Int) -> UInt64 {
        var z = key &+ UInt64(truncatingIfNeeded: row) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Keep mask of 16 columns starting at `col` of a row with key `rk`.
    @inline(__always) func keep16(rowKey rk: UInt64, col: Int) -> SIMDMask<SIMD16<Int32>> {
        let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        var h = (SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: col)) &+ lanes)
            ^ SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: rk))
        h = fmix32(h) ^ SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: rk >> 32))
        h = fmix32(h)
        return h .>= SIMD16<UInt32>(repeating: threshold)
    }

    /// x[0..<n] of row `row`: dropped elements zeroed, kept ones scaled (in place).
    @inline(__always) func applyRow(_ x: UnsafeMutablePointer<Float>, count n: Int, row: Int) {
        let rk = rowKey(row)
        let s = F16(repeating: scale), zero = F16()
        var c = 0
        while c + 16 <= n {
            store16((load16(x + c) * s).replacing(with: zero, where: .!keep16(rowKey: rk, col: c)), x + c)
            c += 16
        }
        if c < n {
            let v = (loadPartial16(x + c, n - c, fill: 0) * s).replacing(with: zero, where: .!keep16(rowKey: rk, col: c))
            storePartial16(v, x + c, n - c)
        }
    }
}

/// MurmurHash3's 32-bit finalizer on 16 lanes.
@inline(__always) func fmix32(_ x: SIMD16<UInt32>) -> SIMD16<UInt32> {
    var h = x
    h ^= h &>> 16
    h &*= SIMD16<UInt32>(repeating: 0x85EB_CA6B)
    h ^= h &>> 13
    h &*= SIMD16<UInt32>(repeating: 0xC2B2_AE35)
    h ^= h &>> 16
    return h
}

/// Dropout in place over `rows` x `cols` (row stride `ld`, default `cols`); row r uses the
/// mask row `firstRow + r`.
public func dropoutForward(
    _ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil, mask: DropoutMask, firstRow: Int = 0
) {
    guard rows > 0, cols > 0 else { return }
    let stride = ld ?? cols
    Parallel.forRanges(rows, grain: Swift.max(1, 16384 / cols)) { range in
        for r in range { mask.applyRow(x + r * stride, count: cols, row: firstRow + r) }
    }
}

/// Dropout in place over `rowIds.count` rows of `cols` (row stride `cols`); row r uses the mask
/// row `rowIds[r]` (e.g. the [CLS] token rows of a packed batch).
public func dropoutForward(
    _ x: UnsafeMutablePointer<Float>, rowIds: UnsafeBufferPointer<Int>, cols: Int, mask: DropoutMask
) {
    for (r, row) in rowIds.enumerated() { mask.applyRow(x + r * cols, count: cols, row: row) }
}

/// The gradient through dropout: the same mask and scale applied to `dx` (in place).
public func dropoutBackward(
    _ dx: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil, mask: DropoutMask, firstRow: Int = 0
) {
    dropoutForward(dx, rows: rows, cols: cols, ld: ld, mask: mask, firstRow: firstRow)
}

/// The gradient through `dropoutForward(_:rowIds:cols:mask:)`: the same mask rows applied to `dx`.
public func dropoutBackward(
    _ dx: UnsafeMutablePointer<Float>, rowIds: UnsafeBufferPointer<Int>, cols: Int, mask: DropoutMask
) {
    dropoutForward(dx, rowIds: rowIds, cols: cols, mask: mask)
}
