import CDnnl
import CSystem
#if canImport(Glibc)
import Glibc
#endif

/// Fork-join over the libgomp thread pool, the same pool oneDNN's GEMM uses, so our
/// loops and oneDNN never oversubscribe the cores. (libdispatch's concurrentPerform
/// often fails to wake its worker in time on Linux; see docs/TOOLCHAIN.md.)
public enum Parallel {
    /// Threads the calling thread's parallel regions and oneDNN calls will use.
    public static var threads: Int { Int(omp_get_max_threads()) }

    /// Sets the thread count for parallel regions started from the calling thread.
    /// `0` keeps the OpenMP default (OMP_NUM_THREADS or the number of cores).
    public static func setThreads(_ n: Int) {
        if n > 0 { omp_set_num_threads(Int32(clamping: n)) }
    }

    /// The CPUs this process may run on: its affinity mask, capped by the cgroup CPU quota
    /// (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, rounded up); at least 1.
    /// More threads than this only wait, and libgomp exits the process when it cannot
    /// create one, so requests are clamped to it.
    public static let availableCPUs: Int = {
        var n = Int(csystem_affinity_cpus())
        if n <= 0 { n = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        if let quota = cgroupCPUQuota() { n = Swift.min(n, quota) }
        return Swift.max(1, n)
    }()

    /// `requested` threads (0: OMP_NUM_THREADS, else every available CPU), at most `availableCPUs`.
    public static func clampedThreads(_ requested: Int) -> Int {
        var n = requested
        if n <= 0, let env = getenv("OMP_NUM_THREADS") {
            n = Int(String(cString: env).split(separator: ",").first ?? "") ?? 0
        }
        return n > 0 ? Swift.min(n, availableCPUs) : availableCPUs
    }

    /// Whole CPUs of the tightest cgroup CPU quota over this process's cgroup and its
    /// ancestors, or nil when there is none (or no cgroup file system). `root` prefixes the
    /// paths read (for tests).
    static func cgroupCPUQuota(root: String = "") -> Int? {
        func cpus(quota: Substring, period: Substring) -> Int? {
            guard let q = Double(quota), let p = Double(period), q > 0, p > 0 else { return nil }   // "max" or -1: none
            return Swift.max(1, Int((q / p).rounded(.up)))
        }
        var best: Int? = nil
        Cgroup.forEachFolder(controller: "cpu", root: root) { base, v2 in
            var n: Int? = nil
            if v2, let f = Cgroup.firstLine(base + "/cpu.max")?.split(separator: " "), f.count == 2 {
                n = cpus(quota: f[0], period: f[1])
            } else if !v2, let q = Cgroup.firstLine(base + "/cpu.cfs_quota_us"), let p = Cgroup.firstLine(base + "/cpu.cfs_period_us") {
                n = cpus(quota: q, period: p)
            }
            if let n { best = Swift.min(best ?? n, n) }
        }
        return best
    }

    private final class Job {
        let tasks: Int
        let body: (Int) -> Void
        init(tasks: Int, body: @escaping (Int) -> Void) {
            self.tasks = tasks
            self.body = body
        }
    }

    /// Runs `body(i)` for every `i` in `0..<tasks`, spread over the threads (round robin).
    /// `body` must be safe to call concurrently for different `i`.
    public static func forEach(_ tasks: Int, _ body: (Int) -> Void) {
        let team = Swift.min(tasks, threads)
        if team <= 1 {
            for i in 0..<tasks { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let job = Job(tasks: tasks, body: escapable)
            withExtendedLifetime(job) {
                let token = Unmanaged.passUnretained(job).toOpaque()
                csystem_tsan_release(token)   // the fork and join, for ThreadSanitizer
                Signals.held {   // workers created here inherit the held mask
                    GOMP_parallel({ raw in
                        guard let raw else { return }
                        csystem_tsan_acquire(raw)
                        defer { csystem_tsan_release(raw) }
                        let job = Unmanaged<Job>.fromOpaque(raw).takeUnretainedValue()
                        var i = Int(omp_get_thread_num())
                        let stride = Int(omp_get_num_threads())
                        while i < job.tasks {
                            job.body(i)
                            i += stride
                        }
                    }, token, UInt32(team), 0)
                }
                csystem_tsan_acquire(token)
            }
        }
    }

    /// Splits `0..<count` into contiguous ranges of at least `grain` items, one or a few
    /// per thread, and runs `body` on each range.
    public static func forRanges(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = Swift.max(1, Swift.min(threads, count / Swift.max(grain, 1)))
        if parts == 1 {
            body(0..<count)
            return
        }
        let per = (count + parts - 1) / parts
        forEach(parts) { p in
            let lo = p * per
            let hi = Swift.min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}
