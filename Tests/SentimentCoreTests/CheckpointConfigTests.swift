// config.json parsing and the checkpoint-level corruption catalogue (missing tensors,
// config/tensor disagreements, bad config.json, missing files and folders).

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

@Suite struct CheckpointConfigTests {
    static let distil = JSON([
        "model_type": "distilbert", "vocab_size": 100, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64,
    ])
    static let bert = JSON([
        "model_type": "bert", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64,
    ])

    @Test func defaults() throws {
        let d = try EncoderConfig.fromHuggingFace(Self.distil)
        #expect(d.maxPositions == 512 && d.hiddenDropout == 0.1 && d.attentionDropout == 0.1 && d.classifierDropout == 0.2)
        #expect(d.layerNormEps == 1e-12 && d.typeVocabSize == 0 && d.padTokenId == 0)
        #expect(d.labels == ["NEGATIVE", "POSITIVE"])
        let b = try EncoderConfig.fromHuggingFace(Self.bert.setting("hidden_dropout_prob", 0.3).setting("classifier_dropout", .null))
        #expect(b.typeVocabSize == 2 && b.layerNormEps == 1e-12 && b.classifierDropout == 0.3)
        #expect(try EncoderConfig.fromHuggingFace(Self.bert.setting("classifier_dropout", 0.25)).classifierDropout == 0.25)
        // No model_type: inferred from the size keys.
        #expect(try EncoderConfig.fromHuggingFace(Self.distil.removing("model_type")).modelType == .distilbert)
        #expect(try EncoderConfig.fromHuggingFace(Self.bert.removing("model_type")).modelType == .bert)
    }

    @Test func labels() throws {
        let id2label = JSON.object([JSON.Member("1", "pos"), JSON.Member("0", "neg"), JSON.Member("2", "mixed")])
        #expect(try EncoderConfig.fromHuggingFace(Self.bert.setting("id2label", id2label)).labels == ["neg", "pos", "mixed"])
        #expect(try EncoderConfig.fromHuggingFace(Self.bert.setting("num_labels", 3)).labels == ["LABEL_0", "LABEL_1", "LABEL_2"])
        func bad(_ v: JSON, _ mention: String, sourceLocation: SourceLocation = #_sourceLocation) {
            expectError(.format, mentions: ["config.json", mention], sourceLocation: sourceLocation) {
                _ = try EncoderConfig.fromHuggingFace(Self.bert.setting("id2label", v))
            }
        }
        bad(.object([JSON.Member("0", "a"), JSON.Member("2", "b")]), "contiguous")
        bad(.object([JSON.Member("-1", "a")]), "label id")
        bad(.object([JSON.Member("01", "a")]), "label id")
        bad(.object([JSON.Member("0", 5)]), "id2label")
        bad(.object([JSON.Member("0", "a"), JSON.Member("1", "a")]), "duplicate")
        bad(.object([]), "id2label")
        bad(["a", "b"], "not an object")
        expectError(.format, mentions: ["num_labels"]) {
            _ = try EncoderConfig.fromHuggingFace(Self.bert.setting("id2label", .object([JSON.Member("0", "a")])).setting("num_labels", 2))
        }
    }

    @Test func rejectsWhatWeCannotRunExactly() {
        func bad(_ j: JSON, _ mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
            expectError(.format, mentions: ["config.json"] + mentions, sourceLocation: sourceLocation) {
                _ = try EncoderConfig.fromHuggingFace(j)
            }
        }
        bad(Self.distil.setting("activation", "relu"), ["activation", "relu"])
        bad(Self.bert.setting("hidden_act", "gelu_new"), ["hidden_act", "gelu_new"])
        bad(Self.bert.setting("hidden_act", 3), ["hidden_act"])
        bad(Self.distil.setting("sinusoidal_pos_embds", true), ["sinusoidal_pos_embds"])
        bad(Self.bert.setting("position_embedding_type", "relative_key"), ["position_embedding_type"])
        bad(Self.bert.setting("is_decoder", true), ["is_decoder"])
        bad(Self.distil.setting("n_heads", 5), ["dim 32", "n_heads 5", "divisible"])
        bad(Self.bert.setting("num_attention_heads", 6), ["hidden_size 32", "num_attention_heads 6"])
        bad(Self.distil.removing("dim"), ["missing key dim"])
        bad(Self.bert.removing("vocab_size"), ["missing key vocab_size"])
        bad(Self.bert.setting("num_hidden_layers", 0), ["num_hidden_layers"])
        bad(Self.bert.setting("hidden_size", -32), ["hidden_size"])
        bad(Self.bert.setting("hidden_size", 1e12), ["hidden_size"])
        bad(Self.bert.setting("intermediate_size", 64.5), ["intermediate_size"])
        bad(Self.bert.setting("intermediate_size", "64"), ["intermediate_size"])
        bad(Self.bert.setting("hidden_dropout_prob", 1.5), ["hidden_dropout_prob"])
        bad(Self.bert.setting("layer_norm_eps", 0), ["layer_norm_eps"])
        bad(Self.bert.setting("type_vocab_size", 0), ["type_vocab_size"])
        bad(Self.bert.setting("pad_token_id", 100), ["pad_token_id"])
        bad(Self.bert.setting("model_type", "roberta"), ["model_type", "roberta"])
        bad(["a"], ["array"])
        bad(.object([]), ["model_type"])
    }

