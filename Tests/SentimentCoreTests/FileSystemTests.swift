// FileSystem.writeDirectoryAtomically: how a checkpoint folder is replaced as one set.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

@Suite struct WriteDirectoryAtomicallyTests {
    func write(_ path: String, _ text: String) throws {
        try FileSystem.writeAtomically(path) { try $0.write(Array(text.utf8)) }
    }

    func read(_ path: String) throws -> String { String(decoding: try readBytes(path), as: UTF8.self) }

    @Test func newFolderAppearsComplete() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        let value = try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging -> Int in
            #expect(FileSystem.kind(dir) == .missing, "nothing is visible before the set is complete")
            try write(staging + "/model.bin", "new")
            try write(staging + "/config.json", "{}")
            return 7
        }
        #expect(value == 7)
        #expect(list(dir) == ["config.json", "model.bin"])
        #expect(list(tmp.path) == ["out"], "no staging folder is left")
        var st = stat()
        #expect(stat(dir, &st) == 0 && st.st_mode & 0o777 == 0o755, "an ordinary folder, not mkdtemp's 0700")
    }

    @Test func emptyFolderIsReplacedAndOtherEntriesAreKept() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try FileSystem.makeDirectories(dir)
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { try write($0 + "/config.json", "1") }
        try write(dir + "/notes.txt", "keep me")
        try FileSystem.makeDirectories(dir + "/epoch-1")
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging in
            try write(staging + "/config.json", "2")
            try write(staging + "/model.bin", "2")
        }
        #expect(list(dir) == ["config.json", "epoch-1", "model.bin", "notes.txt"])
        #expect(try read(dir + "/config.json") == "2")
        #expect(try read(dir + "/notes.txt") == "keep me")
        #expect(list(tmp.path) == ["out"])
    }

    @Test func folderOfFilesIsSwappedInOneStep() throws {
        // A different set (another model's files) over a folder of plain files: one
        // RENAME_EXCHANGE, so no moment shows new files beside old ones. The old folder's
        // files the new set lacks are kept.
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging in
            try write(staging + "/config.json", "old")
            try write(staging + "/pytorch_model.bin", "old weights")
        }
        try write(dir + "/notes.txt", "keep me")
        #expect(chmod(dir, 0o750) == 0)
        let before = try #require(FileSystem.identity(dir))
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging in
            try write(staging + "/config.json", "new")
            try write(staging + "/model.safetensors", "new weights")
        }
        let after = try #require(FileSystem.identity(dir))
        #expect(before != after, "the folder itself was swapped, not filled file by file")
        var st = stat()
        #expect(stat(dir, &st) == 0 && st.st_mode & 0o7777 == 0o750, "the folder keeps its permissions")
        #expect(list(dir) == ["config.json", "model.safetensors", "notes.txt", "pytorch_model.bin"])
        #expect(try read(dir + "/config.json") == "new")
        #expect(try read(dir + "/model.safetensors") == "new weights")
        #expect(try read(dir + "/notes.txt") == "keep me")
        #expect(try read(dir + "/pytorch_model.bin") == "old weights")
        #expect(list(tmp.path) == ["out"], "the old set is removed")
    }

    @Test func symlinkedFolderKeepsItsLinkAndGetsTheFiles() throws {
        // The save goes to the folder the link resolves to; the link is left as it is.
        let tmp = try TempDir()
        let real = tmp.sub("real"), link = tmp.sub("out")
        try FileSystem.writeDirectoryAtomically(real, last: "config.json") { try write($0 + "/config.json", "old") }
        #expect(symlink(real, link) == 0)
        try FileSystem.writeDirectoryAtomically(link, last: "config.json") { staging in
            try write(staging + "/config.json", "new")
            try write(staging + "/model.safetensors", "weights")
        }
        var st = stat()
        #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK, "the link is still a link")
        #expect(list(real) == ["config.json", "model.safetensors"])
        #expect(try read(real + "/config.json") == "new")
        #expect(list(tmp.path) == ["out", "real"])
    }

    @Test func abandonedStagingFoldersAreRemovedByTheNextSave() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        // A killed save's folder (no lock), a live save's (locked), another folder's.
        for name in [".out.saving-AAAAAA", ".out.saving-BBBBBB", ".other.saving-CCCCCC"] {
            try FileSystem.makeDirectories(tmp.sub(name))
            try write(tmp.sub(name) + "/model.safetensors", "partial")
        }
        let live = open(tmp.sub(".out.saving-BBBBBB"), O_RDONLY | O_DIRECTORY)
        #expect(live >= 0 && flock(live, LOCK_EX) == 0)
        defer { close(live) }
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { try write($0 + "/config.json", "1") }
        #expect(list(tmp.path) == [".other.saving-CCCCCC", ".out.saving-BBBBBB", "out"])
        #expect(list(tmp.sub(".out.saving-BBBBBB")) == ["model.safetensors"], "a live save is left alone")
    }

    @Test func failureLeavesTheOldSetAndNoStagingFolder() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { try write($0 + "/config.json", "old") }
        #expect(throws: SentimentError.self) {
            try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging in
                try write(staging + "/config.json", "new")
                throw SentimentError.io("disk full", field: "output_dir")
            }
        }
        #expect(try read(dir + "/config.json") == "old")
        #expect(list(tmp.path) == ["out"])
    }

    @Test func unwritablePlacesAreIOErrorsNamingTheFolder() throws {
        let tmp = try TempDir()
        try write(tmp.sub("file"), "x")
        for dir in [tmp.sub("file"), tmp.sub("file/out"), "/proc/sentiment-out"] {
            do {
                try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { _ in }
                Issue.record("\(dir) was written")
            } catch let e as SentimentError {
                #expect(e.status == .io && (e.field ?? "").hasPrefix(dir.hasPrefix("/proc") ? dir : tmp.sub("file")), "\(e)")
            }
        }
    }
}

