// The cgroup folders that limit this process: its cgroup and each ancestor, under the v2
// unified mount or a v1 controller's mount, as /proc/self/cgroup names them.
enum Cgroup {
    /// A small text file (cgroup and /proc files), or nil when it cannot be read.
    static func read(_ path: String) -> String? {
        (try? FileSystem.readFile(path, limit: 1 << 16)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first line of `path`, trimmed, or nil.
    static func firstLine(_ path: String) -> Substring? {
        read(path)?.split(separator: "\n").first.map { $0.drop { $0 == " " } }
    }

    /// Calls `visit(folder, v2)` for this process's cgroup and each ancestor up to the mount's
    /// root, under the v2 mount and under the mounts of v1 `controller`. `root` prefixes every
    /// path read (for tests).
    static func forEachFolder(controller: String, root: String = "", _ visit: (String, Bool) -> Void) {
        for line in (read(root + "/proc/self/cgroup") ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let v2 = parts[0] == "0" && parts[1].isEmpty
            guard v2 || parts[1].split(separator: ",").contains(Substring(controller)) else { continue }
            var mounts = v2 ? ["/sys/fs/cgroup"] : ["/sys/fs/cgroup/" + parts[1]]
            if !v2 && parts[1] != controller { mounts.append("/sys/fs/cgroup/" + controller) }
            for mount in mounts.map({ root + $0 }) {
                var dir = String(parts[2])
                while true {   // the cgroup, then each ancestor up to the mount's root
                    visit(mount + (dir == "/" ? "" : dir), v2)
                    if dir == "/" || !dir.hasPrefix("/") { break }
                    dir = FileSystem.directoryName(dir)
                }
            }
        }
    }
}
