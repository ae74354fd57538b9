// Token types (sentence pairs) in the batch, the embedding kernel and the encoder:
//   - PackedBatch checks the types; all-zero types are stored as none;
//   - type-0 input gives bit for bit what it gave before types existed (kernel nil vs zeros; a
//     sequence's logits and gradients do not change when another one in the batch has type 1);
//   - the tiny BERT against PyTorch (Fixtures/training/tiny_bert_pairs.json, from
//     tools/fixtures/make_pair_fixtures.py): logits within 1e-4, the token-type gradient within the
//     gradient tests' 1e-4 * max(1, max |g|); int8 and bf16 within their usual tolerances.
import Testing
@testable import SentimentCore

enum PairFixtures {
    static let doc: JSON = {
        guard let bytes = try? FileSystem.readFile(TrainingFixtures.dir + "/tiny_bert_pairs.json", limit: 1 << 20),
              let json = try? JSON.parse(bytes)
        else { return .null }
        return json
    }()

    static func batch() throws -> (batch: PackedBatch, ids: [[Int32]], types: [[Int32]]) {
        let ids = try ForwardFixtures.intRows(doc["input_ids"]), types = try ForwardFixtures.intRows(doc["token_type_ids"])
        return (try PackedBatch(sequences: ids, tokenTypes: types), ids, types)
    }
}

@Suite struct PairBatchTests {
    @Test func typesArePackedAndChecked() throws {
        let b = try PackedBatch(sequences: [[101, 5, 102, 6, 102], [101, 7, 102]], tokenTypes: [[0, 0, 0, 1, 1], []])
        #expect(b.tokenTypes == [0, 0, 0, 1, 1, 0, 0, 0])
        #expect(try PackedBatch(sequences: [[101, 5, 102]], tokenTypes: [[0, 0, 0]]).tokenTypes == nil)
        #expect(try PackedBatch(sequences: [[101, 5, 102]], tokenTypes: nil).tokenTypes == nil)
        #expect(try PackedBatch(sequences: [[101, 5, 102]]).tokenTypes == nil)
        for (types, text) in [([[Int32]](), "token-type rows"), ([[0, 1]], "token types"), ([[0, -1, 0]], "negative")] {
            do {
                _ = try PackedBatch(sequences: [[101, 5, 102]], tokenTypes: types)
                Issue.record("expected an error for \(types)")
            } catch let e as SentimentError {
                #expect(e.status == .invalidArgument && e.field == "token_type_ids" && e.message.contains(text), "\(e)")
            }
        }
    }

