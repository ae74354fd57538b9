// Sentence pairs in the tokenizer against Hugging Face's BertTokenizerFast(a, b,
// truncation="longest_first"), through Fixtures/tokenizer/pairs.json (tools/fixtures/make_pair_fixtures.py).
import Testing
@testable import SentimentCore

private typealias S = TokenizerTestSupport

@Suite struct PairTokenizerTests {
    @Test func pairsMatchBertTokenizerFast() throws {
        guard let tok = try S.modelTokenizer() else { return }
        let doc = try S.readJSON(S.fixtures + "/pairs.json")
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count >= 150)
        var compared = 0, truncated = 0, bad = 0
        for c in cases {
            let name = c["name"]?.stringValue ?? "?"
            let a = try #require(c["a"]?.stringValue, "\(name): a")
            let b = try #require(c["b"]?.stringValue, "\(name): b")
            for e in try #require(c["encodings"]?.arrayValue, "\(name): encodings") {
                let m = Int(try #require(e["max_length"]?.int64Value, "\(name): max_length"))
                let ids = try #require(S.ids(e["ids"]), "\(name): ids")
                let types = try #require(S.ids(e["type_ids"]), "\(name): type_ids")
                let got = tok.encodePair(a, b, maxLength: m)
                if got.ids != ids || got.typeIds != types {
                    bad += 1
                    if bad <= 5 {
                        Issue.record("\(name) max_length \(m): got \(got.ids) \(got.typeIds), want \(ids) \(types)")
                    }
                }
                if ids.count == m { truncated += 1 }
                compared += 1
            }
        }
        #expect(bad == 0, "\(bad) of \(compared) pair encodings differ")
        #expect(truncated >= 200, "the fixture should exercise truncation")
    }

    /// `wordPieceIds` is the untruncated id list: the tokens of `tokenize`, and the first segment of
    /// an untruncated pair.
    @Test func wordPieceIdsAreTheFullIds() throws {
        guard let tok = try S.modelTokenizer() else { return }
        let doc = try S.readJSON(S.fixtures + "/pairs.json")
        var checked = 0
        for c in try #require(doc["cases"]?.arrayValue) {
            guard let a = c["a"]?.stringValue, let b = c["b"]?.stringValue, !b.isEmpty,
                  let last = c["encodings"]?.arrayValue?.last, let m = last["max_length"]?.int64Value,
                  let ids = S.ids(last["ids"]), ids.count < m
            else { continue }
            let wa = tok.wordPieceIds(a), wb = tok.wordPieceIds(b)
            #expect(ids == [tok.clsId] + wa + [tok.sepId] + wb + [tok.sepId], "\(a.debugDescription)")
            #expect(tok.tokenize(a) == wa.map { tok.token(forId: $0) ?? "?" })
            checked += 1
        }
        #expect(checked >= 50)
        let long = String(repeating: "a remarkably long sentence , ", count: 400)
        let all = tok.wordPieceIds(long)
        #expect(all.count == 2000)
        #expect(Array(all.prefix(126)) == Array(tok.encode(long, maxLength: 128).dropFirst().dropLast()))
    }

    @Test func smallMaxLengthAndEmptyParts() throws {
        guard let tok = try S.modelTokenizer() else { return }
        let (ids, types) = tok.encodePair("good film", "bad film", maxLength: 0)
        #expect(ids == [tok.clsId, tok.sepId, tok.sepId] && types == [0, 0, 1], "a maxLength below 3 is taken as 3")
        let emptyB = tok.encodePair("good film", "", maxLength: 16)
        #expect(emptyB.ids == tok.encode("good film", maxLength: 16) + [tok.sepId] && emptyB.typeIds == [0, 0, 0, 0, 1])
        let emptyA = tok.encodePair("", "good", maxLength: 16)
        #expect(emptyA.typeIds == [0, 0, 1, 1])
    }
}
