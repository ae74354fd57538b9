// bf16 inference and mixed-precision training against the PyTorch fp32 fixtures:
//   - logits within 2e-2 of torch's, and each sentence's logits bit-identical in batches of 1 and 32;
//   - gradients within 2% of each tensor's max |torch grad|;
//   - the bf16 copies follow the master weights after an update.
// Skipped (reported as such) where the CPU, or SENTIMENT_ISA, gives no AVX512-BF16 or AMX.
import Testing
@testable import SentimentCore

enum BF16Support {
    static var available: Bool { (try? ISA.active())?.hasBF16 ?? false }
    static let skipReason: Comment = "no AVX512-BF16 or AMX on this CPU (or SENTIMENT_ISA caps it below avx512_bf16)"
}

@Suite(.enabled(if: BF16Support.available, BF16Support.skipReason))
struct BF16InferenceTests {
    /// bf16 logits for `ids` in one batch, and each sequence alone and inside a batch of 32.
    func check(_ weights: EncoderWeights, _ ids: [[Int32]], torch: [[Double]], name: String) throws {
        let enc = try EncoderForward(weights: weights, packing: .bf16(training: false))
        var ws: ForwardWorkspace? = nil
        let batched = try enc.logits(try PackedBatch(sequences: ids), workspace: &ws)
        let diff = maxAbsDiff(batched, torch)
        print("\(name) bf16: max |logit - torch f32| \(diff)")
        #expect(diff <= 2e-2)
        let thirtyTwo = (0..<32).map { ids[$0 % ids.count] }
        let big = try enc.logits(try PackedBatch(sequences: thirtyTwo), workspace: &ws)
        for (i, s) in ids.enumerated() {
            let one = try enc.logits(try PackedBatch(sequences: [s]), workspace: &ws)
            #expect(one[0] == batched[i], "\(name) sequence \(i): batch 1 vs batch \(ids.count)")
            #expect(one[0] == big[i], "\(name) sequence \(i): batch 1 vs batch 32")
        }
    }

    @Test func tinyDistilBERT() throws {
        let doc = try ForwardFixtures.readJSON(ForwardFixtures.parityDir + "/tiny_distilbert.json")
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        try check(ckpt.weights, try ForwardFixtures.intRows(doc["input_ids"]), torch: try ForwardFixtures.floatRows(doc["logits"]),
                  name: "tiny DistilBERT")
    }

    @Test(.enabled(if: ForwardFixtures.runMiniLMTests, "all-MiniLM-L6-v2 not found"), arguments: [LoadOptions.Head.distilbert, .bert])
    func miniLM(_ head: LoadOptions.Head) throws {
        let (weights, doc) = try EncoderParityTests().miniLM(head: head)
        let want = try ForwardFixtures.floatRows(doc[head == .bert ? "pooler_logits" : "logits"])
        try check(weights, try ForwardFixtures.intRows(doc["input_ids"]), torch: want, name: "MiniLM \(head)")
    }

    /// A bf16 model's float weights are its bf16 values; they pack back to the same logits.
    @Test func floatWeightsRoundTrip() throws {
        let doc = try ForwardFixtures.readJSON(ForwardFixtures.parityDir + "/tiny_distilbert.json")
        let ids = try ForwardFixtures.intRows(doc["input_ids"])
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights, packing: .bf16(training: false))
        let back = try enc.floatWeights()
        let q = back.layers[0][.query]
        #expect((0..<q.count).allSatisfy { q.data[$0].bitPattern & 0xFFFF == 0 }, "unpacked weights are bf16 values")
        let again = try EncoderForward(weights: back, packing: .bf16(training: false))
        #expect(try again.logits(try PackedBatch(sequences: ids)) == enc.logits(try PackedBatch(sequences: ids)))
    }

    /// A BF16 save holds BF16 tensors and says so in config.json. Its linear weights load back as
    /// the values bf16 inference ran with; every other tensor is rounded too, so its logits are
    /// checked against torch's fp32 ones (2e-2), not for equality.
    @Test(arguments: [false, true])
    func bf16SaveRoundTrip(_ sourceHasDType: Bool) throws {
        let doc = try ForwardFixtures.readJSON(ForwardFixtures.parityDir + "/tiny_distilbert.json")
        let batch = try PackedBatch(sequences: try ForwardFixtures.intRows(doc["input_ids"]))
        let ckpt = try Checkpoint.load(directory: EncoderParityTests.tinyDir)
        let raw = sourceHasDType ? ckpt.rawConfig.setting("dtype", "float32") : ckpt.rawConfig.removing("dtype").removing("torch_dtype")
        let tmp = try TempDir()
        try Checkpoint.save(weights: ckpt.weights, rawConfig: raw, tokenizerFrom: nil, to: tmp.path, bf16: true)
        let config = try JSON.parse(readBytes(tmp.sub("config.json")))
        #expect(config[sourceHasDType ? "dtype" : "torch_dtype"] == "bfloat16")
        #expect(config["dtype"] != "float32" && config["torch_dtype"] != "float32")
        let again = try Checkpoint.load(directory: tmp.path)
        #expect(again.sourceDTypes == ["BF16"])
        let rounded = try EncoderForward(weights: ckpt.weights, packing: .bf16(training: false)).floatWeights()
        for (li, layer) in again.weights.layers.enumerated() {
            for t in [LayerTensor.query, .key, .value, .attentionOut, .ffnIn, .ffnOut] {
                #expect(identical(layer[t], rounded.layers[li][t]), "layer \(li) \(t)")
            }
        }
        let logits = try EncoderForward(weights: again.weights, packing: .bf16(training: false)).logits(batch)
        let diff = maxAbsDiff(logits, try ForwardFixtures.floatRows(doc["logits"]))
        print("tiny DistilBERT saved as BF16: max |logit - torch f32| \(diff)")
        #expect(diff <= 2e-2)
    }
}

