import SentimentCore
import Testing
@testable import Sentiment

#if canImport(Glibc)
import Glibc
#endif

/// The default model folder: $SENTIMENT_MODEL_DIR, else the fetch script's cache folder.
func defaultModelDirectory() -> String? {
    var candidates: [String] = []
    if let d = getenv("SENTIMENT_MODEL_DIR") { candidates.append(String(cString: d)) }
    let cache = getenv("SENTIMENT_CACHE_DIR").map { String(cString: $0) }
        ?? (getenv("HOME").map { String(cString: $0) + "/.cache/sentiment" } ?? "/nonexistent")
    candidates.append(cache + "/models/all-MiniLM-L6-v2")
    return candidates.first { FileIO.exists($0 + "/model.safetensors") }
}

/// The model folder, or a test failure under CI (where the model must be present).
func requireModelDirectory() -> String? {
    if let d = defaultModelDirectory() { return d }
    if getenv("CI") != nil {
        Issue.record("default model not found: run scripts/fetch_model.sh or set SENTIMENT_MODEL_DIR")
    } else {
        print("skipping: default model not found (scripts/fetch_model.sh)")
    }
    return nil
}

/// Calls a C-ABI function that writes out_json, returning (status, parsed document).
func call(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32) throws -> (Int32, JSON) {
    var out: UnsafeMutablePointer<CChar>? = nil
    let status = body(&out)
    guard let out else { return (status, .null) }
    defer { sentiment_string_free(out) }
    return (status, try JSON.parse(String(cString: out)))
}

func withCStrings<T>(_ a: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try a.withCString(body)
}

/// A loaded model handle for the duration of `body`.
func withModel<T>(_ config: String, _ body: (OpaquePointer) throws -> T) throws -> T? {
    var handle: OpaquePointer? = nil
    let (status, doc) = try call { out in config.withCString { sentiment_model_load($0, &handle, out) } }
    #expect(status == 0, "load failed: \(doc.serialized())")
    guard status == 0, let handle else { return nil }
    defer { sentiment_model_free(handle) }
    return try body(handle)
}

func jsonString(_ s: String) -> String { JSON.string(s).serialized() }
