// sentiment train: fine-tunes through sentiment_train, with a live progress line on a terminal
// (plain lines otherwise), and Ctrl-C stopping the run after the current step: the checkpoints
// saved so far stay and the table of the evaluations done is printed.
import ArgumentParser
import Sentiment
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

struct Train: ParsableCommand, FieldFlags {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model on a labelled data file.",
        usage: "sentiment train -m MODEL --train-file FILE [-o DIR] [--KEY VALUE ...] [--set KEY=VALUE ...] [--config FILE.json]",
        discussion: """
            Every key of sentiment_train (include/sentiment.h) is a flag: --KEY VALUE with dashes for \
            underscores (--lr-scheduler-type cosine, --warmup-steps 100, --eval-strategy steps), \
            --KEY alone for true, --no-KEY for false, or --set KEY=VALUE. Values are JSON when they \
            parse as JSON (numbers, true, arrays, objects), else text. --config FILE.json gives keys \
            first; flags override them in order, the named flags below last.
            Keys: \(TrainingConfig.keys.joined(separator: ", ")).
            Ctrl-C stops after the current step (exit 5), keeping the checkpoints saved so far.
            Example:
              sentiment train -m all-MiniLM-L6-v2 --train-file train.tsv --eval-file dev.tsv -o runs/sst2 --epochs 2
            """)

    @Option(name: [.short, .customLong("model")], help: "The model folder to start from (model_dir).")
    var model: String?

    @Option(help: "Labelled training data: TSV, CSV or JSON Lines.")
    var trainFile: String?

    @Option(help: "Labelled data evaluated per eval_strategy (default: after each epoch).")
    var evalFile: String?

    @Option(name: [.short, .long], help: "Where checkpoints go.")
    var outputDir: String?

    @Option(help: "num_train_epochs (default 5).")
    var epochs: String?

    @Option(help: "train_batch_size (default 256).")
    var batchSize: String?

    @Option(help: "learning_rate (default 2e-5).")
    var learningRate: String?

    @Option(help: "Stop after this many optimizer steps (max_steps).")
    var maxSteps: String?

    @Option(help: "A JSON file of config keys.")
    var config: String?

    @Flag(help: "Print the library's result document (JSON) instead of the table.")
    var json = false

    @Flag(help: "No progress output.")
    var quiet = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var keys: [String] = []

    var fieldFlags: [String: String] {
        ["model_dir": "--model", "num_train_epochs": "--epochs", "train_batch_size": "--batch-size", "config_json": "--config"]
    }

    func run() throws {
        var request = RequestObject()
        if let config { for m in try TrainRequest.config(config) { request.set(m.key, m.value) } }
        for (key, value) in try TrainRequest.pairs(keys) { request.set(key, value) }
        for (key, text) in [("model_dir", model), ("train_file", trainFile), ("eval_file", evalFile), ("output_dir", outputDir)] {
            if let text { request.set(key, JSON(text)) }
        }
        for (key, text) in [("num_train_epochs", epochs), ("train_batch_size", batchSize), ("learning_rate", learningRate),
                            ("max_steps", maxSteps)] {
            if let text { request.set(key, TrainRequest.value(text)) }
        }

        let progress = TrainProgress(live: Terminal.stderrIsTTY, quiet: quiet)
        Interrupt.install()
        defer { Interrupt.restore() }
        var out: UnsafeMutablePointer<CChar>?
        let status = request.json.serialized().withCString { text in
            withExtendedLifetime(progress) {
                sentiment_train(text, trainEvent, Unmanaged.passUnretained(progress).toOpaque(), &out)
            }
        }
        Terminal.endProgressLine()
        let result: JSON
        do {
            result = try Library.take(status, out)
        } catch var f as Failure {
            guard let partial = f.result else { throw f }
            // Cancelled: the partial result's table, then the error (exit 5).
            show(partial)
            f.message = "training was cancelled after step \(partial["steps"]?.int64Value ?? 0)"
            if let dir = partial["output_dir"]?.stringValue { f.message += "; checkpoints saved so far stay in \(dir)" }
            throw f
        }
        show(result)
    }

    private func show(_ result: JSON) {
        Terminal.out(json ? result.serialized() + "\n" : Train.table(result))
        Terminal.flush()
    }

    /// The evaluations table, then the best row, why the run stopped, where it saved, and the notes.
    static func table(_ r: JSON) -> String {
        let columns = ["epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_macro_f1", "eval_mcc", "seconds"]
        var s = columns.map { $0.padded($0.count + 2) }.joined() + "\n"
        for row in r["epochs"]?.arrayValue ?? [] {
            for c in columns {
                let v = row[c]
                let text: String
                switch c {
                case "epoch", "step": text = v?.int64Value.map { "\($0)" } ?? "-"
                case "seconds": text = fixed(v?.doubleValue, 1)
                default: text = fixed(v?.doubleValue)
                }
                s += text.padded(c.count + 2)
            }
            s += "\n"
        }
        if let step = r["best_step"]?.int64Value {
            s += "best: step \(step), \(fixed(r["best_metric"]?.doubleValue))\n"
        }
        s += "stopped: \(r["stop_reason"]?.stringValue ?? "?") after \(r["steps"]?.int64Value ?? 0) steps"
        s += " (\(r["isa"]?.stringValue ?? "?")\(r["bf16"]?.boolValue == true ? ", bf16" : ""))\n"
        if let dir = r["output_dir"]?.stringValue { s += "output: \(dir)\n" }
        for note in r["notes"]?.arrayValue ?? [] { s += "note: \(note.stringValue ?? "")\n" }
        return s.trimmingLineEnds
    }
}

