// Loading checkpoint folders: fixtures against PyTorch's values, head selection, the real MiniLM.

import Testing
@testable import SentimentCore

@Suite struct CheckpointLoadTests {
    /// Every loaded tensor equals what PyTorch saved (exact; F16/BF16 widened exactly).
    func expectAllTensorsMatch(_ loaded: LoadedCheckpoint, fixture: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try #require(Fixtures.expected[fixture]?.objectMembers, sourceLocation: sourceLocation)
        var byName: [String: JSON] = [:]
        for m in expected { byName[canonicalName(m.key)] = m.value }
        var skip = Set(loaded.freshTensors.map(canonicalName))
        var w = loaded.weights
        if w.config.modelType == .bert && w.config.headKind == .distilbert {
            // Name the tensors as BERT (no position folding); the dense slot holds pre_classifier, not the pooler.
            var c = w.config
            c.headKind = .bertPooler
            w = EncoderWeights(config: c, embeddings: w.embeddings, layers: w.layers, head: w.head)
            skip.formUnion(["pooler.dense.weight", "pooler.dense.bias"])
        }
        var checked = 0
        for (name, tensor) in try Checkpoint.huggingFaceTensors(w).tensors where !skip.contains(canonicalName(name)) {
            let e = try #require(byName[canonicalName(name)], "no expected values for \(name)", sourceLocation: sourceLocation)
            expectMatches(tensor, e, "\(fixture)/\(name)", sourceLocation: sourceLocation)
            checked += 1
        }
        #expect(checked >= 4 + 16 * loaded.config.numLayers, sourceLocation: sourceLocation)
    }

