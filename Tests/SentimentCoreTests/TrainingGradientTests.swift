// Gradients vs PyTorch (fixtures: tools/fixtures/make_training_fixtures.py, dropout off):
// for every parameter, max |ours - torch| <= 1e-4 * max(1, max |torch grad|) over that tensor
// (and, tighter, <= 1e-4 * max |torch grad| of the tensor itself, except the key biases whose
// gradient is zero up to rounding), the embedding tables exactly zero where torch's are, and
// the loss within 1e-5.
import Testing
@testable import SentimentCore

@Suite struct TrainingGradientTests {
    /// `sparse`: the last layer for the [CLS] rows only (the trainer's default) or in full.
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler", "tiny_bert_distilhead"], [true, false])
    func gradientsMatchPyTorch(_ key: String, sparse: Bool) throws {
        let doc = TrainingFixtures.doc
        let (batch, labels) = try TrainingFixtures.batch(doc["batch"])
        let weights = try TrainingFixtures.model(key)
        let trainer = try EncoderTrainer(weights: weights)
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
        let trainer = try EncoderTrainer(weights: weights)
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