    @Test func typesAreCheckedAgainstTheModel() throws {
        let bert = try EncoderForward(weights: try TrainingFixtures.model("tiny_bert_pooler"))
        let bad = try PackedBatch(sequences: [[101, 5, 102], [101, 6, 102]], tokenTypes: [[], [0, 2, 1]])
        do {
            _ = try bert.logits(bad)
            Issue.record("type 2 must be refused by a model with 2 token types")
        } catch let e as SentimentError {
            #expect(e.status == .invalidArgument && e.field == "token_type_ids" && e.message.contains("sequence 1, token 1"), "\(e)")
        }
        // DistilBERT has no token types: they are ignored.
        let distil = try EncoderForward(weights: try TrainingFixtures.model("tiny_distilbert"))
        let ids: [[Int32]] = [[101, 5, 102, 9, 102]]
        #expect(try distil.logits(try PackedBatch(sequences: ids, tokenTypes: [[0, 0, 0, 5, 5]]))
                == distil.logits(try PackedBatch(sequences: ids)))
    }

    /// The kernel with every type 0 given explicitly computes exactly what it does without types.
    @Test func kernelZeroTypesAreBitIdentical() throws {
        var rng = SeededRandom(seed: 8)
        let vocab = 11, maxPos = 9, d = 40, rows = 6
        let ids: [Int32] = [3, 0, 10, 7, 7, 1], positions: [Int32] = [0, 1, 2, 0, 1, 2], zeros = [Int32](repeating: 0, count: rows)
        let W = try Buf(rng.uniform(vocab * d)), P = try Buf(rng.uniform(maxPos * d)), TT = try Buf(rng.uniform(2 * d))
        let G = try Buf(rng.uniform(d, 0.5, 1.5)), B = try Buf(rng.uniform(d))
        let upstream = rng.uniform(rows * d)
        func run(_ types: [Int32]?) throws -> [[Float]] {
            let out = try Buf(count: rows * d), sum = try Buf(count: rows * d), mean = try Buf(count: rows), rstd = try Buf(count: rows)
            let dw = try Buf(count: vocab * d), dp = try Buf(count: maxPos * d), dt = try Buf(count: 2 * d)
            let dg = try Buf(count: d), db = try Buf(count: d), dout = try Buf(upstream)
            try ids.withUnsafeBufferPointer { i in
                try positions.withUnsafeBufferPointer { p in
                    let ip = try #require(i.baseAddress), pp = try #require(p.baseAddress)
                    func call(_ tp: UnsafePointer<Int32>?) {
                        embeddingForward(out: out.p, sum: sum.p, ids: ip, positions: pp, types: tp, word: W.p, position: P.p,
                                         tokenType: TT.p, normWeight: G.p, normBias: B.p, rows: rows, cols: d, eps: 1e-12,
                                         mean: mean.p, rstd: rstd.p)
                        embeddingBackward(dword: dw.p, dposition: dp.p, dtokenType: dt.p, dnormWeight: dg.p, dnormBias: db.p,
                                          dout: dout.p, sum: sum.p, mean: mean.p, rstd: rstd.p, normWeight: G.p,
                                          ids: ip, positions: pp, types: tp, rows: rows, cols: d)
                    }
                    if let types { types.withUnsafeBufferPointer { call($0.baseAddress) } } else { call(nil) }
                }
            }
            return [out, sum, mean, rstd, dw, dp, dt, dg, db, dout].map { $0.t.array }
        }
        let none = try run(nil), zero = try run(zeros)
        for (k, (x, y)) in zip(none, zero).enumerated() {
            #expect(x.map(\.bitPattern) == y.map(\.bitPattern), "output \(k)")
        }
        #expect(none[6][d...].allSatisfy { $0 == 0 }, "row 1 of dtokenType untouched")
        let mixed = try run([0, 1, 0, 0, 1, 1])
        #expect(mixed[0][0..<d] == none[0][0..<d] && mixed[0][d..<(2 * d)] != none[0][d..<(2 * d)])
    }

    /// A sequence's logits and gradients are bit-identical whether or not another sequence of the
    /// batch carries type 1 (so type-0 input computes what it did before types existed).
    @Test func typeZeroSequencesUnchangedBitForBit() throws {
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let (_, ids, types) = try PairFixtures.batch()
        let plain = try PackedBatch(sequences: ids)
        var onlyOne = ids.map { _ in [Int32]() }
        onlyOne[2] = types[2]
        let typed = try PackedBatch(sequences: ids, tokenTypes: onlyOne)
        #expect(typed.tokenTypes != nil)
        for packing in [WeightPacking.transposed, .none] {
            let enc = try EncoderForward(weights: weights, packing: packing)
            let a = try enc.logits(plain), b = try enc.logits(typed)
            for i in ids.indices where i != 2 {
                #expect(a[i].map(\.bitPattern) == b[i].map(\.bitPattern), "\(packing) sequence \(i)")
            }
            #expect(a[2] != b[2])
        }
        // Gradients: the same batch with explicit zero types is the plain batch.
        let zeros = try PackedBatch(sequences: ids, tokenTypes: ids.map { [Int32](repeating: 0, count: $0.count) })
        let labels = try #require(PairFixtures.doc["labels"]?.arrayValue?.compactMap { $0.int64Value.map(Int.init) })
        let step = try GradientStep(weights: weights)
        let g0 = try EncoderWeights.zeros(like: weights), g1 = try EncoderWeights.zeros(like: weights)
        let l0 = try step.lossAndGradients(batch: plain, labels: labels, gradients: g0, dropoutSeed: 5)
        let l1 = try step.lossAndGradients(batch: zeros, labels: labels, gradients: g1, dropoutSeed: 5)
        #expect(l0 == l1)
        for ((name, x), (_, y)) in zip(g0.namedTensors, g1.namedTensors) { #expect(x.array == y.array, "\(name)") }
    }
}

