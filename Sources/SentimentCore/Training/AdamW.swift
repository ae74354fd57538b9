/// AdamW exactly as `torch.optim.AdamW` (the optimizer Hugging Face's Trainer uses):
///
///     p  <- p - lr * wd * p                      (decoupled weight decay, decayed tensors only)
///     m  <- b1 * m + (1 - b1) * g
///     v  <- b2 * v + (1 - b2) * g^2
///     p  <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
///
/// Like the Trainer, weight decay skips biases and LayerNorm weights. Each tensor's `lr` may be
/// scaled (`rateScales`, e.g. layer-wise decay); the scaled rate also scales its weight decay.
public final class AdamW {
    public struct Hyperparameters: Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0
        public init() {}
    }

    public let hyper: Hyperparameters
    public private(set) var step = 0
    private let parameters: [(name: String, tensor: Tensor)]
    /// (m, v) of each parameter, in the parameters' order.
    let moments: [(m: Tensor, v: Tensor)]
    private let decays: [Bool]
    private let rateScales: [Float]

    /// `rateScales`: one factor per parameter on the learning rate (nil = all 1).
    public init(parameters: [(name: String, tensor: Tensor)], hyper: Hyperparameters, rateScales: [Float]? = nil) throws {
        guard rateScales == nil || rateScales?.count == parameters.count else {
            throw SentimentError.invalidArgument("\(rateScales?.count ?? 0) rate scales for \(parameters.count) parameters")
        }
        self.hyper = hyper
        self.parameters = parameters
        self.moments = try parameters.map { (try Tensor(shape: $0.tensor.shape), try Tensor(shape: $0.tensor.shape)) }
        self.decays = parameters.map { AdamW.isDecayed($0.name) }
        self.rateScales = rateScales ?? Array(repeating: 1, count: parameters.count)
    }

    /// Layer-wise learning-rate decay over `EncoderWeights.namedTensors` names: `layer.i.*` gets
    /// decay^(layers - i), `embeddings.*` decay^(layers + 1), the head 1.
    public static func layerwiseRateScales(_ names: [String], layers: Int, decay: Float) -> [Float] {
        names.map { name in
            if name.hasPrefix("embeddings.") { return pow(decay, Float(layers + 1)) }
            if name.hasPrefix("layer."), let i = Int(name.dropFirst(6).prefix { $0 != "." }) {
                return pow(decay, Float(layers - i))
            }
            return 1
        }
    }

    /// Biases and LayerNorm parameters are not decayed (HF `get_decay_parameter_names`).
    public static func isDecayed(_ name: String) -> Bool {
        !(name.hasSuffix(".bias") || name.contains("norm"))
    }

    /// Continues from a saved state: `step` updates were taken (their moments restored by the caller).
    func restore(step: Int) { self.step = step }

    /// One update with learning rate `lr`; `gradients` are in the same order as the parameters.
    public func update(gradients: [Tensor], lr: Float) {
        step += 1
        let t = Float(step)
        let b1 = hyper.beta1, b2 = hyper.beta2, eps = hyper.epsilon
        let bc1 = 1 - pow(b1, t)
        let bc2Sqrt = (1 - pow(b2, t)).squareRoot()
        for (k, (p, g)) in zip(parameters.map(\.tensor), gradients).enumerated() {
            let (m, v) = moments[k]
            let rate = lr * rateScales[k]
            let stepSize = rate / bc1
            let decay = decays[k] ? 1 - rate * hyper.weightDecay : 1
            let pp = p.data, gp = g.data, mp = m.data, vp = v.data
            Parallel.forRanges(p.count, grain: 1 << 16) { range in
                // torch: m.lerp_(g, 1 - b1); v.mul_(b2).addcmul_(g, g, 1 - b2);
                //        p.addcdiv_(m, v.sqrt() / sqrt(bc2) + eps, -lr / bc1)   (after p *= 1 - lr * wd)
                let w1 = F16(repeating: 1 - b1), b2v = F16(repeating: b2), w2 = F16(repeating: 1 - b2)
                let dv = F16(repeating: decay), ss = F16(repeating: stepSize)
                let bc = F16(repeating: bc2Sqrt), ev = F16(repeating: eps)
                var i = range.lowerBound
                while i + 16 <= range.upperBound {
                    let gi = load16(gp + i)
                    var mi = load16(mp + i)
                    mi = mi.addingProduct(w1, gi - mi)
                    let vi = (load16(vp + i) * b2v).addingProduct(w2, gi * gi)
                    store16(mi, mp + i)
                    store16(vi, vp + i)
                    let denom = vi.squareRoot() / bc + ev
                    store16((load16(pp + i) * dv).addingProduct(-ss, mi / denom), pp + i)
                    i += 16
                }
                while i < range.upperBound {
                    let gi = gp[i]
                    let mi = mp[i] + (1 - b1) * (gi - mp[i])
                    let vi = b2 * vp[i] + (1 - b2) * gi * gi
                    mp[i] = mi
                    vp[i] = vi
                    pp[i] = pp[i] * decay - stepSize * (mi / (vi.squareRoot() / bc2Sqrt + eps))
                    i += 1
                }
            }
        }
    }
}

@inline(__always) private func pow(_ x: Float, _ y: Float) -> Float { Float(powDouble(Double(x), Double(y))) }

#if canImport(Glibc)
import Glibc
@inline(__always) private func powDouble(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
#endif
