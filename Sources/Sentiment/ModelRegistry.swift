import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Live model handles. A handle is the address of a registry entry, never dereferenced
/// before it is found here, so a stale, freed or foreign pointer is reported as
/// SENTIMENT_MISUSE instead of crashing, and a model freed while another thread is
/// still classifying with it stays alive until that call returns.
final class ModelRegistry: @unchecked Sendable {
    static let shared = ModelRegistry()

    private final class Entry {
        let model: SentimentModel
        init(_ model: SentimentModel) { self.model = model }
    }

    private var mutex = pthread_mutex_t()
    private var live: [UnsafeMutableRawPointer: Entry] = [:]

    private init() { pthread_mutex_init(&mutex, nil) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    func register(_ model: SentimentModel) -> OpaquePointer {
        let entry = Entry(model)
        let key = Unmanaged.passUnretained(entry).toOpaque()
        locked { live[key] = entry }
        return OpaquePointer(key)
    }

    /// The model behind `handle`, retained for the caller's use.
    func model(_ handle: OpaquePointer?) throws -> SentimentModel {
        guard let handle else { throw SentimentError(.misuse, "model is NULL", field: "model") }
        let key = UnsafeMutableRawPointer(handle)
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
        let key = UnsafeMutableRawPointer(handle)
        return locked { live.removeValue(forKey: key) != nil }
    }
}
