// Classification metrics from true labels and predictions, as scikit-learn defines them
// (checked against it: Tests/SentimentCoreTests/Fixtures/metrics, tools/fixtures/make_metric_fixtures.py).

/// The figures `evaluate` reports beside accuracy and loss.
public struct ClassificationMetrics: Sendable, Equatable {
    /// One class's figures (scikit-learn's `zero_division=0`: 0 where a ratio has no denominator).
    public struct PerLabel: Sendable, Equatable {
        public var precision: Double, recall: Double, f1: Double
        /// Examples whose true label is this class.
        public var support: Int
    }

    /// confusion[t][p]: examples of true class t predicted as p, over every class.
    public let confusion: [[Int]]
    public let perLabel: [PerLabel]
    public let accuracy: Double
    /// The mean F1 over the classes present in the labels or the predictions (scikit-learn's
    /// default for `average="macro"`).
    public let macroF1: Double
    /// Matthews correlation (multiclass: Gorodkin's R_K); 0 when undefined (a constant column).
    public let mcc: Double

    /// `labels` and `predictions` are class ids in 0..<classes (the caller checks the range).
    public init(labels: [Int], predictions: [Int], classes: Int) {
        var m = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        for (t, p) in zip(labels, predictions) { m[t][p] += 1 }
        self.init(confusion: m)
    }

    /// The figures of a square confusion matrix (e.g. one stored in a training state).
    public init(confusion m: [[Int]]) {
        let classes = m.count
        confusion = m
        let n = m.reduce(0) { $0 + $1.reduce(0, +) }
        let truth = m.map { $0.reduce(0, +) }
        let predicted = (0..<classes).map { p in m.reduce(0) { $0 + $1[p] } }
        let correct = (0..<classes).reduce(0) { $0 + m[$1][$1] }
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        let perLabel = (0..<classes).map { k in
            let precision = ratio(m[k][k], predicted[k]), recall = ratio(m[k][k], truth[k])
            let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
            return PerLabel(precision: precision, recall: recall, f1: f1, support: truth[k])
        }
        self.perLabel = perLabel
        accuracy = ratio(correct, n)
        let present = (0..<classes).filter { truth[$0] > 0 || predicted[$0] > 0 }
        macroF1 = present.isEmpty ? 0 : present.reduce(0.0) { $0 + perLabel[$1].f1 } / Double(present.count)
        // (c s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), in Double.
        let s = Double(n), c = Double(correct)
        let pt = (0..<classes).reduce(0.0) { $0 + Double(predicted[$1]) * Double(truth[$1]) }
        let pp = predicted.reduce(0.0) { $0 + Double($1) * Double($1) }
        let tt = truth.reduce(0.0) { $0 + Double($1) * Double($1) }
        let denominator = ((s * s - pp) * (s * s - tt)).squareRoot()
        mcc = denominator == 0 ? 0 : (c * s - pt) / denominator
    }
}