@Suite struct PairParityTests {
    @Test func logitsMatchPyTorch() throws {
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let (batch, ids, types) = try PairFixtures.batch()
        let want = try ForwardFixtures.floatRows(PairFixtures.doc["logits"])
        let want64 = try ForwardFixtures.floatRows(PairFixtures.doc["logits_f64"])
        let enc = try EncoderForward(weights: weights)
        var ws: ForwardWorkspace? = nil
        let batched = try enc.logits(batch, workspace: &ws)
        var single: [[Float]] = []
        for (s, t) in zip(ids, types) { single += try enc.logits(try PackedBatch(sequences: [s], tokenTypes: [t]), workspace: &ws) }
        let train = ForwardWorkspace(config: weights.config, mode: .training)
        let live = try EncoderForward(weights: weights, packing: .none)
        try live.forward(batch, workspace: train)
        let diff = maxAbsDiff(batched, want)
        print("tiny BERT pairs: max |logit - torch f32| \(diff), vs torch f64 \(maxAbsDiff(batched, want64)), "
              + "batched vs single \(maxAbsDiff(batched, single)), training mode \(maxAbsDiff(batched, train.logits))")
        #expect(diff <= 1e-4)
        #expect(maxAbsDiff(batched, single) <= 1e-6)
        #expect(maxAbsDiff(batched, train.logits) <= 1e-5)
        // Type 1 matters: without types the logits are others.
        #expect(maxAbsDiff(try enc.logits(try PackedBatch(sequences: ids)), want) > 1e-2)
    }

    @Test(arguments: [true, false])
    func tokenTypeGradientMatchesPyTorch(sparse: Bool) throws {
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let (batch, _, _) = try PairFixtures.batch()
        let labels = try #require(PairFixtures.doc["labels"]?.arrayValue?.compactMap { $0.int64Value.map(Int.init) })
        let step = try GradientStep(weights: weights)
        step.sparseLastLayer = sparse
        let grads = try EncoderWeights.zeros(like: weights)
        for (_, t) in grads.namedTensors { t.fill(7) }
        let loss = try step.lossAndGradients(batch: batch, labels: labels, gradients: grads, dropoutSeed: nil)
        let wantLoss = try #require(PairFixtures.doc["loss"]?.doubleValue)
        #expect(abs(loss - wantLoss) <= 1e-5, "loss \(loss) vs torch \(wantLoss)")
        let rows = try ForwardFixtures.floatRows(PairFixtures.doc["token_type_grad"])
        let got = try #require(grads.embeddings.tokenType)
        let d = weights.config.hiddenSize
        #expect(rows.count == 2 && got.shape == [2, d])
        for r in 0..<2 {
            let row = (0..<d).map { got.data[r * d + $0] }
            let ref = rows[r].map { abs($0) }.max() ?? 0
            let diff = maxAbsDiff([row], [rows[r]])
            print("token type row \(r)\(sparse ? "" : " (full last layer)"): max |diff| \(diff), max |torch grad| \(ref)")
            #expect(ref > 1e-3, "row \(r) must be touched")
            #expect(diff <= 1e-4 * max(1, ref) && diff <= 1e-4 * ref, "row \(r): max |diff| \(diff), max |torch grad| \(ref)")
        }
    }

    /// int8 logits on pairs follow fp32 within the int8 tests' 0.05.
    @Test func int8FollowsFloat() throws {
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let (batch, ids, types) = try PairFixtures.batch()
        let fp32 = try EncoderForward(weights: weights).logits(batch)
        let enc = try EncoderForward(weights: weights, packing: .int8(try QuantizedEncoderWeights(weights)))
        let q = try enc.logits(batch)
        print("tiny BERT pairs int8: max |logit - fp32| \(maxAbsDiff(q, fp32))")
        #expect(maxAbsDiff(q, fp32) < 0.05)
        let one = try enc.logits(try PackedBatch(sequences: [ids[5]], tokenTypes: [types[5]]))
        #expect(one[0] == q[5], "batch invariant")
    }
}

@Suite(.enabled(if: BF16Support.available, BF16Support.skipReason))
struct PairBF16Tests {
    /// bf16 logits on pairs within the bf16 tests' 2e-2 of torch's fp32 ones.
    @Test func bf16FollowsFloat() throws {
        let weights = try TrainingFixtures.model("tiny_bert_pooler")
        let (batch, ids, types) = try PairFixtures.batch()
        let want = try ForwardFixtures.floatRows(PairFixtures.doc["logits"])
        let enc = try EncoderForward(weights: weights, packing: .bf16(training: false))
        let got = try enc.logits(batch)
        print("tiny BERT pairs bf16: max |logit - torch f32| \(maxAbsDiff(got, want))")
        #expect(maxAbsDiff(got, want) <= 2e-2)
        let one = try enc.logits(try PackedBatch(sequences: [ids[5]], tokenTypes: [types[5]]))
        #expect(one[0] == got[5], "batch invariant")
    }
}
