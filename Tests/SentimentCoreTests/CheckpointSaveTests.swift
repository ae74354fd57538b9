// Saving checkpoint folders: byte-exact round trips, config preservation, tokenizer files,
// and BERT-with-DistilBERT-head written as DistilBERT.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

@Suite struct CheckpointSaveTests {
    func expectSameWeights(_ a: EncoderWeights, _ b: EncoderWeights, sourceLocation: SourceLocation = #_sourceLocation) {
        let x = a.namedTensors, y = b.namedTensors
        #expect(x.map(\.name) == y.map(\.name), sourceLocation: sourceLocation)
        for (p, q) in zip(x, y) {
            #expect(identical(p.tensor, q.tensor), "\(p.name) differs", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: ["distilbert_f32", "bert_f32"])
    func roundTripIsByteExact(_ fixture: String) throws {
        let tmp = try TempDir()
        let source = Fixtures.path(fixture)
        let loaded = try Checkpoint.load(directory: source)
        let out = tmp.sub("saved")
        let saved = try Checkpoint.save(weights: loaded.weights, rawConfig: loaded.rawConfig, tokenizerFrom: source, to: out)
        #expect(saved.modelType == loaded.config.modelType)
        // Same bytes as transformers' save_pretrained, and the same config.json document.
        #expect(try readBytes(out + "/model.safetensors") == readBytes(source + "/model.safetensors"))
        #expect(try JSON.parse(readBytes(out + "/config.json")) == loaded.rawConfig)
        #expect(try readBytes(out + "/vocab.txt") == readBytes(source + "/vocab.txt"))
        let expectedFiles = fixture == "distilbert_f32"
            ? ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
            : ["config.json", "model.safetensors", "vocab.txt"]
        #expect(list(out) == expectedFiles)
        #expect(saved.files.map(FileSystem.baseName).sorted() == expectedFiles)
        let again = try Checkpoint.load(directory: out)
        #expect(again.config == loaded.config)
        expectSameWeights(again.weights, loaded.weights)
    }

    @Test(arguments: ["distilbert_f16", "bert_bf16"])
    func halfPrecisionSavesAsF32(_ fixture: String) throws {
        let tmp = try TempDir()
        let loaded = try Checkpoint.load(directory: Fixtures.path(fixture))
        try Checkpoint.save(weights: loaded.weights, rawConfig: loaded.rawConfig, tokenizerFrom: nil, to: tmp.path)
        let config = try JSON.parse(readBytes(tmp.sub("config.json")))
        #expect(config["dtype"] == "float32")
        #expect(config.removing("dtype") == loaded.rawConfig.removing("dtype"))
        let again = try Checkpoint.load(directory: tmp.path)
        #expect(again.sourceDTypes == ["F32"])
        expectSameWeights(again.weights, loaded.weights)
        #expect(list(tmp.path) == ["config.json", "model.safetensors"])
    }

    @Test func bertWithDistilBERTHeadSavesAsDistilBERT() throws {
        let tmp = try TempDir()
        let loaded = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(labels: ["neg", "pos"]))
        let w = loaded.weights
        #expect(w.config.headKind == .distilbert)
        let saved = try Checkpoint.save(weights: w, rawConfig: loaded.rawConfig, tokenizerFrom: Fixtures.path("bert_bare"), to: tmp.path)
        #expect(saved.modelType == .distilbert && saved.architecture == "DistilBertForSequenceClassification")

        let names = try SafeTensorsFile(path: tmp.sub("model.safetensors")).entries.keys
        #expect(names.allSatisfy { $0.hasPrefix("distilbert.") || $0.hasPrefix("pre_classifier.") || $0.hasPrefix("classifier.") })
        #expect(names.count == 4 + 16 * 2 + 4)

        let config = try JSON.parse(readBytes(tmp.sub("config.json")))
        #expect(config["model_type"] == "distilbert" && config["architectures"] == ["DistilBertForSequenceClassification"])
        #expect(config["dim"] == 32 && config["n_layers"] == 2 && config["n_heads"] == 4 && config["hidden_dim"] == 64)
        #expect(config["vocab_size"] == 100 && config["max_position_embeddings"] == 64 && config["pad_token_id"] == 0)
        #expect(config["activation"] == "gelu" && config["sinusoidal_pos_embds"] == false)
        #expect(config["dropout"] == 0.1 && config["attention_dropout"] == 0.1 && config["seq_classif_dropout"] == 0.2)   // the DistilBERT head's default
        #expect(config["id2label"] == .object([JSON.Member("0", "neg"), JSON.Member("1", "pos")]))
        #expect(config["label2id"] == .object([JSON.Member("neg", 0), JSON.Member("pos", 1)]))
        #expect(config["hidden_size"] == nil && config["type_vocab_size"] == nil)

        let again = try Checkpoint.load(directory: tmp.path)
        let v = again.weights
        #expect(v.config.modelType == .distilbert && v.config.headKind == .distilbert && !again.freshHead)
        #expect(v.config.classifierDropout == w.config.classifierDropout && v.config.labels == ["neg", "pos"])
        #expect(v.embeddings.tokenType == nil)
        #expect(identical(v.embeddings.word, w.embeddings.word))
        // The folded position table is exactly position + token_type[0], row by row.
        let tt = try #require(w.embeddings.tokenType)
        let d = w.config.hiddenSize
        var sums = (0.0, 0.0)
        for r in 0..<w.config.maxPositions {
            for k in 0..<d {
                let folded = w.embeddings.position.data[r * d + k] + tt.data[k]
                #expect(v.embeddings.position.data[r * d + k] == folded)
                // word + position as each model computes it for token id 7 at position r.
                sums.0 += Double(w.embeddings.word.data[7 * d + k] + folded)
                sums.1 += Double(v.embeddings.word.data[7 * d + k] + v.embeddings.position.data[r * d + k])
            }
        }
        #expect(sums.0 == sums.1)
        #expect(identical(v.embeddings.normWeight, w.embeddings.normWeight) && identical(v.embeddings.normBias, w.embeddings.normBias))
        let before = Dictionary(uniqueKeysWithValues: w.namedTensors.map { ($0.name, $0.tensor) })
        var compared = 0
        for a in v.namedTensors where a.name.hasPrefix("layer.") || a.name.hasPrefix("head.") {
            let b = try #require(before[a.name])
            #expect(identical(a.tensor, b), "\(a.name)")
            compared += 1
        }
        #expect(compared == 16 * 2 + 4)
    }

    @Test func distilBERTHeadOnBERTNeedsEps1e12() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("src")
        try copyFolder(Fixtures.path("bert_bare"), to: dir)
        let config = try JSON.parse(readBytes(dir + "/config.json")).setting("layer_norm_eps", 1e-5)
        try writeBytes(dir + "/config.json", Array(config.serialized().utf8))
        let loaded = try Checkpoint.load(directory: dir)
        expectError(.invalidArgument, mentions: ["layer_norm_eps", "1e-05", "pooler head"]) {
            try Checkpoint.save(weights: loaded.weights, rawConfig: loaded.rawConfig, tokenizerFrom: dir, to: tmp.sub("out"))
        }
        #expect(FileSystem.kind(tmp.sub("out")) == .missing)   // nothing written
        // With the BERT pooler head it saves as BERT.
        let pooled = try Checkpoint.load(directory: dir, options: LoadOptions(head: .bert))
        let saved = try Checkpoint.save(weights: pooled.weights, rawConfig: pooled.rawConfig, tokenizerFrom: dir, to: tmp.sub("out"))
        #expect(saved.modelType == .bert && saved.architecture == "BertForSequenceClassification")
        let again = try Checkpoint.load(directory: tmp.sub("out"))
        #expect(again.config.headKind == .bertPooler && again.config.layerNormEps == 1e-5 && !again.freshHead)
        expectSameWeights(again.weights, pooled.weights)
        let written = try JSON.parse(readBytes(tmp.sub("out/config.json")))
        #expect(written["architectures"] == ["BertForSequenceClassification"])
        #expect(written["_name_or_path"] == config["_name_or_path"] && written["use_cache"] == config["use_cache"])
    }

