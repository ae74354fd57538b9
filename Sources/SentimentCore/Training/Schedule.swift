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
