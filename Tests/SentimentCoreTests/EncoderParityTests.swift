// Encoder forward vs PyTorch (fixtures from tools/fixtures/make_parity_fixtures.py):
// logits within 1e-4, packed batch == one-by-one, invalid input throws.
import Foundation
import Testing
@testable import SentimentCore

@Suite struct EncoderParityTests {
    static let tinyDir = ForwardFixtures.parityDir + "/tiny-distilbert"

    /// Packed-batch logits, one-by-one logits, training-mode logits, and the unpacked-weights path.
    func allWays(_ weights: EncoderWeights, _ ids: [[Int32]]) throws -> (batched: [[Float]], single: [[Float]], training: [[Float]], unpacked: [[Float]], cls: [[Float]]) {
        let enc = try EncoderForward(weights: weights)
        var ws: ForwardWorkspace? = nil
        let out = try enc.run(try PackedBatch(sequences: ids), workspace: &ws, includeCLSHidden: true)
        var single: [[Float]] = []
        for s in ids { single += try enc.logits(try PackedBatch(sequences: [s]), workspace: &ws) }
        let train = ForwardWorkspace(config: weights.config, mode: .training)
        let live = try EncoderForward(weights: weights, packing: .none)
        try live.forward(try PackedBatch(sequences: ids), workspace: train)
        let unpacked = try live.logits(try PackedBatch(sequences: ids))
        return (out.logits, single, train.logits, unpacked, out.clsHidden ?? [])
    }

    @Test func tinyDistilBERT() throws {
        let doc = try ForwardFixtures.readJSON(ForwardFixtures.parityDir + "/tiny_distilbert.json")
        let ids = try ForwardFixtures.intRows(doc["input_ids"])
        let want = try ForwardFixtures.floatRows(doc["logits"])
        let want64 = try ForwardFixtures.floatRows(doc["logits_f64"])
        let ckpt = try Checkpoint.load(directory: Self.tinyDir)
        #expect(ckpt.config.modelType == .distilbert && ckpt.config.headKind == .distilbert && !ckpt.freshHead)
        let r = try allWays(ckpt.weights, ids)
        let diff = maxAbsDiff(r.batched, want)
        print("tiny DistilBERT: max |logit - torch f32| \(diff), vs torch f64 \(maxAbsDiff(r.batched, want64)), "
              + "batched vs single \(maxAbsDiff(r.batched, r.single)), training mode \(maxAbsDiff(r.batched, r.training)), "
              + "unpacked weights \(maxAbsDiff(r.batched, r.unpacked))")
        #expect(diff <= 1e-4)
        #expect(maxAbsDiff(r.batched, r.single) <= 1e-6)
        #expect(maxAbsDiff(r.batched, r.training) <= 1e-5)
        #expect(maxAbsDiff(r.batched, r.unpacked) <= 1e-5)
    }

    /// MiniLM with the seeded heads of minilm_head.safetensors.
    func miniLM(head: LoadOptions.Head) throws -> (weights: EncoderWeights, doc: JSON) {
        let doc = try ForwardFixtures.readJSON(ForwardFixtures.parityDir + "/minilm.json")
        let ckpt = try Checkpoint.load(directory: ForwardFixtures.miniLMDir, options: LoadOptions(head: head))
        let heads = try SafeTensorsFile(path: ForwardFixtures.parityDir + "/minilm_head.safetensors")
        let h = ckpt.weights.head
        func overwrite(_ dst: Tensor, _ name: String) throws {
            let src = try heads.floatTensor(name)
            guard src.shape == dst.shape else { throw SentimentError.format("\(name): shape \(src.shape) vs \(dst.shape)") }
            dst.data.update(from: src.data, count: src.count)
        }
        switch head {
        case .bert:
            #expect(ckpt.config.headKind == .bertPooler)
            try overwrite(h.classifier, "pooler_classifier.weight")
            try overwrite(h.classifierBias, "pooler_classifier.bias")
        default:
            #expect(ckpt.config.headKind == .distilbert)
            try overwrite(h.dense, "pre_classifier.weight")
            try overwrite(h.denseBias, "pre_classifier.bias")
            try overwrite(h.classifier, "classifier.weight")
            try overwrite(h.classifierBias, "classifier.bias")
        }
        return (ckpt.weights, doc)
    }

