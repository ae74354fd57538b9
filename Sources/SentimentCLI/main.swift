// sentiment: the command-line tool. Exit codes are the library's status codes (0 ok,
// 2 invalid argument, bad flags included, 3 I/O, 4 format, 5 cancelled, ...), and errors go to
// stderr with the field at fault and the flag that sets it.
import ArgumentParser
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

struct SentimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sentiment",
        abstract: "Classify, evaluate and fine-tune BERT/DistilBERT sentiment models on the CPU.",
        discussion: """
            Exit status: the library's status codes. 0 ok, 1 error, 2 invalid argument (bad flags too), \
            3 I/O, 4 malformed file or data, 5 cancelled (Ctrl-C during train), 6 busy, 7 out of memory, \
            8 misuse, 9 internal error.
            """,
        version: Library.version,
        subcommands: [Classify.self, Evaluate.self, Train.self, Quantize.self, Tokenize.self, Info.self])
}

/// Prints a failure as `sentiment: <code>: <message> [field: <field> (<flag>)]` and exits with its status.
func fail(_ f: Failure, flags: [String: String] = [:]) -> Never {
    Terminal.endProgressLine()
    var line = "sentiment: \(f.code): \(f.message)"
    if let field = f.field {
        let flag = flags[field] ?? Terminal.flag(for: field)
        line += " [field: \(field)\(flag.map { " (\($0))" } ?? "")]"
    }
    Terminal.error(line)
    exit(f.status)
}

do {
    var command = try SentimentCommand.parseAsRoot()
    do {
        try command.run()
    } catch let f as Failure {
        fail(f, flags: (command as? FieldFlags)?.fieldFlags ?? [:])
    }
} catch let f as Failure {
    fail(f)
} catch {
    // Bad flags are invalid arguments (2), not ArgumentParser's EX_USAGE (64).
    if SentimentCommand.exitCode(for: error) == .validationFailure {
        Terminal.error(SentimentCommand.fullMessage(for: error))
        exit(Status.invalidArgument.rawValue)
    }
    SentimentCommand.exit(withError: error)
}
