// Normalization and pre-tokenization, exactly as Hugging Face's BertTokenizerFast does them
// (tokenizers: normalizers/bert.rs `BertNormalizer`, pre_tokenizers/bert.rs `BertPreTokenizer`):
//
//   1. clean_text: drop NUL, U+FFFD and "other" characters (except \t \n \r), map whitespace to ' '
//   2. handle_chinese_chars: pad CJK ideographs with spaces
//   3. strip_accents (defaults to `lowercase`): NFD, then drop non-spacing marks (Mn).
//      NB the fast tokenizer strips *before* lowercasing (the slow one lowercases first).
//   4. lowercase: per character (Rust `char::to_lowercase`, so no final-sigma rule; 'İ' -> "i̇")
//   5. split on whitespace (removed) and on punctuation (each punctuation character its own word)
//
// All of it runs in one streaming pass over the UTF-8 bytes. The per-code-point behaviour comes from
// UnicodeTableData, which is measured from the library itself (tools/make_tokenizer_tables.py),
// because the library uses its own (older and mixed) Unicode tables, not the current standard.

/// The current word: normalized UTF-8 plus where each character starts.
struct WordBuffer {
    var bytes: [UInt8] = []
    var charStarts: [Int32] = []
    var charCount: Int { charStarts.count }
    var isEmpty: Bool { charStarts.isEmpty }

    init() {
        bytes.reserveCapacity(128)
        charStarts.reserveCapacity(128)
    }

    @inline(__always)
    mutating func appendASCII(_ b: UInt8) {
        charStarts.append(Int32(truncatingIfNeeded: bytes.count))
        bytes.append(b)
    }

    @inline(__always)
    mutating func append(_ cp: UInt32) {
        charStarts.append(Int32(truncatingIfNeeded: bytes.count))
        if cp < 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: cp))
        } else if cp < 0x800 {
            bytes.append(UInt8(truncatingIfNeeded: 0xC0 | cp >> 6))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | cp & 0x3F))
        } else if cp < 0x10000 {
            bytes.append(UInt8(truncatingIfNeeded: 0xE0 | cp >> 12))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | (cp >> 6) & 0x3F))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | cp & 0x3F))
        } else {
            bytes.append(UInt8(truncatingIfNeeded: 0xF0 | cp >> 18))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | (cp >> 12) & 0x3F))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | (cp >> 6) & 0x3F))
            bytes.append(UInt8(truncatingIfNeeded: 0x80 | cp & 0x3F))
        }
    }

    mutating func clear() {
        bytes.removeAll(keepingCapacity: true)
        charStarts.removeAll(keepingCapacity: true)
    }
}

/// Receives the words of a text in order; returns false to stop early (enough tokens).
protocol WordConsumer {
    mutating func consume(_ word: borrowing WordBuffer) -> Bool
}

/// BertNormalizer + BertPreTokenizer (clean_text is always on, as in every BERT tokenizer.json).
struct BasicTokenizer: Sendable {
    let lowercase: Bool
    let stripAccents: Bool
    let tokenizeChineseChars: Bool

    // ASCII fast path: what each byte < 0x80 does, for this configuration.
    private static let asciiWord: UInt8 = 0, asciiSplit: UInt8 = 1, asciiPunct: UInt8 = 2, asciiRemove: UInt8 = 3
    private let asciiAction: [UInt8]
    private let asciiValue: [UInt8]   // the byte after lowercasing (when enabled)

