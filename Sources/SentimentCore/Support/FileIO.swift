#if canImport(Glibc)
import Glibc
#endif

/// Small, checked file helpers on top of Glibc (no Foundation needed).
public enum FileIO {
    /// Reads a whole regular file. Errors are `.io` naming the path and the reason.
    public static func read(_ path: String, field: String? = nil, limit: Int = 1 << 34) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open \(path)", path: path, field: field) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("cannot stat \(path)", path: path, field: field) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SentimentError.io("\(path) is not a regular file", field: field ?? path)
        }
        let size = Int(st.st_size)
        guard size <= limit else { throw SentimentError.io("\(path) is too large (\(size) bytes)", field: field ?? path) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return Glibc.read(fd, base + done, size - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("cannot read \(path)", path: path, field: field)
            }
            if n == 0 { break }
            done += n
        }
        if done < size { bytes.removeSubrange(done...) }
        return bytes
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `SentimentError(.io)` with the current `errno` explained.
    public static func ioError(_ what: String, path: String, field: String? = nil) -> SentimentError {
        let reason = String(cString: strerror(errno))
        return SentimentError.io("\(what): \(reason)", field: field ?? path)
    }

    /// Joins path components with a single "/".
    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }
}
