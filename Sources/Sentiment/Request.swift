import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Parses a borrowed C JSON string into checked request fields.
/// `argument` is the C parameter name, used when the pointer is NULL or not an object.
func requestFields(_ json: UnsafePointer<CChar>?, argument: String, allowed: [String]) throws -> JSONFields {
    guard let json else { throw SentimentError(.misuse, "\(argument) is NULL", field: argument) }
    let value = try JSON.parse(UnsafeBufferPointer(
        start: UnsafeRawPointer(json).assumingMemoryBound(to: UInt8.self), count: strlen(json)))
    return try JSONFields(value, what: argument, allowed: allowed)
}
