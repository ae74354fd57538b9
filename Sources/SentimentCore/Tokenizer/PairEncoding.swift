// Sentence pairs, as BertTokenizerFast(a, b, truncation="longest_first", max_length: m):
//   [CLS] a [SEP] b [SEP], token types 0 for "[CLS] a [SEP]" and 1 for "b [SEP]".
//
// Truncation is tokenizers' LongestFirst (utils/truncation.rs). With budget B = m - 3 and the
// full lengths na, nb: nothing is cut when na + nb <= B; otherwise, with short = min(na, nb):
//   short <= B / 2: the shorter is kept whole, the longer cut to B - short;
//   short >  B / 2: both are cut to B / 2, and the odd token (B % 2) goes to the longer one
//                   (to b when na == nb).
// Tokens are dropped from the end of each text.

extension BertTokenizer {
    /// All WordPiece ids of `text`, no [CLS]/[SEP], no truncation (special tokens written in the
    /// text included, as in `tokenize`).
    public func wordPieceIds(_ text: String) -> [Int32] {
        wordPieceIds(text, limit: Int.max)
    }

    /// `[CLS] a [SEP] b [SEP]` truncated to `maxLength` ids by LongestFirst (see above), with the
    /// token types. A `maxLength` below 3 is taken as 3 (Hugging Face then does not truncate at all).
    /// An empty `b` is a pair with an empty second part, `[CLS] a [SEP] [SEP]`, as BertTokenizerFast
    /// encodes a batch of pairs (a single call with `text_pair=""` would drop it).
    public func encodePair(_ a: String, _ b: String, maxLength: Int) -> (ids: [Int32], typeIds: [Int32]) {
        let budget = max(maxLength, 3) - 3
        // The cut depends only on lengths up to budget + 1, except for which text is longer.
        let cap = budget + 1
        var first = wordPieceIds(a, limit: cap), second = wordPieceIds(b, limit: cap)
        if first.count == cap && second.count == cap && budget % 2 == 1 {
            first = wordPieceIds(a)
            second = wordPieceIds(b)
        }
        let (na, nb) = Self.longestFirst(first.count, second.count, budget: budget)
        var ids: [Int32] = []
        ids.reserveCapacity(na + nb + 3)
        ids.append(clsId)
        ids.append(contentsOf: first[..<na])
        ids.append(sepId)
        ids.append(contentsOf: second[..<nb])
        ids.append(sepId)
        var types = [Int32](repeating: 0, count: na + 2)
        types.append(contentsOf: repeatElement(1, count: nb + 1))
        return (ids, types)
    }

    /// Ids of `texts` (`encode`), or of the pairs (texts[i], pairs[i]) with their token types.
    public func encode(_ texts: [String], pairs: [String]?, maxLength: Int) -> (ids: [[Int32]], types: [[Int32]]?) {
        guard let pairs else { return (texts.map { encode($0, maxLength: maxLength) }, nil) }
        let encoded = zip(texts, pairs).map { encodePair($0, $1, maxLength: maxLength) }
        return (encoded.map(\.ids), encoded.map(\.typeIds))
    }

    /// The lengths LongestFirst keeps of texts of `na` and `nb` ids within `budget` ids.
    static func longestFirst(_ na: Int, _ nb: Int, budget: Int) -> (Int, Int) {
        if na + nb <= budget { return (na, nb) }
        let short = min(na, nb)
        let (forShort, forLong) = short > budget / 2 ? (budget / 2, budget / 2 + budget % 2) : (short, budget - short)
        return na > nb ? (forLong, forShort) : (forShort, forLong)
    }
}