    /// Spot checks with hand-written names, independent of the loader's name tables.
    func expectSlot(_ t: Tensor, _ fixture: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let e = try #require(Fixtures.expected[fixture]?[name], "no expected \(name)", sourceLocation: sourceLocation)
        expectMatches(t, e, "\(fixture)/\(name)", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["distilbert_f32", "distilbert_f16", "distilbert_sharded"])
    func loadsDistilBERT(_ fixture: String) throws {
        let c = try Checkpoint.load(directory: Fixtures.path(fixture))
        let w = c.weights
        #expect(w.config.modelType == .distilbert)
        #expect(w.config.headKind == .distilbert)
        #expect(w.config.labels == ["NEGATIVE", "POSITIVE"])
        #expect((w.config.vocabSize, w.config.hiddenSize, w.config.numLayers, w.config.numHeads, w.config.intermediateSize, w.config.maxPositions) == (100, 32, 2, 4, 64, 64))
        #expect(w.config.classifierDropout == 0.2)
        #expect(w.embeddings.tokenType == nil)
        #expect(!c.freshHead && c.freshTensors.isEmpty)
        #expect(c.ignoredTensors.isEmpty)
        #expect(c.sourceDTypes == [fixture == "distilbert_f16" ? "F16" : "F32"])
        #expect(c.files.count == (fixture == "distilbert_sharded" ? 3 : 1))
        try expectAllTensorsMatch(c, fixture: fixture)
        let src = fixture == "distilbert_sharded" ? "distilbert_f32" : fixture
        try expectSlot(w.embeddings.word, src, "distilbert.embeddings.word_embeddings.weight")
        try expectSlot(w.embeddings.position, src, "distilbert.embeddings.position_embeddings.weight")
        try expectSlot(w.layers[1][.key], src, "distilbert.transformer.layer.1.attention.k_lin.weight")
        try expectSlot(w.layers[0][.valueBias], src, "distilbert.transformer.layer.0.attention.v_lin.bias")
        try expectSlot(w.layers[1][.attentionNormWeight], src, "distilbert.transformer.layer.1.sa_layer_norm.weight")
        try expectSlot(w.layers[0][.ffnIn], src, "distilbert.transformer.layer.0.ffn.lin1.weight")
        try expectSlot(w.layers[1][.ffnOut], src, "distilbert.transformer.layer.1.ffn.lin2.weight")
        try expectSlot(w.layers[1][.outputNormBias], src, "distilbert.transformer.layer.1.output_layer_norm.bias")
        try expectSlot(w.head.dense, src, "pre_classifier.weight")
        try expectSlot(w.head.classifierBias, src, "classifier.bias")
    }

    @Test func shardedEqualsSingleFile() throws {
        let a = try Checkpoint.load(directory: Fixtures.path("distilbert_f32")).weights.namedTensors
        let b = try Checkpoint.load(directory: Fixtures.path("distilbert_sharded")).weights.namedTensors
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) { #expect(x.name == y.name && identical(x.tensor, y.tensor), "\(x.name)") }
    }

    @Test(arguments: ["bert_f32", "bert_bf16"])
    func loadsBERTWithPoolerHead(_ fixture: String) throws {
        let c = try Checkpoint.load(directory: Fixtures.path(fixture))
        let w = c.weights
        #expect(w.config.modelType == .bert)
        #expect(w.config.headKind == .bertPooler)
        #expect(w.config.labels == ["negative", "neutral", "positive"])
        #expect(w.config.typeVocabSize == 2 && w.config.layerNormEps == 1e-12)
        #expect(w.config.classifierDropout == 0.1)   // classifier_dropout null -> hidden_dropout_prob
        #expect(w.head.classifier.shape == [3, 32])
        #expect(!c.freshHead)
        #expect(c.sourceDTypes == [fixture == "bert_bf16" ? "BF16" : "F32"])
        try expectAllTensorsMatch(c, fixture: fixture)
        try expectSlot(try #require(w.embeddings.tokenType), fixture, "bert.embeddings.token_type_embeddings.weight")
        try expectSlot(w.embeddings.normBias, fixture, "bert.embeddings.LayerNorm.bias")
        try expectSlot(w.layers[1][.query], fixture, "bert.encoder.layer.1.attention.self.query.weight")
        try expectSlot(w.layers[0][.attentionOut], fixture, "bert.encoder.layer.0.attention.output.dense.weight")
        try expectSlot(w.layers[0][.attentionNormWeight], fixture, "bert.encoder.layer.0.attention.output.LayerNorm.weight")
        try expectSlot(w.layers[1][.ffnInBias], fixture, "bert.encoder.layer.1.intermediate.dense.bias")
        try expectSlot(w.layers[1][.ffnOut], fixture, "bert.encoder.layer.1.output.dense.weight")
        try expectSlot(w.layers[0][.outputNormWeight], fixture, "bert.encoder.layer.0.output.LayerNorm.weight")
        try expectSlot(w.head.dense, fixture, "bert.pooler.dense.weight")
        try expectSlot(w.head.classifier, fixture, "classifier.weight")
    }

    @Test func bareBERTGetsAFreshDistilBERTHead() throws {
        let c = try Checkpoint.load(directory: Fixtures.path("bert_bare"))
        #expect(c.config.modelType == .bert && c.config.headKind == .distilbert)
        #expect(c.config.labels == ["NEGATIVE", "POSITIVE"])
        #expect(c.freshTensors == ["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"])
        #expect(c.ignoredTensors == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"])
        #expect(c.usedTensors.contains("embeddings.LayerNorm.gamma"))   // old-style names accepted
        try expectAllTensorsMatch(c, fixture: "bert_bare")
        try expectSlot(c.weights.embeddings.normWeight, "bert_bare", "embeddings.LayerNorm.gamma")
        try expectSlot(c.weights.layers[1][.outputNormBias], "bert_bare", "encoder.layer.1.output.LayerNorm.beta")
        #expect(c.weights.head.denseBias.array.allSatisfy { $0 == 0 })
        #expect(c.weights.head.classifierBias.array == [0, 0])
    }

    @Test func forcedBERTHeadKeepsPoolerAndAddsClassifier() throws {
        let c = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(head: .bert, numLabels: 3))
        #expect(c.config.headKind == .bertPooler)
        #expect(c.config.labels == ["LABEL_0", "LABEL_1", "LABEL_2"])
        #expect(c.freshTensors == ["classifier.weight", "classifier.bias"])
        try expectSlot(c.weights.head.dense, "bert_bare", "pooler.dense.weight")
        #expect(c.weights.head.classifier.shape == [3, 32])
    }

    @Test func forcedDistilBERTHeadOnBERTIgnoresPoolerAndClassifier() throws {
        let c = try Checkpoint.load(directory: Fixtures.path("bert_f32"), options: LoadOptions(head: .distilbert))
        #expect(c.config.headKind == .distilbert)
        #expect(c.freshTensors.count == 4)
        #expect(c.ignoredTensors == ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"])
        #expect(c.config.labels == ["negative", "neutral", "positive"])
        #expect(c.weights.head.classifier.shape == [3, 32])
    }

    @Test func headOptions() throws {
        expectError(.invalidArgument, mentions: ["DistilBERT"]) {
            _ = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"), options: LoadOptions(head: .bert))
        }
        // A loaded classifier must match the requested labels unless the head is replaced.
        expectError(.invalidArgument, mentions: ["classifier.weight", "2 rows", "3 labels"]) {
            _ = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"), options: LoadOptions(labels: ["a", "b", "c"]))
        }
        let fresh = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"), options: LoadOptions(labels: ["a", "b", "c"], freshHead: true))
        #expect(fresh.config.labels == ["a", "b", "c"] && fresh.freshTensors.count == 4)
        #expect(fresh.ignoredTensors == ["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"])
        // On a BERT checkpoint the pretrained pooler survives a fresh head.
        let bert = try Checkpoint.load(directory: Fixtures.path("bert_f32"), options: LoadOptions(numLabels: 5, freshHead: true))
        #expect(bert.config.headKind == .bertPooler && bert.config.labels.count == 5)
        #expect(bert.freshTensors == ["classifier.weight", "classifier.bias"])
        try expectSlot(bert.weights.head.dense, "bert_f32", "bert.pooler.dense.weight")
        let renamed = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"), options: LoadOptions(labels: ["bad", "good"]))
        #expect(renamed.config.labels == ["bad", "good"] && !renamed.freshHead)
        expectError(.invalidArgument, mentions: ["distinct"]) {
            _ = try Checkpoint.load(directory: Fixtures.path("distilbert_f32"), options: LoadOptions(labels: ["x", "x"]))
        }
        expectError(.invalidArgument, mentions: ["num_labels"]) {
            _ = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(numLabels: 0))
        }
    }

