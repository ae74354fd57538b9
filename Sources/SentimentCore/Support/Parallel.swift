import CDnnl

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
                GOMP_parallel({ raw in
                    guard let raw else { return }
                    let job = Unmanaged<Job>.fromOpaque(raw).takeUnretainedValue()
                    var i = Int(omp_get_thread_num())
                    let stride = Int(omp_get_num_threads())
                    while i < job.tasks {
                        job.body(i)
                        i += stride
                    }
                }, Unmanaged.passUnretained(job).toOpaque(), UInt32(team), 0)
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
