import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// A parsed JSON request object whose keys are checked against what the call accepts.
/// Every accessor names the key in its error, which becomes the error document's "field".
struct Request {
    private let members: [String: JSON]

    /// Parses `json` (a borrowed C string) and rejects keys outside `allowed`.
    /// `argument` is the C parameter name, for the message when the pointer is NULL.
    init(_ json: UnsafePointer<CChar>?, argument: String, allowed: [String]) throws {
        guard let json else { throw SentimentError(.misuse, "\(argument) is NULL", field: argument) }
        let value = try JSON.parse(UnsafeBufferPointer(
            start: UnsafeRawPointer(json).assumingMemoryBound(to: UInt8.self), count: strlen(json)))
        guard let list = value.objectMembers else {
            throw SentimentError.invalidArgument("\(argument) must be a JSON object, got \(value.typeName)", field: argument)
        }
        var members: [String: JSON] = [:]
        for m in list {
            guard allowed.contains(m.key) else {
                throw SentimentError.invalidArgument(
                    "unknown key \"\(m.key)\" (expected one of: \(allowed.joined(separator: ", ")))", field: m.key)
            }
            members[m.key] = m.value
        }
        self.members = members
    }

    /// The value for `key`; `null` counts as absent.
    func value(_ key: String) -> JSON? {
        guard let v = members[key], v != .null else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw SentimentError.invalidArgument("\(key) is required", field: key) }
        return s
    }

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = value(key) else { return fallback }
        guard let d = v.doubleValue else { throw typeError(key, "an integer", v) }
        guard let i = v.int64Value, let n = Int(exactly: i) else {
            throw SentimentError.invalidArgument("\(key) must be an integer, got \(JSON.format(d))", field: key)
        }
        guard range.contains(n) else {
            throw SentimentError.invalidArgument(
                "\(key) must be in \(range.lowerBound)...\(range.upperBound), got \(n)", field: key)
        }
        return n
    }

    func choice<T: RawRepresentable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        guard let s = try string(key) else { return fallback }
        guard let v = T(rawValue: s) else {
            throw SentimentError.invalidArgument("\(key) \"\(s)\" is not one of the accepted values", field: key)
        }
        return v
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let items = v.arrayValue else { throw typeError(key, "an array of strings", v) }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else {
                throw SentimentError.invalidArgument("\(key)[\(i)] must be a string, got \(item.typeName)", field: key)
            }
            out.append(s)
        }
        return out
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let items = v.arrayValue else { throw typeError(key, "an array of integers", v) }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let n = item.int64Value, let k = Int(exactly: n) else {
                throw SentimentError.invalidArgument("\(key)[\(i)] must be an integer, got \(item.typeName)", field: key)
            }
            out.append(k)
        }
        return out
    }

    private func typeError(_ key: String, _ expected: String, _ got: JSON) -> SentimentError {
        SentimentError.invalidArgument("\(key) must be \(expected), got \(got.typeName)", field: key)
    }
}
