import CSystem
import SentimentCore

#if canImport(Glibc)
import Glibc
#endif

/// Result and error documents, and handing them to C callers as malloc'ed strings.
enum Documents {
    static func error(_ e: SentimentError) -> JSON {
        var fields: [JSON.Member] = [
            JSON.Member("status", JSON(Int(e.status.rawValue))),
            JSON.Member("code", JSON(e.status.code)),
            JSON.Member("message", JSON(e.message)),
        ]
        if let f = e.field { fields.append(JSON.Member("field", JSON(f))) }
        return .object([JSON.Member("error", .object(fields))])
    }

    /// Any thrown error as a `SentimentError` (non-library errors are internal bugs).
    static func sentimentError(_ error: Error) -> SentimentError {
        if let e = error as? SentimentError { return e }
        return SentimentError(.internal, "unexpected error: \(error)")
    }

    /// Copies `text` into a malloc'ed C string, or nil when memory is exhausted.
    static func cString(_ text: String) -> UnsafeMutablePointer<CChar>? {
        var text = text
        return text.withUTF8 { utf8 -> UnsafeMutablePointer<CChar>? in
            guard let p = malloc(utf8.count + 1)?.assumingMemoryBound(to: CChar.self) else { return nil }
            if let base = utf8.baseAddress {
                memcpy(p, base, utf8.count)
            }
            p[utf8.count] = 0
            return p
        }
    }

    /// Stores `document` in `*out` (when `out` is not NULL) and returns `status`, or
    /// NOMEM when the string cannot be allocated.
    static func deliver(_ document: JSON, status: Status, to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        guard let out else { return status.rawValue }
        guard let p = cString(document.serialized()) else {
            out.pointee = nil
            return Status.noMemory.rawValue
        }
        out.pointee = p
        return status.rawValue
    }

    /// Runs `body`, delivering its document on success or the error document on failure.
    static func run(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ body: () throws -> JSON) -> Int32 {
        runReturningStatus(out) { (Status.ok, try body()) }
    }

    /// Like `run`, for a body that picks its own status and document (e.g. a cancelled
    /// training run that still returns its partial result).
    static func runReturningStatus(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                   _ body: () throws -> (Status, JSON)) -> Int32 {
        if csystem_thread_forked() != 0 { return ForkedChild.run(out) { runHere(out, body) } }
        return runHere(out, body)
    }

    private static func runHere(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                _ body: () throws -> (Status, JSON)) -> Int32 {
        out?.pointee = nil
        do {
            try MemoryGuard.checkAddressSpace()
            let (status, document) = try body()
            return deliver(document, status: status, to: out)
        } catch {
            let e = sentimentError(error)
            return deliver(Documents.error(e), status: e.status, to: out)
        }
    }
}

/// Calls on the thread that forked a child process, in that child. libgomp's thread pool (which
/// our loops and oneDNN use) belongs to the thread that started it, and the child has none of
/// its workers, so a parallel region there would wait forever; a new thread builds a new pool.
/// (Progress callbacks of such a call come from that thread.)
enum ForkedChild {
    private final class Call: @unchecked Sendable {
        let body: () -> Int32
        var status = Status.internal.rawValue
        init(_ body: @escaping () -> Int32) { self.body = body }
    }

    static func run(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ body: () -> Int32) -> Int32 {
        withoutActuallyEscaping(body) { body in
            let call = Call(body)
            let context = Unmanaged.passUnretained(call).toOpaque()
            let err = withExtendedLifetime(call) {
                csystem_run_on_new_thread({ context in
                    guard let context else { return }
                    let call = Unmanaged<Call>.fromOpaque(context).takeUnretainedValue()
                    call.status = call.body()
                }, context, 8 << 20)
            }
            guard err == 0 else {
                let e = SentimentError(.noMemory, "this process was forked and its calls run on a new thread, which "
                                       + "cannot be created: \(FileSystem.errnoText(err))")
                return Documents.deliver(Documents.error(e), status: e.status, to: out)
            }
            return call.status
        }
    }
}
