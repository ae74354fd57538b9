// The train request from flags: --config FILE.json, then every --KEY VALUE / --set KEY=VALUE in
// order, then the named flags. Keys are sentiment_train's own (dashes for underscores), passed
// through unchecked: the library's schema is the only one, and it names any bad or unknown key.
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// An ordered JSON object under construction: a later value for a key replaces the earlier one.
struct RequestObject {
    private(set) var members: [JSON.Member] = []

    mutating func set(_ key: String, _ value: JSON) {
        if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = value } else {
            members.append(JSON.Member(key, value))
        }
    }

    var json: JSON { .object(members) }
}

enum TrainRequest {
    /// A flag's value: JSON when it parses as JSON (numbers, true/false, arrays, objects), else the
    /// text itself (paths, names).
    static func value(_ text: String) -> JSON {
        (try? JSON.parse(text)) ?? JSON(text)
    }

    /// `--key value`, `--key=value`, `--flag` (true), `--no-flag` (false) and `--set key=value`,
    /// as (key, value) pairs in order. A word that is not a flag's value is an error.
    static func pairs(_ words: [String]) throws -> [(String, JSON)] {
        var out: [(String, JSON)] = []
        var i = 0
        func isFlag(_ w: String) -> Bool { w.hasPrefix("--") && w.count > 2 }
        while i < words.count {
            let word = words[i]
            i += 1
            guard isFlag(word) else {
                throw Failure(status: .invalidArgument,
                              "unexpected argument '\(word)' (config keys are flags: --KEY VALUE, or --set KEY=VALUE)")
            }
            var name = String(word.dropFirst(2))
            var given: String?
            if let eq = name.firstIndex(of: "=") {
                given = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            } else if i < words.count, !isFlag(words[i]) {
                given = words[i]
                i += 1
            }
            if name == "set" {
                guard let kv = given, let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                    throw Failure(status: .invalidArgument, "--set takes KEY=VALUE, got '\(given ?? "")'", field: "set")
                }
                out.append((String(kv[..<eq]).replacingDashes, value(String(kv[kv.index(after: eq)...]))))
            } else if let given {
                out.append((name.replacingDashes, value(given)))
            } else if name.hasPrefix("no-") {
                out.append((String(name.dropFirst(3)).replacingDashes, .bool(false)))
            } else {
                out.append((name.replacingDashes, .bool(true)))
            }
        }
        return out
    }

    /// The object in a --config file.
    static func config(_ path: String) throws -> [JSON.Member] {
        guard let f = fopen(path, "r") else {
            throw Failure(status: .io, "cannot read \(path): \(String(cString: strerror(errno)))", field: "config")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= 16 << 20 else {
                throw Failure(status: .invalidArgument, "\(path) is larger than 16 MB", field: "config")
            }
        }
        let doc: JSON
        do { doc = try JSON.parse(bytes) } catch let e as SentimentError {
            throw Failure(status: .format, "\(path): \(e.message)", field: "config")
        }
        guard let members = doc.objectMembers else {
            throw Failure(status: .format, "\(path) holds a JSON \(doc.typeName), not an object of train config keys",
                          field: "config")
        }
        return members
    }
}