    @Test func freshHeadIsSeededNormal() throws {
        let a = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(seed: 7)).weights.head
        let b = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(seed: 7)).weights.head
        let c = try Checkpoint.load(directory: Fixtures.path("bert_bare"), options: LoadOptions(seed: 8)).weights.head
        #expect(identical(a.dense, b.dense) && identical(a.classifier, b.classifier))
        #expect(!identical(a.dense, c.dense) && !identical(a.classifier, c.classifier))
    }

    // MARK: The real pretrained model

    @Test func miniLM() throws {
        guard let dir = Fixtures.miniLM() else { return }
        let c = try Checkpoint.load(directory: dir)
        let w = c.weights
        #expect(w.config.modelType == .bert && w.config.headKind == .distilbert)
        #expect(w.embeddings.word.shape == [30522, 384])
        #expect(w.embeddings.position.shape == [512, 384])
        #expect(w.embeddings.tokenType?.shape == [2, 384])
        #expect(w.layers.count == 6 && w.layers[5][.ffnIn].shape == [1536, 384] && w.layers[5][.ffnOut].shape == [384, 1536])
        #expect(w.head.dense.shape == [384, 384] && w.head.classifier.shape == [2, 384])
        #expect(w.config.labels == ["NEGATIVE", "POSITIVE"] && w.config.numHeads == 12)
        #expect(c.freshTensors == ["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"])
        #expect(c.ignoredTensors == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"])
        #expect(c.metadata["format"] == "pt" && c.sourceDTypes == ["F32"])
        #expect(w.parameterCount == 22_713_216 + 2 * 384 + 2)   // file params, pooler swapped for pre_classifier, plus classifier
        // Values straight from the file.
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        #expect(identical(w.embeddings.word, try file.floatTensor("embeddings.word_embeddings.weight")))
        #expect(identical(w.layers[3][.value], try file.floatTensor("encoder.layer.3.attention.self.value.weight")))

        // Fresh head: normal(0, 0.02), zero biases, reproducible by seed.
        let h = w.head.dense.array
        let mean = h.reduce(0.0) { $0 + Double($1) } / Double(h.count)
        let std = (h.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(h.count)).squareRoot()
        #expect(abs(mean) < 0.001 && abs(std - 0.02) < 0.0005, "mean \(mean) std \(std)")
        #expect(w.head.denseBias.array.allSatisfy { $0 == 0 } && w.head.classifierBias.array == [0, 0])
        let same = try Checkpoint.load(directory: dir, options: LoadOptions(seed: 42)).weights.head
        let other = try Checkpoint.load(directory: dir, options: LoadOptions(seed: 43)).weights.head
        #expect(identical(same.dense, w.head.dense) && identical(same.classifier, w.head.classifier))
        #expect(!identical(other.dense, w.head.dense) && !identical(other.classifier, w.head.classifier))

        // BERT head: the pooler is kept, the classifier is fresh.
        let pooled = try Checkpoint.load(directory: dir, options: LoadOptions(head: .bert))
        #expect(pooled.config.headKind == .bertPooler)
        #expect(identical(pooled.weights.head.dense, try file.floatTensor("pooler.dense.weight")))
        #expect(identical(pooled.weights.head.denseBias, try file.floatTensor("pooler.dense.bias")))
        #expect(pooled.freshTensors == ["classifier.weight", "classifier.bias"])
    }
}
