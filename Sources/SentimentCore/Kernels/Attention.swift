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
                out: out + s * d + h * headDim, outStride: d, probs: p, scratch: slot)
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
        for r in 0..<rows {
            if let probs { (probs + (i0 + r) * nk).update(from: sc + r * nkp, count: nk) }
            if let dropout { dropout.applyRow(sc + r * nkp, count: nk, row: dropoutRow + (i0 + r) * dropoutRowStride) }
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
    return headDim * lp + 3 * lp + 64
}

/// Attention backward over a packed batch, per (sequence, head), from the probabilities the
/// forward kept (P, before dropout) and the dropout mask it used (recomputed from `dropout`):
///   P' = P * mask                 dV = P'^T dOut          dP' = dOut V^T       dP = dP' * mask
///   dS = softmax backward(P, dP)  dQ = dS K * scale       dK = dS^T Q * scale
/// - dqkv: [T, 3D], overwritten (dQ | dK | dV, the layout of `qkv`).
/// - dout: [T, D], the gradient of the attention output (heads concatenated).
/// - probs/probOffsets: as filled by `attentionForward` (P of sequence s, head h at
///   probs + probOffsets[s] + h * L_s^2).
/// - scratch: `threads * perThread` floats (`attentionBackwardScratchPerThread`).
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
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
        let lp = roundUp16(len)
        let q = qkv + row0 * ld + h * hd, k = q + d, v = q + 2 * d
        let dq = dqkv + row0 * ld + h * hd, dk = dq + d, dv = dq + 2 * d
        let dctx = dout + row0 * d + h * hd
        let p = probs + probOffsets[s] + h * len * len
        let slot = scratch + Int(omp_get_thread_num()) * scratchPerThread
        let vT = slot, dpRow = slot + hd * lp, maskRow = dpRow + lp, dsRow = maskRow + lp

        for j in 0..<len {
            (dq + j * ld).update(repeating: 0, count: hd)
            (dk + j * ld).update(repeating: 0, count: hd)
            (dv + j * ld).update(repeating: 0, count: hd)
            let vr = v + j * ld
            for c in 0..<hd { vT[c * lp + j] = vr[c] }
        }
        if lp > len { for c in 0..<hd { for j in len..<lp { vT[c * lp + j] = 0 } } }

        for i in 0..<len {
            let dci = dctx + i * d, pi = p + i * len
            // dP'[j] = dOut_i . V_j, 16 keys at a time.
            var jc = 0
            while jc < lp {
                var acc = F16()
                var vp = vT + jc
                for c in 0..<hd { acc = acc.addingProduct(F16(repeating: dci[c]), load16(vp)); vp += lp }
                store16(acc, dpRow + jc)
                jc += 16
            }
            // dV_j += P'[i, j] dOut_i; dP = dP' * mask.
            if let dropout {
                maskRow.update(repeating: 1, count: len)
                dropout.applyRow(maskRow, count: len, row: (row0 + i) * numHeads + h)
                for j in 0..<len {
                    let m = maskRow[j]
                    if m != 0 { axpy(dv + j * ld, pi[j] * m, dci, hd) }
                    dpRow[j] *= m
                }
            } else {
                for j in 0..<len { axpy(dv + j * ld, pi[j], dci, hd) }
            }
            softmaxBackwardRow(dsRow, dpRow, pi, len)
            // dQ_i = scale sum_j dS[j] K_j;  dK_j += scale dS[j] Q_i.
            let qi = q + i * ld, dqi = dq + i * ld
            for j in 0..<len {
                let g = dsRow[j] * scale
                axpy(dqi, g, k + j * ld, hd)
                axpy(dk + j * ld, g, qi, hd)
            }
        }
    }
}

/// y[0..<n] += a * x[0..<n].
@inline(__always) func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    let av = F16(repeating: a)
    var c = 0
    while c + 16 <= n { store16(load16(y + c).addingProduct(av, load16(x + c)), y + c); c += 16 }
    if c < n {
        let r = n - c
        storePartial16(loadPartial16(y + c, r, fill: 0).addingProduct(av, loadPartial16(x + c, r, fill: 0)), y + c, r)
    }
}
