// Dropout: mask statistics, independence from the thread count, and gradients with dropout on
// (directional finite differences through the same masks; dropout-off gradients must fail them).
import Testing
@testable import SentimentCore

@Suite(.serialized) struct DropoutTests {
    @Test func maskStatistics() throws {
        let rows = 1024, cols = 1000
        for p: Float in [0.1, 0.2, 0.5] {
            let x = try Tensor(shape: [rows, cols])
            x.fill(1)
            let mask = try #require(DropoutMask(p: p, key: 0xDEAD_BEEF))
            dropoutForward(x.data, rows: rows, cols: cols, mask: mask)
            var zeros = 0, bothZero = 0, firstColumnZeros = 0, badScale = 0
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = x.data[r * cols + c]
                    if v == 0 {
                        zeros += 1
                        if r + 1 < rows, x.data[(r + 1) * cols + c] == 0 { bothZero += 1 }
                        if c == 0 { firstColumnZeros += 1 }
                    } else if v != 1 / (1 - p) {
                        badScale += 1
                    }
                }
            }
            let n = Double(rows * cols), pd = Double(p)
            let frac = Double(zeros) / n
            // Binomial sd is <= 0.0005 here; 0.003 is > 6 sd.
            #expect(abs(frac - pd) < 0.003, "p \(p): dropped fraction \(frac)")
            #expect(badScale == 0)
            // Adjacent rows independent: P(both dropped) = p^2.
            let both = Double(bothZero) / Double((rows - 1) * cols)
            #expect(abs(both - pd * pd) < 0.003, "p \(p): adjacent rows both dropped \(both), want \(pd * pd)")
            #expect(abs(Double(firstColumnZeros) / Double(rows) - pd) < 0.08, "p \(p): column 0 dropped \(firstColumnZeros) of \(rows)")
        }
        #expect(DropoutMask(p: 0, key: 1) == nil)
        let all = try Tensor(shape: [3, 20])
        all.fill(2)
        dropoutForward(all.data, rows: 3, cols: 20, mask: try #require(DropoutMask(p: 1, key: 1)))
        #expect(all.array.allSatisfy { $0 == 0 })
    }

    @Test func masksDependOnKeyAndRowOnlyNotThreads() throws {
        let rows = 517, cols = 300
        let mask = try #require(DropoutMask(p: 0.1, key: 42))
        func run(threads: Int, ld: Int) throws -> [Float] {
            let x = try Tensor(shape: [rows, ld])
            x.fill(1)
            let saved = Parallel.threads
            Parallel.setThreads(threads)
            defer { Parallel.setThreads(saved) }
            dropoutForward(x.data, rows: rows, cols: cols, ld: ld, mask: mask)
            return (0..<rows).flatMap { r in Array(UnsafeBufferPointer(start: x.data + r * ld, count: cols)) }
        }
        let one = try run(threads: 1, ld: cols), two = try run(threads: 2, ld: cols), strided = try run(threads: 2, ld: cols + 7)
        #expect(one == two)
        #expect(one == strided)
        // Row r of a bigger call is row r of a call starting at firstRow r.
        let x = try Tensor(shape: [1, cols])
        x.fill(1)
        dropoutForward(x.data, rows: 1, cols: cols, mask: mask, firstRow: 123)
        #expect(x.array == Array(one[(123 * cols)..<(124 * cols)]))
        // Another key, another mask.
        let y = try Tensor(shape: [rows, cols])
        y.fill(1)
        dropoutForward(y.data, rows: rows, cols: cols, mask: try #require(DropoutMask(p: 0.1, key: 43)))
        #expect(y.array != one)
    }

    /// Dropout on, vs PyTorch in train mode with HF's dropout calls replaced by our masks (the
    /// fixture script re-implements the mask hash and checks the shape and p of every HF dropout
    /// call, so this also pins the sites). Loss within 1e-5; every bias, LayerNorm and head
    /// gradient within 1e-4 x max(1, max |g|) and 1e-4 x its own max |g|.
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler", "tiny_bert_distilhead"])
    func gradientsWithDropoutMatchPyTorch(_ key: String) throws {
        let doc = TrainingFixtures.doc
        let (batch, labels) = try TrainingFixtures.batch(doc["batch"])
        let seed = UInt64(try #require(doc["dropout"]?["seed"]?.int64Value))
        let want = try #require(doc["dropout"]?["loss"]?[key]?.doubleValue)
        let weights = try TrainingFixtures.model(key)
        let trainer = try GradientStep(weights: weights)
        let grads = try EncoderWeights.zeros(like: weights)
        let loss = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: seed)
        let lossOff = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: try EncoderWeights.zeros(like: weights), dropoutSeed: nil)
        #expect(abs(loss - want) <= 1e-5, "\(key): loss with dropout \(loss) vs torch \(want) (without dropout \(lossOff))")
        #expect(abs(loss - lossOff) > 1e-3, "dropout should change the loss")
        // Same seed, same loss; another seed, another loss.
        #expect(try trainer.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: seed) == loss)
        #expect(try trainer.lossAndGradients(batch: batch, labels: labels, gradients: try EncoderWeights.zeros(like: weights), dropoutSeed: seed + 1) != loss)

        let reference = try SafeTensorsFile(path: TrainingFixtures.dir + "/grads_dropout_\(key).safetensors")
        let mine = Dictionary(uniqueKeysWithValues: grads.namedTensors.map { ($0.name, $0.tensor) })
        var worst = 0.0
        for name in reference.names {
            let ref = try reference.floatTensor(name)
            let g = try #require(mine[name])
            let (diff, refMax) = maxAbsDiff(g, ref)
            #expect(diff <= 1e-4 * max(1, refMax), "\(key) \(name): max |diff| \(diff), max |torch grad| \(refMax)")
            if !name.hasSuffix("key.bias") {
                #expect(diff <= 1e-4 * refMax, "\(key) \(name): max |diff| \(diff) vs its own max |g| \(refMax)")
            }
            worst = max(worst, diff / max(1, refMax))
        }
        #expect(reference.names.count >= 26)
        print("\(key) with dropout: loss \(loss) (torch \(want), off \(lossOff)); \(reference.names.count) gradients, worst error \(worst) x max(1, max|g|)")
    }
}
