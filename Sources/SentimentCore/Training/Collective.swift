// Data-parallel training over a collective library the host brings (torch.distributed, MPI):
// the library never links one, it calls the host's allreduce, which replaces a float buffer
// with its elementwise sum over the ranks.
//
// Every rank runs the same loop on the same data and order. A step's batch is cut into
// world_size shards (MicroBatches.shards) and rank r runs shard r's micro-batches; their
// gradients, loss and token count are summed (GradientSum), then every rank clips and takes the
// same AdamW step. Rank 0 evaluates and broadcasts the figures (a sum where the other ranks add
// zeros), and only rank 0 saves. Each step ends with a vote, so a rank that cancels or fails
// stops all of them at the same step instead of leaving them waiting in the next allreduce.

/// The ranks of a data-parallel run and the host's allreduce.
public struct Collective {
    public let rank: Int
    public let worldSize: Int
    /// Replaces the buffer with its elementwise sum over all ranks; false when the host's call failed.
    let allreduce: (UnsafeMutableBufferPointer<Float>) -> Bool

    /// The largest buffer one allreduce call gets (16 MB of floats).
    public static let maxCount = 1 << 22

    public init(rank: Int, worldSize: Int, allreduce: @escaping (UnsafeMutableBufferPointer<Float>) -> Bool) throws {
        guard worldSize >= 1, worldSize <= 65536 else {
            throw SentimentError.invalidArgument("world_size must be in 1...65536, got \(worldSize)", field: "world_size")
        }
        guard rank >= 0, rank < worldSize else {
            throw SentimentError.invalidArgument("rank must be in 0..<world_size (\(worldSize)), got \(rank)", field: "rank")
        }
        self.init(checked: rank, worldSize, allreduce)
    }

    private init(checked rank: Int, _ worldSize: Int, _ allreduce: @escaping (UnsafeMutableBufferPointer<Float>) -> Bool) {
        self.rank = rank
        self.worldSize = worldSize
        self.allreduce = allreduce
    }

    /// One process on its own.
    public static var single: Collective { Collective(checked: 0, 1) { _ in true } }

    public var isDistributed: Bool { worldSize > 1 }
    /// The rank that evaluates, saves and reports saves.
    public var isMain: Bool { rank == 0 }

    /// Sums `buffer` over the ranks (in calls of at most `maxCount` floats); `what` names the
    /// exchange for the error when the host's allreduce fails.
    func sum(_ buffer: UnsafeMutableBufferPointer<Float>, what: @autoclosure () -> String) throws {
        guard isDistributed else { return }
        var lo = 0
        repeat {
            let hi = Swift.min(buffer.count, lo + Collective.maxCount)
            guard allreduce(UnsafeMutableBufferPointer(rebasing: buffer[lo..<hi])) else {
                throw SentimentError(
                    .error,
                    "rank \(rank) of \(worldSize): the allreduce of \(what()) failed (the host's collective returned an "
                        + "error: a rank stopped, timed out or lost its connection); checkpoints saved before are kept",
                    field: "allreduce")
            }
            lo = hi
        } while lo < buffer.count
    }

    /// The sum over the ranks of each rank's `values`.
    func sum(_ values: [Float], what: @autoclosure () -> String) throws -> [Float] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try sum($0, what: what()) }
        return v
    }

    /// Why the ranks stop after a step: each rank votes 0 (go on), 1 (cancel) or 2 (failed).
    enum Vote: Float {
        case goOn = 0, cancel = 1, failed = 2
    }

    /// The votes of all ranks, summed per kind: (cancels, failures).
    func tally(_ vote: Vote, at step: Int) throws -> (cancels: Int, failures: Int) {
        guard isDistributed else { return (vote == .cancel ? 1 : 0, vote == .failed ? 1 : 0) }
        let v = try sum([vote == .cancel ? 1 : 0, vote == .failed ? 1 : 0], what: "step \(step)'s stop vote")
        return (Int(v[0]), Int(v[1]))
    }

    /// The error a rank raises when another rank failed (each failed rank reports its own error).
    func peerFailed(_ count: Int, at what: String) -> SentimentError {
        SentimentError(
            .error,
            "rank \(rank) of \(worldSize): \(count) other rank\(count == 1 ? "" : "s") failed during \(what); "
                + "see that rank's error (checkpoints saved before are kept)",
            field: "allreduce")
    }
}

/// Sums a run's gradient tensors over the ranks, with a few figures appended, through one
/// reused buffer of at most `Collective.maxCount` floats: the tensors are copied in and out in
/// buckets, as PyTorch's DistributedDataParallel does, and the figures ride in the last one.
final class GradientSum {
    private let tensors: [Tensor]
    private let bucket: Tensor

    init(_ tensors: [Tensor]) throws {
        self.tensors = tensors
        bucket = try Tensor(shape: [Swift.min(Collective.maxCount, tensors.reduce(0) { $0 + $1.count } + 16)])
    }

    /// Replaces every tensor with its sum over the ranks and returns the sum of `extras`
    /// (at most 16 figures).
    func sum(_ collective: Collective, extras: [Float], step: Int) throws -> [Float] {
        let base = bucket.data
        var filled = 0
        var pending: [(tensor: Tensor, offset: Int, count: Int, at: Int)] = []
        func flush() throws {
            try collective.sum(UnsafeMutableBufferPointer(start: base, count: filled), what: "step \(step)'s gradients")
            for p in pending { (p.tensor.data + p.offset).update(from: base + p.at, count: p.count) }
            pending.removeAll(keepingCapacity: true)
            filled = 0
        }
        for t in tensors {
            var offset = 0
            while offset < t.count {
                if filled == bucket.count { try flush() }
                let n = Swift.min(t.count - offset, bucket.count - filled)
                (base + filled).update(from: t.data + offset, count: n)
                pending.append((t, offset, n, filled))
                filled += n
                offset += n
            }
        }
        if filled + extras.count > bucket.count { try flush() }
        let at = filled
        for (k, v) in extras.enumerated() { base[at + k] = v }
        filled += extras.count
        try flush()
        return (0..<extras.count).map { base[at + $0] }
    }
}
