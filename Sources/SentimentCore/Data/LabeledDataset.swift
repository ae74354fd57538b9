/// Labelled texts: read from a data file (`DataFile`) or given as lists.
public struct LabeledDataset: Sendable {
    public var texts: [String]
    public var labels: [Int]
    /// The file the examples came from, for messages; nil for in-memory data.
    public var source: String?

    public var count: Int { texts.count }

    public init(texts: [String], labels: [Int], source: String? = nil) throws {
        guard texts.count == labels.count else {
            throw SentimentError.invalidArgument(
                "texts has \(texts.count) entries but labels has \(labels.count)", field: "labels")
        }
        self.texts = texts
        self.labels = labels
        self.source = source
    }

}
