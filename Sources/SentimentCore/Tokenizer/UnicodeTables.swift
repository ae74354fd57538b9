// Lookup structures over the generated UnicodeTableData: one flags byte per code point through a
// two-stage table, and small maps for decompositions, combining classes and lowercase.
//
// Built once, on first use, and never freed (raw pointers, so the hot loops pay no ARC or bounds checks).

struct UnicodeTables: @unchecked Sendable {
    // Flag bits. The low six come straight from the generated data (what the library does to the
    // code point); the two high ones are derived here to send the hot loop to the slow path.
    static let remove = UnicodeTableData.flagRemove            // clean_text drops it
    static let space = UnicodeTableData.flagSpace              // clean_text maps it to ' '
    static let punct = UnicodeTableData.flagPunct              // BertPreTokenizer isolates it
    static let splitWhitespace = UnicodeTableData.flagSplitWhitespace  // BertPreTokenizer splits on it
    static let nonspacingMark = UnicodeTableData.flagNonspacingMark    // strip_accents drops it (after NFD)
    static let cjk = UnicodeTableData.flagCJK                  // handle_chinese_chars pads it
    static let hasLowercase: UInt8 = 64                        // lowercase maps it to something else
    static let nfdSpecial: UInt8 = 128                         // decomposes, or has a non-zero combining class

    static let shared = UnicodeTables()

    private let stage1: UnsafeMutablePointer<UInt16>   // 0x1100 entries: block of 256 code points -> block index
    private let stage2: UnsafeMutablePointer<UInt8>    // deduplicated blocks of 256 flag bytes
    /// cp -> (offset << 8 | count) into `decompositionStorage`.
    private let decompositionIndex: [UInt32: UInt32]
    private let decompositionStorage: [UInt32]
    private let combiningClass: [UInt32: UInt8]
    /// cp -> lowercase; a second scalar (only U+0130 has one) in the high 32 bits, 0 when absent.
    private let lowercaseMap: [UInt32: UInt64]

    private init() {
        var flags = [UInt8](repeating: 0, count: 0x110000)
        // Runs: "delta:flags", each until the next start.
        let runs = UnicodeTables.parseEntries(UnicodeTableData.flagRuns)
        var runStarts: [Int] = []
        var runFlags: [UInt8] = []
        var cp = 0
        for e in runs where e.count == 2 {
            cp += Int(e[0])
            runStarts.append(cp)
            runFlags.append(UInt8(truncatingIfNeeded: e[1]))
        }
        for r in runStarts.indices {
            let end = r + 1 < runStarts.count ? runStarts[r + 1] : 0x110000
            let f = runFlags[r]
            if f != 0, runStarts[r] < end {
                for c in runStarts[r]..<min(end, 0x110000) { flags[c] = f }
            }
        }

        var decompIndex: [UInt32: UInt32] = [:]
        var decompStorage: [UInt32] = []
        cp = 0
        for e in UnicodeTables.parseEntries(UnicodeTableData.decompositions) where e.count >= 2 {
            cp += Int(e[0])
            decompIndex[UInt32(cp)] = UInt32(decompStorage.count) << 8 | UInt32(e.count - 1)
            decompStorage.append(contentsOf: e.dropFirst())
            if cp < flags.count { flags[cp] |= UnicodeTables.nfdSpecial }
        }
        for c in 0xAC00...0xD7A3 { flags[c] |= UnicodeTables.nfdSpecial }  // Hangul syllables

        var ccc: [UInt32: UInt8] = [:]
        cp = 0
        for e in UnicodeTables.parseEntries(UnicodeTableData.combiningClasses) where e.count == 3 {
            cp += Int(e[0])
            for c in cp..<(cp + Int(e[1])) where c < flags.count {
                ccc[UInt32(c)] = UInt8(truncatingIfNeeded: e[2])
                flags[c] |= UnicodeTables.nfdSpecial
            }
        }

        var lower: [UInt32: UInt64] = [:]
        cp = 0
        for e in UnicodeTables.parseEntries(UnicodeTableData.lowercase) where e.count >= 2 {
            cp += Int(e[0])
            let second: UInt64 = e.count > 2 ? UInt64(e[2]) : 0
            lower[UInt32(cp)] = UInt64(e[1]) | second << 32
            if cp < flags.count { flags[cp] |= UnicodeTables.hasLowercase }
        }

        // Two-stage table with deduplicated blocks.
        stage1 = UnsafeMutablePointer<UInt16>.allocate(capacity: 0x1100)
        var blocks: [[UInt8]: UInt16] = [:]
        var storage: [UInt8] = []
        for b in 0..<0x1100 {
            let block = Array(flags[(b << 8)..<((b + 1) << 8)])
            if let idx = blocks[block] {
                stage1[b] = idx
            } else {
                let idx = UInt16(truncatingIfNeeded: blocks.count)
                blocks[block] = idx
                storage.append(contentsOf: block)
                stage1[b] = idx
            }
        }
        stage2 = UnsafeMutablePointer<UInt8>.allocate(capacity: storage.count)
        stage2.initialize(from: storage, count: storage.count)
        decompositionIndex = decompIndex
        decompositionStorage = decompStorage
        combiningClass = ccc
        lowercaseMap = lower
    }

