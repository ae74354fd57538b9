// Encoder forward speed on the SST-2 dev sentences (tokenized with our tokenizer):
//   batch 1:  one forward per sentence, median latency per sentence
//   batch N:  sentences sorted by length, N per forward (one packed batch each), sentences/s
// Threads: --threads (default: OMP_NUM_THREADS or all cores). The head is the model's own or fresh.
// --precision int8 quantizes the linear layers at load (SENTIMENT_INT8_GEMM=onednn: oneDNN's GEMM
// instead of our VNNI kernel); --precision bf16 rounds them to bf16 (AVX512-BF16 or AMX).
// SENTIMENT_ISA caps the ISA; the first line names the one that ran.
#if canImport(Glibc)
import Glibc
#endif
import SentimentCore

enum ForwardBench {
    static func run(_ argv: [String]) throws {
        let env = TokenizerBench.env
        var model = env("SENTIMENT_MODEL_DIR")
            ?? ((env("SENTIMENT_CACHE_DIR") ?? ((env("HOME") ?? "") + "/.cache/sentiment")) + "/models/all-MiniLM-L6-v2")
        var data = (env("SENTIMENT_DATA_DIR") ?? "../shared/data/sst2") + "/dev.tsv"
        var reps = 3, batch = 32, threads = 0, maxLength = 128
        var modes = "1,batch", precision = Precision.fp32
        var i = 0
        while i < argv.count {
            let value = i + 1 < argv.count ? argv[i + 1] : ""
            switch argv[i] {
            case "--model": model = value
            case "--data": data = value
            case "--reps": reps = max(1, Int(value) ?? 3)
            case "--batch": batch = max(1, Int(value) ?? 32)
            case "--threads": threads = Int(value) ?? 0
            case "--max-length": maxLength = Int(value) ?? 128
            case "--modes": modes = value
            case "--precision":
                guard let p = Precision(rawValue: value) else {
                    let names = Precision.allCases.map(\.rawValue).joined(separator: ", ")
                    throw SentimentError.invalidArgument("--precision must be one of \(names), got \(value)")
                }
                precision = p
            default: throw SentimentError.invalidArgument("unknown option \(argv[i])")
            }
            i += 2
        }
        Parallel.setThreads(threads)

        let t0 = TokenizerBench.now()
        let ckpt = try Checkpoint.load(directory: model)
        let enc = switch precision {
        case .int8:
            // An int8 checkpoint runs with its own scheme (scales, smoothing, fp32 channels).
            try EncoderForward(weights: ckpt.weights, packing: .int8(try QuantizedEncoderWeights(
                ckpt.weights, knownScales: ckpt.int8Scales, smoothing: ckpt.int8Smoothing, outliers: ckpt.int8Outliers)))
        case .bf16: try EncoderForward(weights: ckpt.weights, packing: .bf16(training: false))
        case .fp32: try EncoderForward(weights: ckpt.weights)
        }
        let tok = try BertTokenizer.load(modelDirectory: model)
        let loadSeconds = TokenizerBench.now() - t0

        var lines = try TokenizerBench.readFile(data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if let last = lines.last, last.isEmpty { lines.removeLast() }
        let ids: [[Int32]] = lines.dropFirst().map { line in
            let cut = line.lastIndex(of: UInt8(ascii: "\t")) ?? line.endIndex
            return tok.encode(String(decoding: line[line.startIndex..<cut], as: UTF8.self), maxLength: maxLength)
        }
        let n = ids.count
        guard n > 0 else { throw SentimentError.invalidArgument("\(data) has no sentences after its header line", field: "--data") }
        let tokens = ids.reduce(0) { $0 + $1.count }
        let kernel = precision != .int8 ? "" : Int8Kernel.vnniPacked ? ", VNNI kernel" : ", oneDNN GEMM"
        print("forward (\(precision.rawValue)\(kernel), isa \(try ISA.active().name)): \(n) sentences, \(tokens) tokens (mean \(TokenizerBench.fmt(Double(tokens) / Double(max(n, 1))))), "
              + "threads \(Parallel.threads), load \(TokenizerBench.ms(loadSeconds)) ms")

        var ws: ForwardWorkspace? = nil
        var json: [String] = []
        let singles = try ids.map { try PackedBatch(sequences: [$0]) }
        if modes.contains("1") {
            for b in singles.prefix(50) { _ = try enc.logits(b, workspace: &ws) }   // warm-up
            var lat: [Double] = []
            var repMedians: [Double] = []
            for _ in 0..<reps {
                var these: [Double] = []
                for b in singles {
                    let s = TokenizerBench.now()
                    _ = try enc.logits(b, workspace: &ws)
                    these.append(TokenizerBench.now() - s)
                }
                lat += these
                repMedians.append(these.sorted()[these.count / 2])
            }
            let sorted = lat.sorted()
            let median = sorted[sorted.count / 2], mean = lat.reduce(0, +) / Double(lat.count)
            print("  batch 1: median \(TokenizerBench.ms(median)) ms/sentence, mean \(TokenizerBench.ms(mean)) ms, "
                  + "p90 \(TokenizerBench.ms(sorted[sorted.count * 9 / 10])) ms, per-rep medians "
                  + repMedians.map { TokenizerBench.ms($0) }.joined(separator: " "))
            json.append(#""batch1_median_ms":\#(median * 1000),"batch1_mean_ms":\#(mean * 1000)"#)
        }
        if modes.contains("batch") {
            let order = (0..<n).sorted { ids[$0].count < ids[$1].count }
            let batches = try stride(from: 0, to: n, by: batch).map { s in
                try PackedBatch(sequences: order[s..<min(n, s + batch)].map { ids[$0] })
            }
            for b in batches.prefix(4) { _ = try enc.logits(b, workspace: &ws) }   // warm-up
            var times: [Double] = []
            for _ in 0..<reps {
                let s = TokenizerBench.now()
                for b in batches { _ = try enc.logits(b, workspace: &ws) }
                times.append(TokenizerBench.now() - s)
            }
            let sorted = times.sorted()
            let median = sorted[sorted.count / 2]
            print("  batch \(batch): \(TokenizerBench.fmt(Double(n) / median)) sentences/s (median of \(reps)), best "
                  + "\(TokenizerBench.fmt(Double(n) / sorted[0])), \(TokenizerBench.fmt(Double(tokens) / median)) tokens/s")
            json.append(#""batch":\#(batch),"batch_sentences_per_s":\#(Double(n) / median),"batch_best_sentences_per_s":\#(Double(n) / sorted[0])"#)
        }
        print(#"{"bench":"forward","sentences":\#(n),"tokens":\#(tokens),"threads":\#(Parallel.threads),"reps":\#(reps),\#(json.joined(separator: ","))}"#)
    }
}
