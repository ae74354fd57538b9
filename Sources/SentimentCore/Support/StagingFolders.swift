// Staging folders of `FileSystem.writeDirectoryAtomically`, handled relative to open
// descriptors (openat O_NOFOLLOW, fdopendir, unlinkat, renameat2): a folder swapped for a
// symlink after it was opened, as another user can do in a sticky parent like /tmp, is never
// followed, so cleanup only touches the folder that was opened (and locked).

import CSystem
#if canImport(Glibc)
import Glibc
#endif

extension FileSystem {
    static let directoryFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW

    /// The names in the folder open at `fd`, without "." and ".."; nil if it cannot be read.
    static func listDirectory(fd: Int32) -> [String]? {
        let copy = dup(fd)   // fdopendir takes the descriptor it gets
        guard copy >= 0 else { return nil }
        guard let dir = fdopendir(copy) else {
            close(copy)
            return nil
        }
        defer { closedir(dir) }
        rewinddir(dir)   // the copy shares the offset
        return try? names(in: dir)
    }

    static func isDirectory(_ name: String, at fd: Int32) -> Bool {
        var st = stat()
        return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// Empties the folder open at `folder`: moves its subfolders into the folder open at
    /// `target` (never over an entry of the same name; kept where they are without a target)
    /// and unlinks everything else. Returns whether it is now empty.
    @discardableResult
    static func drain(_ folder: Int32, into target: Int32?) -> Bool {
        var empty = true
        for name in listDirectory(fd: folder) ?? [] {
            if isDirectory(name, at: folder) {
                if let target, csystem_renameat_noreplace(folder, name, target, name) == 0 { continue }
                empty = false
            } else if unlinkat(folder, name, 0) != 0 {
                empty = false
            }
        }
        return empty
    }

    /// rmdir of `name` in the folder open at `parent`, only if it is still the folder `st` describes.
    static func removeEntry(_ name: String, at parent: Int32, ifSameAs st: stat) {
        var now = stat()
        guard fstatat(parent, name, &now, AT_SYMLINK_NOFOLLOW) == 0, now.st_dev == st.st_dev, now.st_ino == st.st_ino
        else { return }
        _ = unlinkat(parent, name, AT_REMOVEDIR)
    }

    /// Removes the folder `name` of `parent` and its files (a checkpoint-N folder; a staging
    /// folder), relative to descriptors and never through a symlink; subfolders are kept, and
    /// with them the folder. Best effort.
    static func removeFolder(_ name: String, in parent: String) {
        let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parentFD >= 0 else { return }
        defer { close(parentFD) }
        let fd = openat(parentFD, name, directoryFlags)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0, drain(fd, into: nil) { removeEntry(name, at: parentFD, ifSameAs: st) }
    }

    /// Cleans up after killed saves into `parent`/`name`: each `.NAME.saving-XXXXXX` folder
    /// whose flock is free is locked, its subfolders moved back into `name` (created if
    /// missing), its files unlinked and it is removed. A folder that cannot be emptied (a
    /// subfolder whose name is taken) is kept. Best effort.
    static func recoverAbandonedStaging(in parent: String, name: String) {
        let prefix = "." + name + ".saving-"
        let parentFD = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parentFD >= 0 else { return }
        defer { close(parentFD) }
        var target: Int32 = -1
        defer { if target >= 0 { close(target) } }
        for entry in listDirectory(fd: parentFD) ?? [] where entry.hasPrefix(prefix) && entry.utf8.count == prefix.utf8.count + 6 {
            let fd = openat(parentFD, entry, directoryFlags)
            guard fd >= 0 else { continue }
            defer { close(fd) }   // and with it the lock
            var st = stat()
            guard flock(fd, LOCK_EX | LOCK_NB) == 0, fstat(fd, &st) == 0, st.st_nlink > 0 else { continue }
            if target < 0, (listDirectory(fd: fd) ?? []).contains(where: { isDirectory($0, at: fd) }) {
                _ = mkdirat(parentFD, name, 0o755)
                target = openat(parentFD, name, directoryFlags)
            }
            if drain(fd, into: target >= 0 ? target : nil) { removeEntry(entry, at: parentFD, ifSameAs: st) }
        }
    }

    /// `recoverAbandonedStaging` for the folder a save into `directory` writes (a symlink's target).
    public static func recoverAbandonedStaging(for directory: String) {
        let target = saveTarget(directory)
        recoverAbandonedStaging(in: directoryName(target), name: baseName(target))
    }

    /// The folder a save into `directory` replaces: `directory` without trailing slashes, or
    /// the folder a symlink there resolves to (the exchange must not replace the link).
    static func saveTarget(_ directory: String) -> String {
        var trimmed = directory
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        var st = stat()
        guard lstat(trimmed, &st) == 0, st.st_mode & S_IFMT == S_IFLNK, let resolved = realpath(trimmed, nil) else {
            return trimmed
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Swaps `staging` (open at `stagingFD`) and the folder `target` in one
    /// renameat2(RENAME_EXCHANGE). First `staging` takes what of `target` the new set lacks:
    /// hard links to its other entries, and its subfolders, moved (a kill from here on leaves
    /// them in the staging folder, and the next save moves them back); then `target`'s owner,
    /// group and permission bits. Returns false, with everything moved back, when `target` is
    /// not a folder, is another user's and this process cannot chown (only root can), or the
    /// file system cannot exchange.
    static func exchangeDirectory(_ staging: String, _ stagingFD: Int32, with target: String) -> Bool {
        let targetFD = open(target, directoryFlags)
        guard targetFD >= 0 else { return false }
        defer { close(targetFD) }
        var folder = stat()
        guard fstat(targetFD, &folder) == 0, let old = listDirectory(fd: targetFD) else { return false }
        if folder.st_uid != geteuid() || folder.st_gid != getegid() {
            if fchown(stagingFD, folder.st_uid, folder.st_gid) != 0, folder.st_uid != geteuid() { return false }
        }
        let new = Set(listDirectory(fd: stagingFD) ?? [])
        var linked: [String] = [], moved: [String] = []
        func undo() {
            for name in moved { _ = csystem_renameat_noreplace(stagingFD, name, targetFD, name) }
            for name in linked { _ = unlinkat(stagingFD, name, 0) }
        }
        for name in old where !new.contains(name) {
            if isDirectory(name, at: targetFD) {
                guard csystem_renameat_noreplace(targetFD, name, stagingFD, name) == 0 else { undo(); return false }
                moved.append(name)
            } else {
                guard linkat(targetFD, name, stagingFD, name, 0) == 0 else { undo(); return false }
                linked.append(name)
            }
        }
        _ = fchmod(stagingFD, folder.st_mode & 0o7777)
        _ = fsync(stagingFD)
        guard csystem_rename_exchange(staging, target) == 0 else { undo(); return false }
        return true
    }
}
