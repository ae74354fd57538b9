// Multi-head self-attention over packed sequences (no padding, no mask):
// for every sequence s (rows offsets[s]..<offsets[s+1]) and head h (columns h*hd..<(h+1)*hd),
//   P = softmax(Q_h K_h^T * scale)      [L, L]
//   out_h = P V_h                        [L, hd]
// Q, K, V come from one fused projection: qkv rows are [Q (D) | K (D) | V (D)].
// Work is spread over (sequence, head) pairs; each thread has its own scratch slot.
import CDnnl

/// Scratch floats one thread needs for sequences up to `maxLength` tokens.
public func attentionScratchPerThread(maxLength: Int, headDim: Int) -> Int {
    let lp = roundUp16(Swift.max(maxLength, 1))
    return headDim * lp + 4 * lp + 64
}

/// Which query rows attention is computed for.
public enum AttentionQueries {
    /// Every token: queries are the Q columns of `qkv`, output rows match `qkv` rows ([T, D]).
    case all
    /// Only the first token of each sequence ([CLS]): queries are rows of `q` ([nSeq, D], row
    /// stride D) and the output is [nSeq, D]. Used by the last layer at inference.
    case first(q: UnsafePointer<Float>)
}

/// Attention forward over a packed batch.
/// - qkv: [T, 3D]; out: [T, D] (or [nSeq, D] for `.first`).
/// - offsets: nSeq + 1 row offsets into qkv.
/// - probs: if given (training), receives P for every (sequence, head) at
///   `probs + probOffsets[s] + h * L_s * L_s` (row-major [L_s, L_s]).
/// - scratch: `threads * perThread` floats (see `attentionScratchPerThread`), threads = `Parallel.threads`.
/// - dropout (training): applied to P after it is stored in `probs`; query row i of sequence s,
///   head h uses mask row (offsets[s] + i) * numHeads + h (what `attentionBackward` recomputes).
public func attentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, queries: AttentionQueries = .all,
    offsets: UnsafeBufferPointer<Int>, numHeads: Int, headDim: Int,
    probs: UnsafeMutablePointer<Float>? = nil, probOffsets: UnsafeBufferPointer<Int>? = nil,
    dropout: DropoutMask? = nil,
    scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int
) {
    let nSeq = offsets.count - 1
    guard nSeq > 0, numHeads > 0, headDim > 0 else { return }
    let d = numHeads * headDim, ld = 3 * d
    let scale = 1 / Float(headDim).squareRoot()
    Parallel.forEach(nSeq * numHeads) { task in
        let s = task / numHeads, h = task - s * numHeads
        let row0 = offsets[s], len = offsets[s + 1] - row0
        let slot = scratch + Int(omp_get_thread_num()) * scratchPerThread
        let k = qkv + row0 * ld + d + h * headDim
        let v = k + d
        let p = probs.map { $0 + (probOffsets?[s] ?? 0) + h * len * len }
        switch queries {
        case .all:
            attendOneHead(
                q: qkv + row0 * ld + h * headDim, qStride: ld, nq: len,
                k: k, v: v, kvStride: ld, nk: len, headDim: headDim, scale: scale,
                out: out + row0 * d + h * headDim, outStride: d, probs: p, scratch: slot,
                dropout: dropout, dropoutRow: row0 * numHeads + h, dropoutRowStride: numHeads)
        case .first(let q):
            attendOneHead(
                q: q + s * d + h * headDim, qStride: d, nq: 1,
                k: k, v: v, kvStride: ld, nk: len, headDim: headDim, scale: scale,
                out: out + s * d + h * headDim, outStride: d, probs: p, scratch: slot,
                dropout: dropout, dropoutRow: row0 * numHeads + h, dropoutRowStride: numHeads)
        }
    }
}