@Suite(.enabled(if: BF16Support.available, BF16Support.skipReason))
struct BF16TrainingTests {
    @Test(arguments: ["tiny_distilbert", "tiny_bert_pooler", "tiny_bert_distilhead"], [true, false])
    func gradientsWithinTwoPercent(_ key: String, sparse: Bool) throws {
        let doc = TrainingFixtures.doc
        let (batch, labels) = try TrainingFixtures.batch(doc["batch"])
        let weights = try TrainingFixtures.model(key)
        let step = try GradientStep(weights: weights, bf16: true)
        step.sparseLastLayer = sparse
        let grads = try EncoderWeights.zeros(like: weights)
        for (_, t) in grads.namedTensors { t.fill(7) }
        let loss = try step.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: nil)
        let want = try #require(doc["loss"]?[key]?.doubleValue)
        #expect(abs(loss - want) <= 1e-2 * max(1, abs(want)), "loss \(loss) vs torch \(want)")
        let reference = try SafeTensorsFile(path: TrainingFixtures.dir + "/grads_\(key).safetensors")
        var worst = (name: "", rel: 0.0)
        for (name, g) in grads.namedTensors {
            let ref = try reference.floatTensor(name)
            let (diff, refMax) = maxAbsDiff(g, ref)
            // The key biases' gradient is zero up to rounding (softmax ignores a constant shift).
            let scale = name.hasSuffix("key.bias") ? max(1, refMax) : refMax
            guard scale > 0 else { continue }
            #expect(diff <= 0.02 * scale, "\(key) \(name): max |diff| \(diff), max |torch grad| \(refMax)")
            if diff / scale > worst.rel { worst = (name, diff / scale) }
        }
        print("\(key)\(sparse ? "" : " (full last layer)") bf16: loss \(loss) (torch \(want)); worst gradient error "
              + "\(worst.rel) x the tensor's max |g| in \(worst.name)")
    }

    /// After the weights change in place, a step rounds them again: its result equals a fresh
    /// GradientStep's on the new weights, bit for bit.
    @Test func copiesFollowTheMasterWeights() throws {
        let (batch, labels) = try TrainingFixtures.batch(TrainingFixtures.doc["batch"])
        let weights = try TrainingFixtures.model("tiny_distilbert")
        let step = try GradientStep(weights: weights, bf16: true)
        let g1 = try EncoderWeights.zeros(like: weights), g2 = try EncoderWeights.zeros(like: weights)
        _ = try step.lossAndGradients(batch: batch, labels: labels, gradients: g1, dropoutSeed: 5)
        for (_, t) in weights.namedTensors { for i in 0..<t.count { t.data[i] *= 0.9 } }
        let a = try step.lossAndGradients(batch: batch, labels: labels, gradients: g1, dropoutSeed: 5)
        let b = try GradientStep(weights: weights, bf16: true).lossAndGradients(
            batch: batch, labels: labels, gradients: g2, dropoutSeed: 5)
        #expect(a == b)
        for ((name, x), (_, y)) in zip(g1.namedTensors, g2.namedTensors) {
            #expect(x.array == y.array, "\(name)")
        }
    }
}
