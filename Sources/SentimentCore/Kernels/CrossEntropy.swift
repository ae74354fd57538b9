// Softmax cross-entropy over classifier logits, averaged over the batch like
// torch.nn.CrossEntropyLoss(reduction="mean"):
//   loss = (1 / S) sum_s [ logsumexp(logits[s, :]) - logits[s, labels[s]] ]
//   dlogits[s, :] = (softmax(logits[s, :]) - onehot(labels[s])) / S
// Computed in Double (S x NL is tiny). Labels must already be checked against NL.

/// Mean cross-entropy of `rows` x `classes` logits.
public func crossEntropyForward(logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, rows: Int, classes: Int) -> Double {
    guard rows > 0, classes > 0 else { return 0 }
    var total = 0.0
    for r in 0..<rows {
        let z = logits + r * classes
        var m = Double(z[0])
        for c in 1..<classes { m = Swift.max(m, Double(z[c])) }
        var e = 0.0
        for c in 0..<classes { e += expDouble(Double(z[c]) - m) }
        total += m + logDouble(e) - Double(z[labels[r]])
    }
    return total / Double(rows)
}

/// dlogits = gradient of the mean cross-entropy with respect to the logits (overwritten).
public func crossEntropyBackward(
    dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, rows: Int, classes: Int
) {
    guard rows > 0, classes > 0 else { return }
    let inv = 1 / Double(rows)
    for r in 0..<rows {
        let z = logits + r * classes, dz = dlogits + r * classes
        var m = Double(z[0])
        for c in 1..<classes { m = Swift.max(m, Double(z[c])) }
        var e = 0.0
        for c in 0..<classes { e += expDouble(Double(z[c]) - m) }
        for c in 0..<classes {
            let p = expDouble(Double(z[c]) - m) / e
            dz[c] = Float((p - (c == labels[r] ? 1 : 0)) * inv)
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func expDouble(_ x: Double) -> Double { exp(x) }
@inline(__always) func logDouble(_ x: Double) -> Double { log(x) }
#endif
