// Errors carry the C ABI status they map to, a message for people, and the
// request field or file they are about (the error document's "field").

/// Status codes of the C ABI (`include/sentiment.h`). Values are stable: append, never renumber.
public enum Status: Int32, Sendable, CaseIterable {
    case ok = 0
    case error = 1
    case invalidArgument = 2
    case io = 3
    case format = 4
    case cancelled = 5
    case busy = 6
    case noMemory = 7
    case misuse = 8
    case `internal` = 9

    /// snake_case name used as `error.code` in JSON.
    public var code: String {
        switch self {
        case .ok: return "ok"
        case .error: return "error"
        case .invalidArgument: return "invalid_argument"
        case .io: return "io"
        case .format: return "format"
        case .cancelled: return "cancelled"
        case .busy: return "busy"
        case .noMemory: return "nomem"
        case .misuse: return "misuse"
        case .internal: return "internal"
        }
    }

    public var summary: String {
        switch self {
        case .ok: return "ok"
        case .error: return "error"
        case .invalidArgument: return "invalid argument"
        case .io: return "I/O error"
        case .format: return "malformed file or data"
        case .cancelled: return "cancelled"
        case .busy: return "busy"
        case .noMemory: return "out of memory"
        case .misuse: return "API misuse"
        case .internal: return "internal error"
        }
    }
}

public struct SentimentError: Error, CustomStringConvertible, Sendable {
    public var status: Status
    public var message: String
    /// The request key or the file (or tensor) the error is about, when there is one.
    public var field: String?

    public init(_ status: Status, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }

    public static func invalidArgument(_ message: String, field: String? = nil) -> SentimentError {
        SentimentError(.invalidArgument, message, field: field)
    }
    public static func format(_ message: String, field: String? = nil) -> SentimentError {
        SentimentError(.format, message, field: field)
    }
    public static func io(_ message: String, field: String? = nil) -> SentimentError {
        SentimentError(.io, message, field: field)
    }

    public var description: String { message }
}
