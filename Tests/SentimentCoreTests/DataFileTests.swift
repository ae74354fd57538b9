// Data files as people have them: every format and line-ending variant reads to the same
// dataset, and every bad row is named by file and line.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SentimentCore

@Suite struct DataFileTests {
    static let names = ["NEGATIVE", "POSITIVE"]
    static let texts = ["a fine film", "dull , \"flat\" and long", "it 's great"]
    static let labels = [1, 0, 1]

    func write(_ dir: TempDir, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = dir.sub(name)
        try FileSystem.writeAtomically(path) { try $0.write(bytes) }
        return path
    }

    func read(_ path: String, _ file: DataFile? = nil, names: [String] = DataFileTests.names) throws -> LabeledDataset {
        try LabeledDataset.read(file ?? DataFile(path: path), labelNames: names)
    }

    /// The message of the `.format`/`.io`/`.invalidArgument` error reading `path` throws.
    func failure(_ path: String, _ file: DataFile? = nil, status: Status = .format) -> String {
        do {
            _ = try read(path, file)
            return "no error"
        } catch let e as SentimentError {
            #expect(e.status == status, "\(e)")
            return e.message
        } catch {
            return "\(error)"
        }
    }

    @Test func everyFormatAndLineEndingReadsTheSame() throws {
        let dir = try TempDir()
        let tsv = "sentence\tlabel\n" + zip(Self.texts, Self.labels).map { "\($0)\t\($1)\n" }.joined()
        let csv = "label,sentence\r\n1,a fine film\r\n0,\"dull , \"\"flat\"\" and long\"\r\n1,it 's great"
        let jsonl = #"{"sentence": "a fine film", "label": 1}"# + "\n" + #"{"label": 0, "sentence": "dull , \"flat\" and long"}"#
            + "\r\n\n" + #"{"sentence": "it 's great", "label": 1, "id": 7}"# + "\n\n"
        var variants: [(String, [UInt8])] = [
            ("lf.tsv", Array(tsv.utf8)),
            ("crlf.tsv", Array(tsv.replacingOccurrences("\n", "\r\n").utf8)),
            ("cr.tsv", Array(tsv.replacingOccurrences("\n", "\r").utf8)),
            ("bom.tsv", [0xEF, 0xBB, 0xBF] + Array(tsv.utf8)),
            ("no-final-newline.tsv", Array(tsv.dropLast().utf8)),
            ("blank-lines.tsv", Array((tsv + "\n\r\n  \n").utf8)),
            ("quoted.csv", Array(csv.utf8)),
            ("bom.csv", [0xEF, 0xBB, 0xBF] + Array(csv.utf8)),
            ("lines.jsonl", Array(jsonl.utf8)),
            ("names.tsv", Array(tsv.replacingOccurrences("\t1\n", "\tpositive\n").replacingOccurrences("\t0\n", "\tNEGATIVE\n").utf8)),
        ]
        variants.append(("names.jsonl", Array(jsonl.replacingOccurrences(#""label": 1"#, #""label": "POSITIVE""#)
            .replacingOccurrences(#""label": 0"#, #""label": "negative""#).utf8)))
        for (name, bytes) in variants {
            let d = try read(try write(dir, name, bytes))
            #expect(d.texts == Self.texts, "\(name)")
            #expect(d.labels == Self.labels, "\(name)")
        }
    }

    @Test func csvQuotesHoldSeparatorsQuotesAndLineBreaks() throws {
        let dir = try TempDir()
        let path = try write(dir, "multi.csv", Array("text,label\n\"two\nlines, one \"\"review\"\"\",1\r\nplain,0\n".utf8))
        let d = try read(path)
        #expect(d.texts == ["two\nlines, one \"review\"", "plain"] && d.labels == [1, 0])
        // A bad row after a quoted line break is named by its own line (4), not its record number.
        let bad = try write(dir, "bad.csv", Array("text,label\n\"two\nlines\",1\nthree,fields,0\n".utf8))
        #expect(failure(bad) == "\(bad):4: expected 2 comma-separated fields (as the header), found 3")
    }

    @Test func columnsAreChosenByName() throws {
        let dir = try TempDir()
        let path = try write(dir, "reviews.csv", Array("id,Review,stars\n1,good,1\n2,bad,0\n".utf8))
        let d = try read(path, DataFile(path: path, textColumn: "review", labelColumn: "stars"))
        #expect(d.texts == ["good", "bad"] && d.labels == [1, 0])
        let text = try write(dir, "text.tsv", Array("label\ttext\n0\tmeh\n".utf8))
        #expect(try read(text).texts == ["meh"])   // `text` when there is no `sentence`
        // Other extensions read as TSV unless "format" says otherwise.
        let txt = try write(dir, "data.txt", Array("sentence,label\nok,1\n".utf8))
        #expect(failure(txt).contains("the header has no 'sentence' column (1 column read as TSV); "
            + "name the columns with \"text_column\" and \"label_column\", or the format with \"format\""))
        #expect(try read(txt, DataFile(path: txt, format: .csv)).texts == ["ok"])
    }

    @Test func badRowsNameFileAndLine() throws {
        let dir = try TempDir()
        let cases: [(String, [UInt8], String)] = [
            ("fields.tsv", Array("sentence\tlabel\nok\t1\nextra\t1\tx\n".utf8),
             ":3: expected 2 tab-separated fields (as the header), found 3"),
            ("quote.csv", Array("sentence,label\nok,1\n\"never closed,1\n".utf8), ":3: a quote opened on line 3 is never closed"),
            ("utf8.tsv", Array("sentence\tlabel\nok\t1\n".utf8) + [0xC3, 0x28] + Array("\t0\n".utf8), ":3: field 1 is not valid UTF-8"),
            ("json.jsonl", Array("{\"sentence\": \"ok\", \"label\": 1}\n{\"sentence\": \"x\", \"label\": }\n".utf8), ":2: bad JSON"),
            ("array.jsonl", Array("[1, 2]\n".utf8), ":1: expected a JSON object, found a array"),
            ("key.jsonl", Array("{\"review\": \"ok\", \"label\": 1}\n".utf8), ":1: the object has no \"sentence\" or \"text\" key"),
            ("unknown.tsv", Array("sentence\tlabel\nok\tmeh\n".utf8),
             ":2: label \"meh\" is not one of the model's labels (\"NEGATIVE\", \"POSITIVE\")"),
            ("mixed.tsv", Array("sentence\tlabel\nok\t1\nbad\tNEGATIVE\n".utf8),
             ":3: label \"NEGATIVE\" is a name but the label on line 2 is an integer"),
            ("range.tsv", Array("sentence\tlabel\nok\t2\n".utf8), ":2: label 2 is outside 0..<2"),
            ("column.tsv", Array("text\tstars\nok\t1\n".utf8), ":1: the header has no 'label' column (2 columns read as TSV)"),
            ("empty.tsv", [], " is empty (expected a header line naming the columns)"),
        ]
        for (name, bytes, expected) in cases {
            let path = try write(dir, name, bytes)
            let message = failure(path)
            #expect(message.hasPrefix(path) && message.contains(expected), "\(name): \(message)")
        }
    }

    @Test func specialFilesAreRefusedWithoutWaiting() throws {
        let dir = try TempDir()
        let fifo = dir.sub("pipe.tsv")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(failure(fifo, status: .io) == "\(fifo) is not a regular file")
        #expect(failure(dir.sub("missing.tsv"), status: .io).hasPrefix("cannot open \(dir.sub("missing.tsv"))"))
    }

    /// Records that straddle the 1 MB read chunks: a CRLF split between two reads, and the BOM.
    @Test func chunkBoundariesDoNotSplitRecords() throws {
        let dir = try TempDir()
        var bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("sentence\tlabel\r\n".utf8)
        var expected: [String] = []
        var i = 0
        while bytes.count < (1 << 20) + 4096 {
            // Make the row that crosses the first chunk end put its CR last in the chunk.
            var text = "row \(i)"
            let end = bytes.count + text.utf8.count + 2   // + "\t1"
            if end < 1 << 20, end + 40 > 1 << 20 { text += String(repeating: "x", count: (1 << 20) - 1 - end) }
            bytes += Array("\(text)\t1\r\n".utf8)
            expected.append(text)
            i += 1
        }
        let d = try read(try write(dir, "big.tsv", bytes))
        #expect(d.count == expected.count && d.texts == expected && d.labels.allSatisfy { $0 == 1 })
    }
}

extension String {
    fileprivate func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = "", rest = self[...]
        while let r = rest.range(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    fileprivate func range(of s: String) -> Range<Index>? {
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(s) { return i..<(index(i, offsetBy: s.count)) }
            i = index(after: i)
        }
        return nil
    }
}
