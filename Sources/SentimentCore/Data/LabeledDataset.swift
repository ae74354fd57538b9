/// Labelled texts (or sentence pairs): read from a data file (`DataRows`) or given as lists.
public struct LabeledDataset: Sendable {
    public var texts: [String]
    /// The second texts of sentence pairs; nil for single texts.
    public var pairs: [String]?
    public var labels: [Int]
    /// The file the examples came from, for messages; nil for in-memory data.
    public var source: String?

    public var count: Int { texts.count }

    public init(texts: [String], pairs: [String]? = nil, labels: [Int], source: String? = nil) throws {
        guard texts.count == labels.count else {
            throw SentimentError.invalidArgument(
                "texts has \(texts.count) entries but labels has \(labels.count)", field: "labels")
        }
        if let pairs, pairs.count != texts.count {
            throw SentimentError.invalidArgument(
                "texts has \(texts.count) entries but text_pairs has \(pairs.count)", field: "text_pairs")
        }
        self.texts = texts
        self.pairs = pairs
        self.labels = labels
        self.source = source
    }
}
