// The tokenizer against Hugging Face's BertTokenizerFast, through fixtures written by
// tools/fixtures/make_tokenizer_fixtures.py (no Python needed here).
import Testing
@testable import SentimentCore

private typealias S = TokenizerTestSupport

@Suite struct TokenizerFixtureTests {
    @Test func hardStrings() throws {
        guard let tok = try S.modelTokenizer() else { return }
        let doc = try S.readJSON(S.fixtures + "/hard_strings.json")
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count >= 40)
        var truncated = 0
        for c in cases {
            let name = c["name"]?.stringValue ?? "?"
            let text = try #require(c["text"]?.stringValue, "\(name): text")
            let maxLength = Int(try #require(c["max_length"]?.int64Value, "\(name): max_length"))
            let want = try #require(S.ids(c["ids"]), "\(name): ids")
            let wantTokens = try #require(S.strings(c["tokens"]), "\(name): tokens")
            let (ids, tokens) = tok.encodeTokens(text, maxLength: maxLength)
            #expect(ids == want, "\(name): ids differ for \(text.debugDescription)")
            #expect(tokens == wantTokens, "\(name): tokens differ for \(text.debugDescription)")
            #expect(tok.encode(text, maxLength: maxLength) == want, "\(name): encode")
            if want.count < maxLength {
                #expect(tok.tokenize(text) == Array(wantTokens.dropFirst().dropLast()), "\(name): tokenize")
            } else {
                truncated += 1
                #expect(Array(tok.tokenize(text).prefix(maxLength - 2)) == Array(wantTokens.dropFirst().dropLast()),
                        "\(name): tokenize prefix")
            }
        }
        #expect(truncated >= 3, "the fixture should exercise truncation")
    }

    @Test func fuzzStrings() throws {
        guard let tok = try S.modelTokenizer() else { return }
        let doc = try S.readJSON(S.fixtures + "/fuzz_strings.json")
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count >= 400)
        var bad = 0
        for c in cases {
            let text = try #require(c["text"]?.stringValue)
            let maxLength = Int(try #require(c["max_length"]?.int64Value))
            let want = try #require(S.ids(c["ids"]))
            let got = tok.encode(text, maxLength: maxLength)
            if got != want {
                bad += 1
                if bad <= 5 {
                    Issue.record("\(c["name"]?.stringValue ?? "?") \(text.unicodeScalars.map { String($0.value, radix: 16) }): got \(got), want \(want)")
                }
            }
        }
        #expect(bad == 0, "\(bad) of \(cases.count) fuzz strings differ")
    }

    /// Other settings (cased, no accent stripping, strip without lowercasing, no CJK padding).
    @Test func configVariants() throws {
        let dir = S.modelDirectory
        guard S.exists(dir + "/vocab.txt") else { _ = S.missing("model not found: \(dir)"); return }
        let vocab = try Vocabulary.load(path: dir + "/vocab.txt")
        let doc = try S.readJSON(S.fixtures + "/config_variants.json")
        let maxLength = Int(try #require(doc["max_length"]?.int64Value))
        let variants = try #require(doc["variants"]?.arrayValue)
        #expect(variants.count == 4)
        for v in variants {
            let lowercase = try #require(v["lowercase"]?.boolValue)
            let strip = v["strip_accents"]?.boolValue  // null -> nil
            let chinese = try #require(v["tokenize_chinese_chars"]?.boolValue)
            let tok = try BertTokenizer(vocabulary: vocab.tokens, lowercase: lowercase, stripAccents: strip,
                                        tokenizeChineseChars: chinese)
            let cases = try #require(v["cases"]?.arrayValue)
            var bad = 0
            for c in cases {
                let text = try #require(c["text"]?.stringValue)
                let want = try #require(S.ids(c["ids"]))
                let got = tok.encode(text, maxLength: maxLength)
                if got != want {
                    bad += 1
                    if bad <= 3 {
                        Issue.record("lowercase=\(lowercase) strip=\(String(describing: strip)) chinese=\(chinese) \(text.debugDescription): got \(got), want \(want)")
                    }
                }
            }
            #expect(bad == 0, "lowercase=\(lowercase) strip=\(String(describing: strip)) chinese=\(chinese): \(bad) of \(cases.count) differ")
        }
    }

    @Test(arguments: ["train", "dev"])
    func sst2(split: String) throws {
        guard let tok = try S.modelTokenizer() else { return }
        guard let data = S.dataDirectory else {
            _ = S.missing("SST-2 not found (set SENTIMENT_DATA_DIR, or put it in ./data/sst2 or ../shared/data/sst2)")
            return
        }
        let sentences = try S.sst2Sentences(data + "/\(split).tsv")
        let meta = try S.readJSON(S.fixtures + "/sst2_meta.json")
        let maxLength = Int(try #require(meta["max_length"]?.int64Value))
        let expectedCount = Int(try #require(meta["sentences"]?[split]?.int64Value))
        let hashes = try S.readText(S.fixtures + "/sst2_\(split).fnv1a64").split(separator: "\n").map(String.init)
        #expect(sentences.count == expectedCount, "\(split).tsv has \(sentences.count) sentences, the fixture \(expectedCount)")
        #expect(hashes.count == expectedCount)
        var matched = 0
        var firstMismatch: String?
        for (i, s) in sentences.enumerated() where i < hashes.count {
            let ids = tok.encode(s, maxLength: maxLength)
            if S.hex16(S.fnv1a64(ids)) == hashes[i] {
                matched += 1
            } else if firstMismatch == nil {
                firstMismatch = "line \(i + 2) of \(split).tsv: \(s.debugDescription) -> ids \(ids) tokens \(ids.map { tok.token(forId: $0) ?? "?" })"
            }
        }
        print("SST-2 \(split): \(matched) of \(sentences.count) sentences match BertTokenizerFast")
        #expect(matched == sentences.count, "\(sentences.count - matched) mismatches; first: \(firstMismatch ?? "-")")
        #expect(matched == expectedCount)
    }
}
