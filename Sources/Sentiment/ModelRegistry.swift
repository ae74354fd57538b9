import CSystem
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Live model handles. A handle is a number from a 64-bit counter, never reused and never
/// dereferenced, so a stale, freed or foreign pointer is reported as SENTIMENT_MISUSE
/// (never as another model), and a model freed while another thread is still classifying
/// with it stays alive until that call returns.
final class ModelRegistry: @unchecked Sendable {
    static let shared = ModelRegistry()

    private final class Entry {
        let model: SentimentModel
        init(_ model: SentimentModel) { self.model = model }
    }

    /// Fork-safe: a child never inherits it held (csystem_fork_safe_mutex_init).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var live: [UInt: Entry] = [:]
    private var lastHandle: UInt64 = 0

    private init() { csystem_fork_safe_mutex_init(mutex) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    func register(_ model: SentimentModel) throws -> OpaquePointer {
        let entry = Entry(model)
        let key = locked { () -> UInt in
            lastHandle += 1   // 2^64 loads never happen: no wrap, no reuse
            let key = UInt(lastHandle)
            live[key] = entry
            return key
        }
        guard let handle = OpaquePointer(bitPattern: key) else {   // keys start at 1
            throw SentimentError(.internal, "handle \(key) is NULL")
        }
        return handle
    }

    /// The model behind `handle`, retained for the caller's use.
    func model(_ handle: OpaquePointer?) throws -> SentimentModel {
        guard let handle else { throw SentimentError(.misuse, "model is NULL", field: "model") }
        let key = UInt(bitPattern: handle)
        guard let entry = locked({ live[key] }) else {
            throw SentimentError(.misuse, "model is not a live handle (already freed, or not from sentiment_model_load)",
                                 field: "model")
        }
        return entry.model
    }

    /// Forgets `handle`; false when it was not live.
    @discardableResult
    func remove(_ handle: OpaquePointer?) -> Bool {
        guard let handle else { return false }
        let key = UInt(bitPattern: handle)
        return locked { live.removeValue(forKey: key) != nil }
    }
}