/// Step, eval and saved events: a live line on a terminal, else one plain line each.
final class TrainProgress {
    let live: Bool
    let quiet: Bool
    private var first: (step: Int64, time: Double)?

    init(live: Bool, quiet: Bool) {
        self.live = live
        self.quiet = quiet
    }

    func handle(_ e: JSON) {
        guard !quiet else { return }
        switch e["event"]?.stringValue {
        case "step":
            let step = e["step"]?.int64Value ?? 0, total = e["total_steps"]?.int64Value ?? 0
            let t = now()
            var eta = "--"
            if let first, step > first.step {
                eta = duration((t - first.time) / Double(step - first.step) * Double(total - step))
            } else if first == nil {
                first = (step, t)
            }
            let figures = "step \(step)/\(total)  epoch \(e["epoch"]?.int64Value ?? 0)  loss \(fixed(e["loss"]?.doubleValue))"
                + "  lr \(scientific(e["learning_rate"]?.doubleValue))  \(fixed(e["examples_per_second"]?.doubleValue, 1)) ex/s  ETA \(eta)"
            if live {
                let width = 20, done = total > 0 ? Int(Double(width) * Double(step) / Double(total)) : 0
                Terminal.progress("[" + String(repeating: "#", count: done) + String(repeating: ".", count: width - done) + "] " + figures)
            } else {
                Terminal.error(figures)
            }
        case "eval":
            var line = "eval  epoch \(e["epoch"]?.int64Value ?? 0)  step \(e["step"]?.int64Value ?? 0)"
            line += "  train_loss \(fixed(e["train_loss"]?.doubleValue))  eval_loss \(fixed(e["eval_loss"]?.doubleValue))"
            line += "  eval_accuracy \(fixed(e["eval_accuracy"]?.doubleValue))"
            Terminal.error(line)
        case "saved":
            Terminal.error("saved \(e["path"]?.stringValue ?? "")")
        default:
            break
        }
    }
}

/// `v` as 1.2e-05.
func scientific(_ v: Double?) -> String {
    guard let v, v.isFinite, v != 0 else { return v == 0 ? "0" : "-" }
    var exponent = 0, m = abs(v)
    while m >= 10 { m /= 10; exponent += 1 }
    while m < 1 { m *= 10; exponent -= 1 }
    if (m * 10).rounded() >= 100 { m /= 10; exponent += 1 }   // 9.96 shows as 1.0e+01
    return (v < 0 ? "-" : "") + fixed(m, 1) + "e" + (exponent < 0 ? "-" : "+") + (abs(exponent) < 10 ? "0" : "") + "\(abs(exponent))"
}

/// sentiment_train's callback: shows the event; nonzero (cancel) once Ctrl-C was pressed.
private let trainEvent: ProgressCallback = { event, context in
    if let event, let context, let e = try? JSON.parse(String(cString: event)) {
        Unmanaged<TrainProgress>.fromOpaque(context).takeUnretainedValue().handle(e)
    }
    return Interrupt.requested ? 1 : 0
}