    @Test func generatedConfigRoundTrips() throws {
        for base in [Self.distil, Self.bert] {
            var c = try EncoderConfig.fromHuggingFace(base.setting("pad_token_id", 3))
            c.labels = ["x", "y", "z"]
            let json = c.huggingFaceJSON(architecture: "A")
            #expect(try EncoderConfig.fromHuggingFace(try JSON.parse(json.serialized())) == c)
            #expect(json["label2id"]?["z"] == 2)
        }
    }

    // MARK: Checkpoint-level corruption catalogue

    /// A copy of a fixture folder to break.
    func copy(_ fixture: String, _ tmp: TempDir) throws -> String {
        let dir = tmp.sub(fixture)
        try copyFolder(Fixtures.path(fixture), to: dir)
        return dir
    }

    func editConfig(_ dir: String, _ edit: (JSON) -> JSON) throws {
        let json = try JSON.parse(try readBytes(dir + "/config.json"))
        try writeBytes(dir + "/config.json", Array(edit(json).serialized(indent: 2).utf8))
    }

    /// Rewrites model.safetensors with `edit` applied to its (name, tensor) list.
    func editTensors(_ dir: String, _ edit: ([SafeTensorsWriter.Entry]) throws -> [SafeTensorsWriter.Entry]) throws {
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        let entries = try file.names.map { name -> SafeTensorsWriter.Entry in
            let e = try #require(file[name])
            if e.dtype.convertsToFloat { return SafeTensorsWriter.Entry(name: name, tensor: try file.floatTensor(name)) }
            return try SafeTensorsWriter.Entry(name: name, dtype: e.dtype.rawValue, shape: e.shape, bytes: try file.withRawBytes(name) { Array($0) })
        }
        try SafeTensorsWriter.write(try edit(entries), to: dir + "/model.safetensors")
    }

