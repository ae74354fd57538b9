/// Learning-rate schedules of Hugging Face's `get_scheduler`, as a function of the number
/// of optimizer steps already taken (the Trainer calls `scheduler.step()` after each
/// update, so update k, counted from 0, uses factor(k)). Checked against transformers:
/// Tests/SentimentCoreTests/Fixtures/schedules (tools/fixtures/make_schedule_fixtures.py).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case linear, constant, constantWithWarmup = "constant_with_warmup", cosine, polynomial
    }

    public var kind: Kind
    public var baseRate: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    /// cosine: the number of cosine waves over the decay (HF's default 0.5: one half-wave to 0).
    public var numCycles: Double = 0.5
    /// polynomial: the exponent and the rate reached at the last step (HF's defaults 1 and 1e-7).
    public var power: Double = 1
    public var lrEnd: Double = 1e-7

    public init(kind: Kind, baseRate: Float, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.baseRate = baseRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(afterSteps k: Int) -> Float {
        if kind != .constant, k < warmupSteps {
            return baseRate * Float(k) / Float(Swift.max(1, warmupSteps))
        }
        // HF's lambdas, in Double as Python computes them.
        let decaySteps = Double(Swift.max(1, totalSteps - warmupSteps))
        let progress = Double(k - warmupSteps) / decaySteps
        switch kind {
        case .constant, .constantWithWarmup:
            return baseRate
        case .linear:
            let remaining = Float(totalSteps - k) / Float(Swift.max(1, totalSteps - warmupSteps))
            return baseRate * Swift.max(0, remaining)
        case .cosine:
            let factor = Swift.max(0, 0.5 * (1 + cos(Double.pi * numCycles * 2 * progress)))
            return Float(Double(baseRate) * factor)
        case .polynomial:
            let base = Double(baseRate)
            if k > totalSteps { return Float(lrEnd) }
            let remaining = 1 - progress
            return Float((base - lrEnd) * pow(remaining, power) + lrEnd)
        }
    }

    /// Warmup steps: `warmup_steps` when > 0 (it wins, as in TrainingArguments), else HF's
    /// `get_warmup_steps`: ceil(total * ratio).
    public static func warmupSteps(steps: Int = 0, ratio: Double, totalSteps: Int) -> Int {
        steps > 0 ? steps : Int((Double(totalSteps) * ratio).rounded(.up))
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients by min(1, maxNorm / (norm + 1e-6))
/// where norm is the global L2 norm. Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: [Tensor], maxNorm: Float) -> Float {
    let norm = gradientNorm(gradients)
    guard maxNorm > 0, norm.isFinite else { return norm }
    let coef = Swift.min(1, maxNorm / (norm + 1e-6))
    if coef < 1 {
        let c = F16(repeating: coef)
        for g in gradients {
            let p = g.data
            Parallel.forRanges(g.count, grain: 1 << 16) { r in
                var i = r.lowerBound
                while i + 16 <= r.upperBound { store16(load16(p + i) * c, p + i); i += 16 }
                while i < r.upperBound { p[i] *= coef; i += 1 }
            }
        }
    }
    return norm
}

/// Global L2 norm of the gradients (squares summed in float blocks of 1024, blocks added in
/// Double; the same result for any thread count).
public func gradientNorm(_ gradients: [Tensor]) -> Float {
    let block = 1024
    var total = 0.0
    for g in gradients {
        let p = g.data, n = g.count
        let blocks = (n + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            guard let o = out.baseAddress else { return }
            Parallel.forRanges(blocks, grain: 64) { r in
                for b in r {
                    let lo = b * block, hi = Swift.min(n, lo + block)
                    var a0 = F16(), a1 = F16()
                    var i = lo
                    while i + 32 <= hi {
                        let x = load16(p + i), y = load16(p + i + 16)
                        a0 = a0.addingProduct(x, x); a1 = a1.addingProduct(y, y)
                        i += 32
                    }
                    var s = Double(hsum16(a0 + a1))
                    while i < hi { s += Double(p[i]) * Double(p[i]); i += 1 }
                    o[b] = s
                }
            }
        }
        for s in partial { total += s }
    }
    return Float(total.squareRoot())
}

#if canImport(Glibc)
import Glibc
#endif
