// Tokenizer unit tests: vocabulary errors, config loading, edge cases that must not trap.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

private typealias S = TokenizerTestSupport

/// A fresh temporary folder with the given files (removed with the returned `TempDir`).
private func folder(_ files: [String: [UInt8]]) throws -> TempDir {
    let dir = try TempDir()
    for (name, bytes) in files {
        let f = try #require(fopen(dir.sub(name), "wb"))
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
    return dir
}

private func text(_ s: String) -> [UInt8] { Array(s.utf8) }

private let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
private let small = specials + ["the", "un", "##aff", "##able", "a", "##b", ",", "!", "hello", "world", "##s", "é", "e"]

/// The error thrown by `body`, or a recorded issue.
private func error(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> SentimentError? {
    do {
        try body()
        Issue.record("no error thrown", sourceLocation: sourceLocation)
    } catch let e as SentimentError {
        return e
    } catch {
        Issue.record("not a SentimentError: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite struct TokenizerVocabularyTests {
    @Test func missingFileIsIO() throws {
        let tmp = try folder([:])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .io)
        #expect(e?.field == dir + "/vocab.txt")
        #expect(e?.message.contains(dir + "/vocab.txt") == true)
    }

    @Test func directoryInsteadOfFileIsIO() throws {
        let tmp = try folder([:])
        let dir = tmp.path
        mkdir(dir + "/vocab.txt", 0o755)
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .io)
        #expect(e?.field == dir + "/vocab.txt")
    }

    @Test(arguments: ["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    func missingSpecialIsFormat(token: String) throws {
        let lines = small.filter { $0 != token }
        let tmp = try folder(["vocab.txt": text(lines.joined(separator: "\n") + "\n")])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .format)
        #expect(e?.field == dir + "/vocab.txt")
        #expect(e?.message.contains(token) == true)
        #expect(e?.message.contains(dir + "/vocab.txt") == true)
        let e2 = error { _ = try BertTokenizer(vocabulary: lines) }
        #expect(e2?.status == .format)
        #expect(e2?.message.contains(token) == true)
    }

    @Test func duplicateIsFormat() throws {
        let lines = small + ["hello"]
        let tmp = try folder(["vocab.txt": text(lines.joined(separator: "\n"))])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .format)
        #expect(e?.field == dir + "/vocab.txt")
        #expect(e?.message.contains("line \(lines.count)") == true)
        #expect(e?.message.contains("hello") == true)
        #expect(error { _ = try BertTokenizer(vocabulary: lines) }?.status == .format)
    }

    @Test func emptyIsFormat() throws {
        let tmp = try folder(["vocab.txt": []])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .format)
        #expect(e?.field == dir + "/vocab.txt")
        #expect(error { _ = try BertTokenizer(vocabulary: []) }?.status == .format)
    }

    @Test func invalidUTF8IsFormat() throws {
        let tmp = try folder(["vocab.txt": text("[PAD]\n[UNK]\n") + [0x61, 0xFF, 0x0A] + text("[CLS]\n[SEP]\n")])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .format)
        #expect(e?.message.contains("line 3") == true)
    }

    @Test func badConfigIsFormat() throws {
        let vocab = text(small.joined(separator: "\n") + "\n")
        let tmp = try folder(["vocab.txt": vocab, "tokenizer_config.json": text("{\"do_lower_case\": tru")])
        let dir = tmp.path
        let e = error { _ = try BertTokenizer.load(modelDirectory: dir) }
        #expect(e?.status == .format)
        #expect(e?.field == dir + "/tokenizer_config.json")
        let tmp2 = try folder(["vocab.txt": vocab, "tokenizer_config.json": text("{\"do_lower_case\": \"yes\"}")])
        let dir2 = tmp2.path
        #expect(error { _ = try BertTokenizer.load(modelDirectory: dir2) }?.status == .format)
    }

    @Test func loadsConfigAndCRLF() throws {
        let crlf = text(small.joined(separator: "\r\n") + "\r\n")
        let tmp = try folder(["vocab.txt": crlf,
                              "tokenizer_config.json": text(#"{"do_lower_case": false, "strip_accents": null, "tokenize_chinese_chars": false}"#)])
        let dir = tmp.path
        let tok = try BertTokenizer.load(modelDirectory: dir + "/")
        #expect(tok.vocabSize == small.count)
        #expect(tok.lowercase == false && tok.stripAccents == false && tok.tokenizeChineseChars == false)
        #expect(tok.id(forToken: "hello") == 13)  // no "\r" left on the tokens
        #expect(tok.tokenize("hello Hello") == ["hello", "[UNK]"])
        let lowerTmp = try folder(["vocab.txt": crlf])
        let lower = try BertTokenizer.load(modelDirectory: lowerTmp.path)
        #expect(lower.lowercase && lower.stripAccents && lower.tokenizeChineseChars)
        #expect(lower.tokenize("HELLO Héllo") == ["hello", "hello"])
    }

    @Test func smallVocabulary() throws {
        let tok = try BertTokenizer(vocabulary: small)
        #expect(tok.vocabSize == small.count)
        #expect((tok.padId, tok.unkId, tok.clsId, tok.sepId) == (0, 1, 2, 3))
        #expect(tok.maskId == 4)
        #expect(tok.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(tok.tokenize("abbb") == ["a", "##b", "##b", "##b"])
        #expect(tok.tokenize("hello, worlds!") == ["hello", ",", "world", "##s", "!"])
        #expect(tok.tokenize("unaffablex") == ["[UNK]"])           // one unmatched char spoils the word
        #expect(tok.tokenize("É é e\u{301}") == ["e", "e", "e"])
        #expect(tok.tokenize("[MASK]hello[mask]") == ["[MASK]", "hello", "[UNK]", "[UNK]", "[UNK]"])
        #expect(tok.encode("hello world", maxLength: 128) == [2, 13, 14, 3])
        #expect(tok.encode("hello world", maxLength: 3) == [2, 13, 3])
        #expect(tok.encode("hello world", maxLength: 2) == [2, 3])
        #expect(tok.token(forId: 13) == "hello")
        #expect(tok.id(forToken: "##able") == 8)
    }
}

@Suite struct TokenizerRobustnessTests {
    @Test func degenerateArguments() throws {
        let tok = try BertTokenizer(vocabulary: small)
        for m in [Int.min, -1, 0, 1, 2] {
            #expect(tok.encode("hello world", maxLength: m) == [2, 3])
        }
        #expect(tok.encode("", maxLength: Int.max) == [2, 3])
        #expect(tok.token(forId: -1) == nil)
        #expect(tok.token(forId: Int32(small.count)) == nil)
        #expect(tok.token(forId: .max) == nil)
        #expect(tok.token(forId: .min) == nil)
        #expect(tok.id(forToken: "") == nil)
        #expect(tok.id(forToken: "nope") == nil)
        let (ids, tokens) = tok.encodeTokens("hello", maxLength: 10)
        #expect(ids == [2, 13, 3] && tokens == ["[CLS]", "hello", "[SEP]"])
    }

    /// Hostile inputs: huge words, endless combining marks, every scalar class. Must not trap or hang.
    @Test func hostileInputs() throws {
        let tok = try BertTokenizer(vocabulary: small)
        let marks = "e" + String(repeating: "\u{301}\u{316}\u{1D165}", count: 100_000)
        #expect(tok.encode(marks, maxLength: 512).count == 3)
        let word = String(repeating: "a", count: 1_000_000)
        #expect(tok.tokenize(word) == ["[UNK]"])
        let many = String(repeating: "a ", count: 100_000)
        #expect(tok.encode(many, maxLength: 512).count == 512)
        #expect(tok.tokenize(many).count == 100_000)
        var all = ""
        for v in stride(from: 0, through: 0x10FFFF, by: 7) {
            if let u = Unicode.Scalar(UInt32(v)) { all.unicodeScalars.append(u) }
        }
        _ = tok.tokenize(all)
        _ = tok.encode(all + "[MASK" + "[" + "[SEP", maxLength: 512)
    }

    @Test func concurrentUse() async throws {
        guard let tok = try S.modelTokenizer() else { return }
        let texts = ["a charming journey", "İstanbul 我爱北京", "naïve café, résumé!"]
        let expected = texts.map { tok.encode($0, maxLength: 64) }
        await withTaskGroup(of: Bool.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<2000 where tok.encode(texts[(i + t) % 3], maxLength: 64) != expected[(i + t) % 3] {
                        return false
                    }
                    return true
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