/// One (sequence, head). q: nq rows, k/v: nk rows; probs (optional): [nq, nk].
/// scratch: headDim * roundUp16(nk) + 4 * roundUp16(nk) floats.
@inline(__always)
func attendOneHead(
    q: UnsafePointer<Float>, qStride: Int, nq: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int, nk: Int,
    headDim hd: Int, scale: Float,
    out: UnsafeMutablePointer<Float>, outStride: Int,
    probs: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
    dropout: DropoutMask? = nil, dropoutRow: Int = 0, dropoutRowStride: Int = 1
) {
    let nkp = roundUp16(nk)
    // K_h^T, zero-padded to a multiple of 16 keys: scores become 16-wide FMAs, no reductions.
    let kT = scratch
    var kr = k, col = kT
    for _ in 0..<nk {
        var src = kr, dst = col
        for _ in 0..<hd { dst.pointee = src.pointee; src += 1; dst += nkp }
        kr += kvStride
        col += 1
    }
    if nkp > nk {
        var row = kT + nk
        for _ in 0..<hd { row.update(repeating: 0, count: nkp - nk); row += nkp }
    }
    let sc = scratch + hd * nkp   // 4 score rows of nkp
    let sv = F16(repeating: scale)
    let hdFull = hd & ~15, hdRem = hd - hdFull

    var i0 = 0
    while i0 < nq {
        let rows = Swift.min(4, nq - i0)
        // Missing rows of a partial block repeat the last real row; their results are dropped.
        let q0 = q + i0 * qStride
        let q1 = q + (i0 + Swift.min(1, rows - 1)) * qStride
        let q2 = q + (i0 + Swift.min(2, rows - 1)) * qStride
        let q3 = q + (i0 + Swift.min(3, rows - 1)) * qStride
        // Scores: sc[r, j] = (q_r . k_j) * scale.
        var jc = 0
        while jc < nkp {
            var s0 = F16(), s1 = F16(), s2 = F16(), s3 = F16()
            var kp = kT + jc
            for c in 0..<hd {
                let kv = load16(kp)
                s0 = s0.addingProduct(F16(repeating: q0[c]), kv)
                s1 = s1.addingProduct(F16(repeating: q1[c]), kv)
                s2 = s2.addingProduct(F16(repeating: q2[c]), kv)
                s3 = s3.addingProduct(F16(repeating: q3[c]), kv)
                kp += nkp
            }
            store16(s0 * sv, sc + jc)
            store16(s1 * sv, sc + nkp + jc)
            store16(s2 * sv, sc + 2 * nkp + jc)
            store16(s3 * sv, sc + 3 * nkp + jc)
            jc += 16
        }
        // All 4 rows (a partial block's extra rows hold finite scores of a repeated query).
        softmax4PaddedRowsInPlace(sc, stride: nkp, nk)
        if let probs {
            for r in 0..<rows { (probs + (i0 + r) * nk).update(from: sc + r * nkp, count: nk) }
        }
        if let dropout {
            for r in 0..<rows { dropout.applyRow(sc + r * nkp, count: nk, row: dropoutRow + (i0 + r) * dropoutRowStride) }
        }
        // out_r = sum_j P[r, j] v_j, 16 head columns at a time.
        let p0 = sc, p1 = sc + nkp, p2 = sc + 2 * nkp, p3 = sc + 3 * nkp
        var c0 = 0
        while c0 < hd {
            let partial = c0 == hdFull   // the < 16 trailing columns of an odd head size
            var o0 = F16(), o1 = F16(), o2 = F16(), o3 = F16()
            var vp = v + c0
            for j in 0..<nk {
                let vv = partial ? loadPartial16(vp, hdRem, fill: 0) : load16(vp)
                o0 = o0.addingProduct(F16(repeating: p0[j]), vv)
                o1 = o1.addingProduct(F16(repeating: p1[j]), vv)
                o2 = o2.addingProduct(F16(repeating: p2[j]), vv)
                o3 = o3.addingProduct(F16(repeating: p3[j]), vv)
                vp += kvStride
            }
            for r in 0..<rows {
                let o = r == 0 ? o0 : r == 1 ? o1 : r == 2 ? o2 : o3
                let dst = out + (i0 + r) * outStride + c0
                if partial { storePartial16(o, dst, hdRem) } else { store16(o, dst) }
            }
            c0 += 16
        }
        i0 += 4
    }
}

