// Helpers for the training tests: the PyTorch fixtures of tools/fixtures/make_training_fixtures.py.
import Testing
@testable import SentimentCore

enum TrainingFixtures {
    /// Tests/SentimentCoreTests/Fixtures/training
    static let dir: String = FileSystem.directoryName(#filePath) + "/Fixtures/training"

    static let doc: JSON = {
        guard let bytes = try? FileSystem.readFile(dir + "/training.json", limit: 16 << 20),
              let json = try? JSON.parse(bytes)
        else { return .null }
        return json
    }()

    static func batch(_ j: JSON?) throws -> (PackedBatch, [Int]) {
        let ids = try ForwardFixtures.intRows(j?["input_ids"])
        guard let labels = j?["labels"]?.arrayValue?.compactMap({ $0.int64Value.map(Int.init) }) else {
            throw SentimentError.format("batch without labels")
        }
        return (try PackedBatch(sequences: ids), labels)
    }

    /// The three fixture models, with the weights PyTorch started from.
    static func model(_ key: String) throws -> EncoderWeights {
        switch key {
        case "tiny_distilbert":
            return try Checkpoint.load(directory: dir + "/tiny-distilbert").weights
        case "tiny_bert_pooler":
            let c = try Checkpoint.load(directory: dir + "/tiny-bert")
            guard c.config.headKind == .bertPooler, !c.freshHead else { throw SentimentError.format("expected the pooler head") }
            return c.weights
        case "tiny_bert_distilhead":
            let c = try Checkpoint.load(directory: dir + "/tiny-bert", options: LoadOptions(head: .distilbert))
            let head = try SafeTensorsFile(path: dir + "/tiny_bert_distilhead.safetensors")
            let h = c.weights.head
            for (dst, name) in [(h.dense, "pre_classifier.weight"), (h.denseBias, "pre_classifier.bias"),
                                (h.classifier, "classifier.weight"), (h.classifierBias, "classifier.bias")] {
                let src = try head.floatTensor(name)
                guard src.shape == dst.shape else { throw SentimentError.format("\(name): \(src.shape) vs \(dst.shape)") }
                dst.data.update(from: src.data, count: src.count)
            }
            return c.weights
        default:
            throw SentimentError.invalidArgument("unknown fixture model \(key)")
        }
    }
}

/// max |a - b| and max |b| of two equally long float arrays.
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> (diff: Double, refMax: Double) {
    var diff = 0.0, ref = 0.0
    for i in 0..<Swift.min(a.count, b.count) {
        diff = Swift.max(diff, abs(Double(a.data[i]) - Double(b.data[i])))
        ref = Swift.max(ref, abs(Double(b.data[i])))
    }
    return (a.count == b.count ? diff : .infinity, ref)
}
