// A batch of token-id sequences packed back to back: the encoder's input (see EncoderForward.swift).

/// Token-id sequences packed back to back, with per-sequence offsets and optional token types.
public struct PackedBatch: Sendable {
    /// [T] token ids, sequence after sequence.
    public let tokenIds: [Int32]
    /// [T] token type of each token (BERT's segment: 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`), or nil
    /// when every type is 0. DistilBERT has no token types and ignores them.
    public let tokenTypes: [Int32]?
    /// [T] position of each token inside its sequence (0..<L_s).
    public let positions: [Int32]
    /// [S + 1] row offsets: sequence s is rows offsets[s]..<offsets[s+1].
    public let offsets: [Int]
    /// Longest sequence.
    public let maxLength: Int

    /// Number of sequences (S).
    public var count: Int { offsets.count - 1 }
    /// Total tokens (T).
    public var totalTokens: Int { tokenIds.count }
    /// L_s for every sequence.
    public var lengths: [Int] { (0..<count).map { offsets[$0 + 1] - offsets[$0] } }
    public func length(of s: Int) -> Int { offsets[s + 1] - offsets[s] }
    /// What the workspaces must hold for this batch.
    public var shape: BatchShape { BatchShape(lengths: lengths) }

    /// Calls `body` with the [T] token types, or nil when all are 0.
    func withTypes<R>(_ body: (UnsafePointer<Int32>?) throws -> R) rethrows -> R {
        guard let tokenTypes else { return try body(nil) }
        return try tokenTypes.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    /// Packs `sequences`. Throws `.invalidArgument` for an empty sequence or a negative id
    /// (ids are checked against a model's vocabulary by `EncoderForward`). An empty list is allowed.
    ///
    /// `tokenTypes`, if given, has one entry per sequence: its types, one per token, or `[]` for all 0.
    /// Throws `.invalidArgument` (field `token_type_ids`) for a count mismatch or a negative type
    /// (types are checked against a model's `typeVocabSize` by `EncoderForward`).
    public init(sequences: [[Int32]], tokenTypes: [[Int32]]? = nil) throws {
        var ids: [Int32] = [], pos: [Int32] = [], offs = [0]
        var total = 0, longest = 0
        for s in sequences { total += s.count }
        ids.reserveCapacity(total)
        pos.reserveCapacity(total)
        offs.reserveCapacity(sequences.count + 1)
        for (i, s) in sequences.enumerated() {
            guard !s.isEmpty else {
                throw SentimentError.invalidArgument("sequence \(i) is empty (it needs at least [CLS])", field: "input_ids")
            }
            for (j, t) in s.enumerated() {
                guard t >= 0 else {
                    throw SentimentError.invalidArgument("sequence \(i), token \(j): negative token id \(t)", field: "input_ids")
                }
                ids.append(t)
                pos.append(Int32(truncatingIfNeeded: j))
            }
            offs.append(ids.count)
            longest = Swift.max(longest, s.count)
        }
        tokenIds = ids
        positions = pos
        offsets = offs
        maxLength = longest
        self.tokenTypes = try tokenTypes.flatMap { try Self.pack(types: $0, sequences: sequences, total: total) }
    }

    /// The types packed like the ids; nil when all are 0.
    private static func pack(types: [[Int32]], sequences: [[Int32]], total: Int) throws -> [Int32]? {
        guard types.count == sequences.count else {
            throw SentimentError.invalidArgument(
                "\(sequences.count) sequences but \(types.count) token-type rows", field: "token_type_ids")
        }
        var nonZero = false
        for (i, (s, t)) in zip(sequences, types).enumerated() {
            if t.isEmpty { continue }
            guard t.count == s.count else {
                throw SentimentError.invalidArgument(
                    "sequence \(i) has \(s.count) tokens but \(t.count) token types", field: "token_type_ids")
            }
            for (j, v) in t.enumerated() where v != 0 {
                guard v > 0 else {
                    throw SentimentError.invalidArgument(
                        "sequence \(i), token \(j): negative token type \(v)", field: "token_type_ids")
                }
                nonZero = true
            }
        }
        guard nonZero else { return nil }
        var out: [Int32] = []
        out.reserveCapacity(total)
        for (s, t) in zip(sequences, types) {
            if t.isEmpty { out.append(contentsOf: repeatElement(0, count: s.count)) } else { out.append(contentsOf: t) }
        }
        return out
    }

    /// Convenience for `Int` ids (throws `.invalidArgument` for ids outside Int32).
    public init(sequences: [[Int]]) throws {
        var converted: [[Int32]] = []
        converted.reserveCapacity(sequences.count)
        for (i, s) in sequences.enumerated() {
            var row: [Int32] = []
            row.reserveCapacity(s.count)
            for (j, t) in s.enumerated() {
                guard let v = Int32(exactly: t) else {
                    throw SentimentError.invalidArgument("sequence \(i), token \(j): token id \(t) is out of range", field: "input_ids")
                }
                row.append(v)
            }
            converted.append(row)
        }
        try self.init(sequences: converted)
    }
}

/// The sizes a batch needs buffers for: the workspaces (`ForwardWorkspace`, the backward's) are
/// sized by it, and `GradientStep.reserve` sizes them once for the largest batch to come.
public struct BatchShape: Sendable, Equatable {
    public var tokens = 0, sequences = 0, maxLength = 0
    /// The sum of L_s^2 (attention probabilities per head).
    public var squaredLengths = 0

    public init() {}

    /// The shape of a batch of sequences of these lengths.
    public init(lengths: some Sequence<Int>) {
        for l in lengths {
            tokens += l; sequences += 1; maxLength = Swift.max(maxLength, l); squaredLengths += l * l
        }
    }

    /// The smallest shape that holds both.
    public func union(_ o: BatchShape) -> BatchShape {
        var u = BatchShape()
        u.tokens = Swift.max(tokens, o.tokens); u.sequences = Swift.max(sequences, o.sequences)
        u.maxLength = Swift.max(maxLength, o.maxLength); u.squaredLengths = Swift.max(squaredLengths, o.squaredLengths)
        return u
    }
}
