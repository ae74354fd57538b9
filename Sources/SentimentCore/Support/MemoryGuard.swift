// Refuses large allocations the machine cannot back, so an oversized request fails with
// `.noMemory` instead of getting the host process OOM-killed. Allocations are zero-filled right
// away (Tensor, AlignedBuffer), so what earlier ones took already shows in MemAvailable.
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryGuard {
    /// Allocations below this are not checked (reading /proc/meminfo costs more than they risk).
    static let checkedFrom = 64 << 20
    /// What stays free for the host and everything else on the machine.
    static let reserve = 256 << 20

    /// Throws `.noMemory` if `bytes` (>= `checkedFrom`) do not fit in available memory
    /// (MemAvailable + SwapFree) less `reserve`. No check where /proc/meminfo cannot be read.
    static func check(bytes: Int, what: @autoclosure () -> String) throws {
        guard bytes >= checkedFrom, let available = availableBytes() else { return }
        try check(bytes: bytes, available: available, what: what())
    }

    static func check(bytes: Int, available: Int, what: String) throws {
        guard bytes > available - reserve else { return }
        throw SentimentError(
            .noMemory,
            "\(what) needs \(megabytes(bytes)) MB but only \(megabytes(Swift.max(0, available))) MB of memory is available")
    }

    /// MemAvailable + SwapFree from /proc/meminfo, in bytes.
    static func availableBytes() -> Int? {
        guard let f = fopen("/proc/meminfo", "r") else { return nil }
        defer { fclose(f) }
        var total = 0, found = 0
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for key in ["MemAvailable:", "SwapFree:"] where text.hasPrefix(key) {
                let digits = text.dropFirst(key.count).filter(\.isNumber)
                if let kb = Int(digits) { total += kb * 1024; found += 1 }
            }
        }
        return found > 0 ? total : nil
    }

    static func megabytes(_ bytes: Int) -> Int { bytes >> 20 }

    /// `count` zero-filled elements of `stride` bytes, 64-byte aligned (release with `free`), for
    /// `what` (named in errors). Throws `.noMemory` on overflow, on a guard refusal, or when
    /// the allocation fails.
    static func allocateZeroed(count: Int, stride: Int, what: @autoclosure () -> String) throws -> UnsafeMutableRawPointer {
        let (bytes, o) = Swift.max(count, 1).multipliedReportingOverflow(by: stride)
        guard !o else { throw SentimentError(.noMemory, "\(what()) overflows") }
        try check(bytes: bytes, what: what())
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            throw SentimentError(.noMemory, "cannot allocate \(bytes) bytes for \(what())")
        }
        memset(raw, 0, bytes)
        return raw
    }
}
