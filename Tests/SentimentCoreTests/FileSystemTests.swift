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
