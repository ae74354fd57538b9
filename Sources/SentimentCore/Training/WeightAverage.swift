/// An exponential moving average of the weights over optimizer steps (Polyak averaging), kept
/// in a twin `EncoderWeights` that evaluation and checkpoints can use in place of the live ones.
///
/// Debiased like Adam's moments: after t updates the average is
///
///     sum_{s=1..t} decay^(t-s) * w_s  *  (1 - decay) / (1 - decay^t)
///
/// so it starts at the first step's weights (no pull towards the pretrained or random initial
/// ones) and each update is  avg <- avg + (w - avg) * (1 - decay) / (1 - decay^t).
public final class WeightAverage {
    public let decay: Double
    /// The averaged weights (same shapes and names as the source).
    public let average: EncoderWeights
    public private(set) var updates = 0
    private let pairs: [(source: Tensor, average: Tensor)]

    /// `decay` in [0, 1); the average starts as a copy of `weights`.
    public init(of weights: EncoderWeights, decay: Double) throws {
        guard decay >= 0, decay < 1 else {
            throw SentimentError.invalidArgument("ema_decay must be in [0, 1)", field: "ema_decay")
        }
        self.decay = decay
        self.average = try EncoderWeights.zeros(like: weights)
        self.pairs = zip(weights.namedTensors, average.namedTensors).map { ($0.tensor, $1.tensor) }
        for (s, a) in pairs { a.data.update(from: s.data, count: s.count) }
    }

    /// Continues from a saved average that has seen `updates` steps.
    func restore(updates: Int) { self.updates = updates }

    /// Folds the source's current weights into the average (call after each optimizer step).
    public func update() {
        updates += 1
        let rate = Float((1 - decay) / (1 - pow(decay, Double(updates))))
        let r = F16(repeating: rate)
        for (s, a) in pairs {
            let sp = s.data, ap = a.data
            Parallel.forRanges(s.count, grain: 1 << 16) { range in
                var i = range.lowerBound
                while i + 16 <= range.upperBound {
                    let av = load16(ap + i)
                    store16(av.addingProduct(r, load16(sp + i) - av), ap + i)
                    i += 16
                }
                while i < range.upperBound { ap[i] += rate * (sp[i] - ap[i]); i += 1 }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
