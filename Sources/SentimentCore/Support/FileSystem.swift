// Small POSIX file helpers (no Foundation needed): whole-file reads with a size cap,
// directory creation, and atomic writes (temp file in the same directory, fsync, rename).

import CSystem
#if canImport(Glibc)
import Glibc
#endif

public enum FileSystem {
    /// `strerror(errno)` as a String.
    public static func errnoText(_ code: Int32 = errno) -> String {
        guard let s = strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }

    public static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public enum Kind { case missing, file, directory, other }

    public static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    public static func exists(_ path: String) -> Bool { kind(path) != .missing }

    /// Whether `path` names anything, a broken or looping symlink included (lstat).
    public static func hasEntry(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// (device, inode) of an existing path, to tell whether two paths are the same file.
    static func identity(_ path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Opens `path` for reading, refusing anything but a regular file before any read can block:
    /// open(O_NONBLOCK) so a FIFO does not wait for a writer, fstat, S_ISREG, then the size cap
    /// (nil = none). Errors name `field` (default: the path): `.io` for a missing, unreadable or
    /// special file, `.format` for one over `limit`. The caller closes the descriptor.
    public static func openRegularFile(_ path: String, field: String? = nil, limit: Int?) throws -> (fd: Int32, size: Int) {
        let field = field ?? path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw SentimentError.io("cannot open \(path): \(errnoText())", field: field) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = errnoText()
            close(fd)
            throw SentimentError.io("cannot stat \(path): \(reason)", field: field)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw SentimentError.io("\(path) is not a regular file", field: field)
        }
        let size = Int(st.st_size)
        if let limit, size > limit {
            close(fd)
            throw SentimentError.format("\(path) is \(size) bytes, more than the \(limit)-byte limit for this file", field: field)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, size)
    }

    /// Reads a whole regular file (see `openRegularFile`) to its end, which may come after its
    /// stat size (/proc and cgroup files say 0); one growing past `limit` is `.format` too.
    public static func readFile(_ path: String, field: String? = nil, limit: Int) throws -> [UInt8] {
        let (fd, size) = try openRegularFile(path, field: field, limit: limit)
        defer { close(fd) }
        let field = field ?? path
        var bytes = [UInt8](repeating: 0, count: Swift.min(Swift.max(size, 4096), limit) + 1)
        var done = 0
        while true {
            if done == bytes.count {   // full: grow, up to one byte past the cap
                guard done <= limit else {
                    throw SentimentError.format("\(path) grew past the \(limit)-byte limit for this file", field: field)
                }
                bytes += [UInt8](repeating: 0, count: Swift.min(bytes.count, limit + 1 - bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return read(fd, base + done, buf.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SentimentError.io("cannot read \(path): \(errnoText())", field: field)
            }
            if n == 0 { break }
            done += n
        }
        bytes.removeSubrange(done...)
        return bytes
    }

    /// `mkdir -p`: creates `path` and missing parents (mode 0755). Iterative over one buffer,
    /// a NUL put at each slash in turn: no recursion, no copy per component.
    public static func makeDirectories(_ path: String) throws {
        switch kind(path) {
        case .directory: return
        case .file, .other: throw SentimentError.io("\(path) exists and is not a directory", field: path)
        case .missing: break
        }
        var buffer = Array(path.utf8CString)
        let n = buffer.count - 1   // without the NUL
        guard n > 0 else { throw SentimentError.io("cannot create a directory with an empty name", field: path) }
        let slash = CChar(bitPattern: UInt8(ascii: "/"))
        for end in 1...n where end == n || (buffer[end] == slash && buffer[end - 1] != slash) {
            let saved = buffer[end]
            buffer[end] = 0
            let failed = mkdir(buffer, 0o755) != 0 && errno != EEXIST
            let code = errno
            let prefix = failed ? String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            buffer[end] = saved
            if failed {
                throw SentimentError.io("cannot create directory \(prefix): \(errnoText(code))", field: path)
            }
        }
        guard kind(path) == .directory else {   // EEXIST: a file, or a dangling symlink
            throw SentimentError.io("\(path) exists and is not a directory", field: path)
        }
    }

    /// An open file being written; `write` handles partial writes and EINTR.
    public struct Writer {
        let fd: Int32
        let path: String

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard var p = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = Glibc.write(fd, p, Swift.min(left, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SentimentError.io("cannot write \(path): \(errnoText())", field: path)
                }
                p += n
                left -= n
            }
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }
    }

    /// Writes `path` atomically: `body` fills a temp file in the same directory, which is
    /// fsynced and renamed over `path`. On any error the temp file is removed and `path`
    /// is untouched, so a reader never sees a half-written file.
    public static func writeAtomically(_ path: String, _ body: (Writer) throws -> Void) throws {
        let dir = directoryName(path)
        var template = Array(join(dir, "." + baseName(path) + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buf -> Int32 in
            guard let base = buf.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else { throw SentimentError.io("cannot create a temporary file in \(dir): \(errnoText())", field: path) }
        // mkstemp replaced the X's in place; drop the terminating NUL.
        let tempPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var committed = false
        var closed = false
        defer {
            if !closed { close(fd) }
            if !committed { unlink(tempPath) }
        }
        _ = fchmod(fd, 0o644)   // mkstemp creates 0600; saved models are ordinary files
        try body(Writer(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw SentimentError.io("cannot sync \(path): \(errnoText())", field: path) }
        closed = true
        guard close(fd) == 0 else { throw SentimentError.io("cannot close \(path): \(errnoText())", field: path) }
        guard rename(tempPath, path) == 0 else {
            throw SentimentError.io("cannot rename the temporary file to \(path): \(errnoText())", field: path)
        }
        committed = true
        syncDirectory(dir)
    }

    /// Writes a folder of files as one set. `body` fills a new staging folder next to
    /// `directory` (its argument; for a symlink, next to the folder it resolves to), and the
    /// set goes in by one rename: over a missing or empty folder, else a renameat2
    /// RENAME_EXCHANGE of the two folders after the staging folder took what the new set lacks
    /// (`exchangeDirectory`: links to the other files, the subfolders moved). Only where that
    /// cannot be done (another user's folder unless root, a file system without the exchange)
    /// is each file renamed in, `last` last. On error the staging folder is removed and any
    /// subfolder moved back. A process killed mid-save leaves a `.NAME.saving-XXXXXX` folder,
    /// which it held a flock on while alive; the next save moves its subfolders back and
    /// removes it (`recoverAbandonedStaging`).
    public static func writeDirectoryAtomically<T>(_ directory: String, last: String, _ body: (String) throws -> T) throws -> T {
        try makeDirectories(directoryName(saveTarget(directory)))
        let target = saveTarget(directory)
        if kind(target) == .file || kind(target) == .other {
            throw SentimentError.io("\(directory) exists and is not a directory", field: directory)
        }
        let parent = directoryName(target)
        recoverAbandonedStaging(in: parent, name: baseName(target))
        let (staging, lock) = try makeLockedStaging(join(parent, "." + baseName(target) + ".saving-"), field: directory)
        defer { close(lock) }
        var committed = false
        defer {
            if !committed {   // the staging folder, still at its path: subfolders go back
                let targetFD = open(target, directoryFlags)
                var st = stat()
                if fstat(lock, &st) == 0, drain(lock, into: targetFD >= 0 ? targetFD : nil) {
                    let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    if parentFD >= 0 { removeEntry(baseName(staging), at: parentFD, ifSameAs: st); close(parentFD) }
                }
                if targetFD >= 0 { close(targetFD) }
            }
        }
        let value = try body(staging)
        var existing = stat()   // an empty folder of another owner keeps it where root can chown
        if lstat(target, &existing) == 0, existing.st_uid != geteuid() || existing.st_gid != getegid() {
            _ = fchown(lock, existing.st_uid, existing.st_gid)
        }
        _ = fsync(lock)
        // rename(2) replaces a missing or empty folder in one step; a non-empty one refuses.
        if rename(staging, target) == 0 {
            committed = true
            syncDirectory(parent)
            return value
        }
        if exchangeDirectory(staging, lock, with: target) {
            committed = true
            syncDirectory(parent)
            // The old set, now at the staging path: locked, its files unlinked, any subfolder
            // that reached it moved into the new folder (open at `lock`). The lock waits: a save
            // that committed that set may still hold it, and then nobody else would remove it
            // (that save only waits for older ones, so this never deadlocks). Tried twice: a
            // transient error (EINTR, EIO) must not leave it behind.
            func removeOldSet() -> Bool {
                let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard parentFD >= 0 else { return false }
                defer { close(parentFD) }
                let old = openat(parentFD, baseName(staging), directoryFlags)
                guard old >= 0 else { return !hasEntry(staging) }
                defer { close(old) }
                var st = stat()
                guard flock(old, LOCK_EX) == 0, fstat(old, &st) == 0 else { return false }
                // A link count of 0: the save that held the lock removed it meanwhile.
                if st.st_nlink > 0 {
                    guard drain(old, into: lock) else { return false }
                    removeEntry(baseName(staging), at: parentFD, ifSameAs: st)
                }
                return !hasEntry(staging)
            }
            if !removeOldSet() { _ = removeOldSet() }
            return value
        }
        var names = try listDirectory(staging)
        names.sort { ($0 == last ? 1 : 0, $0) < ($1 == last ? 1 : 0, $1) }
        for name in names {
            guard rename(join(staging, name), join(target, name)) == 0 else {
                throw SentimentError.io("cannot move \(name) into \(directory): \(errnoText())", field: directory)
            }
        }
        syncDirectory(target)
        return value   // the defer removes the empty staging folder
    }

    /// A new `pathPrefix`XXXXXX folder (mode 0755) and an open descriptor holding an exclusive
    /// flock on it, which marks it as in use until closed (or the process dies).
    static func makeLockedStaging(_ pathPrefix: String, field: String) throws -> (path: String, lock: Int32) {
        for _ in 0..<3 {
            var template = Array((pathPrefix + "XXXXXX").utf8CString)
            let made = template.withUnsafeMutableBufferPointer { buf -> Bool in
                guard let base = buf.baseAddress else { return false }
                return mkdtemp(base) != nil
            }
            guard made else {
                throw SentimentError.io("cannot create a folder in \(directoryName(pathPrefix)): \(errnoText())", field: field)
            }
            let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            _ = chmod(path, 0o755)   // mkdtemp creates 0700; a saved model is an ordinary folder
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { rmdir(path); continue }
            var st = stat()
            // Another saver may have taken it for abandoned between mkdtemp and flock.
            if flock(fd, LOCK_EX) == 0, fstat(fd, &st) == 0, st.st_nlink > 0 { return (path, fd) }
            close(fd)
            rmdir(path)
        }
        throw SentimentError.io("cannot create and lock a staging folder beside \(field)", field: field)
    }

    /// The names in a folder, without "." and "..".
    public static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SentimentError.io("cannot list \(path): \(errnoText())", field: path) }
        defer { closedir(dir) }
        return try names(in: dir)
    }

    static func names(in dir: OpaquePointer) throws -> [String] {
        // d_name is read in place up to its NUL: a dirent record is only as long as its name, so
        // copying the struct (entry.pointee) would read past the end of readdir's buffer.
        guard let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) else {
            throw SentimentError(.internal, "no d_name in struct dirent")
        }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes a rename durable; best effort (some file systems refuse fsync on directories).
    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Copies a regular file atomically (whole file in memory; meant for tokenizer files).
    public static func copyAtomically(from source: String, to destination: String, limit: Int) throws {
        let bytes = try readFile(source, limit: limit)
        try writeAtomically(destination) { try $0.write(bytes) }
    }
}
