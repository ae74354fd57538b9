// sentiment_classify: texts, or sentence pairs, to predictions; a long single text read whole in
// overlapping windows (long_text "window") whose probabilities are averaged.

extension ClassifyOptions {
    public func with(batchSize: Int) -> ClassifyOptions {
        var o = self
        o.batchSize = batchSize
        return o
    }
}

extension SentimentModel {
    /// Predictions for `o.texts`, in order. With long_text "window", a text longer than
    /// max_length is split into windows of max_length tokens ([CLS] + text tokens + [SEP]) that
    /// share `stride` text tokens with their neighbours; its probabilities and logits are the
    /// windows' means.
    public func classify(_ o: ClassifyOptions) throws -> [Prediction] {
        if let pairs = o.textPairs, pairs.count != o.texts.count {
            throw SentimentError.invalidArgument(
                "text_pairs has \(pairs.count) entries but texts has \(o.texts.count)", field: "text_pairs")
        }
        if o.longText == .truncate || o.textPairs != nil {
            let encoded = encode(o.texts, pairs: o.textPairs)
            let rows = try logits(encoded.ids, tokenTypes: encoded.types, batchSize: o.batchSize)
            return rows.map { prediction(probabilities: SentimentModel.softmax($0), logits: $0) }
        }
        let width = options.maxLength - 2
        let stride = o.stride ?? width / 4
        guard width >= 1, stride < width else {
            throw SentimentError.invalidArgument(
                "stride \(stride) must be below the \(Swift.max(width, 0)) text tokens of a window (max_length - 2)",
                field: "stride")
        }
        var sequences: [[Int32]] = [], owner: [Int] = []
        for (i, text) in o.texts.enumerated() {
            for w in windows(text, width: width, stride: stride) {
                sequences.append(w)
                owner.append(i)
            }
        }
        let rows = try logits(sequences, batchSize: o.batchSize)
        var probs = [[Double]](repeating: [], count: o.texts.count)
        var sums = [[Double]](repeating: [], count: o.texts.count)
        var counts = [Int](repeating: 0, count: o.texts.count)
        for (row, i) in zip(rows, owner) {
            let p = SentimentModel.softmax(row)
            if counts[i] == 0 {
                probs[i] = p
                sums[i] = row.map(Double.init)
            } else {
                for k in p.indices { probs[i][k] += p[k]; sums[i][k] += Double(row[k]) }
            }
            counts[i] += 1
        }
        return o.texts.indices.map { i in
            let n = Double(counts[i])
            return prediction(probabilities: probs[i].map { $0 / n }, logits: sums[i].map { Float($0 / n) }, windows: counts[i])
        }
    }

    /// `text`'s token ids as windows of `width` text tokens, each wrapped in [CLS] ... [SEP],
    /// starting every `width - stride` tokens; the last ends at the text's end. A text that fits is
    /// one window, the ids of `encode`.
    func windows(_ text: String, width: Int, stride: Int) -> [[Int32]] {
        let body = tokenizer.wordPieceIds(text)
        guard body.count > width else { return [tokenizer.encode(text, maxLength: options.maxLength)] }
        var out: [[Int32]] = []
        var start = body.startIndex
        while true {
            let end = Swift.min(start + width, body.endIndex)
            out.append([tokenizer.clsId] + body[start..<end] + [tokenizer.sepId])
            if end == body.endIndex { return out }
            start += width - stride
        }
    }
}
