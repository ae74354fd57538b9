// WordPiece vocabulary: token <-> id, with lookups keyed on UTF-8 bytes (no String is built per lookup).

#if canImport(Glibc)
import Glibc
#endif

/// An open-addressing hash table from byte strings to ids. Immutable after init; owns its memory.
final class ByteStringTable: @unchecked Sendable {
    private let arena: UnsafeMutablePointer<UInt8>     // all keys, back to back
    private let keyStart: UnsafeMutablePointer<Int32>  // per entry
    private let keyLength: UnsafeMutablePointer<Int32>
    private let values: UnsafeMutablePointer<Int32>
    private let slots: UnsafeMutablePointer<Int32>     // entry index, -1 = empty
    private let slotHash: UnsafeMutablePointer<UInt32> // low bits of the hash, to skip most compares
    private let mask: Int
    private let arenaCount: Int
    private let entryCount: Int
    /// Length in bytes of the longest key: longer probes cannot match.
    let maxKeyLength: Int

    /// `keys[i]` maps to `values[i]`. Duplicate keys: the first one wins (callers check beforehand).
    init(keys: [[UInt8]], values ids: [Int32]) {
        let n = min(keys.count, ids.count)
        var total = 0
        var longest = 0
        for i in 0..<n {
            total += keys[i].count
            longest = max(longest, keys[i].count)
        }
        arenaCount = max(total, 1)
        arena = .allocate(capacity: arenaCount)
        keyStart = .allocate(capacity: max(n, 1))
        keyLength = .allocate(capacity: max(n, 1))
        values = .allocate(capacity: max(n, 1))
        var capacity = 16
        while capacity < n * 2 + 1 { capacity <<= 1 }
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: -1, count: capacity)
        slotHash = .allocate(capacity: capacity)
        slotHash.initialize(repeating: 0, count: capacity)
        maxKeyLength = longest
        entryCount = n

        var offset = 0
        for i in 0..<n {
            let key = keys[i]
            key.withUnsafeBufferPointer { kb in
                if let base = kb.baseAddress, kb.count > 0 {
                    (arena + offset).initialize(from: base, count: kb.count)
                }
            }
            keyStart[i] = Int32(offset)
            keyLength[i] = Int32(key.count)
            values[i] = ids[i]
            offset += key.count
            let h = key.withUnsafeBufferPointer { kb in
                ByteStringTable.hash(kb.baseAddress, kb.count)
            }
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s] >= 0 {
                let e = Int(slots[s])
                if slotHash[s] == UInt32(truncatingIfNeeded: h >> 32), equal(e, key) { break }  // duplicate: keep first
                s = (s + 1) & mask
            }
            if slots[s] < 0 {
                slots[s] = Int32(i)
                slotHash[s] = UInt32(truncatingIfNeeded: h >> 32)
            }
        }
    }

    deinit {
        arena.deallocate()
        keyStart.deallocate()
        keyLength.deallocate()
        values.deallocate()
        slots.deallocate()
        slotHash.deallocate()
    }

    private func equal(_ entry: Int, _ key: [UInt8]) -> Bool {
        guard Int(keyLength[entry]) == key.count else { return false }
        let start = Int(keyStart[entry])
        for j in 0..<key.count where arena[start + j] != key[j] { return false }
        return true
    }

    /// FNV-1a, 64-bit. Keys are short (a few bytes), so this beats anything fancier.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>?, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        guard let p else { return h }
        for i in 0..<n {
            h = (h ^ UInt64(p[i])) &* 0x0000_0100_0000_01b3
        }
        return h ^ (h >> 29)
    }

    /// The id for the `n` bytes at `p`, or -1.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        view.lookup(p, n)
    }

    /// Raw pointers into this table, for hot loops. Valid while the table is alive.
    var view: ByteStringTableView {
        ByteStringTableView(arena: arena, keyStart: keyStart, keyLength: keyLength, values: values, slots: slots,
                            slotHash: slotHash, mask: mask, maxKeyLength: maxKeyLength)
    }
}

