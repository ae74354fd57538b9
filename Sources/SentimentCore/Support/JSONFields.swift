/// The members of a JSON request object, checked against the keys a call accepts.
/// Every accessor names the key in its error (the error document's "field").
/// `null` counts as absent.
public struct JSONFields: Sendable {
    private let members: [String: JSON]

    /// `what` names the whole object in messages (e.g. the C parameter "config_json").
    public init(_ value: JSON, what: String, allowed: [String]) throws {
        guard let list = value.objectMembers else {
            throw SentimentError.invalidArgument("\(what) must be a JSON object, got \(value.typeName)", field: what)
        }
        var members: [String: JSON] = [:]
        for m in list {
            guard allowed.contains(m.key) else {
                throw SentimentError.invalidArgument(
                    "unknown key \"\(m.key)\" (expected one of: \(allowed.joined(separator: ", ")))", field: m.key)
            }
            if m.value != .null { members[m.key] = m.value }
        }
        self.members = members
    }

    public func value(_ key: String) -> JSON? { members[key] }

    public func has(_ key: String) -> Bool { members[key] != nil }

    public func string(_ key: String) throws -> String? {
        guard let v = members[key] else { return nil }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    /// A string that must be present and non-empty.
    public func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw SentimentError.invalidArgument("\(key) is required", field: key) }
        guard !s.isEmpty else { throw SentimentError.invalidArgument("\(key) must not be empty", field: key) }
        return s
    }

    public func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = members[key] else { return fallback }
        guard v.doubleValue != nil else { throw typeError(key, "an integer", v) }
        guard let i = v.int64Value, let n = Int(exactly: i), range.contains(n) else {
            throw SentimentError.invalidArgument(
                "\(key) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v.serialized())", field: key)
        }
        return n
    }

    /// A number accepted by `valid`; `rule` says what valid means, for the message.
    public func double(_ key: String, default fallback: Double, rule: String, _ valid: (Double) -> Bool) throws -> Double {
        guard let v = members[key] else { return fallback }
        guard let d = v.doubleValue, valid(d) else {
            throw SentimentError.invalidArgument("\(key) must be \(rule), got \(v.serialized())", field: key)
        }
        return d
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = members[key] else { return fallback }
        guard let b = v.boolValue else { throw typeError(key, "true or false", v) }
        return b
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T
    where T.RawValue == String {
        guard let s = try string(key) else { return fallback }
        guard let v = T(rawValue: s) else {
            let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw SentimentError.invalidArgument("\(key) \"\(s)\" is not one of \(names)", field: key)
        }
        return v
    }

    public func strings(_ key: String) throws -> [String]? {
        guard let v = members[key] else { return nil }
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

    /// An array of strings that must be present.
    public func requiredStrings(_ key: String) throws -> [String] {
        guard let s = try strings(key) else { throw SentimentError.invalidArgument("\(key) is required", field: key) }
        return s
    }

    public func ints(_ key: String) throws -> [Int]? {
        guard let v = members[key] else { return nil }
        guard let items = v.arrayValue else { throw typeError(key, "an array of integers", v) }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let n = item.int64Value, let k = Int(exactly: n) else {
                throw SentimentError.invalidArgument("\(key)[\(i)] must be an integer, got \(item.serialized())", field: key)
            }
            out.append(k)
        }
        return out
    }

    private func typeError(_ key: String, _ expected: String, _ got: JSON) -> SentimentError {
        SentimentError.invalidArgument("\(key) must be \(expected), got \(got.typeName)", field: key)
    }
}
