// Streams the records of a data file as people have them: TSV, CSV (RFC 4180) or JSON Lines,
// with LF, CRLF or lone-CR line endings, an optional UTF-8 byte-order mark, a last line with or
// without a newline, and blank lines anywhere (skipped). The file is read in 1 MB chunks, so a
// large file is never held in memory as a whole besides the strings taken from it.
#if canImport(Glibc)
import Glibc
#endif

/// The formats a data file can have (`"format"`; by default from the file's extension).
public enum DataFormat: String, Sendable, CaseIterable {
    /// Tab-separated, first line the column names. No quoting: a quote is an ordinary character
    /// (GLUE's files), so a field cannot hold a tab or a line break.
    case tsv
    /// Comma-separated, first line the column names (RFC 4180: a quoted field may hold commas,
    /// doubled quotes and line breaks).
    case csv
    /// One JSON object per line; columns are its keys.
    case jsonl

    /// The format named by `path`'s extension (`.tsv`, `.csv`, `.jsonl`, case-insensitive), if any.
    public static func of(path: String) -> DataFormat? {
        let name = FileSystem.baseName(path).lowercased()
        guard let dot = name.lastIndex(of: ".") else { return nil }
        return DataFormat(rawValue: String(name[name.index(after: dot)...]))
    }
}

/// One field of a record: text (TSV, CSV, JSON strings), or a JSON value of another type.
enum DataCell: Equatable {
    case text(String)
    case json(JSON)
}

/// A record and the (1-based) line it starts on.
struct DataRecord {
    var line: Int
    /// TSV and CSV: the fields in order. JSON Lines: empty (see `object`).
    var fields: [String] = []
    /// JSON Lines: the line's object.
    var object: [JSON.Member] = []
}

/// Reads the records of one file, in order. Errors name the file and line (`.format`); a file
/// that cannot be opened or is not a regular file is `.io`. `field` is the request key the path
/// came from, named in every error. Closes the file when released.
final class RecordReader {
    let path: String
    let format: DataFormat
    let field: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEOF = false
    private var started = false
    /// The line the next byte is on.
    private var line = 1

    private static let chunk = 1 << 20
    /// A record (a line, or a quoted CSV field's lines) longer than this is `.format`: read,
    /// it would take several times its size as text and tokens.
    public static let maxRecordBytes = 4 << 20

    init(path: String, format: DataFormat, field: String) throws {
        self.path = path
        self.format = format
        self.field = field
        let (fd, _) = try FileSystem.openRegularFile(path, field: field, limit: nil)
        self.fd = fd
    }

    deinit { close(fd) }

    func error(_ message: String, line: Int) -> SentimentError {
        SentimentError.format("\(path):\(line): \(message)", field: field)
    }

    /// The next non-blank record, or nil at the end of the file.
    func next() throws -> DataRecord? {
        switch format {
        case .tsv: return try nextDelimited(separator: UInt8(ascii: "\t"), quoting: false)
        case .csv: return try nextDelimited(separator: UInt8(ascii: ","), quoting: true)
        case .jsonl: return try nextJSONLine()
        }
    }

    // MARK: bytes

    /// The next byte, or nil at the end of the file. Skips a UTF-8 byte-order mark at the start.
    private func byte() throws -> UInt8? {
        if position == buffer.count {
            guard try refill() else { return nil }
        }
        let b = buffer[position]
        position += 1
        return b
    }

    private func peek() throws -> UInt8? {
        if position == buffer.count {
            guard try refill() else { return nil }
        }
        return buffer[position]
    }

