import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Parses a borrowed C string as one JSON value; NULL is MISUSE naming `argument`
/// (the C parameter name).
func parseRequest(_ json: UnsafePointer<CChar>?, argument: String) throws -> JSON {
    guard let json else { throw SentimentError(.misuse, "\(argument) is NULL", field: argument) }
    return try JSON.parse(UnsafeBufferPointer(
        start: UnsafeRawPointer(json).assumingMemoryBound(to: UInt8.self), count: strlen(json)))
}

/// Parses a borrowed C JSON string into checked request fields.
func requestFields(_ json: UnsafePointer<CChar>?, argument: String, allowed: [String]) throws -> JSONFields {
    try JSONFields(try parseRequest(json, argument: argument), what: argument, allowed: allowed)
}
