import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// oneDNN's f32 GEMM kernels point the stack pointer at a heap workspace while they run, so a
/// host's signal handler entered there would write its frame over the heap. Every oneDNN call
/// and every parallel region runs inside `held`: the calling thread's asynchronous signals wait
/// until it returns (faults stay deliverable), and libgomp's workers, created inside, keep that
/// mask for good. Nested `held` calls cost nothing: an inference forward holds them once for all
/// its calls.
enum Signals {
    @inline(__always)
    static func held<T>(_ body: () throws -> T) rethrows -> T {
        var old = sigset_t()
        csystem_hold_signals(&old)
        defer { csystem_release_signals(&old) }
        return try body()
    }
}
