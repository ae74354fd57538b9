// Ctrl-C (SIGINT) and SIGTERM during train: the first asks the run to stop at its next event;
// a second one kills the process as usual.
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) private var interruptFlag: sig_atomic_t = 0

enum Interrupt {
    static var requested: Bool { interruptFlag != 0 }

    static func install() {
        interruptFlag = 0   // initialised here, not first in the handler
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                interruptFlag = 1
                signal(s, SIG_DFL)
            }
        }
    }

    static func restore() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
