// Gradient accumulation: one optimizer step's batch split into micro-batches that run one after
// another into the same gradients, each weighted by its share of the batch's examples, so they
// add up to the batch's gradient (GradientStep's `lossScale` and `accumulate`). Only one
// micro-batch's activations are held at a time. A data-parallel step (Collective.swift) first
// cuts the batch into one shard per rank and splits each shard the same way.

enum MicroBatches {
    /// Contiguous ranges of a batch of sequences with these `lengths`: `parts` ranges as equal in
    /// size as they can be (fewer when the batch is smaller), or with `maxTokens` > 0, ranges
    /// filled greedily up to that many tokens (`copies` times each sequence's length: R-Drop runs
    /// it twice). A sequence longer than `maxTokens` gets a range of its own.
    static func split(lengths: [Int], parts: Int, maxTokens: Int = 0, copies: Int = 1) -> [Range<Int>] {
        let n = lengths.count
        guard n > 0 else { return [] }
        if maxTokens > 0 {
            var ranges: [Range<Int>] = []
            var lo = 0, tokens = 0
            for (i, length) in lengths.enumerated() {
                let cost = length * copies
                if i > lo, tokens + cost > maxTokens {
                    ranges.append(lo..<i)
                    lo = i
                    tokens = 0
                }
                tokens += cost
            }
            ranges.append(lo..<n)
            return ranges
        }
        let k = Swift.max(1, Swift.min(parts, n))
        // The first n % k ranges get one extra sequence.
        var ranges: [Range<Int>] = []
        var lo = 0
        for p in 0..<k {
            let size = n / k + (p < n % k ? 1 : 0)
            ranges.append(lo..<(lo + size))
            lo += size
        }
        return ranges
    }

    /// The micro-batches of one step over `ranks` data-parallel ranks: the batch cut into `ranks`
    /// shards as `split(parts: ranks)` cuts it, each shard split by `split(parts:maxTokens:copies:)`.
    /// Element r holds rank r's ranges, as indices into the whole batch (empty when the batch has
    /// fewer sequences than ranks). One rank: `[split(lengths, parts, maxTokens, copies)]`.
    static func shards(lengths: [Int], ranks: Int, parts: Int, maxTokens: Int = 0, copies: Int = 1) -> [[Range<Int>]] {
        var shards = split(lengths: lengths, parts: ranks).map { shard in
            split(lengths: Array(lengths[shard]), parts: parts, maxTokens: maxTokens, copies: copies)
                .map { ($0.lowerBound + shard.lowerBound)..<($0.upperBound + shard.lowerBound) }
        }
        while shards.count < ranks { shards.append([]) }
        return shards
    }
}
