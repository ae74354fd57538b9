// Tokenizer speed: encode every sentence of an SST-2 TSV, one call per sentence, on one thread.
#if canImport(Glibc)
import Glibc
#endif
import SentimentCore

enum TokenizerBench {
    static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw SentimentError.io("cannot open \(path)", field: path) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            out.append(contentsOf: chunk[0..<got])
            if got < chunk.count { break }
        }
        if ferror(f) != 0 { throw SentimentError.io("cannot read \(path) (a folder?)", field: path) }
        return out
    }

    static func run(_ argv: [String]) throws {
        var model = env("SENTIMENT_MODEL_DIR")
            ?? ((env("SENTIMENT_CACHE_DIR") ?? ((env("HOME") ?? "") + "/.cache/sentiment")) + "/models/all-MiniLM-L6-v2")
        var data = (env("SENTIMENT_DATA_DIR") ?? "../shared/data/sst2") + "/train.tsv"
        var reps = 5
        var maxLength = 128
        var i = 0
        while i < argv.count {
            let value = i + 1 < argv.count ? argv[i + 1] : ""
            switch argv[i] {
            case "--model": model = value
            case "--data": data = value
            case "--reps": reps = max(1, Int(value) ?? 5)
            case "--max-length": maxLength = Int(value) ?? 128
            default: throw SentimentError.invalidArgument("unknown option \(argv[i])")
            }
            i += 2
        }

        let loadStart = now()
        let tok = try BertTokenizer.load(modelDirectory: model)
        let loadSeconds = now() - loadStart

        var lines = try readFile(data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if let last = lines.last, last.isEmpty { lines.removeLast() }
        let sentences: [String] = lines.dropFirst().map { line in
            let cut = line.lastIndex(of: UInt8(ascii: "\t")) ?? line.endIndex
            return String(decoding: line[line.startIndex..<cut], as: UTF8.self)
        }

        var times: [Double] = []
        var tokens = 0
        for _ in 0..<reps {
            var count = 0
            let t0 = now()
            for s in sentences {
                count &+= tok.encode(s, maxLength: maxLength).count
            }
            times.append(now() - t0)
            tokens = count
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        print("tokenizer: \(sentences.count) sentences, \(tokens) ids, load \(ms(loadSeconds)) ms")
        print("  per rep (s): \(times.map { fmt($0) }.joined(separator: " "))")
        print("  median \(fmt(median)) s, min \(fmt(sorted[0])) s, \(fmt(median / Double(max(sentences.count, 1)) * 1e6)) us/sentence")
        print(#"{"bench":"tokenizer","sentences":\#(sentences.count),"ids":\#(tokens),"reps":\#(reps),"median_s":\#(median),"min_s":\#(sorted[0]),"times_s":[\#(times.map { "\($0)" }.joined(separator: ","))]}"#)
    }

    static func fmt(_ x: Double) -> String {
        let v = (x * 10000).rounded() / 10000
        return "\(v)"
    }

    static func ms(_ x: Double) -> String { fmt(x * 1000) }
}
