// Gradients vs PyTorch (fixtures: tools/fixtures/make_training_fixtures.py, dropout off):
// for every parameter, max |ours - torch| <= 1e-4 * max(1, max |torch grad|) over that tensor
// (and, tighter, <= 1e-4 * max |torch grad| of the tensor itself, except the key biases whose
// gradient is zero up to rounding), the embedding tables exactly zero where torch's are, and
// the loss within 1e-5.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

@Suite struct TrainingGradientTests {
    /// `sparse`: the last layer for the [CLS] rows only (the trainer's default) or in full.
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler", "tiny_bert_distilhead"], [true, false])
    func gradientsMatchPyTorch(_ key: String, sparse: Bool) throws {
        let doc = TrainingFixtures.doc
        let (batch, labels) = try TrainingFixtures.batch(doc["batch"])
        let weights = try TrainingFixtures.model(key)
        let trainer = try GradientStep(weights: weights)
        trainer.sparseLastLayer = sparse
        let grads = try EncoderWeights.zeros(like: weights)
        // Garbage in the gradient buffers must be overwritten, not accumulated into.
        for (_, t) in grads.namedTensors { t.fill(7) }
        let loss = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: nil)
        let want = try #require(doc["loss"]?[key]?.doubleValue)
        #expect(abs(loss - want) <= 1e-5, "loss \(loss) vs torch \(want)")

        let reference = try SafeTensorsFile(path: TrainingFixtures.dir + "/grads_\(key).safetensors")
        var worst = (name: "", rel: 0.0)
        var worstOwn = (name: "", rel: 0.0)   // relative to the tensor's own scale (reported, not the bar)
        var compared = 0
        for (name, g) in grads.namedTensors {
            let ref = try reference.floatTensor(name)
            #expect(ref.shape == g.shape, "\(name)")
            let (diff, refMax) = maxAbsDiff(g, ref)
            let rel = diff / max(1, refMax)
            #expect(rel <= 1e-4, "\(key) \(name): max |diff| \(diff), max |torch grad| \(refMax)")
            // Embedding tables: exactly zero where torch is zero (untouched word rows, positions past
            // the longest sequence, token type 1). (Elsewhere zeros are not structural: the key
            // bias gradient, for one, is zero only up to rounding.)
            if name.hasPrefix("embeddings.word") || name.hasPrefix("embeddings.position") || name.hasPrefix("embeddings.token_type") {
                var stray = 0, touched = 0
                for i in 0..<g.count {
                    if ref.data[i] == 0 && g.data[i] != 0 { stray += 1 }
                    if ref.data[i] != 0 { touched += 1 }
                }
                #expect(stray == 0, "\(key) \(name): \(stray) entries non-zero where torch has 0")
                // The batch touches every position (one sequence has all 40) but not every word or type.
                let partial = !name.hasPrefix("embeddings.position")
                #expect(touched > 0 && (!partial || touched < g.count), "\(key) \(name): \(touched) of \(g.count) non-zero")
            }
            if rel > worst.rel { worst = (name, rel) }
            if !name.hasSuffix("key.bias"), refMax > 0 {
                // Tighter than the bar, for tensors whose gradients are all much smaller than 1.
                #expect(diff <= 1e-4 * refMax, "\(key) \(name): max |diff| \(diff) vs its own max |g| \(refMax)")
                if diff / refMax > worstOwn.rel { worstOwn = (name, diff / refMax) }
            }
            compared += 1
        }
        #expect(compared == reference.names.count)
        print("\(key)\(sparse ? "" : " (full last layer)"): loss \(loss) (torch \(want)); worst gradient error \(worst.rel) x max(1, max|g|) in \(worst.name); "
              + "relative to each tensor's own max|g| (key biases excluded: zero up to rounding): \(worstOwn.rel) in \(worstOwn.name)")
    }
}

