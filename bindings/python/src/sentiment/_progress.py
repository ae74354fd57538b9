"""The progress-callback trampoline shared by every C function that takes one."""

import ctypes
import json

# typedef int32_t (*sentiment_progress_fn)(const char *event_json, void *user_data);
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)


class Progress:
    """Wraps a Python callable as a sentiment_progress_fn for the duration of one C call.

    The callable receives each event as a dict; its return value is ignored. If it raises
    (anything, KeyboardInterrupt included), the trampoline stores the exception and returns
    1 so the library cancels; raise_pending() re-raises it after the C call. ctypes would
    otherwise print and drop the exception. `stop`, if given, is polled before and after
    each event: when it returns true the trampoline returns 1 (cancel) as well. The
    CFUNCTYPE object lives on this instance: keep the instance alive for as long as the
    library may call it.
    """

    def __init__(self, callback, stop=None):
        self.callback = callback
        self.stop = stop
        self.error = None
        # PROGRESS_FN() is a NULL function pointer (ctypes refuses None for this argtype).
        active = callback is not None or stop is not None
        self.function = PROGRESS_FN(self._trampoline) if active else PROGRESS_FN()

    def _trampoline(self, event_json, _user_data):
        if self.error is not None:
            return 1
        try:
            if self.stop is not None and self.stop():
                return 1
            if self.callback is not None:
                self.callback(json.loads(event_json))
            return 1 if self.stop is not None and self.stop() else 0
        except BaseException as e:  # noqa: B036 -- must not cross into C
            self.error = e
            return 1

    def raise_pending(self):
        """Re-raises the exception the callback raised, if any (once)."""
        error, self.error = self.error, None
        if error is not None:
            raise error