// MARK: - Backward

/// Scratch floats one thread needs for `attentionBackward` with sequences up to `maxLength`.
public func attentionBackwardScratchPerThread(maxLength: Int, headDim: Int) -> Int {
    let lp = roundUp16(Swift.max(maxLength, 1))
    return headDim * lp + 2 * Swift.max(maxLength, 1) * lp + 2 * lp + 64
}

/// Attention backward over a packed batch, per (sequence, head), from the probabilities the
/// forward kept (P, before dropout) and the dropout mask it used (recomputed from `dropout`):
///   P' = P * mask                 dV = P'^T dOut          dP' = dOut V^T       dP = dP' * mask
///   dS = softmax backward(P, dP)  dQ = dS K * scale       dK = dS^T Q * scale
/// - dqkv: [T, 3D]; the dK and dV columns are overwritten for every row, the dQ columns too for
///   `.all` queries (untouched for `.first`).
/// - queries: `.all` (dout is [T, D]) or `.first(q:)`, the [CLS] rows only (q, dout and `dqFirst`
///   are [S, D]; probabilities are the first row of each (sequence, head) block).
/// - probs/probOffsets: as filled by `attentionForward` (P of sequence s, head h at
///   probs + probOffsets[s] + h * L_s^2, one row per query).
/// - scratch: `threads * perThread` floats (`attentionBackwardScratchPerThread`).
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    queries: AttentionQueries = .all, dqFirst: UnsafeMutablePointer<Float>? = nil,
    probs: UnsafePointer<Float>, probOffsets: UnsafeBufferPointer<Int>, offsets: UnsafeBufferPointer<Int>,
    numHeads: Int, headDim hd: Int, dropout: DropoutMask?,
    scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int
) {
    let nSeq = offsets.count - 1
    guard nSeq > 0, numHeads > 0, hd > 0 else { return }
    let d = numHeads * hd, ld = 3 * d
    let scale = 1 / Float(hd).squareRoot()
    Parallel.forEach(nSeq * numHeads) { task in
        let s = task / numHeads, h = task - s * numHeads
        let row0 = offsets[s], len = offsets[s + 1] - row0
        let k = qkv + row0 * ld + d + h * hd, v = k + d
        let dk = dqkv + row0 * ld + d + h * hd, dv = dk + d
        let slot = scratch + Int(omp_get_thread_num()) * scratchPerThread
        switch queries {
        case .all:
            attendOneHeadBackward(
                q: qkv + row0 * ld + h * hd, qStride: ld, dq: dqkv + row0 * ld + h * hd, dqStride: ld, nq: len,
                k: k, v: v, dk: dk, dv: dv, kvStride: ld, nk: len, dout: dout + row0 * d + h * hd, doutStride: d,
                probs: probs + probOffsets[s] + h * len * len, headDim: hd, scale: scale,
                dropout: dropout, dropoutRow: row0 * numHeads + h, dropoutRowStride: numHeads, scratch: slot)
        case .first(let q):
            guard let dqFirst else { return }
            attendOneHeadBackward(
                q: q + s * d + h * hd, qStride: d, dq: dqFirst + s * d + h * hd, dqStride: d, nq: 1,
                k: k, v: v, dk: dk, dv: dv, kvStride: ld, nk: len, dout: dout + s * d + h * hd, doutStride: d,
                probs: probs + probOffsets[s] + h * len * len, headDim: hd, scale: scale,
                dropout: dropout, dropoutRow: row0 * numHeads + h, dropoutRowStride: numHeads, scratch: slot)
        }
    }
}