@Suite struct SparseLastLayerTests {
    /// With dropout on, the [CLS]-only last layer gives the loss and gradients of the full one.
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler"])
    func sparseEqualsFull(_ key: String) throws {
        let (batch, labels) = try TrainingFixtures.batch(TrainingFixtures.doc["batch"])
        let weights = try TrainingFixtures.model(key)
        let trainer = try GradientStep(weights: weights)
        let sparse = try EncoderWeights.zeros(like: weights), full = try EncoderWeights.zeros(like: weights)
        #expect(trainer.sparseLastLayer)
        let a = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: sparse, dropoutSeed: 31)
        trainer.sparseLastLayer = false
        let b = try trainer.lossAndGradients(batch: batch, labels: labels, gradients: full, dropoutSeed: 31)
        #expect(abs(a - b) < 1e-6, "loss \(a) vs \(b)")
        for ((name, x), (_, y)) in zip(sparse.namedTensors, full.namedTensors) {
            let (diff, ref) = maxAbsDiff(x, y)
            #expect(diff <= 1e-5 * max(1, ref), "\(name): \(diff)")
        }
    }
}

@Suite struct RDropTests {
    @Test func klTermGradientMatchesFiniteDifferences() throws {
        let pairs = 3, classes = 3
        var rng = SeededRandom(seed: 5)
        var logits = (0..<(2 * pairs * classes)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 400 }
        var grad = [Float](repeating: 0.25, count: logits.count)   // the term's gradient is added to this
        logits.withUnsafeBufferPointer { z in
            grad.withUnsafeMutableBufferPointer { g in
                symmetricKLBackward(dlogits: g.baseAddress!, logits: z.baseAddress!, pairs: pairs, classes: classes, scale: 2)
            }
        }
        func term(_ z: [Float]) -> Double {
            z.withUnsafeBufferPointer { symmetricKLForward(logits: $0.baseAddress!, pairs: pairs, classes: classes) }
        }
        // Brute force at one pair: (KL(p||q) + KL(q||p)) / 2 / pairs.
        let p0 = (0..<classes).map { exp(Double(logits[$0])) }, q0 = (0..<classes).map { exp(Double(logits[pairs * classes + $0])) }
        let (sp, sq) = (p0.reduce(0, +), q0.reduce(0, +))
        var kl = 0.0
        for c in 0..<classes { kl += (p0[c] / sp - q0[c] / sq) * (log(p0[c] / sp) - log(q0[c] / sq)) / 2 }
        var onlyFirst = logits
        for i in 1..<pairs { for c in 0..<classes { onlyFirst[(pairs + i) * classes + c] = onlyFirst[i * classes + c] } }
        #expect(abs(term(onlyFirst) - kl / Double(pairs)) < 1e-9)
        for i in logits.indices {
            let h: Float = 1e-2
            var up = logits, down = logits
            up[i] += h
            down[i] -= h
            let numeric = 2 * (term(up) - term(down)) / Double(2 * h)
            #expect(abs(Double(grad[i] - 0.25) - numeric) < 1e-4, "logit \(i): \(grad[i] - 0.25) vs \(numeric)")
        }
    }

