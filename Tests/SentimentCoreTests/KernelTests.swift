// Kernel unit tests against naive double-precision references.
import Foundation
import Testing
@testable import SentimentCore

@Suite struct GemmTests {
    /// op(A)[M,K] * op(B)[K,N] in double, row-major with leading dimensions.
    func reference(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: [Float], lda: Int,
        b: [Float], ldb: Int, beta: Double, c: [Float], ldc: Int
    ) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = Double(transA ? a[p * lda + i] : a[i * lda + p])
                    let bv = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                    s += av * bv
                }
                out[i * ldc + j] = alpha * s + beta * Double(c[i * ldc + j])
            }
        }
        return out
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func sgemmTransposes(_ ta: Bool, _ tb: Bool) throws {
        var rng = SeededRandom(seed: 7)
        let m = 37, n = 29, k = 53
        let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2
        let aRows = ta ? k : m, bRows = tb ? n : k
        let a = rng.uniform(aRows * lda), b = rng.uniform(bRows * ldb), c = rng.uniform(m * ldc)
        let A = try Buf(a), B = try Buf(b), C = try Buf(c)
        try sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, a: A.p, lda: lda, b: B.p, ldb: ldb,
                  beta: 0.5, c: C.p, ldc: ldc)
        let ref = reference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb,
                            beta: 0.5, c: c, ldc: ldc)
        var err = 0.0
        for i in 0..<m { for j in 0..<n { err = max(err, abs(Double(C.p[i * ldc + j]) - ref[i * ldc + j])) } }
        #expect(err < 2e-5, "max abs err \(err)")
        // Padding columns untouched.
        for i in 0..<m { for j in n..<ldc { #expect(C.p[i * ldc + j] == c[i * ldc + j]) } }
    }

    @Test func linearBothLayoutsAndSlices() throws {
        var rng = SeededRandom(seed: 11)
        let m = 19, k = 48, n = 40
        let x = rng.uniform(m * k), w = rng.uniform(n * k), bias = rng.uniform(n)
        var ref = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = Double(bias[j])
            for p in 0..<k { s += Double(x[i * k + p]) * Double(w[j * k + p]) }
            ref[i * n + j] = s
        } }
        let X = try Buf(x), W = try Buf(w), Bb = try Buf(bias)
        let Wt = try Buf(count: k * n)
        transpose(W.p, rows: n, cols: k, into: Wt.p)
        for j in 0..<n { for p in 0..<k { #expect(Wt.p[p * n + j] == w[j * k + p]) } }
        // [N, K] and [K, N] weights; output written into a column slice of a wider matrix.
        for layout in [WeightLayout.outIn, .inOut] {
            let ld = n + 24
            let Y = try Buf(count: m * ld)
            Y.t.fill(7)
            try linearForward(out: Y.p + 8, inp: X.p, weight: layout == .outIn ? W.p : Wt.p, layout: layout,
                              bias: Bb.p, m: m, k: k, n: n, ldOut: ld)
            var err = 0.0
            for i in 0..<m {
                for j in 0..<n { err = max(err, abs(Double(Y.p[i * ld + 8 + j]) - ref[i * n + j])) }
                for j in 0..<8 { #expect(Y.p[i * ld + j] == 7) }
                for j in (n + 8)..<ld { #expect(Y.p[i * ld + j] == 7) }
            }
            #expect(err < 2e-5, "layout \(layout): max abs err \(err)")
        }
        // A column slice of a packed [K, 2N] weight (how the fused QKV matrix is used).
        let wide = try Buf(count: k * 2 * n)
        for p in 0..<k { for j in 0..<n { wide.p[p * 2 * n + n + j] = Wt.p[p * n + j] } }
        let Y = try Buf(count: m * n)
        try linearForward(out: Y.p, inp: X.p, weight: wide.p + n, layout: .inOut, bias: Bb.p, m: m, k: k, n: n,
                          ldWeight: 2 * n)
        var err = 0.0
        for i in 0..<(m * n) { err = max(err, abs(Double(Y.p[i]) - ref[i])) }
        #expect(err < 2e-5)
    }
}

@Suite struct ElementwiseTests {
    @Test func erfAccuracy() {
        var maxAbs = 0.0, maxRelSmall = 0.0
        var x = -6.0
        while x <= 6.0 {
            let xf = Float(x)
            let got = Double(erfScalar(xf)), want = Foundation.erf(Double(xf))
            maxAbs = max(maxAbs, abs(got - want))
            if abs(xf) < 1, xf != 0 { maxRelSmall = max(maxRelSmall, abs(got - want) / abs(want)) }
            x += 1.0 / 4096
        }
        // Tiny arguments: erf(x) ~ 2x/sqrt(pi), relative accuracy kept.
        for xf: Float in [1e-30, -1e-20, 1e-8, 3e-5] {
            let want = Foundation.erf(Double(xf))
            maxRelSmall = max(maxRelSmall, abs(Double(erfScalar(xf)) - want) / abs(want))
        }
        print("erf: max abs err \(maxAbs), max rel err (|x| < 1) \(maxRelSmall)")
        #expect(maxAbs < 1.5e-7)
        #expect(maxRelSmall < 2e-7)
        #expect(erfScalar(10) == 1 && erfScalar(-10) == -1 && erfScalar(0) == 0)
    }

    @Test func expAccuracy() {
        var maxRel = 0.0
        var x = -87.0
        while x <= 88.0 {
            let xf = Float(x)
            let want = Foundation.exp(Double(xf))
            maxRel = max(maxRel, abs(Double(expScalar(xf)) - want) / want)
            x += 1.0 / 256
        }
        print("exp: max rel err \(maxRel)")
        #expect(maxRel < 3e-7)
    }

    @Test func geluMatchesDoubleReference() throws {
        var rng = SeededRandom(seed: 3)
        let rows = 9, cols = 53   // tail lanes
        let x = rng.uniform(rows * cols, -7, 7), bias = rng.uniform(cols, -1, 1)
        let X = try Buf(x), B = try Buf(bias), pre = try Buf(count: rows * cols)
        biasGeluForward(x: X.p, bias: B.p, rows: rows, cols: cols, preActivation: pre.p)
        var err = 0.0
        for r in 0..<rows { for c in 0..<cols {
            let v = Double(x[r * cols + c] + bias[c])
            let want = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
            err = max(err, abs(Double(X.p[r * cols + c]) - want))
            #expect(pre.p[r * cols + c] == x[r * cols + c] + bias[c])
        } }
        print("gelu: max abs err \(err)")
        #expect(err < 1e-6)
    }

    @Test func tanhRelu() throws {
        let x: [Float] = [-3, -0.5, 0, 0.25, 2]
        let b: [Float] = [0.5, 0.5, 0.5, 0.5, 0.5]
        let X = try Buf(x), Y = try Buf(x), B = try Buf(b)
        biasTanhForward(x: X.p, bias: B.p, rows: 1, cols: 5)
        biasReluForward(x: Y.p, bias: B.p, rows: 1, cols: 5)
        for i in 0..<5 {
            #expect(abs(Double(X.p[i]) - Foundation.tanh(Double(x[i] + 0.5))) < 1e-6)
            #expect(Y.p[i] == max(x[i] + 0.5, 0))
        }
    }

    @Test(arguments: [1, 5, 16, 37, 128, 300])
    func softmaxRows(_ cols: Int) throws {
        var rng = SeededRandom(seed: UInt64(cols))
        let rows = 6
        let x = rng.uniform(rows * cols, -20, 20)
        let X = try Buf(x), Y = try Buf(count: rows * cols)
        softmaxForward(out: Y.p, inp: X.p, rows: rows, cols: cols)
        softmaxForward(out: X.p, inp: X.p, rows: rows, cols: cols)   // in place
        var err = 0.0
        for r in 0..<rows {
            let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
            let m = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            for c in 0..<cols {
                err = max(err, abs(Double(Y.p[r * cols + c]) - e[c] / s))
                #expect(X.p[r * cols + c] == Y.p[r * cols + c])
            }
        }
        #expect(err < 1e-6, "max abs err \(err)")
    }

    @Test(arguments: [384, 70, 8])
    func layerNorm(_ cols: Int) throws {
        var rng = SeededRandom(seed: UInt64(cols) + 100)
        let rows = 13
        // An offset mean stresses the variance computation.
        let x = rng.uniform(rows * cols, 2, 6), w = rng.uniform(cols, 0.5, 1.5), b = rng.uniform(cols)
        let res = rng.uniform(rows * cols), lb = rng.uniform(cols)
        let X = try Buf(x), W = try Buf(w), B = try Buf(b), Y = try Buf(count: rows * cols)
        let mean = try Buf(count: rows), rstd = try Buf(count: rows)
        layerNormForward(out: Y.p, inp: X.p, weight: W.p, bias: B.p, rows: rows, cols: cols, eps: 1e-12,
                         mean: mean.p, rstd: rstd.p)
        func ref(_ row: [Double]) -> (out: [Double], mean: Double, rstd: Double) {
            let m = row.reduce(0, +) / Double(cols)
            let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(cols)
            let rs = 1 / (v + 1e-12).squareRoot()
            return ((0..<cols).map { (row[$0] - m) * rs * Double(w[$0]) + Double(b[$0]) }, m, rs)
        }
        var err = 0.0
        for r in 0..<rows {
            let want = ref(x[(r * cols)..<((r + 1) * cols)].map(Double.init))
            for c in 0..<cols { err = max(err, abs(Double(Y.p[r * cols + c]) - want.out[c])) }
            #expect(abs(Double(mean.p[r]) - want.mean) < 1e-5)
            #expect(abs(Double(rstd.p[r]) - want.rstd) / want.rstd < 1e-5)
        }
        #expect(err < 2e-5, "layerNorm max abs err \(err)")

        // Fused residual + bias + LayerNorm, writing over the residual.
        let X2 = try Buf(x), R = try Buf(res), LB = try Buf(lb)
        residualLayerNormForward(x: X2.p, linearBias: LB.p, residual: R.p, out: R.p, weight: W.p, bias: B.p,
                                 rows: rows, cols: cols, eps: 1e-12)
        err = 0
        for r in 0..<rows {
            let sum = (0..<cols).map { Double(x[r * cols + $0] + lb[$0] + res[r * cols + $0]) }
            let want = ref(sum)
            for c in 0..<cols {
                err = max(err, abs(Double(R.p[r * cols + c]) - want.out[c]))
                #expect(abs(Double(X2.p[r * cols + c]) - sum[c]) < 1e-5)   // the pre-norm sum is kept
            }
        }
        #expect(err < 2e-5, "residual layerNorm max abs err \(err)")
    }

    @Test func embedding() throws {
        var rng = SeededRandom(seed: 5)
        let vocab = 11, maxPos = 9, d = 40
        let word = rng.uniform(vocab * d), pos = rng.uniform(maxPos * d), tt = rng.uniform(d)
        let w = rng.uniform(d, 0.5, 1.5), b = rng.uniform(d)
        let ids: [Int32] = [3, 0, 10, 7, 7], positions: [Int32] = [0, 1, 2, 0, 1]
        let W = try Buf(word), P = try Buf(pos), TT = try Buf(tt), G = try Buf(w), B = try Buf(b)
        let out = try Buf(count: ids.count * d), sum = try Buf(count: ids.count * d)
        ids.withUnsafeBufferPointer { i in positions.withUnsafeBufferPointer { p in
            embeddingForward(out: out.p, sum: sum.p, ids: i.baseAddress!, positions: p.baseAddress!,
                             word: W.p, position: P.p, tokenType: TT.p, normWeight: G.p, normBias: B.p,
                             rows: ids.count, cols: d, eps: 1e-12)
        } }
        var err = 0.0
        for t in 0..<ids.count {
            let x = (0..<d).map { Double(word[Int(ids[t]) * d + $0]) + Double(tt[$0]) + Double(pos[Int(positions[t]) * d + $0]) }
            let m = x.reduce(0, +) / Double(d)
            let rs = 1 / (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(d) + 1e-12).squareRoot()
            for c in 0..<d {
                err = max(err, abs(Double(out.p[t * d + c]) - ((x[c] - m) * rs * Double(w[c]) + Double(b[c]))))
                #expect(abs(Double(sum.p[t * d + c]) - x[c]) < 1e-6)
            }
        }
        #expect(err < 2e-5, "embedding max abs err \(err)")
    }
}

@Suite struct AttentionTests {
    /// Naive double attention for one (sequence, head, query row).
    func reference(qkv: [Float], d: Int, hd: Int, row0: Int, len: Int, h: Int, qi: [Float]) -> (out: [Double], p: [Double]) {
        let ld = 3 * d, scale = 1 / Double(hd).squareRoot()
        var s = [Double](repeating: 0, count: len)
        for j in 0..<len {
            var acc = 0.0
            for c in 0..<hd { acc += Double(qi[c]) * Double(qkv[(row0 + j) * ld + d + h * hd + c]) }
            s[j] = acc * scale
        }
        let m = s.max() ?? 0
        let e = s.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        let p = e.map { $0 / z }
        var out = [Double](repeating: 0, count: hd)
        for j in 0..<len { for c in 0..<hd { out[c] += p[j] * Double(qkv[(row0 + j) * ld + 2 * d + h * hd + c]) } }
        return (out, p)
    }

    @Test(arguments: [(4, 16), (2, 32), (3, 24), (2, 8)])
    func packedAttention(_ heads: Int, _ hd: Int) throws {
        var rng = SeededRandom(seed: UInt64(heads * 100 + hd))
        let d = heads * hd
        let lengths = [1, 5, 17, 33, 4]
        var offsets = [0]
        for l in lengths { offsets.append(offsets.last! + l) }
        let t = offsets.last!, s = lengths.count
        let qkv = rng.uniform(t * 3 * d, -2, 2)
        let QKV = try Buf(qkv), out = try Buf(count: t * d)
        var probOffsets = [0]
        for l in lengths { probOffsets.append(probOffsets.last! + heads * l * l) }
        let probs = try Buf(count: probOffsets.last!)
        let per = attentionScratchPerThread(maxLength: 33, headDim: hd)
        let scratch = try Buf(count: per * Parallel.threads)
        offsets.withUnsafeBufferPointer { offs in probOffsets.withUnsafeBufferPointer { po in
            attentionForward(out: out.p, qkv: QKV.p, offsets: offs, numHeads: heads, headDim: hd,
                             probs: probs.p, probOffsets: po, scratch: scratch.p, scratchPerThread: per)
        } }
        // [CLS]-only queries from a separate Q matrix.
        let q = try Buf(count: s * d)
        for si in 0..<s { for c in 0..<d { q.p[si * d + c] = qkv[offsets[si] * 3 * d + c] } }
        let outFirst = try Buf(count: s * d)
        offsets.withUnsafeBufferPointer { offs in
            attentionForward(out: outFirst.p, qkv: QKV.p, queries: .first(q: q.p), offsets: offs, numHeads: heads,
                             headDim: hd, scratch: scratch.p, scratchPerThread: per)
        }
        var errOut = 0.0, errP = 0.0, errFirst = 0.0
        for si in 0..<s {
            let len = lengths[si], row0 = offsets[si]
            for h in 0..<heads {
                for i in 0..<len {
                    let qi = (0..<hd).map { qkv[(row0 + i) * 3 * d + h * hd + $0] }
                    let ref = reference(qkv: qkv, d: d, hd: hd, row0: row0, len: len, h: h, qi: qi)
                    for c in 0..<hd {
                        errOut = max(errOut, abs(Double(out.p[(row0 + i) * d + h * hd + c]) - ref.out[c]))
                        if i == 0 { errFirst = max(errFirst, abs(Double(outFirst.p[si * d + h * hd + c]) - ref.out[c])) }
                    }
                    for j in 0..<len {
                        errP = max(errP, abs(Double(probs.p[probOffsets[si] + h * len * len + i * len + j]) - ref.p[j]))
                    }
                }
            }
        }
        #expect(errOut < 1e-5, "out err \(errOut)")
        #expect(errP < 1e-6, "probs err \(errP)")
        #expect(errFirst < 1e-5, "first-query err \(errFirst)")
    }
}