// FileSystem.makeDirectories and openRegularFile on hostile paths and files.
@Suite struct HostileFileTests {
    /// Iterative: thousands of components neither recurse nor copy the path per level.
    @Test func makeDirectoriesHandlesDeepPaths() throws {
        let tmp = try TempDir()
        let deep = tmp.path + String(repeating: "/d", count: 300)
        try FileSystem.makeDirectories(deep)
        #expect(FileSystem.kind(deep) == .directory)
        try FileSystem.makeDirectories(deep)   // existing: nothing to do
        let tooDeep = "/proc/sentiment-deep" + String(repeating: "/d", count: 20_000)
        #expect { try FileSystem.makeDirectories(tooDeep) } throws: { e in
            (e as? SentimentError).map { $0.status == .io && $0.message.contains("/proc/sentiment-deep:") } ?? false
        }
        try "x".withCString { text in
            let fd = creat(tmp.sub("file"), 0o644)
            _ = write(fd, text, 1)
            close(fd)
        }
        #expect { try FileSystem.makeDirectories(tmp.sub("file/a/b")) } throws: { e in
            (e as? SentimentError).map { $0.status == .io && $0.message.contains(tmp.sub("file/a")) } ?? false
        }
    }

    /// FIFOs, devices, sockets and symlink loops are refused before any read could block;
    /// a file over the cap is refused by its size, without reading it.
    @Test func onlyRegularFilesWithinTheCapAreRead() throws {
        let tmp = try TempDir()
        let fifo = tmp.sub("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(symlink("/dev/zero", tmp.sub("zero")) == 0)
        #expect(symlink("loop", tmp.sub("loop")) == 0)
        for path in [fifo, tmp.sub("zero"), tmp.sub("loop"), tmp.path] {
            #expect { _ = try FileSystem.readFile(path, field: "vocab.txt", limit: 1 << 20) } throws: { e in
                (e as? SentimentError).map { $0.status == .io && $0.field == "vocab.txt" } ?? false
            }
        }
        let sparse = tmp.sub("sparse")
        let fd = creat(sparse, 0o644)
        #expect(ftruncate(fd, 20 << 30) == 0)
        close(fd)
        #expect { _ = try FileSystem.readFile(sparse, limit: 64 << 20) } throws: { e in
            (e as? SentimentError).map { $0.status == .format && $0.field == sparse } ?? false
        }
    }
}

// Parallel.availableCPUs: the cgroup CPU quota, read from a fake /proc and /sys/fs/cgroup.
@Suite struct CPUQuotaTests {
    func tree(_ files: [String: String]) throws -> TempDir {
        let tmp = try TempDir()
        for (path, text) in files {
            try FileSystem.makeDirectories(FileSystem.directoryName(tmp.path + path))
            try FileSystem.writeAtomically(tmp.path + path) { try $0.write(Array(text.utf8)) }
        }
        return tmp
    }

    @Test func cgroupV2TakesTheTightestQuotaUpToTheRoot() throws {
        let t = try tree(["/proc/self/cgroup": "0::/jobs/one\n", "/sys/fs/cgroup/jobs/one/cpu.max": "150000 100000\n",
                          "/sys/fs/cgroup/jobs/cpu.max": "max 100000\n", "/sys/fs/cgroup/cpu.max": "max 100000\n"])
        #expect(Parallel.cgroupCPUQuota(root: t.path) == 2)   // 1.5 CPUs, rounded up
        try FileSystem.writeAtomically(t.path + "/sys/fs/cgroup/jobs/cpu.max") { try $0.write(Array("50000 100000\n".utf8)) }
        #expect(Parallel.cgroupCPUQuota(root: t.path) == 1)
    }

    @Test func cgroupV1AndNoQuota() throws {
        let v1 = try tree(["/proc/self/cgroup": "4:memory:/x\n2:cpu,cpuacct:/x\n",
                           "/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us": "300000\n",
                           "/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us": "100000\n"])
        #expect(Parallel.cgroupCPUQuota(root: v1.path) == 3)
        let none = try tree(["/proc/self/cgroup": "2:cpu,cpuacct:/\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                             "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"])
        #expect(Parallel.cgroupCPUQuota(root: none.path) == nil)
        #expect(Parallel.clampedThreads(1024) == Parallel.availableCPUs && Parallel.availableCPUs >= 1)
    }
}
