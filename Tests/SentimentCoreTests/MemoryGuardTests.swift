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
