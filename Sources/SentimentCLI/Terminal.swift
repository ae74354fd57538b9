// Writing to stdout and stderr, and what the terminal is.
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

enum Terminal {
    static let stdoutIsTTY = isatty(1) == 1
    static let stderrIsTTY = isatty(2) == 1
    static let stdinIsTTY = isatty(0) == 1

    /// Columns for tables: $COLUMNS, else 100.
    static var width: Int { getenv("COLUMNS").flatMap { Int(String(cString: $0)) }.map { max(40, $0) } ?? 100 }

    static func out(_ s: String) { print(s, terminator: "") }
    static func flush() { fflush(nil) }

    /// Writes to stderr (unbuffered).
    static func write2(_ s: String) {
        var s = s
        s.withUTF8 { p in
            guard let base = p.baseAddress else { return }
            var done = 0
            while done < p.count {
                let n = Glibc.write(2, base + done, p.count - done)
                if n <= 0 { if n < 0 && errno == EINTR { continue } else { return } }
                done += n
            }
        }
    }

    /// Whether a progress line is on stderr now (it is cleared before other output there).
    nonisolated(unsafe) private static var progressShown = false

    static func error(_ line: String) {
        endProgressLine()
        write2(line.hasSuffix("\n") ? line : line + "\n")
    }

    /// Replaces the live progress line on a terminal's stderr.
    static func progress(_ line: String) {
        write2("\r\u{1B}[K" + line)
        progressShown = true
    }

    static func endProgressLine() {
        if progressShown { write2("\r\u{1B}[K") }
        progressShown = false
    }

    /// The flag spelling of a request key (`batch_size` -> `--batch-size`).
    static func flag(for field: String) -> String? {
        guard !field.isEmpty, field.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
        return "--" + field.replacingUnderscores
    }
}

/// Commands whose flags are not simply the request keys say which flag sets which key.
protocol FieldFlags {
    var fieldFlags: [String: String] { get }
}

extension String {
    var replacingUnderscores: String { String(map { $0 == "_" ? "-" : $0 }) }
    var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }

    /// At most `width` characters, with an ellipsis when cut; tabs and line breaks as spaces.
    func cell(_ width: Int) -> String {
        let flat = String(map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
        return flat.count <= width ? flat : String(flat.prefix(max(0, width - 1))) + "…"
    }

    /// Each line without trailing spaces.
    var trimmingLineEnds: String {
        split(separator: "\n", omittingEmptySubsequences: false)
            .map { String($0.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n")
    }

    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

/// A number as tables show it: `digits` decimals.
func fixed(_ v: Double?, _ digits: Int = 4) -> String {
    guard let v, v.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (abs(v) * scale).rounded() / scale
    let whole = Int(r), frac = Int(((r - Double(whole)) * scale).rounded())
    let fracText = String(frac)
    return (v < 0 && r != 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + String(repeating: "0", count: digits - fracText.count) + fracText : "")
}

/// Seconds as `1h02m`, `3m05s` or `12s`.
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--" }
    let s = Int(seconds.rounded())
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    if s >= 3600 { return "\(s / 3600)h\(two(s % 3600 / 60))m" }
    if s >= 60 { return "\(s / 60)m\(two(s % 60))s" }
    return "\(s)s"
}

/// Monotonic seconds.
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
