#if canImport(Glibc)
import Glibc
#endif

/// A dense row-major float32 tensor that owns 64-byte-aligned memory.
///
/// Weights, activations, gradients and optimizer moments are all `Tensor`s. The class is
/// a reference type so training can update parameters in place; a loaded model never
/// mutates its tensors, which is what makes a model handle safe to share across threads.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>

    /// Zero-filled tensor. Throws `.noMemory` when the allocation fails, the size overflows, or a
    /// large one would not fit in available memory (`MemoryGuard`).
    public init(shape: [Int]) throws {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw SentimentError(.invalidArgument, "negative tensor dimension \(d)") }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw SentimentError(.noMemory, "tensor shape \(shape) overflows") }
            n = p
        }
        let raw = try MemoryGuard.allocateZeroed(count: n, stride: MemoryLayout<Float>.stride, what: "a tensor of shape \(shape)")
        self.shape = shape
        self.count = n
        self.data = raw.bindMemory(to: Float.self, capacity: Swift.max(n, 1))
    }

    public convenience init(shape: [Int], values: [Float]) throws {
        try self.init(shape: shape)
        guard values.count == count else {
            throw SentimentError(.invalidArgument, "tensor of shape \(shape) needs \(count) values, got \(values.count)")
        }
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: count) }
        }
    }

    deinit { free(data) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func copy() throws -> Tensor {
        let t = try Tensor(shape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Whether every element is finite: one pass the compiler vectorizes (inf and NaN have
    /// all exponent bits set).
    public var allFinite: Bool {
        var bad: UInt32 = 0
        for i in 0..<count { bad |= data[i].bitPattern & 0x7f80_0000 == 0x7f80_0000 ? 1 : 0 }
        return bad == 0
    }
}
