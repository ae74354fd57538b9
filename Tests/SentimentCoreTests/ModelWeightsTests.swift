// A loaded model keeps one copy of its linear weights (the packed or int8 one) and rebuilds the
// float weights from it for saves: bit for bit what it computes with.
import Testing
@testable import SentimentCore

@Suite struct ModelWeightsTests {
    /// Every tensor of `a` equals the one of `b` with the same name, bit for bit.
    static func expectIdentical(_ a: EncoderWeights, _ b: EncoderWeights) {
        let x = a.namedTensors, y = b.namedTensors
        #expect(x.map(\.name) == y.map(\.name))
        for ((name, s), (_, t)) in zip(x, y) {
            #expect(s.shape == t.shape, "\(name)")
            #expect(s.array.map(\.bitPattern) == t.array.map(\.bitPattern), "\(name)")
        }
    }

    /// fp32: the weights rebuilt from the transposed copies are the checkpoint's.
    @Test(arguments: ["distilbert_f32", "bert_f32"])
    func floatModelRebuildsTheCheckpointWeights(_ fixture: String) throws {
        let src = try TempDir()
        let dir = try QuantizationTests.fixtureModel(fixture, in: src)
        let m = try QuantizationTests.load(dir, .fp32)
        let loaded = try Checkpoint.load(directory: dir).weights
        Self.expectIdentical(try m.floatWeights(), loaded)
        #expect(m.parameterCount == loaded.parameterCount)
    }

    /// int8: the rebuilt weights are the dequantized int8 ones, i.e. what loading the model's int8
    /// checkpoint at fp32 gives; an fp32 save writes them.
    @Test(arguments: ["distilbert_f32", "bert_f32"])
    func int8ModelRebuildsItsDequantizedWeights(_ fixture: String) throws {
        let src = try TempDir(), int8Dir = try TempDir(), fp32Dir = try TempDir()
        let m = try QuantizationTests.load(try QuantizationTests.fixtureModel(fixture, in: src), .int8)
        _ = try m.save(to: int8Dir.path, precision: .int8)
        let dequantized = try Checkpoint.load(directory: int8Dir.path).weights
        Self.expectIdentical(try m.floatWeights(), dequantized)
        _ = try m.save(to: fp32Dir.path, precision: .fp32)
        Self.expectIdentical(try Checkpoint.load(directory: fp32Dir.path).weights, dequantized)
    }

    /// The packed encoders do not keep the float linear weights alive; `.none` reads them in place.
    @Test func packedEncodersReleaseTheFloatLinearWeights() throws {
        let src = try TempDir()
        let dir = try QuantizationTests.fixtureModel("bert_f32", in: src)
        for packing in ["transposed", "int8", "none"] {
            weak var query: Tensor?
            weak var bias: Tensor?
            let encoder: EncoderForward = try {
                let w = try Checkpoint.load(directory: dir).weights
                query = w.layers[0][.query]
                bias = w.layers[0][.queryBias]
                switch packing {
                case "transposed": return try EncoderForward(weights: w, packing: .transposed)
                case "int8": return try EncoderForward(weights: w, packing: .int8(try QuantizedEncoderWeights(w)))
                default: return try EncoderForward(weights: w, packing: .none)
                }
            }()
            #expect((query == nil) == (packing != "none"), "\(packing)")
            #expect(bias != nil, "\(packing): the biases stay")
            _ = try encoder.logits(try PackedBatch(sequences: [[2, 5, 3]]))
        }
    }
}
