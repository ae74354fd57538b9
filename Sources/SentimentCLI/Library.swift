// Calls the C ABI's functions (Sources/Sentiment, linked in) with JSON requests and reads their
// documents, so every request is checked by the library's one schema.
import Sentiment
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// A failed call: the library's error document, or the CLI's own (flags, files it reads).
struct Failure: Error {
    var status: Int32
    var code: String
    var message: String
    var field: String?
    /// A cancelled training run's partial result.
    var result: JSON?

    init(status: Status, _ message: String, field: String? = nil) {
        self.status = status.rawValue
        self.code = status.code
        self.message = message
        self.field = field
    }

    init(document: JSON, status: Int32) {
        let e = document["error"]
        self.status = status
        code = e?["code"]?.stringValue ?? "error"
        message = e?["message"]?.stringValue ?? "failed with status \(status)"
        field = e?["field"]?.stringValue
        result = document["result"]
    }
}

enum Library {
    /// Reads and frees an out_json document; a status other than OK throws its error.
    static func take(_ status: Int32, _ out: UnsafeMutablePointer<CChar>?) throws -> JSON {
        guard let out else { throw Failure(status: .noMemory, "the library returned no document (status \(status))") }
        defer { sentiment_string_free(out) }
        let doc = try JSON.parse(String(cString: out))
        guard status == Status.ok.rawValue else { throw Failure(document: doc, status: status) }
        return doc
    }

    /// Runs `call` with the request's serialized text and an out_json slot.
    static func call(_ request: JSON, _ call: (UnsafePointer<CChar>, OutJSON) -> Int32) throws -> JSON {
        var out: UnsafeMutablePointer<CChar>?
        let status = request.serialized().withCString { call($0, &out) }
        return try take(status, out)
    }

    static var version: String { String(cString: sentiment_version()) }
}

/// A loaded model handle, freed with the value.
final class Model {
    let handle: OpaquePointer
    let info: JSON

    init(_ request: JSON) throws {
        var handle: OpaquePointer?
        info = try Library.call(request) { sentiment_model_load($0, &handle, $1) }
        guard let handle else { throw Failure(status: .internal, "model load returned no handle") }
        self.handle = handle
    }

    deinit { sentiment_model_free(handle) }

    var labels: [String] { info["labels"]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    func classify(_ request: JSON) throws -> [JSON] {
        try Library.call(request) { sentiment_classify(handle, $0, $1) }["results"]?.arrayValue ?? []
    }

    func tokenize(_ request: JSON) throws -> JSON {
        try Library.call(request) { sentiment_tokenize(handle, $0, $1) }
    }

    func save(_ request: JSON) throws -> JSON {
        try Library.call(request) { sentiment_model_save(handle, $0, $1) }
    }

    func evaluate(_ request: JSON, progress: ProgressCallback?, context: UnsafeMutableRawPointer?) throws -> JSON {
        try Library.call(request) { sentiment_evaluate(handle, $0, progress, context, $1) }
    }
}
