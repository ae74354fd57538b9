/// Learning-rate schedules of Hugging Face's `get_scheduler`, as a function of the number
/// of optimizer steps already taken (the Trainer calls `scheduler.step()` after each
/// update, so update k, counted from 0, uses factor(k)).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case linear, constant, constantWithWarmup = "constant_with_warmup" }

    public var kind: Kind
    public var baseRate: Float
    public var warmupSteps: Int
    public var totalSteps: Int

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
        switch kind {
        case .constant, .constantWithWarmup:
            return baseRate
        case .linear:
            let remaining = Float(totalSteps - k) / Float(Swift.max(1, totalSteps - warmupSteps))
            return baseRate * Swift.max(0, remaining)
        }
    }

    /// HF's `TrainingArguments.get_warmup_steps`: ceil(total * ratio).
    public static func warmupSteps(ratio: Double, totalSteps: Int) -> Int {
        Int((Double(totalSteps) * ratio).rounded(.up))
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients by min(1, maxNorm / (norm + 1e-6))
/// where norm is the global L2 norm. Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: [Tensor], maxNorm: Float) -> Float {
    var total = 0.0
    for g in gradients {
        var s = 0.0
        for i in 0..<g.count { s += Double(g.data[i]) * Double(g.data[i]) }
        total += s
    }
    let norm = Float(total.squareRoot())
    guard maxNorm > 0, norm.isFinite else { return norm }
    let coef = Swift.min(1, maxNorm / (norm + 1e-6))
    if coef < 1 {
        for g in gradients {
            for i in 0..<g.count { g.data[i] *= coef }
        }
    }
    return norm
}
