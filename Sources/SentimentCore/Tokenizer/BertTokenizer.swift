// BERT WordPiece tokenizer, equal to Hugging Face's BertTokenizerFast (tokenizers' BertNormalizer,
// BertPreTokenizer, WordPiece, and the "[CLS] A [SEP]" template), for uncased and cased vocabularies.
//
// Like the fast tokenizer, special tokens written in the text ("[CLS]", "[SEP]", "[MASK]", "[PAD]",
// "[UNK]") are matched in the raw text first (leftmost, then longest) and become their own id;
// the text between them is normalized and split on its own.

/// A BERT WordPiece tokenizer. Immutable and safe to share between threads.
public final class BertTokenizer: Sendable {
    public let vocabSize: Int
    public let clsId: Int32, sepId: Int32, padId: Int32, unkId: Int32
    /// [MASK], when the vocabulary has it.
    public let maskId: Int32?
    public let lowercase: Bool
    /// Effective setting (nil in the initializer means "same as lowercase").
    public let stripAccents: Bool
    public let tokenizeChineseChars: Bool
    /// Words longer than this (in characters, after normalization) become [UNK].
    public let maxInputCharsPerWord: Int

    private let vocabulary: Vocabulary
    private let basic: BasicTokenizer
    private let wordPiece: WordPieceTokenizer
    /// Special tokens matched in raw text: (UTF-8, id), longest first.
    private let specials: [([UInt8], Int32)]
    private let specialFirstByte: [Bool]

