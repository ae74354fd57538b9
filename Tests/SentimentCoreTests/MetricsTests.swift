// Classification metrics against scikit-learn's (Fixtures/metrics, tools/fixtures/make_metric_fixtures.py).
import Testing
@testable import SentimentCore

@Suite struct MetricsTests {
    static let cases: [JSON] = {
        let path = FileSystem.directoryName(#filePath) + "/Fixtures/metrics/metrics.json"
        guard let bytes = try? FileSystem.readFile(path, limit: 1 << 20), let doc = try? JSON.parse(bytes) else { return [] }
        return doc["cases"]?.arrayValue ?? []
    }()

    func ints(_ j: JSON?) -> [Int] { (j?.arrayValue ?? []).compactMap { $0.int64Value.map(Int.init) } }
    func doubles(_ j: JSON?) -> [Double] { (j?.arrayValue ?? []).compactMap(\.doubleValue) }

    @Test func matchScikitLearn() throws {
        #expect(Self.cases.count == 7, "the fixture is missing or incomplete")
        for c in Self.cases {
            let name = c["name"]?.stringValue ?? "?"
            let k = Int(c["classes"]?.int64Value ?? 0)
            let m = ClassificationMetrics(labels: ints(c["labels"]), predictions: ints(c["predictions"]), classes: k)
            #expect(m.confusion == (c["confusion"]?.arrayValue ?? []).map(ints), "\(name)")
            #expect(m.perLabel.map(\.support) == ints(c["support"]), "\(name)")
            func close(_ a: [Double], _ b: [Double], _ what: String) {
                #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-12 }, "\(name) \(what): \(a) vs \(b)")
            }
            close(m.perLabel.map(\.precision), doubles(c["precision"]), "precision")
            close(m.perLabel.map(\.recall), doubles(c["recall"]), "recall")
            close(m.perLabel.map(\.f1), doubles(c["f1"]), "f1")
            close([m.accuracy, m.macroF1, m.mcc], [c["accuracy"], c["macro_f1"], c["mcc"]].compactMap { $0?.doubleValue }, "accuracy, macro F1, MCC")
        }
    }
}