    init(lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
        let tables = UnicodeTables.shared
        var action = [UInt8](repeating: 0, count: 128)
        var value = [UInt8](repeating: 0, count: 128)
        for b in 0..<128 {
            let f = tables.flags(UInt32(b))
            value[b] = UInt8(b)
            if f & UnicodeTables.remove != 0 {
                action[b] = BasicTokenizer.asciiRemove
            } else if f & (UnicodeTables.space | UnicodeTables.splitWhitespace) != 0 {
                action[b] = BasicTokenizer.asciiSplit
            } else if f & UnicodeTables.punct != 0 {
                action[b] = BasicTokenizer.asciiPunct
            } else {
                action[b] = BasicTokenizer.asciiWord
                if lowercase {
                    let (l, _) = tables.lowercase(UInt32(b))
                    value[b] = UInt8(truncatingIfNeeded: l)
                }
            }
        }
        asciiAction = action
        asciiValue = value
    }

    /// Normalizes and splits `text` (valid UTF-8), handing each word to `consumer`.
    /// Returns false if the consumer stopped early.
    @discardableResult
    func words<C: WordConsumer>(in text: UnsafeBufferPointer<UInt8>, word: inout WordBuffer,
                                pending: inout [UInt64], into consumer: inout C) -> Bool {
        guard let p = text.baseAddress else { return true }
        let n = text.count
        var state = Stream(tables: UnicodeTables.shared, lowercase: lowercase, strip: stripAccents,
                           chinese: tokenizeChineseChars)
        word.clear()
        pending.removeAll(keepingCapacity: true)
        var i = 0
        return asciiAction.withUnsafeBufferPointer { action in
            asciiValue.withUnsafeBufferPointer { value in
                while i < n {
                    let b = p[i]
                    if b < 0x80 {
                        i += 1
                        let a = action[Int(b)]
                        if a == BasicTokenizer.asciiRemove { continue }  // removed before NFD: not a starter
                        if !pending.isEmpty { state.flushPending(&pending, &word, &consumer) }
                        if a == BasicTokenizer.asciiWord {
                            word.appendASCII(value[Int(b)])
                        } else {
                            if !state.finishWord(&word, &consumer) { return false }
                            if a == BasicTokenizer.asciiPunct {
                                word.appendASCII(b)
                                if !state.finishWord(&word, &consumer) { return false }
                            }
                        }
                        if state.stopped { return false }
                        continue
                    }
                    // Multi-byte scalar (the String guarantees valid UTF-8; stay total anyway).
                    var cp: UInt32
                    var len: Int
                    if b >= 0xF0 {
                        cp = UInt32(b & 0x07); len = 4
                    } else if b >= 0xE0 {
                        cp = UInt32(b & 0x0F); len = 3
                    } else if b >= 0xC0 {
                        cp = UInt32(b & 0x1F); len = 2
                    } else {
                        i += 1  // stray continuation byte: skip
                        continue
                    }
                    if i + len > n { len = n - i }
                    var k = 1
                    while k < len {
                        cp = cp << 6 | UInt32(p[i + k] & 0x3F)
                        k += 1
                    }
                    i += len
                    state.scalar(cp, &pending, &word, &consumer)
                    if state.stopped { return false }
                }
                state.flushPending(&pending, &word, &consumer)
                if state.stopped { return false }
                return state.finishWord(&word, &consumer)
            }
        }
    }

    /// The slow path for non-ASCII scalars, and the shared word/pending logic.
    private struct Stream {
        let tables: UnicodeTables
        let lowercase: Bool
        let strip: Bool
        let chinese: Bool
        var stopped = false

        init(tables: UnicodeTables, lowercase: Bool, strip: Bool, chinese: Bool) {
            self.tables = tables
            self.lowercase = lowercase
            self.strip = strip
            self.chinese = chinese
        }

        @inline(__always)
        mutating func finishWord<C: WordConsumer>(_ word: inout WordBuffer, _ consumer: inout C) -> Bool {
            if word.isEmpty { return true }
            let go = consumer.consume(word)
            word.clear()
            if !go { stopped = true }
            return go
        }