    @Test func savesInPlaceAndOverwrites() throws {
        let tmp = try TempDir()
        try copyFolder(Fixtures.path("distilbert_f32"), to: tmp.path)
        let loaded = try Checkpoint.load(directory: tmp.path, options: LoadOptions(labels: ["bad", "good"]))
        try Checkpoint.save(weights: loaded.weights, rawConfig: loaded.rawConfig, tokenizerFrom: tmp.path, to: tmp.path)
        #expect(list(tmp.path) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"])
        #expect(try readBytes(tmp.sub("vocab.txt")) == readBytes(Fixtures.path("distilbert_f32/vocab.txt")))
        let again = try Checkpoint.load(directory: tmp.path)
        #expect(again.config.labels == ["bad", "good"])
        expectSameWeights(again.weights, loaded.weights)
    }

    @Test func generatesConfigWhenNoneIsGiven() throws {
        let tmp = try TempDir()
        for fixture in ["distilbert_f32", "bert_f32"] {
            let loaded = try Checkpoint.load(directory: Fixtures.path(fixture))
            let out = tmp.sub(fixture)
            try Checkpoint.save(weights: loaded.weights, rawConfig: .object([]), tokenizerFrom: nil, to: out)
            let again = try Checkpoint.load(directory: out)
            #expect(again.config == loaded.config)
            expectSameWeights(again.weights, loaded.weights)
        }
    }

