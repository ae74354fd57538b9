// Helpers for the kernel and encoder-forward tests: fixture paths, model discovery,
// random data and double-precision reference math.
import Foundation
import Testing
@testable import SentimentCore

enum ForwardFixtures {
    /// Tests/SentimentCoreTests/Fixtures/parity
    static let parityDir: String = {
        let file = "\(#filePath)"
        let dir = file[..<(file.lastIndex(of: "/") ?? file.endIndex)]
        return dir + "/Fixtures/parity"
    }()

    static func readJSON(_ path: String) throws -> JSON {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SentimentError.io("cannot read \(path)")
        }
        return try JSON.parse([UInt8](data))
    }

    /// $SENTIMENT_MODEL_DIR, else ${SENTIMENT_CACHE_DIR:-$HOME/.cache/sentiment}/models/all-MiniLM-L6-v2.
    static var miniLMDir: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["SENTIMENT_MODEL_DIR"], !d.isEmpty { return d }
        let cache = env["SENTIMENT_CACHE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (env["HOME"] ?? "/root") + "/.cache/sentiment"
        return cache + "/models/all-MiniLM-L6-v2"
    }
    static var miniLMPresent: Bool {
        FileManager.default.fileExists(atPath: miniLMDir + "/model.safetensors")
    }
    /// Runs model tests when the model is there, and under CI (where a missing model must fail).
    static var runMiniLMTests: Bool {
        if miniLMPresent { return true }
        if ProcessInfo.processInfo.environment["CI"] != nil { return true }
        print("skipping MiniLM parity tests: no model at \(miniLMDir) (set SENTIMENT_MODEL_DIR or run scripts/fetch_model.sh)")
        return false
    }

    static func intRows(_ j: JSON?) throws -> [[Int32]] {
        guard let rows = j?.arrayValue else { throw SentimentError.format("expected an array of arrays") }
        return try rows.map { r in
            guard let a = r.arrayValue else { throw SentimentError.format("expected an array") }
            return try a.map { v in
                guard let i = v.int64Value, let x = Int32(exactly: i) else { throw SentimentError.format("bad id") }
                return x
            }
        }
    }
    static func floatRows(_ j: JSON?) throws -> [[Double]] {
        guard let rows = j?.arrayValue else { throw SentimentError.format("expected an array of arrays") }
        return try rows.map { r in
            guard let a = r.arrayValue else { throw SentimentError.format("expected an array") }
            return try a.map { v in
                guard let x = v.doubleValue else { throw SentimentError.format("bad number") }
                return x
            }
        }
    }
}

/// Max |a - b| over two [rows][cols] tables (infinity on a shape mismatch).
func maxAbsDiff(_ a: [[Float]], _ b: [[Double]]) -> Double {
    guard a.count == b.count else { return .infinity }
    var m = 0.0
    for (ra, rb) in zip(a, b) {
        guard ra.count == rb.count else { return .infinity }
        for (x, y) in zip(ra, rb) { m = max(m, abs(Double(x) - y)) }
    }
    return m
}
func maxAbsDiff(_ a: [[Float]], _ b: [[Float]]) -> Double {
    maxAbsDiff(a, b.map { $0.map(Double.init) })
}

extension SeededRandom {
    mutating func uniform(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * nextUnitFloat() }
    }
}

/// A 64-byte aligned float buffer for kernel tests.
final class Buf {
    let t: Tensor
    var p: UnsafeMutablePointer<Float> { t.data }
    init(_ values: [Float]) throws { t = try Tensor(shape: [values.count], values: values) }
    init(count: Int) throws { t = try Tensor(shape: [count]) }
    var array: [Float] { t.array }
}
