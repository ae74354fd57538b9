// MemoryGuard: large allocations that available memory cannot back fail with .noMemory
// (and a message with both sizes) instead of being zero-filled into an OOM kill.
import Testing
@testable import SentimentCore

struct MemoryGuardTests {
    @Test func refusesWhatDoesNotFit() throws {
        let gb = 1 << 30
        #expect(throws: Never.self) { try MemoryGuard.check(bytes: gb, available: 4 * gb, what: "x") }
        // The reserve stays free: 4 GB available leaves room for 4 GB - 256 MB, not 4 GB.
        #expect(throws: Never.self) { try MemoryGuard.check(bytes: 4 * gb - MemoryGuard.reserve, available: 4 * gb, what: "x") }
        let error = #expect(throws: SentimentError.self) {
            try MemoryGuard.check(bytes: 4 * gb, available: 4 * gb, what: "a tensor of shape [1]")
        }
        #expect(error?.status == .noMemory)
        #expect(error?.message == "a tensor of shape [1] needs 4096 MB but only 4096 MB of memory is available")
    }

    @Test func refusesACallWhenTheAddressSpaceLimitLeavesLessThanTheReserve() throws {
        let mb = 1 << 20
        #expect(throws: Never.self) { try MemoryGuard.checkAddressSpace(limit: 1000 * mb + MemoryGuard.reserve, size: 1000 * mb) }
        let error = #expect(throws: SentimentError.self) {
            try MemoryGuard.checkAddressSpace(limit: 1064 * mb, size: 1000 * mb)
        }
        #expect(error?.status == .noMemory)
        #expect(error?.message == "the address-space limit (RLIMIT_AS) leaves 64 MB free; a call needs at least 256 MB")
        #expect(throws: Never.self) { try MemoryGuard.checkAddressSpace(limit: nil) }   // no limit: no check
    }

    @Test func readsAvailableMemory() throws {
        let available = try #require(MemoryGuard.availableBytes())
        #expect(available > 64 << 20)
    }

    @Test func tensorLargerThanMemoryIsAnErrorNotATrap() throws {
        // 4 TiB: posix_memalign alone might also refuse it, but with another message; the guard's
        // message proves the check ran before anything was allocated.
        let error = #expect(throws: SentimentError.self) { _ = try Tensor(shape: [1 << 20, 1 << 20]) }
        #expect(error?.status == .noMemory)
        #expect(error?.message.contains("of memory is available") == true, "\(error?.message ?? "")")
        // Elements that fit in Int but bytes that do not: an error, not an overflow trap.
        let overflow = #expect(throws: SentimentError.self) { _ = try Tensor(shape: [Int.max / 2]) }
        #expect(overflow?.status == .noMemory)
    }
}

// MemoryGuard.availableBytes: the least of MemAvailable, cgroup limits less usage, and RLIMIT_AS
// less VmSize, read from fake /proc and /sys/fs/cgroup trees.
@Suite struct MemoryLimitTests {
    let mb = 1 << 20
    let meminfo = "MemTotal: 8000000 kB\nMemAvailable: 4194304 kB\nSwapFree: 0 kB\n"   // 4 GB

    @Test func cgroupV2TakesTheTightestLimitUpToTheRoot() throws {
        let t = try CPUQuotaTests().tree([
            "/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/jobs/one\n",
            "/sys/fs/cgroup/jobs/one/memory.max": "max\n", "/sys/fs/cgroup/jobs/one/memory.current": "1000\n",
            "/sys/fs/cgroup/jobs/memory.max": "\(1024 * mb)\n", "/sys/fs/cgroup/jobs/memory.current": "\(300 * mb)\n",
            "/sys/fs/cgroup/jobs/memory.stat": "anon 1\ninactive_file \(100 * mb)\n"])
        // 1024 MB limit, 300 MB used of which 100 MB is reclaimable cache: 824 MB.
        #expect(MemoryGuard.availableBytes(root: t.path, addressSpaceLimit: nil) == 824 * mb)
        #expect(MemoryGuard.cgroupHeadroom(root: t.path) == 824 * mb)
        // A limit below its usage leaves nothing, and the check refuses with both sizes.
        try FileSystem.writeAtomically(t.path + "/sys/fs/cgroup/jobs/one/memory.max") { try $0.write(Array("500\n".utf8)) }
        #expect(MemoryGuard.availableBytes(root: t.path, addressSpaceLimit: nil) == 0)
    }

    @Test func cgroupV1AndNoLimit() throws {
        let v1 = try CPUQuotaTests().tree([
            "/proc/meminfo": meminfo, "/proc/self/cgroup": "4:memory:/x\n2:cpu,cpuacct:/x\n",
            "/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "\(512 * mb)\n",
            "/sys/fs/cgroup/memory/x/memory.usage_in_bytes": "\(12 * mb)\n"])
        #expect(MemoryGuard.availableBytes(root: v1.path, addressSpaceLimit: nil) == 500 * mb)
        let none = try CPUQuotaTests().tree([
            "/proc/meminfo": meminfo, "/proc/self/cgroup": "4:memory:/\n",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes": "\(12 * mb)\n"])
        #expect(MemoryGuard.cgroupHeadroom(root: none.path) == nil)
        #expect(MemoryGuard.availableBytes(root: none.path, addressSpaceLimit: nil) == 4096 * mb)
    }

    @Test func addressSpaceLimitLessVmSize() throws {
        let t = try CPUQuotaTests().tree(["/proc/meminfo": meminfo, "/proc/self/status": "Name: x\nVmSize:  1048576 kB\n"])
        #expect(MemoryGuard.availableBytes(root: t.path, addressSpaceLimit: 3072 * mb) == 2048 * mb)
        #expect(MemoryGuard.availableBytes(root: t.path, addressSpaceLimit: 512 * mb) == 0)
        #expect(MemoryGuard.availableBytes(root: t.path, addressSpaceLimit: nil) == 4096 * mb)
        let nothing = try TempDir()
        #expect(MemoryGuard.availableBytes(root: nothing.path, addressSpaceLimit: nil) == nil)
    }
}
