// sentiment-bench: micro-benchmarks of the library, one subcommand per bench.
//
//   sentiment-bench tokenizer [--model DIR] [--data FILE] [--reps N] [--max-length N]
//   sentiment-bench forward [--model DIR] [--data FILE] [--reps N] [--batch N] [--threads N] [--modes 1,batch] [--precision fp32|int8]
//   sentiment-bench profile [TOKENS [SEQUENCES]]
//   sentiment-bench train [--model DIR] [--data FILE] [--batch 256] [--steps 6] [--warmup 1] [--max-length 128] [--threads N] [--no-dropout] [--bf16]
//   sentiment-bench train --config TRAIN_CONFIG.json [--stop-after-epochs N]   (one Trainer.run, printing its events)
//
// Each bench prints human-readable lines and one final JSON line (machine-readable, for the
// Python drivers in bench/).
#if canImport(Glibc)
import Glibc
#endif
import SentimentCore

func usage() -> Never {
    print("usage: sentiment-bench <bench> [options]\n  benches: tokenizer, forward, profile, train")
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard let bench = args.first else { usage() }
args.removeFirst()

do {
    switch bench {
    case "tokenizer": try TokenizerBench.run(args)
    case "forward": try ForwardBench.run(args)
    case "profile": try ProfileBench.run(args)
    case "train": try TrainBench.run(args)
    default: usage()
    }
} catch {
    print("error: \(error)")
    exit(1)
}