/// A borrowed view of a ByteStringTable (no reference counting in the hot loop).
struct ByteStringTableView {
    let arena: UnsafeMutablePointer<UInt8>
    let keyStart: UnsafeMutablePointer<Int32>
    let keyLength: UnsafeMutablePointer<Int32>
    let values: UnsafeMutablePointer<Int32>
    let slots: UnsafeMutablePointer<Int32>
    let slotHash: UnsafeMutablePointer<UInt32>
    let mask: Int
    let maxKeyLength: Int

    /// The id for the `n` bytes at `p`, or -1.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        if n > maxKeyLength { return -1 }
        let h = ByteStringTable.hash(p, n)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[s])
            if e < 0 { return -1 }
            if slotHash[s] == tag && Int(keyLength[e]) == n {
                let k = UnsafePointer(arena + Int(keyStart[e]))
                var j = 0
                while j < n && k[j] == p[j] { j += 1 }
                if j == n { return values[e] }
            }
            s = (s + 1) & mask
        }
    }
}

/// The token list of a vocab.txt and its lookup tables.
struct Vocabulary: Sendable {
    let tokens: [String]
    /// Whole tokens, for the first piece of a word and for special tokens.
    let wordStart: ByteStringTable
    /// Tokens starting with "##", keyed without the prefix, for the following pieces.
    let continuation: ByteStringTable

    static let continuationPrefix: [UInt8] = [UInt8(ascii: "#"), UInt8(ascii: "#")]

    /// `source` names the file (or "vocabulary") in error messages and `field`.
    init(tokens: [String], source: String) throws(SentimentError) {
        if tokens.isEmpty {
            throw .format("\(source): the vocabulary is empty", field: source)
        }
        var seen: [String: Int] = [:]
        seen.reserveCapacity(tokens.count)
        var keys: [[UInt8]] = []
        keys.reserveCapacity(tokens.count)
        var contKeys: [[UInt8]] = []
        var contIds: [Int32] = []
        for (i, t) in tokens.enumerated() {
            if let first = seen[t] {
                throw .format("\(source): line \(i + 1): duplicate token \"\(t)\" (first on line \(first + 1))", field: source)
            }
            seen[t] = i
            let bytes = Array(t.utf8)
            keys.append(bytes)
            if bytes.count >= 2 && bytes[0] == UInt8(ascii: "#") && bytes[1] == UInt8(ascii: "#") {
                contKeys.append(Array(bytes[2...]))
                contIds.append(Int32(i))
            }
        }
        if tokens.count > Int(Int32.max) {
            throw .format("\(source): too many tokens (\(tokens.count))", field: source)
        }
        self.tokens = tokens
        wordStart = ByteStringTable(keys: keys, values: (0..<Int32(tokens.count)).map { $0 })
        continuation = ByteStringTable(keys: contKeys, values: contIds)
    }

    func id(_ token: String) -> Int32? {
        var t = token
        return t.withUTF8 { b -> Int32? in
            guard let base = b.baseAddress else {
                // Empty string: look up through a dummy pointer of length 0.
                var z: UInt8 = 0
                let r = withUnsafePointer(to: &z) { wordStart.lookup($0, 0) }
                return r >= 0 ? r : nil
            }
            let r = wordStart.lookup(base, b.count)
            return r >= 0 ? r : nil
        }
    }

    /// Largest vocab.txt read: `EncoderConfig.Limits.vocab` tokens of 16 bytes.
    static let fileLimit = 64 << 20

    /// Reads a vocab.txt: one token per line, line i (from 0) is id i. "\n" or "\r\n" line ends;
    /// a final line end does not start another token (as HF's `load_vocab` reads it).
    static func load(path: String) throws -> Vocabulary {
        let bytes = try FileSystem.readFile(path, limit: fileLimit)
        var tokens: [String] = []
        var lineStart = 0
        var lineNumber = 0
        let n = bytes.count
        var i = 0
        while i <= n {
            if i == n || bytes[i] == UInt8(ascii: "\n") {
                if i == n && lineStart == n { break }
                lineNumber += 1
                var end = i
                if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                guard let token = String(validating: bytes[lineStart..<end], as: UTF8.self) else {
                    throw SentimentError.format("\(path): line \(lineNumber): not valid UTF-8", field: path)
                }
                tokens.append(token)
                lineStart = i + 1
            }
            i += 1
        }
        return try Vocabulary(tokens: tokens, source: path)
    }
}
