"""Exceptions: one class per status code of include/sentiment.h, built from the error document."""

import json


class LibraryError(OSError):
    """libsentiment.so cannot be found or loaded, or is not the ABI this package needs."""


class SentimentError(Exception):
    """A failed library call.

    Attributes mirror the error document {"error": {"status", "code", "message", "field"}}:
    status (int), code (str, e.g. "invalid_argument"), message (str), and field (the
    request key or file the error is about, or None).
    """

    status = 1
    code = "error"

    def __init__(self, message, *, status=None, code=None, field=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self):
        return self.message

    def __repr__(self):
        return (f"{type(self).__name__}({self.message!r}, status={self.status}, "
                f"code={self.code!r}, field={self.field!r})")


class InvalidArgumentError(SentimentError, ValueError):
    """Bad JSON, a bad value or an unknown key; `field` names it."""
    status, code = 2, "invalid_argument"


class SentimentIOError(SentimentError, OSError):
    """A file or folder cannot be read or written; `field` names it."""
    status, code = 3, "io"

    # OSError.__init__/__str__ would reinterpret the arguments; keep SentimentError's.
    def __init__(self, message, **kwargs):
        SentimentError.__init__(self, message, **kwargs)

    __str__ = SentimentError.__str__


class FormatError(SentimentError):
    """A file is malformed (checkpoint, vocabulary, a data-file row)."""
    status, code = 4, "format"


class CancelledError(SentimentError):
    """A progress callback asked to stop."""
    status, code = 5, "cancelled"


class BusyError(SentimentError):
    """The resource is in use (e.g. an output_dir being trained into)."""
    status, code = 6, "busy"


class SentimentMemoryError(SentimentError, MemoryError):
    """An allocation failed."""
    status, code = 7, "nomem"


class MisuseError(SentimentError):
    """The API was used wrongly: a closed model, a NULL handle, wrong call order."""
    status, code = 8, "misuse"


class InternalError(SentimentError):
    """A bug in the library: please report it."""
    status, code = 9, "internal"


class DistributedError(SentimentError):
    """A data-parallel run stopped because its collective failed (a rank died, timed out or
    lost its connection) or another rank failed; `field` is "allreduce". The host
    collective's own exception, when there is one, is the __cause__."""


_BY_STATUS = {cls.status: cls for cls in (
    SentimentError, InvalidArgumentError, SentimentIOError, FormatError, CancelledError,
    BusyError, SentimentMemoryError, MisuseError, InternalError)}


def error_from_document(status, text, status_string=None):
    """The exception for a failed call: its status and its out_json text (None if NULL)."""
    if status == 0:
        # Only reachable if the library returned OK without a result document.
        return InternalError("the library returned no result document", status=9)
    fallback = (status_string or b"").decode("utf-8", "replace") or f"status {status}"
    error = {}
    if text is not None:
        try:
            error = json.loads(text).get("error") or {}
        except (ValueError, AttributeError):
            fallback = f"{fallback}: {text}"
    if not isinstance(error, dict):
        error = {}
    message = error.get("message") if isinstance(error.get("message"), str) else fallback
    code = error.get("code") if isinstance(error.get("code"), str) else None
    field = error.get("field") if isinstance(error.get("field"), str) else None
    cls = DistributedError if status == 1 and field == "allreduce" else _BY_STATUS.get(status, SentimentError)
    return cls(message, status=status, code=code, field=field)