    @Test func lossAndGradientsMatchFiniteDifferences() throws {
        // The tiny BERT with dropout on, its fixture batch twice: the trainer's gradient of
        // cross-entropy + alpha * KL against central differences of its own loss (same masks).
        let ids = try ForwardFixtures.intRows(TrainingFixtures.doc["batch"]?["input_ids"])
        let (_, labels) = try TrainingFixtures.batch(TrainingFixtures.doc["batch"])
        let batch = try PackedBatch(sequences: ids + ids)
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let trainer = try GradientStep(weights: weights)
        let grads = try EncoderWeights.zeros(like: weights), scratch = try EncoderWeights.zeros(like: weights)
        let plain = try trainer.lossAndGradients(batch: batch, labels: labels + labels, gradients: scratch, dropoutSeed: 31)
        trainer.rdropAlpha = 4
        let loss = try trainer.lossAndGradients(batch: batch, labels: labels + labels, gradients: grads, dropoutSeed: 31)
        let kl = (loss - plain) / 2   // alpha / 2 times the symmetric KL
        #expect(kl > 1e-4, "two dropout masks must disagree (KL \(kl))")
        let named = Dictionary(uniqueKeysWithValues: weights.namedTensors.map { ($0.name, $0.tensor) })
        let gnamed = Dictionary(uniqueKeysWithValues: grads.namedTensors.map { ($0.name, $0.tensor) })
        for (name, i) in [("head.classifier.weight", 3), ("head.dense.weight", 17), ("layer.1.ffn_out.weight", 40),
                          ("layer.0.query.weight", 9), ("embeddings.norm.weight", 2), ("embeddings.position", 5)] {
            let w = try #require(named[name]), g = try #require(gnamed[name])
            let h: Float = 1e-2, saved = w.data[i]
            w.data[i] = saved + h
            let up = try trainer.lossAndGradients(batch: batch, labels: labels + labels, gradients: scratch, dropoutSeed: 31)
            w.data[i] = saved - h
            let down = try trainer.lossAndGradients(batch: batch, labels: labels + labels, gradients: scratch, dropoutSeed: 31)
            w.data[i] = saved
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(Double(g.data[i]) - numeric) <= 2e-3 * max(1e-2, abs(numeric)) + 2e-5,
                    "\(name)[\(i)]: \(g.data[i]) vs finite differences \(numeric)")
        }
        // The batch must repeat itself.
        #expect(throws: SentimentError.self) {
            _ = try trainer.lossAndGradients(batch: try PackedBatch(sequences: ids + ids.reversed()),
                                             labels: labels + labels.reversed(), gradients: scratch, dropoutSeed: 31)
        }
    }
}

@Suite struct ReservedBuffersTests {
    /// Buffers reserved for the largest batch stay put through smaller ones, and the results are
    /// those of a step that grew its own buffers.
    @Test func reservedStepsMatchGrownOnes() throws {
        let (big, labels) = try TrainingFixtures.batch(TrainingFixtures.doc["batch"])
        let small = try PackedBatch(sequences: [[101, 7, 102], [101, 9, 11, 102]])
        #expect(big.shape.union(small.shape) == big.shape.union(small.shape).union(small.shape))
        let weights = try TrainingFixtures.model("tiny_distilbert")
        let reserved = try GradientStep(weights: weights), grown = try GradientStep(weights: weights)
        try reserved.reserve(big.shape.union(small.shape))
        let input = reserved.workspace.layers.first?.qkv
        for (batch, y) in [(small, [1, 0]), (big, labels)] {
            let a = try EncoderWeights.zeros(like: weights), b = try EncoderWeights.zeros(like: weights)
            let la = try reserved.lossAndGradients(batch: batch, labels: y, gradients: a, dropoutSeed: 3)
            let lb = try grown.lossAndGradients(batch: batch, labels: y, gradients: b, dropoutSeed: 3)
            #expect(la == lb)
            for ((name, x), (_, z)) in zip(a.namedTensors, b.namedTensors) { #expect(x.array == z.array, "\(name)") }
            #expect(reserved.workspace.layers.first?.qkv == input, "a reserved buffer was reallocated")
        }
    }

    /// A shape that cannot fit is refused with `.noMemory`, not a crash.
    @Test func impossibleReservationIsRefused() throws {
        let step = try GradientStep(weights: try TrainingFixtures.model("tiny_distilbert"))
        var shape = BatchShape(lengths: [128])
        shape.tokens = 1 << 40
        #expect(throws: SentimentError.self) { try step.reserve(shape) }
        do { try step.reserve(shape) } catch let e as SentimentError { #expect(e.status == .noMemory, "\(e)") }
    }
}