    @Test func rejectsInconsistentInput() throws {
        let tmp = try TempDir()
        let distil = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"))
        let bert = try Checkpoint.load(directory: Fixtures.path("bert_f32"))
        expectError(.invalidArgument, mentions: ["does not describe"]) {
            try Checkpoint.save(weights: distil.weights, rawConfig: bert.rawConfig, tokenizerFrom: nil, to: tmp.sub("a"))
        }
        expectError(.invalidArgument, mentions: ["hidden size 32 vs 48"]) {
            try Checkpoint.save(weights: distil.weights, rawConfig: distil.rawConfig.setting("dim", 48).setting("n_heads", 4),
                                tokenizerFrom: nil, to: tmp.sub("a"))
        }
        var broken = distil.weights.layers
        broken[1][.ffnIn] = try Tensor(shape: [64, 31])
        let w = EncoderWeights(config: distil.config, embeddings: distil.weights.embeddings, layers: broken, head: distil.weights.head)
        expectError(.invalidArgument, mentions: ["transformer.layer.1.ffn.lin1.weight", "[64, 31]"]) {
            try Checkpoint.save(weights: w, rawConfig: distil.rawConfig, tokenizerFrom: nil, to: tmp.sub("a"))
        }
        #expect(FileSystem.kind(tmp.sub("a")) == .missing)
        try writeBytes(tmp.sub("file"), [1])
        expectError(.io, mentions: [tmp.sub("file")]) {
            try Checkpoint.save(weights: distil.weights, rawConfig: distil.rawConfig, tokenizerFrom: nil, to: tmp.sub("file"))
        }
    }

    /// Saves MiniLM with both heads and reloads. With SENTIMENT_TEST_SAVE_DIR set, the folders are
    /// kept there (minilm-distilbert-head, minilm-bert-head) for tools/check_hf_roundtrip.py.
    @Test func miniLMRoundTrip() throws {
        guard let dir = Fixtures.miniLM() else { return }
        let tmp = try TempDir()
        let keep = getenv("SENTIMENT_TEST_SAVE_DIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        for head in [LoadOptions.Head.distilbert, .bert] {
            let loaded = try Checkpoint.load(directory: dir, options: LoadOptions(head: head, seed: 42))
            let out = (keep ?? tmp.path) + "/minilm-\(head.rawValue)-head"
            let saved = try Checkpoint.save(weights: loaded.weights, rawConfig: loaded.rawConfig, tokenizerFrom: dir, to: out)
            #expect(saved.modelType == (head == .bert ? .bert : .distilbert))
            #expect(list(out) == ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"])
            let again = try Checkpoint.load(directory: out)
            #expect(!again.freshHead && again.ignoredTensors.isEmpty)
            #expect(identical(again.weights.head.classifier, loaded.weights.head.classifier))
            #expect(identical(again.weights.layers[5][.ffnOut], loaded.weights.layers[5][.ffnOut]))
            #expect(identical(again.weights.embeddings.word, loaded.weights.embeddings.word))
            if head == .bert { expectSameWeights(again.weights, loaded.weights) }
        }
    }
}