    private func refill() throws -> Bool {
        guard !atEOF else { return false }
        buffer = [UInt8](repeating: 0, count: Self.chunk)
        var n = 0
        repeat {
            n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, Self.chunk) }
        } while n < 0 && errno == EINTR
        guard n >= 0 else {
            throw SentimentError.io("cannot read \(path): \(FileSystem.errnoText())", field: field)
        }
        buffer.removeSubrange(n...)
        position = 0
        if n == 0 { atEOF = true; return false }
        if !started {
            started = true
            if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
            if position == buffer.count { return try refill() }
        }
        return true
    }

    /// Appends the buffered bytes from `position` up to (not including) the first of `a`-`d`;
    /// whether it appended any. Stops at the end of the buffer (`byte` refills it).
    private func appendRun(into out: inout [UInt8], stoppingAt a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Bool {
        let start = position
        var i = start
        buffer.withUnsafeBufferPointer { p in
            while i < p.count {
                let x = p[i]
                if x == a || x == b || x == c || x == d { break }
                i += 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        }
        position = i
        return i > start
    }

    private func text(_ bytes: [UInt8], line: Int, column: Int) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw error("field \(column + 1) is not valid UTF-8", line: line)
        }
        return s
    }

    private func checkLength(_ bytes: Int, line: Int) throws {
        guard bytes > Self.maxRecordBytes else { return }
        throw error("a line longer than \(Self.maxRecordBytes >> 20) MB", line: line)
    }

    // MARK: TSV, CSV

    private func nextDelimited(separator: UInt8, quoting: Bool) throws -> DataRecord? {
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        while true {
            let start = line
            var fields: [String] = []
            var fieldBytes = 0   // of `fields`
            var current: [UInt8] = []
            var quoted = false, quoteLine = 0
            var sawAnything = false
            var ended = false
            while true {
                // Ordinary bytes in bulk, up to the next one that means something here.
                if quoted {
                    if appendRun(into: &current, stoppingAt: quote, cr, lf, quote) { sawAnything = true }
                } else if appendRun(into: &current, stoppingAt: separator, cr, lf, quoting ? quote : separator) {
                    sawAnything = true
                }
                try checkLength(fieldBytes + current.count, line: start)
                guard let b = try byte() else { break }
                sawAnything = true
                if quoted {
                    if b == quote {
                        if try peek() == quote {
                            position += 1
                            current.append(quote)
                        } else {
                            quoted = false   // text after the closing quote is kept, as Python's csv does
                        }
                    } else {
                        if b == lf { line += 1 } else if b == cr, try peek() != lf { line += 1 }
                        current.append(b)
                    }
                    continue
                }
                if b == separator {
                    fields.append(try text(current, line: start, column: fields.count))
                    fieldBytes += current.count + 1
                    current.removeAll(keepingCapacity: true)
                } else if b == lf || b == cr {
                    if b == cr, try peek() == lf { position += 1 }
                    line += 1
                    ended = true
                    break
                } else if quoting && b == quote && current.isEmpty {
                    quoted = true
                    quoteLine = line
                } else {
                    current.append(b)
                }
            }
            if quoted { throw error("a quote opened on line \(quoteLine) is never closed", line: start) }
            if !sawAnything { return nil }
            fields.append(try text(current, line: start, column: fields.count))
            // Blank lines (nothing, or only spaces, in a single field) are skipped.
            if fields.count == 1, fields[0].allSatisfy({ $0 == " " }) {
                if ended { continue }
                return nil
            }
            return DataRecord(line: start, fields: fields)
        }
    }

    // MARK: JSON Lines

    private func nextJSONLine() throws -> DataRecord? {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        while true {
            let start = line
            var bytes: [UInt8] = []
            var sawAnything = false
            while true {
                if appendRun(into: &bytes, stoppingAt: cr, lf, cr, lf) { sawAnything = true }
                try checkLength(bytes.count, line: start)
                guard let b = try byte() else { break }
                sawAnything = true
                if b == lf || b == cr {
                    if b == cr, try peek() == lf { position += 1 }
                    line += 1
                    break
                }
                bytes.append(b)
            }
            if !sawAnything { return nil }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let value: JSON
            do {
                value = try JSON.parse(bytes)
            } catch let e as SentimentError {
                throw error("bad JSON: \(e.message)", line: start)
            }
            guard let members = value.objectMembers else {
                throw error("expected a JSON object, found a \(value.typeName)", line: start)
            }
            return DataRecord(line: start, object: members)
        }
    }
}
