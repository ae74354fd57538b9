// writeDirectoryAtomically over folders with subfolders, symlinks and other owners, and the
// fd-relative cleanup of staging and rotation folders (a swapped symlink is never followed).

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SentimentCore

@Suite struct StagingFolderTests {
    func write(_ path: String, _ text: String) throws {
        try FileSystem.writeAtomically(path) { try $0.write(Array(text.utf8)) }
    }

    func read(_ path: String) throws -> String { String(decoding: try readBytes(path), as: UTF8.self) }

    func save(_ dir: String, _ text: String) throws {
        try FileSystem.writeDirectoryAtomically(dir, last: "config.json") { staging in
            try write(staging + "/model.safetensors", text)
            try write(staging + "/config.json", text)
        }
    }

    /// A victim folder with one file, and a check that it is untouched.
    func victim(_ tmp: TempDir) throws -> (path: String, check: () throws -> Void) {
        let path = tmp.sub("victim")
        try FileSystem.makeDirectories(path)
        try write(path + "/precious", "keep")
        return (path, { () throws -> Void in
            #expect(list(path) == ["precious"])
            #expect(try read(path + "/precious") == "keep")
        })
    }

    @Test func folderWithSubfoldersIsSwappedAndKeepsThem() throws {
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try save(dir, "old")
        for sub in ["epoch-1", "checkpoint-2"] {
            try FileSystem.makeDirectories(dir + "/" + sub)
            try write(dir + "/" + sub + "/config.json", sub)
        }
        let before = try #require(FileSystem.identity(dir))
        try save(dir, "new")
        #expect(try #require(FileSystem.identity(dir)) != before, "one exchange, not file by file")
        #expect(list(dir) == ["checkpoint-2", "config.json", "epoch-1", "model.safetensors"])
        #expect(try read(dir + "/epoch-1/config.json") == "epoch-1")
        #expect(try read(dir + "/checkpoint-2/config.json") == "checkpoint-2")
        #expect(try read(dir + "/model.safetensors") == "new")
        #expect(list(tmp.path) == ["out"])
    }

    @Test func subfoldersLeftInAKilledSaveAreMovedBack() throws {
        // A save killed after moving epoch-1 into its staging folder, before the exchange.
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try save(dir, "old")
        let killed = tmp.sub(".out.saving-AAAAAA")
        try FileSystem.makeDirectories(killed + "/epoch-1")
        try write(killed + "/epoch-1/config.json", "e1")
        try write(killed + "/config.json", "partial")
        try FileSystem.makeDirectories(dir + "/epoch-2")   // its name taken in the folder: kept in staging
        try FileSystem.makeDirectories(killed + "/epoch-2")
        try write(killed + "/epoch-2/config.json", "e2")
        try save(dir, "new")
        #expect(list(dir) == ["config.json", "epoch-1", "epoch-2", "model.safetensors"])
        #expect(try read(dir + "/epoch-1/config.json") == "e1")
        #expect(list(killed) == ["epoch-2"], "a subfolder is never deleted")
        // Without the folder (a save killed after moving all), recovery alone recreates it.
        let other = tmp.sub("other")
        try FileSystem.makeDirectories(tmp.sub(".other.saving-BBBBBB/epoch-3"))
        FileSystem.recoverAbandonedStaging(for: other)
        #expect(list(other) == ["epoch-3"])
        #expect(!FileSystem.hasEntry(tmp.sub(".other.saving-BBBBBB")))
    }

