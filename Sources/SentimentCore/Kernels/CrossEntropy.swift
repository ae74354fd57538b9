// Softmax cross-entropy over classifier logits, averaged over the batch like
// torch.nn.CrossEntropyLoss(reduction="mean"):
//   loss = (1 / S) sum_s [ logsumexp(logits[s, :]) - logits[s, labels[s]] ]
//   dlogits[s, :] = (softmax(logits[s, :]) - onehot(labels[s])) / S
// Computed in Double (S x NL is tiny). Labels must already be checked against NL.

/// Mean cross-entropy of `rows` x `classes` logits.
public func crossEntropyForward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, rows: Int, classes: Int) -> Double {
    guard rows > 0, classes > 0 else { return 0 }
    var total = 0.0
    for r in 0..<rows { total -= logSoftmax(logits + r * classes, classes)[labels[r]] }
    return total / Double(rows)
}

/// dlogits = gradient of the mean cross-entropy with respect to the logits (overwritten).
public func crossEntropyBackward(
    dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, rows: Int, classes: Int
) {
    guard rows > 0, classes > 0 else { return }
    let inv = 1 / Double(rows)
    for r in 0..<rows {
        let lp = logSoftmax(logits + r * classes, classes), dz = dlogits + r * classes
        for c in 0..<classes { dz[c] = Float((expDouble(lp[c]) - (c == labels[r] ? 1 : 0)) * inv) }
    }
}

// R-Drop's consistency term (Liang et al. 2021): rows i and i + P (P = pairs) are the same input
// under two dropout masks, p = softmax(logits[i]), q = softmax(logits[i + P]):
//   term = (1 / P) sum_i [ KL(p || q) + KL(q || p) ] / 2
//   d term / d logits[i]     = (1 / 2P) [ p * (log p - log q - KL(p || q)) + p - q ]
//   d term / d logits[i + P] = (1 / 2P) [ q * (log q - log p - KL(q || p)) + q - p ]

/// The symmetric KL term over `pairs` row pairs of `2 * pairs` x `classes` logits.
public func symmetricKLForward(logits: UnsafePointer<Float>, pairs: Int, classes: Int) -> Double {
    guard pairs > 0, classes > 0 else { return 0 }
    var total = 0.0
    for i in 0..<pairs {
        let (lp, lq) = (logSoftmax(logits + i * classes, classes), logSoftmax(logits + (i + pairs) * classes, classes))
        for c in 0..<classes { total += (expDouble(lp[c]) - expDouble(lq[c])) * (lp[c] - lq[c]) / 2 }
    }
    return total / Double(pairs)
}

/// Adds `scale` times the gradient of the symmetric KL term to `dlogits`.
public func symmetricKLBackward(
    dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, pairs: Int, classes: Int, scale: Double
) {
    guard pairs > 0, classes > 0 else { return }
    let w = scale / Double(2 * pairs)
    for i in 0..<pairs {
        let (lp, lq) = (logSoftmax(logits + i * classes, classes), logSoftmax(logits + (i + pairs) * classes, classes))
        let p = lp.map(expDouble), q = lq.map(expDouble)
        var klPQ = 0.0, klQP = 0.0
        for c in 0..<classes {
            klPQ += p[c] * (lp[c] - lq[c])
            klQP += q[c] * (lq[c] - lp[c])
        }
        let dp = dlogits + i * classes, dq = dlogits + (i + pairs) * classes
        for c in 0..<classes {
            dp[c] += Float(w * (p[c] * (lp[c] - lq[c] - klPQ) + p[c] - q[c]))
            dq[c] += Float(w * (q[c] * (lq[c] - lp[c] - klQP) + q[c] - p[c]))
        }
    }
}

/// log softmax of one row, in Double (max-shifted log-sum-exp).
private func logSoftmax(_ z: UnsafePointer<Float>, _ classes: Int) -> [Double] {
    var m = Double(z[0])
    for c in 1..<classes { m = Swift.max(m, Double(z[c])) }
    var e = 0.0
    for c in 0..<classes { e += expDouble(Double(z[c]) - m) }
    let lse = m + logDouble(e)
    return (0..<classes).map { Double(z[$0]) - lse }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func expDouble(_ x: Double) -> Double { exp(x) }
@inline(__always) func logDouble(_ x: Double) -> Double { log(x) }
#endif