    /// Flags of a scalar value (anything above U+10FFFF reads as "remove").
    @inline(__always)
    func flags(_ cp: UInt32) -> UInt8 {
        if cp >= 0x110000 { return UnicodeTables.remove }
        return stage2[Int(stage1[Int(cp >> 8)]) << 8 | Int(cp & 0xFF)]
    }

    func combiningClass(of cp: UInt32) -> UInt8 {
        combiningClass[cp] ?? 0
    }

    /// Calls `body` with each scalar of the full canonical decomposition of `cp` (just `cp` if none).
    @inline(__always)
    func decompose(_ cp: UInt32, _ body: (UInt32) -> Void) {
        if cp >= 0xAC00 && cp <= 0xD7A3 {
            let s = cp - 0xAC00
            body(0x1100 + s / 588)
            body(0x1161 + (s % 588) / 28)
            let t = s % 28
            if t != 0 { body(0x11A7 + t) }
            return
        }
        if let packed = decompositionIndex[cp] {
            let start = Int(packed >> 8)
            let count = Int(packed & 0xFF)
            for i in start..<(start + count) where i < decompositionStorage.count {
                body(decompositionStorage[i])
            }
            return
        }
        body(cp)
    }

    /// Lowercase of `cp` as one or two scalars (second is 0 when absent).
    @inline(__always)
    func lowercase(_ cp: UInt32) -> (UInt32, UInt32) {
        guard let v = lowercaseMap[cp] else { return (cp, 0) }
        return (UInt32(truncatingIfNeeded: v), UInt32(truncatingIfNeeded: v >> 32))
    }

    /// Parses "a:b.c,d:e" (hex) into [[a, b, c], [d, e]]; whitespace is ignored.
    private static func parseEntries(_ text: String) -> [[UInt32]] {
        var out: [[UInt32]] = []
        var entry: [UInt32] = []
        var value: UInt32 = 0
        var haveDigit = false
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value &* 16 &+ UInt32(b - UInt8(ascii: "0")); haveDigit = true
            case UInt8(ascii: "a")...UInt8(ascii: "f"):
                value = value &* 16 &+ UInt32(b - UInt8(ascii: "a") + 10); haveDigit = true
            case UInt8(ascii: ":"), UInt8(ascii: "."):
                entry.append(value); value = 0; haveDigit = false
            case UInt8(ascii: ","):
                entry.append(value); value = 0; haveDigit = false
                out.append(entry); entry = []
            default:
                continue
            }
        }
        if haveDigit || !entry.isEmpty {
            entry.append(value)
            out.append(entry)
        }
        return out
    }
}