    @Test(.enabled(if: ForwardFixtures.runMiniLMTests, "all-MiniLM-L6-v2 not found"))
    func miniLMDistilBERTHead() throws {
        let (weights, doc) = try miniLM(head: .distilbert)
        let ids = try ForwardFixtures.intRows(doc["input_ids"])
        let want = try ForwardFixtures.floatRows(doc["logits"])
        let r = try allWays(weights, ids)
        let clsWant = try ForwardFixtures.floatRows(doc["cls_hidden"])
        let diff = maxAbsDiff(r.batched, want), clsDiff = maxAbsDiff(r.cls, clsWant)
        print("MiniLM + DistilBERT head: max |logit - torch f32| \(diff), vs torch f64 "
              + "\(maxAbsDiff(r.batched, try ForwardFixtures.floatRows(doc["logits_f64"]))), [CLS] hidden \(clsDiff), "
              + "batched vs single \(maxAbsDiff(r.batched, r.single)), training mode \(maxAbsDiff(r.batched, r.training)), "
              + "unpacked weights \(maxAbsDiff(r.batched, r.unpacked))")
        #expect(diff <= 1e-4)
        #expect(clsDiff <= 1e-4)
        #expect(maxAbsDiff(r.batched, r.single) <= 1e-6)
        #expect(maxAbsDiff(r.batched, r.training) <= 1e-5)
        #expect(maxAbsDiff(r.batched, r.unpacked) <= 1e-5)
    }

    @Test(.enabled(if: ForwardFixtures.runMiniLMTests, "all-MiniLM-L6-v2 not found"))
    func miniLMPoolerHead() throws {
        let (weights, doc) = try miniLM(head: .bert)
        let ids = try ForwardFixtures.intRows(doc["input_ids"])
        let want = try ForwardFixtures.floatRows(doc["pooler_logits"])
        let r = try allWays(weights, ids)
        let diff = maxAbsDiff(r.batched, want)
        print("MiniLM + BERT pooler head: max |logit - torch f32| \(diff), vs torch f64 "
              + "\(maxAbsDiff(r.batched, try ForwardFixtures.floatRows(doc["pooler_logits_f64"]))), "
              + "batched vs single \(maxAbsDiff(r.batched, r.single))")
        #expect(diff <= 1e-4)
        #expect(maxAbsDiff(r.batched, r.single) <= 1e-6)
        #expect(maxAbsDiff(r.batched, r.training) <= 1e-5)
    }

    @Test func workspaceReuseAcrossSizes() throws {
        let ckpt = try Checkpoint.load(directory: Self.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights)
        let a: [Int32] = [101, 7, 8, 9, 102], b: [Int32] = [101] + (1...60).map { Int32($0) } + [102]
        var ws: ForwardWorkspace? = nil
        let small = try enc.logits(try PackedBatch(sequences: [a]), workspace: &ws)
        let big = try enc.logits(try PackedBatch(sequences: [b, a, b]), workspace: &ws)
        let again = try enc.logits(try PackedBatch(sequences: [a]), workspace: &ws)
        #expect(small == again)
        #expect(maxAbsDiff([big[1]], small) <= 1e-6)
        #expect(big[0] == big[2])
        #expect(try enc.logits(try PackedBatch(sequences: [[Int32]]())).isEmpty)
    }

    @Test func invalidInputThrows() throws {
        let ckpt = try Checkpoint.load(directory: Self.tinyDir)
        let enc = try EncoderForward(weights: ckpt.weights)
        let vocab = Int32(ckpt.config.vocabSize), maxLen = ckpt.config.maxPositions
        func expectInvalid(_ body: () throws -> Void) {
            do {
                try body()
                Issue.record("expected an error")
            } catch let e as SentimentError {
                #expect(e.status == .invalidArgument, "\(e)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        expectInvalid { _ = try PackedBatch(sequences: [[101, 102], []]) }
        expectInvalid { _ = try PackedBatch(sequences: [[101, -1, 102]]) }
        expectInvalid { _ = try PackedBatch(sequences: [[101, 5_000_000_000, 102]] as [[Int]]) }
        expectInvalid { _ = try enc.logits(try PackedBatch(sequences: [[101, vocab, 102]])) }
        expectInvalid { _ = try enc.logits(try PackedBatch(sequences: [[101, 102], [Int32](repeating: 5, count: maxLen + 1)])) }
        #expect(try enc.logits(try PackedBatch(sequences: [[Int32](repeating: 5, count: maxLen)])).count == 1)
        // A workspace of another shape is a misuse, not a crash.
        var cfg = ckpt.config
        cfg.hiddenSize *= 2
        do {
            try enc.forward(try PackedBatch(sequences: [[101, 102]]), workspace: ForwardWorkspace(config: cfg))
            Issue.record("expected an error")
        } catch let e as SentimentError {
            #expect(e.status == .misuse)
        }
    }

    @Test func malformedWeightsThrow() throws {
        let ckpt = try Checkpoint.load(directory: Self.tinyDir)
        let w = ckpt.weights
        var layers = w.layers
        layers[0][.ffnIn] = try Tensor(shape: [3, 3])
        let bad = EncoderWeights(config: w.config, embeddings: w.embeddings, layers: layers, head: w.head)
        #expect(throws: SentimentError.self) { _ = try EncoderForward(weights: bad) }
        let short = EncoderWeights(config: w.config, embeddings: w.embeddings, layers: [w.layers[0]], head: w.head)
        #expect(throws: SentimentError.self) { _ = try EncoderForward(weights: short) }
    }
}
