// Where the texts of classify and tokenize come from, one at a time: the arguments, lines of
// stdin or of a file, or a data file's text column (the library's TSV/CSV/JSON Lines reader).
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

protocol TextSource {
    /// The next text and its second text (sentence pairs), or nil at the end.
    mutating func next() throws -> (text: String, pair: String?)?
}

struct ArgumentTexts: TextSource {
    var texts: [String]
    var index = 0

    mutating func next() throws -> (text: String, pair: String?)? {
        guard index < texts.count else { return nil }
        index += 1
        return (texts[index - 1], nil)
    }
}

/// One text per line (LF or CRLF), every line kept, so results line up with the input.
final class LineTexts: TextSource {
    private let file: UnsafeMutablePointer<FILE>
    private let name: String
    private let field: String
    private var line = 0
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0

    /// `path` "-" is stdin.
    init(path: String, field: String) throws {
        self.field = field
        if path == "-" {
            guard let f = fdopen(0, "r") else { throw Failure(status: .io, "cannot read stdin", field: field) }
            file = f
            name = "stdin"
        } else {
            var st = stat()
            if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                throw Failure(status: .io, "cannot read \(path): it is a folder", field: field)
            }
            guard let f = fopen(path, "r") else {
                throw Failure(status: .io, "cannot read \(path): \(String(cString: strerror(errno)))", field: field)
            }
            file = f
            name = path
        }
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    func next() throws -> (text: String, pair: String?)? {
        let n = getline(&buffer, &capacity, file)
        guard n >= 0, let buffer else {
            if ferror(file) != 0 { throw Failure(status: .io, "cannot read \(name): \(String(cString: strerror(errno)))", field: field) }
            return nil
        }
        line += 1
        var count = n
        if count > 0, buffer[count - 1] == 0x0A { count -= 1 }
        if count > 0, buffer[count - 1] == 0x0D { count -= 1 }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: count).bindMemory(to: UInt8.self)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(status: .format, "\(name):\(line): not valid UTF-8", field: field)
        }
        return (text, nil)
    }
}

/// A data file's text column (and text pair column), as the library reads data files.
struct DataFileTexts: TextSource {
    let stream: TextStream

    mutating func next() throws -> (text: String, pair: String?)? {
        do {
            return try stream.next().map { ($0.text, $0.pair) }
        } catch let e as SentimentError {
            throw Failure(status: e.status, e.message, field: e.field)
        }
    }
}

/// The source the flags name: the texts given, else `input` (a data file, or lines with
/// format "lines" or path "-"), else stdin's lines.
func textSource(texts: [String], input: String?, format: String?, textColumn: String?,
                textPairColumn: String?) throws -> TextSource {
    if !texts.isEmpty {
        guard input == nil else { throw Failure(status: .invalidArgument, "give texts or --input, not both", field: "input") }
        return ArgumentTexts(texts: texts)
    }
    guard let input, input != "-", format != "lines" else {
        guard textPairColumn == nil else {
            throw Failure(status: .invalidArgument, "--text-pair-column needs a data file (TSV, CSV or JSON Lines)",
                          field: "text_pair_column")
        }
        return try LineTexts(path: input ?? "-", field: "input")
    }
    var file = DataFile(path: input, textColumn: textColumn, textPairColumn: textPairColumn)
    if let format {
        guard let f = DataFormat(rawValue: format) else {
            throw Failure(status: .invalidArgument, "format \"\(format)\" is not one of \"tsv\", \"csv\", \"jsonl\", \"lines\"",
                          field: "format")
        }
        file.format = f
    }
    do {
        return DataFileTexts(stream: try TextStream(file, field: "input"))
    } catch let e as SentimentError {
        throw Failure(status: e.status, e.message, field: e.field)
    }
}