    /// `vocabulary[i]` is the token of id `i`. Throws `.format` if it is empty, has duplicates,
    /// or lacks [UNK], [CLS], [SEP] or [PAD].
    public convenience init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil,
                            tokenizeChineseChars: Bool = true) throws {
        try self.init(tokens: vocabulary, source: "vocabulary", lowercase: lowercase, stripAccents: stripAccents,
                      tokenizeChineseChars: tokenizeChineseChars)
    }

    private convenience init(tokens: [String], source: String, lowercase: Bool, stripAccents: Bool?,
                             tokenizeChineseChars: Bool) throws(SentimentError) {
        let vocab = try Vocabulary(tokens: tokens, source: source)
        try self.init(vocab: vocab, source: source, lowercase: lowercase, stripAccents: stripAccents,
                      tokenizeChineseChars: tokenizeChineseChars)
    }

    private init(vocab: Vocabulary, source: String, lowercase: Bool, stripAccents: Bool?,
                 tokenizeChineseChars: Bool) throws(SentimentError) {
        func required(_ t: String) throws(SentimentError) -> Int32 {
            guard let id = vocab.id(t) else {
                throw .format("\(source): the vocabulary has no \(t) token", field: source)
            }
            return id
        }
        unkId = try required("[UNK]")
        clsId = try required("[CLS]")
        sepId = try required("[SEP]")
        padId = try required("[PAD]")
        maskId = vocab.id("[MASK]")
        vocabSize = vocab.tokens.count
        vocabulary = vocab
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
        maxInputCharsPerWord = 100
        basic = BasicTokenizer(lowercase: lowercase, stripAccents: stripAccents,
                               tokenizeChineseChars: tokenizeChineseChars)
        wordPiece = WordPieceTokenizer(vocabulary: vocab, unkId: unkId, maxInputCharsPerWord: 100)
        var sp: [([UInt8], Int32)] = []
        for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            if let id = vocab.id(t) { sp.append((Array(t.utf8), id)) }
        }
        sp.sort { $0.0.count > $1.0.count }
        specials = sp
        var first = [Bool](repeating: false, count: 256)
        for (bytes, _) in sp where !bytes.isEmpty { first[Int(bytes[0])] = true }
        specialFirstByte = first
    }

    /// Largest tokenizer_config.json read (real ones are kilobytes).
    static let configLimit = 16 << 20

    /// Loads `vocab.txt` from a model folder, and the settings `do_lower_case`, `strip_accents` and
    /// `tokenize_chinese_chars` from its `tokenizer_config.json` when there is one (defaults: true, nil, true).
    /// A missing, unreadable or special (FIFO, device) vocab.txt or tokenizer_config.json is `.io`;
    /// a bad or oversized one is `.format`; `field` names the file.
    public static func load(modelDirectory: String) throws -> BertTokenizer {
        let dir = modelDirectory.hasSuffix("/") ? String(modelDirectory.dropLast()) : modelDirectory
        let vocabPath = dir + "/vocab.txt"
        let configPath = dir + "/tokenizer_config.json"
        var lowercase = true
        var stripAccents: Bool? = nil
        var chinese = true
        if FileSystem.hasEntry(configPath) {   // a broken symlink fails instead of being skipped
            let bytes = try FileSystem.readFile(configPath, limit: configLimit)
            let config: JSON
            do {
                config = try JSON.parse(bytes)
            } catch {
                throw SentimentError.format("\(configPath): not valid JSON: \(error)", field: configPath)
            }
            func flag(_ key: String) throws(SentimentError) -> Bool?? {
                guard let v = config[key] else { return .none }       // absent
                if case .null = v { return .some(.none) }             // null
                guard let b = v.boolValue else {
                    throw .format("\(configPath): \(key) must be true, false or null", field: configPath)
                }
                return .some(b)
            }
            if let v = try flag("do_lower_case") { lowercase = v ?? true }
            if let v = try flag("strip_accents") { stripAccents = v }
            if let v = try flag("tokenize_chinese_chars") { chinese = v ?? true }
        }
        let vocab = try Vocabulary.load(path: vocabPath)
        return try BertTokenizer(vocab: vocab, source: vocabPath, lowercase: lowercase, stripAccents: stripAccents,
                                 tokenizeChineseChars: chinese)
    }

    // MARK: Encoding

    /// WordPiece tokens of `text`, without [CLS]/[SEP] (special tokens written in the text included).
    public func tokenize(_ text: String) -> [String] {
        var c = Collector(wordPiece: wordPiece, limit: Int.max)
        defer { c.deallocate() }
        run(text, into: &c)
        return c.ids.map { token(forId: $0) ?? "[UNK]" }
    }

    /// The ids of `text` with at most `limit` of them kept (a prefix of the full ids), no [CLS]/[SEP].
    func wordPieceIds(_ text: String, limit: Int) -> [Int32] {
        var c = Collector(wordPiece: wordPiece, limit: limit)
        defer { c.deallocate() }
        run(text, into: &c)
        return c.ids
    }

    /// `[CLS] ids... [SEP]`, truncated (dropping tokens from the end of the text) to `maxLength` ids
    /// in total. A `maxLength` below 2 is taken as 2.
    public func encode(_ text: String, maxLength: Int) -> [Int32] {
        let total = max(maxLength, 2)
        var c = Collector(wordPiece: wordPiece, limit: total - 1)
        defer { c.deallocate() }
        c.ids.reserveCapacity(min(total, 64))
        c.ids.append(clsId)
        run(text, into: &c)
        c.ids.append(sepId)
        return c.ids
    }

    /// `encode` plus the token strings.
    public func encodeTokens(_ text: String, maxLength: Int) -> (ids: [Int32], tokens: [String]) {
        let ids = encode(text, maxLength: maxLength)
        return (ids, ids.map { token(forId: $0) ?? "[UNK]" })
    }

    public func token(forId id: Int32) -> String? {
        guard id >= 0, Int(id) < vocabulary.tokens.count else { return nil }
        return vocabulary.tokens[Int(id)]
    }

    public func id(forToken token: String) -> Int32? {
        vocabulary.id(token)
    }

    private struct Collector: WordConsumer {
        let wordPiece: WordPieceTokenizer
        let limit: Int
        let first: ByteStringTableView
        let rest: ByteStringTableView
        let scratch: UnsafeMutablePointer<Int32>
        var ids: [Int32] = []

        init(wordPiece: WordPieceTokenizer, limit: Int) {
            self.wordPiece = wordPiece
            self.limit = limit
            first = wordPiece.vocabulary.wordStart.view
            rest = wordPiece.vocabulary.continuation.view
            scratch = .allocate(capacity: wordPiece.maxInputCharsPerWord + 1)
        }

        func deallocate() { scratch.deallocate() }

        @inline(__always)
        mutating func consume(_ word: borrowing WordBuffer) -> Bool {
            wordPiece.append(word, to: &ids, limit: limit, scratch: scratch, first: first, rest: rest)
            return ids.count < limit
        }
    }

    /// Splits off special tokens, then normalizes, pre-tokenizes and WordPieces each stretch between them.
    private func run(_ text: String, into c: inout Collector) {
        if c.ids.count >= c.limit { return }
        var text = text
        var word = WordBuffer()
        defer { word.deallocate() }
        var pending: [UInt64] = []
        text.withUTF8 { buf in
            guard let p = buf.baseAddress else { return }
            let n = buf.count
            var segmentStart = 0
            var i = 0
            if !specials.isEmpty {
                while i < n {
                    guard specialFirstByte[Int(p[i])], let (length, id) = special(at: i, p, n) else {
                        i += 1
                        continue
                    }
                    let segment = UnsafeBufferPointer(start: p + segmentStart, count: i - segmentStart)
                    if !basic.words(in: segment, word: &word, pending: &pending, into: &c) { return }
                    if c.ids.count >= c.limit { return }
                    c.ids.append(id)
                    if c.ids.count >= c.limit { return }
                    i += length
                    segmentStart = i
                }
            }
            let segment = UnsafeBufferPointer(start: p + segmentStart, count: n - segmentStart)
            basic.words(in: segment, word: &word, pending: &pending, into: &c)
        }
    }

    /// The longest special token starting at byte `i`, if any.
    private func special(at i: Int, _ p: UnsafePointer<UInt8>, _ n: Int) -> (Int, Int32)? {
        for (bytes, id) in specials where bytes.count <= n - i {  // sorted longest first
            var k = 0
            while k < bytes.count && p[i + k] == bytes[k] { k += 1 }
            if k == bytes.count { return (k, id) }
        }
        return nil
    }
}
