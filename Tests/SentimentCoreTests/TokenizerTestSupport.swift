// Shared helpers for the tokenizer tests: where the package, fixtures, model and data are.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

enum TokenizerTestSupport {
    /// The package root, from this file's path (Tests/SentimentCoreTests/<file>).
    static let packageRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    static let fixtures = packageRoot + "/Tests/SentimentCoreTests/Fixtures/tokenizer"

    static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// $SENTIMENT_MODEL_DIR, else ${SENTIMENT_CACHE_DIR:-$HOME/.cache/sentiment}/models/all-MiniLM-L6-v2.
    static var modelDirectory: String {
        if let d = env("SENTIMENT_MODEL_DIR") { return d }
        let cache = env("SENTIMENT_CACHE_DIR") ?? ((env("HOME") ?? "") + "/.cache/sentiment")
        return cache + "/models/all-MiniLM-L6-v2"
    }

    /// $SENTIMENT_DATA_DIR, then ./data/sst2, then ../shared/data/sst2 (relative to the package root).
    static var dataDirectory: String? {
        var candidates: [String] = []
        if let d = env("SENTIMENT_DATA_DIR") { candidates.append(d) }
        candidates.append(packageRoot + "/data/sst2")
        candidates.append(packageRoot + "/../shared/data/sst2")
        return candidates.first { exists($0 + "/train.tsv") && exists($0 + "/dev.tsv") }
    }

    /// Under CI a missing prerequisite is a failure; elsewhere the test is skipped with a note.
    /// Returns true when the caller should stop.
    static func missing(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if env("CI") != nil {
            Issue.record("\(what) (CI is set, so this is a failure, not a skip)", sourceLocation: sourceLocation)
        } else {
            print("SKIPPED: \(what)")
        }
        return true
    }

    /// The default model's tokenizer, or nil (after recording/printing why).
    static func modelTokenizer(sourceLocation: SourceLocation = #_sourceLocation) throws -> BertTokenizer? {
        let dir = modelDirectory
        guard exists(dir + "/vocab.txt") else {
            _ = missing("model not found: \(dir)/vocab.txt (set SENTIMENT_MODEL_DIR or run scripts/fetch_model.sh)",
                        sourceLocation: sourceLocation)
            return nil
        }
        return try BertTokenizer.load(modelDirectory: dir)
    }

    static func readText(_ path: String) throws -> String {
        String(decoding: try FileSystem.readFile(path, limit: 1 << 30), as: UTF8.self)
    }

    static func readJSON(_ path: String) throws -> JSON {
        try JSON.parse(try FileSystem.readFile(path, limit: 1 << 30))
    }

    static func ids(_ v: JSON?) -> [Int32]? {
        guard let a = v?.arrayValue else { return nil }
        var out: [Int32] = []
        for x in a {
            guard let i = x.int64Value, let i32 = Int32(exactly: i) else { return nil }
            out.append(i32)
        }
        return out
    }

    static func strings(_ v: JSON?) -> [String]? {
        v?.arrayValue?.compactMap { $0.stringValue }
    }

    /// FNV-1a 64 over the ids as little-endian int32 bytes (the fixture script's definition).
    static func fnv1a64(_ ids: [Int32]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for id in ids {
            let u = UInt32(bitPattern: id)
            for shift in stride(from: 0, to: 32, by: 8) {
                h = (h ^ UInt64((u >> UInt32(shift)) & 0xFF)) &* 0x0000_0100_0000_01b3
            }
        }
        return h
    }

    static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    /// Sentences of an SST-2 TSV (header `sentence<TAB>label`), in file order; split on bytes, as the
    /// fixture script does (Python `split("\n")` then `rsplit("\t", 1)`).
    static func sst2Sentences(_ path: String) throws -> [String] {
        let bytes = try FileSystem.readFile(path, limit: 1 << 30)
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let header = lines.first, header.starts(with: Array("sentence\t".utf8)) else {
            Issue.record("\(path): unexpected header")
            return []
        }
        return lines.dropFirst().map { line in
            let cut = line.lastIndex(of: UInt8(ascii: "\t")) ?? line.endIndex
            return String(decoding: line[line.startIndex..<cut], as: UTF8.self)
        }
    }
}
