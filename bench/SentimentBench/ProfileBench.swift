// Per-op timing of one MiniLM-shaped encoder layer (D 384, F 1536, 12 heads) on synthetic data:
//   sentiment-bench profile [TOKENS [SEQUENCES]]     (ATT_ONLY=1: attention only)
// Best of 5 timings per op; for finding where the forward spends its time.
#if canImport(Glibc)
import Glibc
#endif
import SentimentCore

enum ProfileBench {
    static func time(_ reps: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = 1e9
        for _ in 0..<5 {
            let t0 = TokenizerBench.now()
            for _ in 0..<reps { try body() }
            best = min(best, (TokenizerBench.now() - t0) / Double(reps))
        }
        return best * 1e6
    }
    static func run(_ argv: [String]) throws {
        let t = Int(argv.first ?? "25") ?? 25
        let nseq = Int(argv.count > 1 ? argv[1] : "1") ?? 1
        let d = 384, f = 1536, h = 12, hd = 32
        func buf(_ n: Int) throws -> UnsafeMutablePointer<Float> {
            let x = try Tensor(shape: [n]); keep.append(x)
            for i in 0..<n { x.data[i] = Float((i * 7919) % 1000) * 0.001 - 0.5 }
            return x.data
        }
        let x = try buf(t * d), qkv = try buf(t * 3 * d), ctx = try buf(t * d), tmp = try buf(t * d), ffn = try buf(t * f)
        let wqkv = try buf(d * 3 * d), wo = try buf(d * d), w1 = try buf(d * f), w2 = try buf(f * d)
        let b3 = try buf(3 * d), b = try buf(d), bf = try buf(f), g = try buf(d)
        let reps = max(20, 20000 / t)
        var offs = [0]
        for s in 0..<nseq { offs.append((s + 1) * t / nseq) }
        let per = attentionScratchPerThread(maxLength: t, headDim: hd)
        let scratch = try buf(per * Parallel.threads)
        var rows: [(String, Double)] = []
        if getenv("ATT_ONLY") != nil {
            let us = offs.withUnsafeBufferPointer { o in time(reps * 20) {
                attentionForward(out: ctx, qkv: qkv, offsets: o, numHeads: h, headDim: hd, scratch: scratch, scratchPerThread: per) } }
            print("attention \(us) us"); return
        }
        rows.append(("qkv gemm", try time(reps) { try linearForward(out: qkv, inp: x, weight: wqkv, layout: .inOut, bias: nil, m: t, k: d, n: 3 * d) }))
        rows.append(("qkv bias", time(reps) { addBiasRows(qkv, bias: b3, rows: t, cols: 3 * d, ld: 3 * d) }))
        rows.append(("attention", offs.withUnsafeBufferPointer { o in time(reps) {
            attentionForward(out: ctx, qkv: qkv, offsets: o, numHeads: h, headDim: hd, scratch: scratch, scratchPerThread: per) } }))
        rows.append(("out gemm", try time(reps) { try linearForward(out: tmp, inp: ctx, weight: wo, layout: .inOut, bias: nil, m: t, k: d, n: d) }))
        rows.append(("res+LN", time(reps) { residualLayerNormForward(x: tmp, linearBias: b, residual: x, out: ctx, weight: g, bias: b, rows: t, cols: d, eps: 1e-12) }))
        rows.append(("ffn1 gemm", try time(reps) { try linearForward(out: ffn, inp: x, weight: w1, layout: .inOut, bias: nil, m: t, k: d, n: f) }))
        let pristine = try buf(t * f)
        let copyUs = time(reps) { ffn.update(from: pristine, count: t * f) }
        rows.append(("bias+gelu", time(reps) { ffn.update(from: pristine, count: t * f); biasGeluForward(x: ffn, bias: bf, rows: t, cols: f) } - copyUs))
        rows.append(("ffn2 gemm", try time(reps) { try linearForward(out: tmp, inp: ffn, weight: w2, layout: .inOut, bias: nil, m: t, k: f, n: d) }))
        rows.append(("empty forEach(2)", time(reps) { Parallel.forEach(2) { _ in } }))
        var total = 0.0
        for (n, us) in rows { print("  \(n): \(TokenizerBench.fmt(us)) us"); if !n.hasPrefix("empty") { total += us } }
        print("  layer total \(TokenizerBench.fmt(total)) us")
    }
    nonisolated(unsafe) static var keep: [Tensor] = []
}