        /// Step 1 and 2: clean_text and CJK padding.
        mutating func scalar<C: WordConsumer>(_ cp: UInt32, _ pending: inout [UInt64], _ word: inout WordBuffer,
                                              _ consumer: inout C) {
            let f = tables.flags(cp)
            if f & UnicodeTables.remove != 0 { return }
            if f & UnicodeTables.space != 0 {
                decomposed(0x20, pending: &pending, word: &word, consumer: &consumer)
                return
            }
            if chinese && f & UnicodeTables.cjk != 0 {
                decomposed(0x20, pending: &pending, word: &word, consumer: &consumer)
                nfd(cp, flags: f, pending: &pending, word: &word, consumer: &consumer)
                decomposed(0x20, pending: &pending, word: &word, consumer: &consumer)
                return
            }
            nfd(cp, flags: f, pending: &pending, word: &word, consumer: &consumer)
        }

        /// Step 3a: canonical decomposition (only when stripping accents).
        @inline(__always)
        mutating func nfd<C: WordConsumer>(_ cp: UInt32, flags f: UInt8, pending: inout [UInt64],
                                           word: inout WordBuffer, consumer: inout C) {
            if strip && f & UnicodeTables.nfdSpecial != 0 {
                tables.decompose(cp) { d in
                    decomposed(d, pending: &pending, word: &word, consumer: &consumer)
                }
            } else {
                decomposed(cp, pending: &pending, word: &word, consumer: &consumer)
            }
        }

        /// Step 3b: canonical ordering. Starters flush the run of marks before them, sorted by class.
        mutating func decomposed<C: WordConsumer>(_ cp: UInt32, pending: inout [UInt64], word: inout WordBuffer,
                                                  consumer: inout C) {
            if strip {
                let ccc = tables.flags(cp) & UnicodeTables.nfdSpecial != 0 ? tables.combiningClass(of: cp) : 0
                if ccc != 0 {
                    // Sort key: class, then arrival order (the sort must be stable).
                    pending.append(UInt64(ccc) << 56 | UInt64(pending.count) << 21 | UInt64(cp))
                    return
                }
                if !pending.isEmpty { flushPending(&pending, &word, &consumer) }
            }
            emit(cp, word: &word, consumer: &consumer)
        }

        mutating func flushPending<C: WordConsumer>(_ pending: inout [UInt64], _ word: inout WordBuffer,
                                                    _ consumer: inout C) {
            if pending.isEmpty { return }
            if pending.count > 1 { pending.sort() }
            for key in pending {
                emit(UInt32(truncatingIfNeeded: key & 0x1F_FFFF), word: &word, consumer: &consumer)
            }
            pending.removeAll(keepingCapacity: true)
        }

        /// Steps 3c, 4 and 5: drop Mn, lowercase, split.
        @inline(__always)
        mutating func emit<C: WordConsumer>(_ cp: UInt32, word: inout WordBuffer, consumer: inout C) {
            let f = tables.flags(cp)
            if strip && f & UnicodeTables.nonspacingMark != 0 { return }
            if lowercase && f & UnicodeTables.hasLowercase != 0 {
                let (a, b) = tables.lowercase(cp)
                split(a, word: &word, consumer: &consumer)
                if b != 0 { split(b, word: &word, consumer: &consumer) }
                return
            }
            split(cp, flags: f, word: &word, consumer: &consumer)
        }

        @inline(__always)
        mutating func split<C: WordConsumer>(_ cp: UInt32, word: inout WordBuffer, consumer: inout C) {
            split(cp, flags: tables.flags(cp), word: &word, consumer: &consumer)
        }

        @inline(__always)
        mutating func split<C: WordConsumer>(_ cp: UInt32, flags f: UInt8, word: inout WordBuffer, consumer: inout C) {
            if stopped { return }
            if f & UnicodeTables.splitWhitespace != 0 {
                _ = finishWord(&word, &consumer)
            } else if f & UnicodeTables.punct != 0 {
                if !finishWord(&word, &consumer) { return }
                word.append(cp)
                _ = finishWord(&word, &consumer)
            } else {
                word.append(cp)
            }
        }
    }
}
