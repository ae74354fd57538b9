// Training-mode workspaces keep what backward needs, consistently with the inference result.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SentimentCore

@Suite struct ForwardWorkspaceTests {
    @Test func trainingModeKeepsConsistentActivations() throws {
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let c = ckpt.config
        let enc = try EncoderForward(weights: ckpt.weights, packing: .none)
        let ids: [[Int32]] = [[101, 5, 9, 13, 102], [101, 102], [101] + (1...20).map { Int32($0 * 7) } + [102]]
        let batch = try PackedBatch(sequences: ids)
        let ws = ForwardWorkspace(config: c, mode: .training)
        try enc.forward(batch, workspace: ws)
        let t = batch.totalTokens, d = c.hiddenSize, f = c.intermediateSize, h = c.numHeads
        #expect(ws.tokens == t && ws.sequences == 3 && ws.layers.count == c.numLayers)
        #expect(maxAbsDiff(ws.logits, try enc.logits(batch)) <= 1e-5)

        for (li, a) in ws.layers.enumerated() {
            if li + 1 < ws.layers.count { #expect(a.output == ws.layers[li + 1].input) }
            #expect(a.input != a.output && a.attnNorm != a.input)
            // Attention probabilities: one [L, L] block per (sequence, head), rows sum to 1.
            guard let probs = a.probs else { Issue.record("no probabilities kept"); continue }
            var worst = 0.0
            for s in 0..<batch.count {
                let len = batch.length(of: s)
                for hh in 0..<h {
                    for i in 0..<len {
                        let row = probs + ws.probOffsets[s] + hh * len * len + i * len
                        var sum = 0.0
                        for j in 0..<len { sum += Double(row[j]); #expect(row[j] >= 0) }
                        worst = max(worst, abs(sum - 1))
                    }
                }
            }
            #expect(worst < 1e-5)
            // GELU output from the kept pre-activation.
            guard let pre = a.ffnPre else { Issue.record("no pre-GELU kept"); continue }
            let g = try Buf(count: t * f)
            geluForward(out: g.p, inp: pre, count: t * f)
            var e = 0.0
            for i in 0..<(t * f) { e = max(e, Double(abs(g.p[i] - a.ffnAct[i]))) }
            #expect(e == 0)
            // LayerNorm outputs from the kept sums and statistics.
            guard let m1 = a.attnMean, let r1 = a.attnRstd, let m2 = a.outMean, let r2 = a.outRstd else {
                Issue.record("no LayerNorm statistics kept"); continue
            }
            let lw = ckpt.weights.layers[li]
            e = 0
            for r in 0..<t {
                for col in 0..<d {
                    let c1: Float = (a.attnSum[r * d + col] - m1[r]) * r1[r]
                    let n1: Float = c1 * lw[.attentionNormWeight].data[col] + lw[.attentionNormBias].data[col]
                    let c2: Float = (a.ffnSum[r * d + col] - m2[r]) * r2[r]
                    let n2: Float = c2 * lw[.outputNormWeight].data[col] + lw[.outputNormBias].data[col]
                    e = max(e, Double(abs(n1 - a.attnNorm[r * d + col])), Double(abs(n2 - a.output[r * d + col])))
                }
            }
            #expect(e < 1e-5)
        }
        // [CLS] rows and the head pre-activation.
        guard let last = ws.layers.last, let cls = ws.cls, let pre = ws.headPre, let act = ws.headAct else {
            Issue.record("missing head buffers"); return
        }
        for s in 0..<batch.count {
            for col in 0..<d {
                #expect(cls[s * d + col] == last.output[batch.offsets[s] * d + col])
                #expect(act[s * d + col] == max(pre[s * d + col], 0))   // DistilBERT head: ReLU
            }
        }
        // The embedding sum and its statistics.
        guard let es = ws.embSum, let em = ws.embMean, let er = ws.embRstd, let first = ws.layers.first else {
            Issue.record("missing embedding buffers"); return
        }
        let e0 = ckpt.weights.embeddings
        var e = 0.0
        for r in 0..<t {
            for col in 0..<d {
                let centered: Float = es[r * d + col] - em[r]
                let scaled: Float = centered * er[r] * e0.normWeight.data[col]
                let n: Float = scaled + e0.normBias.data[col]
                e = max(e, Double(abs(n - first.input[r * d + col])))
            }
        }
        #expect(e < 1e-5)
    }

    @Test func concurrentCallsShareOneModel() throws {
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights)
        var ids: [[Int32]] = []
        for i in 0..<6 {
            var row: [Int32] = [101]
            for j in 0..<(3 + 5 * i) { row.append(Int32((j * 31 + i) % 1999)) }
            row.append(102)
            ids.append(row)
        }
        let want = try enc.logits(try PackedBatch(sequences: ids))
        // Each thread with its own workspace; the model is shared.
        let results = UnsafeMutablePointer<[[Float]]>.allocate(capacity: 4)
        results.initialize(repeating: [], count: 4)
        defer { results.deinitialize(count: 4); results.deallocate() }
        let box = ResultsBox(results)
        var threads: [pthread_t] = []
        for k in 0..<4 {
            let ctx = Unmanaged.passRetained(ThreadContext(enc: enc, ids: ids, slot: k, box: box)).toOpaque()
            var th = pthread_t()
            pthread_create(&th, nil, { raw in
                guard let raw else { return nil }
                let c = Unmanaged<ThreadContext>.fromOpaque(raw).takeRetainedValue()
                var ws: ForwardWorkspace? = nil
                var out: [[Float]] = []
                for _ in 0..<5 { out = (try? c.enc.logits(try PackedBatch(sequences: c.ids), workspace: &ws)) ?? [] }
                c.box.p[c.slot] = out
                return nil
            }, ctx)
            threads.append(th)
        }
        for th in threads { pthread_join(th, nil) }
        for k in 0..<4 { #expect(results[k] == want) }
    }
}

final class ResultsBox: @unchecked Sendable {
    let p: UnsafeMutablePointer<[[Float]]>
    init(_ p: UnsafeMutablePointer<[[Float]]>) { self.p = p }
}
final class ThreadContext: @unchecked Sendable {
    let enc: EncoderForward, ids: [[Int32]], slot: Int, box: ResultsBox
    init(enc: EncoderForward, ids: [[Int32]], slot: Int, box: ResultsBox) {
        self.enc = enc; self.ids = ids; self.slot = slot; self.box = box
    }
}