/// One (sequence, head) of `attentionBackward`: nq query rows (probs [nq, nk], row-major),
/// nk key/value rows. Writes dq (nq rows), dk and dv (nk rows), all overwritten.
@inline(__always)
func attendOneHeadBackward(
    q: UnsafePointer<Float>, qStride: Int, dq: UnsafeMutablePointer<Float>, dqStride: Int, nq: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    kvStride: Int, nk: Int, dout: UnsafePointer<Float>, doutStride: Int, probs: UnsafePointer<Float>,
    headDim hd: Int, scale: Float, dropout: DropoutMask?, dropoutRow: Int, dropoutRowStride: Int,
    scratch: UnsafeMutablePointer<Float>
) {
    let lp = roundUp16(nk)
    let vT = scratch                       // [hd, lp] V^T, zero-padded
    let pDrop = vT + hd * lp               // [nq, lp] P' = P * mask
    let dS = pDrop + nq * lp               // [nq, lp] dS * scale
    let dpRow = dS + nq * lp               // [lp]
    let maskRow = dpRow + lp               // [lp]
    for j in 0..<nk {
        let vr = v + j * kvStride
        for c in 0..<hd { vT[c * lp + j] = vr[c] }
    }
    if lp > nk { for c in 0..<hd { for j in nk..<lp { vT[c * lp + j] = 0 } } }
    let sv = F16(repeating: scale)

    // Per query row: dP', P', dP, dS, and dQ_i = sum_j dS[i, j] K_j (accumulated in registers).
    for i in 0..<nq {
        let di = dout + i * doutStride, pi = probs + i * nk
        let pd = pDrop + i * lp, ds = dS + i * lp
        var jc = 0
        while jc < lp {
            var acc = F16()
            var vp = vT + jc
            for c in 0..<hd { acc = acc.addingProduct(F16(repeating: di[c]), load16(vp)); vp += lp }
            store16(acc, dpRow + jc)
            jc += 16
        }
        if let dropout {
            maskRow.update(repeating: 1, count: nk)
            dropout.applyRow(maskRow, count: nk, row: dropoutRow + i * dropoutRowStride)
            for j in 0..<nk {
                pd[j] = pi[j] * maskRow[j]
                dpRow[j] *= maskRow[j]
            }
        } else {
            pd.update(from: pi, count: nk)
        }
        softmaxBackwardRow(ds, dpRow, pi, nk)
        var j = 0
        while j + 16 <= nk { store16(load16(ds + j) * sv, ds + j); j += 16 }
        while j < nk { ds[j] *= scale; j += 1 }
        accumulateRows(into: dq + i * dqStride, weights: ds, rows: k, rowStride: kvStride, count: nk, width: hd)
    }
    // Per key row: dV_j = sum_i P'[i, j] dOut_i and dK_j = sum_i dS[i, j] Q_i.
    for j in 0..<nk {
        accumulateRows(into: dv + j * kvStride, weights: pDrop + j, weightStride: lp,
                       rows: dout, rowStride: doutStride, count: nq, width: hd)
        accumulateRows(into: dk + j * kvStride, weights: dS + j, weightStride: lp,
                       rows: q, rowStride: qStride, count: nq, width: hd)
    }
}

/// out[0..<width] = sum_r weights[r * weightStride] * rows[r * rowStride + 0..<width] (overwrites),
/// 16 columns at a time with two accumulators.
@inline(__always)
func accumulateRows(
    into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, weightStride: Int = 1,
    rows: UnsafePointer<Float>, rowStride: Int, count: Int, width: Int
) {
    var c0 = 0
    while c0 < width {
        let n = Swift.min(16, width - c0)
        var a0 = F16(), a1 = F16()
        var r = 0
        if n == 16 {
            while r + 2 <= count {
                a0 = a0.addingProduct(F16(repeating: weights[r * weightStride]), load16(rows + r * rowStride + c0))
                a1 = a1.addingProduct(F16(repeating: weights[(r + 1) * weightStride]), load16(rows + (r + 1) * rowStride + c0))
                r += 2
            }
            if r < count { a0 = a0.addingProduct(F16(repeating: weights[r * weightStride]), load16(rows + r * rowStride + c0)) }
            store16(a0 + a1, out + c0)
        } else {
            for r in 0..<count {
                a0 = a0.addingProduct(F16(repeating: weights[r * weightStride]), loadPartial16(rows + r * rowStride + c0, n, fill: 0))
            }
            storePartial16(a0, out + c0, n)
        }
        c0 += 16
    }
}
