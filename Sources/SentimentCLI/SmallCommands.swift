// sentiment quantize, tokenize and info: one library call each.
import ArgumentParser
import Sentiment
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

struct Quantize: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "Save a model as an int8 or bf16 checkpoint.",
        discussion: """
            int8: I8 weights with per-channel scales, about a quarter of fp32, loaded by this library \
            (not by transformers); --calibration-file calibrates it on sample sentences, which keeps \
            its labels much closer to fp32's. bf16: every float tensor as BF16, which transformers loads too.
            Example: sentiment quantize -m runs/sst2 -o runs/sst2-int8 --calibration-file train.tsv
            """)

    @Option(name: [.short, .customLong("model")], help: "The model folder to read.")
    var model: String

    @Option(name: [.short, .long], help: "The folder to write (other entries in it are kept).")
    var outputDir: String

    @Option(name: .customLong("to"), help: "int8 (default) or bf16.")
    var precision = "int8"

    @Option(help: "Compute threads.")
    var threads: Int?

    @OptionGroup var calibration: CalibrationFlags

    var fieldFlags: [String: String] {
        ["model_dir": "--model", "precision": "--to", "output_dir": "--output-dir", "config_json": "--model"]
    }

    func run() throws {
        let m = try ModelFlags.parse(["--model", model] + (threads.map { ["--threads", "\($0)"] } ?? [])).load()
        let saved = try m.save(.object([JSON.Member("output_dir", JSON(outputDir)), JSON.Member("precision", JSON(precision))]
                                        + calibration.members))
        let before = fileSize(model + "/model.safetensors"), after = fileSize(outputDir + "/model.safetensors")
        var line = "wrote \(outputDir) (\(precision)): " + (saved["files"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")
        if let before, let after, before > 0 {
            line += "\nmodel.safetensors: \(megabytes(after)) MB, \(Int((100 * Double(after) / Double(before)).rounded()))% of \(megabytes(before)) MB"
        }
        Terminal.out(line + "\n")
    }
}

struct Tokenize: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "Show the tokens and ids a model's tokenizer gives texts.",
        discussion: "With no texts, reads one per line from stdin. Example: sentiment tokenize -m runs/sst2 \"unaffected\"")

    @OptionGroup var model: ModelFlags

    @Argument(help: "Texts to tokenize.")
    var texts: [String] = []

    @Option(name: [.short, .long], help: "text (tokens, the default on a terminal) or jsonl (tokens and input_ids).")
    var output: String?

    var fieldFlags: [String: String] { modelFieldFlags }

    func run() throws {
        guard output == nil || output == "text" || output == "jsonl" else {
            throw Failure(status: .invalidArgument, "output \"\(output ?? "")\" is not one of \"text\", \"jsonl\"", field: "output")
        }
        let jsonl = output == "jsonl" || (output == nil && !Terminal.stdoutIsTTY)
        var source = try textSource(texts: texts, input: nil, format: nil, textColumn: nil, textPairColumn: nil)
        let m = try model.load()
        let chunk = texts.isEmpty && Terminal.stdinIsTTY ? 1 : 64
        var batch: [String] = []
        func flush() throws {
            guard !batch.isEmpty else { return }
            var request = RequestObject()
            request.set("texts", .array(batch.map { JSON($0) }))
            if let maxLength = model.maxLength { request.set("max_length", JSON(maxLength)) }
            let doc = try m.tokenize(request.json)
            let tokens = doc["tokens"]?.arrayValue ?? [], ids = doc["input_ids"]?.arrayValue ?? []
            for (i, text) in batch.enumerated() where i < tokens.count && i < ids.count {
                if jsonl {
                    Terminal.out(JSON(["text": JSON(text), "tokens": tokens[i], "input_ids": ids[i]]).serialized() + "\n")
                } else {
                    Terminal.out((tokens[i].arrayValue ?? []).compactMap(\.stringValue).joined(separator: " ") + "\n")
                }
            }
            Terminal.flush()
            batch.removeAll(keepingCapacity: true)
        }
        while let next = try source.next() {
            batch.append(next.text)
            if batch.count == chunk { try flush() }
        }
        try flush()
    }
}

struct Info: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "The library's version, or a model's settings: type, size, labels, precision, ISA.")

    @Option(name: [.short, .customLong("model")], help: "A model folder (without it: the library's version only).")
    var model: String?

    @Option(help: "fp32, int8 or bf16.")
    var precision: String?

    @Flag(help: "Print the library's info document (JSON).")
    var json = false

    var fieldFlags: [String: String] { modelFieldFlags }

    func run() throws {
        guard let model else {
            let doc = JSON(["version": JSON(Library.version), "abi_version": JSON(Int(abiVersionLoaded))])
            Terminal.out(json ? doc.serialized() + "\n" : "sentiment \(Library.version) (ABI \(abiVersionLoaded))\n")
            return
        }
        var args = ["--model", model]
        if let precision { args += ["--precision", precision] }
        let info = try ModelFlags.parse(args).load().info
        if json {
            Terminal.out(info.serialized() + "\n")
            return
        }
        for m in info.objectMembers ?? [] {
            let text: String
            switch m.value {
            case .string(let s): text = s
            case .array(let a): text = a.map { $0.stringValue ?? $0.serialized() }.joined(separator: ", ")
            case .double(let d): text = fixed(d, 3)
            default: text = m.value.serialized()
            }
            Terminal.out(m.key.padded(24) + text + "\n")
        }
    }
}

private var abiVersionLoaded: Int32 { sentiment_abi_version() }

private func fileSize(_ path: String) -> Int? {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : nil
}

private func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) }