    @Test func resumeFindsACheckpointAKilledSaveMoved() throws {
        let tmp = try TempDir()
        let moved = tmp.sub(".out.saving-AAAAAA/checkpoint-3")
        try FileSystem.makeDirectories(moved)
        try write(moved + "/" + RunState.jsonFile, #"{"global_step": 3}"#)
        try write(moved + "/" + RunState.tensorsFile, "")
        try FileSystem.makeDirectories(tmp.sub("out"))
        #expect(try TrainingStateFiles.newest(in: tmp.sub("out")) == tmp.sub("out/checkpoint-3"))
        #expect(list(tmp.path) == ["out"])
    }

    @Test func symlinkedFolderIsSwappedAtItsTarget() throws {
        let tmp = try TempDir()
        try FileSystem.makeDirectories(tmp.sub("links"))
        let real = tmp.sub("data/real"), link = tmp.sub("links/out")
        try save(real, "old")
        try FileSystem.makeDirectories(real + "/epoch-1")
        #expect(symlink(real, link) == 0)
        let before = try #require(FileSystem.identity(real))
        try save(link + "/", "new")
        var st = stat()
        #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK, "the link is still a link")
        #expect(try #require(FileSystem.identity(real)) != before, "the target was exchanged")
        #expect(list(real) == ["config.json", "epoch-1", "model.safetensors"])
        #expect(try read(real + "/config.json") == "new")
        #expect(list(tmp.sub("links")) == ["out"] && list(tmp.sub("data")) == ["real"])
    }

    @Test func anotherUsersFolderKeepsItsOwner() throws {
        // Root can give the staging folder the owner's uid and gid, so the exchange keeps them.
        guard geteuid() == 0 else { return }
        let tmp = try TempDir()
        let dir = tmp.sub("out")
        try save(dir, "old")
        #expect(chown(dir, 65534, 65534) == 0)
        let before = try #require(FileSystem.identity(dir))
        try save(dir, "new")
        var st = stat()
        #expect(stat(dir, &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534)
        #expect(try #require(FileSystem.identity(dir)) != before)
        #expect(try read(dir + "/config.json") == "new")
        let empty = tmp.sub("empty")   // replaced by one rename, which keeps the owner too
        try FileSystem.makeDirectories(empty)
        #expect(chown(empty, 65534, 65534) == 0)
        try save(empty, "new")
        #expect(stat(empty, &st) == 0 && st.st_uid == 65534 && list(empty) == ["config.json", "model.safetensors"])
    }

    @Test func aStagingNameThatIsASymlinkIsNotFollowed() throws {
        let tmp = try TempDir()
        let (victimPath, check) = try victim(tmp)
        #expect(symlink(victimPath, tmp.sub(".out.saving-AAAAAA")) == 0)
        try save(tmp.sub("out"), "new")
        try check()
    }

    @Test func aStagingFolderSwappedAfterItWasOpenedIsNotFollowed() throws {
        // The race: the cleanup opened and locked the folder, then its name became a symlink.
        let tmp = try TempDir()
        let (victimPath, check) = try victim(tmp)
        let staging = tmp.sub(".out.saving-AAAAAA")
        try FileSystem.makeDirectories(staging)
        try write(staging + "/model.safetensors", "partial")
        let fd = open(staging, FileSystem.directoryFlags)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        defer { close(fd) }
        #expect(rename(staging, tmp.sub("moved")) == 0 && symlink(victimPath, staging) == 0)
        #expect(FileSystem.drain(fd, into: nil))
        try check()
        #expect(list(tmp.sub("moved")).isEmpty, "the opened folder was emptied")
    }

    @Test func rotationDoesNotFollowASymlinkedCheckpoint() throws {
        let tmp = try TempDir()
        let (victimPath, check) = try victim(tmp)
        let dir = tmp.sub("out")
        for step in [1, 2, 3] { try save(dir + "/checkpoint-\(step)", "\(step)") }
        FileSystem.removeFolder("checkpoint-1", in: dir)
        #expect(rename(dir + "/checkpoint-2", tmp.sub("c2")) == 0 && symlink(victimPath, dir + "/checkpoint-2") == 0)
        let removed = CheckpointFolders.rotate(dir, prefix: "checkpoint-", limit: 1, keep: nil)
        #expect(removed == [dir + "/checkpoint-2"])
        try check()
        #expect(list(dir) == ["checkpoint-2", "checkpoint-3"], "the link is left, not followed")
    }
}
