// WordPiece, as tokenizers' models/wordpiece `WordPiece::tokenize`: greedy longest match first from
// the left, "##" on every piece but the first; a word of more than `maxInputCharsPerWord` characters,
// or one that cannot be covered entirely, becomes a single [UNK].

struct WordPieceTokenizer: Sendable {
    let vocabulary: Vocabulary
    let unkId: Int32
    let maxInputCharsPerWord: Int

    init(vocabulary: Vocabulary, unkId: Int32, maxInputCharsPerWord: Int = 100) {
        self.vocabulary = vocabulary
        self.unkId = unkId
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// Appends the pieces of `word` to `ids`, stopping once `ids.count == limit`.
    /// `scratch` holds the pieces until the word is known to be matchable.
    @inline(__always)
    func append(_ word: borrowing WordBuffer, to ids: inout [Int32], limit: Int, scratch: inout [Int32]) {
        if ids.count >= limit { return }
        let n = word.charCount
        if n == 0 { return }
        if n > maxInputCharsPerWord {
            ids.append(unkId)
            return
        }
        let first = vocabulary.wordStart
        let rest = vocabulary.continuation
        scratch.removeAll(keepingCapacity: true)
        let ok = word.bytes.withUnsafeBufferPointer { bytes -> Bool in
            word.charStarts.withUnsafeBufferPointer { starts -> Bool in
                guard let p = bytes.baseAddress else { return false }
                let byteCount = bytes.count
                var start = 0  // in characters
                while start < n {
                    let table = start == 0 ? first : rest
                    let sb = Int(starts[start])
                    let maxLen = table.maxKeyLength
                    var end = n
                    var found: Int32 = -1
                    while end > start {
                        let eb = end == n ? byteCount : Int(starts[end])
                        let len = eb - sb
                        if len <= maxLen {
                            found = table.lookup(p + sb, len)
                            if found >= 0 { break }
                        }
                        end -= 1
                    }
                    if found < 0 { return false }
                    scratch.append(found)
                    start = end
                }
                return true
            }
        }
        if !ok {
            ids.append(unkId)
            return
        }
        for id in scratch {
            if ids.count >= limit { return }
            ids.append(id)
        }
    }
}
