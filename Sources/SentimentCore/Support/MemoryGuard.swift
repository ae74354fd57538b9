// Refuses large allocations the machine cannot back, so an oversized request fails with
// `.noMemory` instead of getting the host process OOM-killed. Allocations are zero-filled right
// away (Tensor, AlignedBuffer), so what earlier ones took already shows in the usage read.
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryGuard {
    /// Allocations below this are not checked (reading /proc/meminfo costs more than they risk).
    static let checkedFrom = 64 << 20
    /// What stays free for the host and everything else on the machine.
    static let reserve = 256 << 20

    /// Throws `.noMemory` if `bytes` (>= `checkedFrom`) do not fit in available memory
    /// (`availableBytes`) less `reserve`. No check where nothing can be read.
    public static func check(bytes: Int, what: @autoclosure () -> String) throws {
        guard bytes >= checkedFrom, let available = availableBytes() else { return }
        try check(bytes: bytes, available: available, what: what())
    }

    static func check(bytes: Int, available: Int, what: String) throws {
        guard bytes > available - reserve else { return }
        throw SentimentError(
            .noMemory,
            "\(what) needs \(megabytes(bytes)) MB but only \(megabytes(Swift.max(0, available))) MB of memory is available")
    }

    /// The least of: MemAvailable + SwapFree (/proc/meminfo); each cgroup limit over this
    /// process's cgroup and its ancestors, less its usage (v2 `memory.max` - `memory.current`,
    /// v1 `memory.limit_in_bytes` - `memory.usage_in_bytes`; reclaimable `inactive_file` counts
    /// as free); and `RLIMIT_AS` less VmSize. nil when none can be read. `root` prefixes the
    /// paths read and `addressSpaceLimit` replaces getrlimit (for tests).
    static func availableBytes(root: String = "", addressSpaceLimit: Int? = addressSpaceLimit()) -> Int? {
        var best: Int? = nil
        func take(_ n: Int?) { if let n { best = Swift.min(best ?? n, n) } }
        take(meminfoAvailable(Cgroup.read(root + "/proc/meminfo") ?? ""))
        take(cgroupHeadroom(root: root))
        if let limit = addressSpaceLimit, let size = kilobytes("VmSize:", in: Cgroup.read(root + "/proc/self/status") ?? "") {
            take(Swift.max(0, limit - size))
        }
        return best
    }

    /// Throws `.noMemory` when an address-space limit (RLIMIT_AS) leaves less than `reserve`
    /// free, before a call starts: the Swift runtime traps when a small allocation fails, so
    /// a call is refused up front instead. One getrlimit where there is no limit.
    public static func checkAddressSpace() throws {
        try checkAddressSpace(limit: addressSpaceLimit())
    }

    static func checkAddressSpace(limit: Int?) throws {
        guard let limit, let size = kilobytes("VmSize:", in: Cgroup.read("/proc/self/status") ?? "") else { return }
        try checkAddressSpace(limit: limit, size: size)
    }

    static func checkAddressSpace(limit: Int, size: Int) throws {
        guard limit - size < reserve else { return }
        throw SentimentError(
            .noMemory,
            "the address-space limit (RLIMIT_AS) leaves \(megabytes(Swift.max(0, limit - size))) MB free; a call needs at least "
                + "\(megabytes(reserve)) MB")
    }

    /// MemAvailable + SwapFree of a /proc/meminfo text, in bytes.
    static func meminfoAvailable(_ text: String) -> Int? {
        let parts = ["MemAvailable:", "SwapFree:"].compactMap { kilobytes($0, in: text) }
        return parts.isEmpty ? nil : parts.reduce(0, +)
    }

    /// The value of a "Key:   123 kB" line, in bytes.
    static func kilobytes(_ key: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            if let kb = Int(line.dropFirst(key.count).filter(\.isNumber)) { return kb * 1024 }
        }
        return nil
    }

    /// The tightest cgroup memory limit less usage, in bytes, or nil when no cgroup sets one.
    static func cgroupHeadroom(root: String = "") -> Int? {
        func number(_ path: String) -> Int? { Cgroup.firstLine(path).flatMap { Int($0) } }   // "max": nil
        func inactiveFile(_ base: String, key: String) -> Int {
            for line in (Cgroup.read(base + "/memory.stat") ?? "").split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 2, f[0] == key, let n = Int(f[1]) { return n }
            }
            return 0
        }
        var best: Int? = nil
        Cgroup.forEachFolder(controller: "memory", root: root) { base, v2 in
            let (limitFile, usageFile, key) = v2
                ? ("/memory.max", "/memory.current", "inactive_file")
                : ("/memory.limit_in_bytes", "/memory.usage_in_bytes", "total_inactive_file")
            // v1 says "no limit" with a number near Int64.max.
            guard let limit = number(base + limitFile), limit < 1 << 60, let usage = number(base + usageFile) else { return }
            let free = Swift.max(0, limit - Swift.max(0, usage - inactiveFile(base, key: key)))
            best = Swift.min(best ?? free, free)
        }
        return best
    }

    /// The soft RLIMIT_AS in bytes, or nil when unlimited (RLIM_INFINITY is all ones).
    static func addressSpaceLimit() -> Int? {
        var r = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: r.rlim_cur)
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
