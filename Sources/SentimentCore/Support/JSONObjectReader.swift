/// Typed, checked access to the members of one JSON object: a C request argument or a file
/// such as config.json. `null` counts as absent. Every error names its key: a request's is
/// INVALID_ARGUMENT with the key as `field`; a file's is FORMAT with the file as `field` and
/// its path in front of the message.
public struct JSONObjectReader: Sendable {
    /// What the object is, for errors.
    public enum Source: Sendable {
        /// A request argument, by its C parameter name (e.g. "config_json").
        case request(String)
        /// A file, by its path.
        case file(String)
    }

    /// What to do with a key the caller does not read.
    public enum UnknownKeys: Sendable {
        /// Fail naming the key and listing these, the keys a request accepts.
        case reject(allowed: [String])
        /// Skip it (files carry keys for other programs).
        case ignore
    }

    public let source: Source
    /// The first member of each key (the parser rejects duplicates; a built JSON may have them).
    private let members: [String: JSON]

    public init(_ value: JSON, _ source: Source, unknownKeys: UnknownKeys) throws {
        guard let list = value.objectMembers else {
            throw JSONObjectReader.error("must be a JSON object, got \(JSONObjectReader.describe(value))",
                                         key: nil, source: source)
        }
        var members: [String: JSON] = [:]
        for m in list where members[m.key] == nil {
            if case .reject(let allowed) = unknownKeys, !allowed.contains(m.key) {
                let expected = allowed.joined(separator: ", ")
                throw JSONObjectReader.error("unknown key \"\(m.key)\" (expected one of: \(expected))", key: m.key, source: source)
            }
            members[m.key] = m.value
        }
        self.source = source
        self.members = members
    }

    /// The error for `message` about `key` (nil: the whole object, whose name then starts the message).
    public func error(_ message: String, key: String?) -> SentimentError {
        JSONObjectReader.error(message, key: key, source: source)
    }

    private static func error(_ message: String, key: String?, source: Source) -> SentimentError {
        switch source {
        case .request(let argument):
            return key.map { .invalidArgument(message, field: $0) }
                ?? .invalidArgument("\(argument) \(message)", field: argument)
        case .file(let path):
            return .format(key == nil ? "\(path) \(message)" : "\(path): \(message)", field: path)
        }
    }

    /// A value as messages show it: numbers, booleans, null and short strings as written, else its type.
    public static func describe(_ v: JSON) -> String {
        switch v {
        case .array: return "an array"
        case .object: return "an object"
        case .string(let s) where s.utf8.count > 40: return "a string"
        default: return v.serialized()
        }
    }

    public func value(_ key: String) -> JSON? {
        guard let v = members[key], v != .null else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { value(key) != nil }

    /// True when the key is present with the value null (which `value` treats as absent).
    public func isNull(_ key: String) -> Bool { members[key] == .null }

    private func missing(_ key: String) -> SentimentError { error("missing key \(key)", key: key) }

    /// `subject` (default: the key) is not what `expected` says.
    private func typeError(_ key: String, _ expected: String, _ got: JSON, subject: String? = nil) -> SentimentError {
        error("\(subject ?? key) must be \(expected), got \(JSONObjectReader.describe(got))", key: key)
    }

    // MARK: Scalars

    public func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw typeError(key, "a string", v) }
        return s
    }

    public func string(_ key: String, default fallback: String) throws -> String {
        try string(key) ?? fallback
    }

    /// A string that must be present and non-empty.
    public func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw missing(key) }
        guard !s.isEmpty else { throw error("\(key) must not be empty", key: key) }
        return s
    }

    /// A file or folder path: a non-empty string without U+0000, which would cut the C path short
    /// and open another file.
    public func path(_ key: String) throws -> String? {
        guard let s = try string(key) else { return nil }
        guard !s.isEmpty else { throw error("\(key) must not be empty", key: key) }
        guard !s.utf8.contains(0) else { throw error("\(key) contains U+0000 (NUL), which a path cannot hold", key: key) }
        return s
    }

    public func requiredPath(_ key: String) throws -> String {
        guard let s = try path(key) else { throw missing(key) }
        return s
    }

    /// An integral number (`3.0` too) in `range`, or nil when absent.
    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.int64Value, let n = Int(exactly: i), range.contains(n) else {
            let bounds = range.upperBound == Int.max
                ? ">= \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
            throw typeError(key, "an integer \(bounds)", v)
        }
        return n
    }

    public func int(_ key: String, in range: ClosedRange<Int>, default fallback: Int) throws -> Int {
        try int(key, in: range) ?? fallback
    }

    public func requiredInt(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let n = try int(key, in: range) else { throw missing(key) }
        return n
    }

    /// A number accepted by `valid`; `rule` says what valid means, for the message ("in (0, 1)").
    public func double(_ key: String, default fallback: Double, rule: String, _ valid: (Double) -> Bool) throws -> Double {
        guard let v = value(key) else { return fallback }
        guard let d = v.doubleValue, valid(d) else { throw typeError(key, "a number \(rule)", v) }
        return d
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = value(key) else { return fallback }
        guard let b = v.boolValue else { throw typeError(key, "true or false", v) }
        return b
    }

    /// One of an enumeration's raw values.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T
    where T.RawValue == String {
        guard let s = try string(key) else { return fallback }
        guard let v = T(rawValue: s) else {
            let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw error("\(key) \(JSONObjectReader.describe(.string(s))) is not one of \(names)", key: key)
        }
        return v
    }

    // MARK: Arrays

    /// An array whose items `item` reads (nil: the item is not `one`, e.g. "a string" of "strings").
    private func array<T>(_ key: String, of many: String, each one: String, _ item: (JSON) -> T?) throws -> [T]? {
        guard let v = value(key) else { return nil }
        guard let items = v.arrayValue else { throw typeError(key, "an array of \(many)", v) }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, x) in items.enumerated() {
            guard let t = item(x) else { throw typeError(key, one, x, subject: "\(key)[\(i)]") }
            out.append(t)
        }
        return out
    }

    public func strings(_ key: String) throws -> [String]? {
        try array(key, of: "strings", each: "a string") { $0.stringValue }
    }

    public func requiredStrings(_ key: String) throws -> [String] {
        guard let s = try strings(key) else { throw missing(key) }
        return s
    }

    public func ints(_ key: String) throws -> [Int]? {
        try array(key, of: "integers", each: "an integer") { $0.int64Value.flatMap { Int(exactly: $0) } }
    }
}