    @Test func missingTensor() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        let victim = "distilbert.transformer.layer.1.ffn.lin2.weight"
        try editTensors(dir) { $0.filter { $0.name != victim } }
        expectError(.format, mentions: ["missing tensor", victim, dir + "/model.safetensors"]) {
            _ = try Checkpoint.load(directory: dir)
        }
        let bare = try copy("bert_bare", tmp)
        try editTensors(bare) { $0.filter { $0.name != "encoder.layer.0.attention.output.LayerNorm.beta" } }
        expectError(.format, mentions: ["bert.encoder.layer.0.attention.output.LayerNorm.bias", "LayerNorm.beta"]) {
            _ = try Checkpoint.load(directory: bare)
        }
    }

    @Test func tensorShapeDisagreesWithConfig() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        try editConfig(dir) { $0.setting("hidden_dim", 48) }
        expectError(.format, mentions: ["distilbert.transformer.layer.0.ffn.lin1.weight", "[64, 32]", "expected [48, 32]", dir]) {
            _ = try Checkpoint.load(directory: dir)
        }
        let vocab = try copy("bert_f32", tmp)
        try editConfig(vocab) { $0.setting("vocab_size", 120) }
        expectError(.format, mentions: ["vocab_size", "120", "100 rows", "bert.embeddings.word_embeddings.weight"]) {
            _ = try Checkpoint.load(directory: vocab)
        }
        let labels = try copy("bert_f32", tmp)
        try editConfig(labels) { $0.setting("id2label", .object([JSON.Member("0", "a"), JSON.Member("1", "b")])) }
        expectError(.format, mentions: ["classifier.weight", "3 rows", "2 labels"]) { _ = try Checkpoint.load(directory: labels) }
        let head = try copy("distilbert_f32", tmp)
        try editTensors(head) { entries in
            try entries.map { $0.name == "pre_classifier.bias" ? SafeTensorsWriter.Entry(name: $0.name, tensor: try Tensor(shape: [31])) : $0 }
        }
        expectError(.format, mentions: ["pre_classifier.bias", "[31]", "expected [32]"]) { _ = try Checkpoint.load(directory: head) }
    }

    @Test func tensorWithNonFloatDtype() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        try editTensors(dir) { entries in
            try entries.map { e in
                e.name == "classifier.bias" ? try SafeTensorsWriter.Entry(name: e.name, dtype: "I32", shape: [2], bytes: [UInt8](repeating: 0, count: 8)) : e
            }
        }
        expectError(.format, mentions: ["classifier.bias", "I32"]) { _ = try Checkpoint.load(directory: dir) }
    }

    @Test func corruptSafetensorsSurfacesThroughLoad() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        var p = try SafeTensorsParts(readBytes(dir + "/model.safetensors"))
        p.set("classifier.weight", "dtype", "F8_E9")
        try writeBytes(dir + "/model.safetensors", p.bytes)
        expectError(.format, mentions: ["classifier.weight", "F8_E9", dir + "/model.safetensors"]) { _ = try Checkpoint.load(directory: dir) }
    }

    @Test func badConfigFile() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        let config = dir + "/config.json"
        try writeBytes(config, Array("{\"dim\": 32,".utf8))
        expectError(.format, mentions: [config, "not valid JSON"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(config, Array("[]".utf8))
        expectError(.format, mentions: [config, "not an object"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(config, Array(Self.distil.removing("n_layers").serialized().utf8))
        expectError(.format, mentions: [config, "n_layers"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(config, Array(Self.distil.setting("activation", "silu").serialized().utf8))
        expectError(.format, mentions: [config, "activation", "silu"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(config, Array(Self.distil.setting("n_heads", 3).serialized().utf8))
        expectError(.format, mentions: [config, "divisible"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(config, Array(Self.distil.setting("initializer_range", -1).serialized().utf8))
        expectError(.format, mentions: [config, "initializer_range"]) { _ = try Checkpoint.load(directory: dir) }
        unlink(config)
        expectError(.io, mentions: [config]) { _ = try Checkpoint.load(directory: dir) }
    }

    @Test func missingFilesAndFolders() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_f32", tmp)
        unlink(dir + "/model.safetensors")
        expectError(.io, mentions: ["model.safetensors", dir]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(dir + "/pytorch_model.bin", [0])
        expectError(.io, mentions: ["pytorch_model.bin", "safetensors"]) { _ = try Checkpoint.load(directory: dir) }
        expectError(.io, mentions: [tmp.sub("nowhere"), "does not exist"]) { _ = try Checkpoint.load(directory: tmp.sub("nowhere")) }
        expectError(.io, mentions: ["not a directory"]) { _ = try Checkpoint.load(directory: dir + "/pytorch_model.bin") }
    }

    @Test func badShardIndex() throws {
        let tmp = try TempDir()
        let dir = try copy("distilbert_sharded", tmp)
        let index = dir + "/model.safetensors.index.json"
        let good = try JSON.parse(try readBytes(index))
        unlink(dir + "/model-00002-of-00003.safetensors")
        expectError(.io, mentions: ["model-00002-of-00003.safetensors"]) { _ = try Checkpoint.load(directory: dir) }
        let map = try #require(good["weight_map"])
        try writeBytes(index, Array(good.setting("weight_map", map.setting("classifier.bias", "../elsewhere.safetensors")).serialized().utf8))
        expectError(.format, mentions: [index, "../elsewhere.safetensors", "plain file names"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(index, Array(good.setting("weight_map", map.setting("classifier.bias", "model-00001-of-00003.safetensors")).serialized().utf8))
        expectError(.format, mentions: ["classifier.bias", "model-00001-of-00003.safetensors", "does not contain"]) {
            _ = try Checkpoint.load(directory: dir)
        }
        try writeBytes(index, Array("{\"weight_map\": 3}".utf8))
        expectError(.format, mentions: [index, "weight_map"]) { _ = try Checkpoint.load(directory: dir) }
        try writeBytes(index, Array("{".utf8))
        expectError(.format, mentions: [index, "JSON"]) { _ = try Checkpoint.load(directory: dir) }
    }
}
