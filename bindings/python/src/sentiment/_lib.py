"""Finding, loading and declaring libsentiment.so; calling its JSON-in/JSON-out functions.

Every prototype from include/sentiment.h is declared in _PROTOTYPES below, so a header
change diffs in one place. Returned strings are malloc'ed by the library: they are
declared c_void_p (never c_char_p, which would copy and leak them), read with
string_at and released with sentiment_string_free.
"""

import ctypes
import json
import os
import threading
from ctypes import POINTER, c_char_p, c_float, c_int32, c_size_t, c_void_p
from pathlib import Path

from ._errors import LibraryError, error_from_document
from ._progress import PROGRESS_FN, Progress

# The SENTIMENT_ABI_VERSION this binding was written against.
ABI_VERSION = 1

LIBRARY_NAME = "libsentiment.so"
# Build folders, relative to the repository root: `swift build -c release` and its
# `--show-bin-path` form.
_BUILD_DIRS = (".build/release", ".build/x86_64-unknown-linux-gnu/release")

_out = POINTER(c_void_p)  # char **out_json / sentiment_model **out_model
# typedef int32_t (*sentiment_allreduce_fn)(float *buffer, size_t count, void *user_data);
ALLREDUCE_FN = ctypes.CFUNCTYPE(c_int32, POINTER(c_float), c_size_t, c_void_p)

_PROTOTYPES = (
    # const char *sentiment_version(void);  (static storage)
    ("sentiment_version", [], c_char_p),
    # int32_t sentiment_abi_version(void);
    ("sentiment_abi_version", [], c_int32),
    # const char *sentiment_status_string(int32_t status);  (static storage)
    ("sentiment_status_string", [c_int32], c_char_p),
    # void sentiment_string_free(char *s);
    ("sentiment_string_free", [c_void_p], None),
    # int32_t sentiment_model_load(const char *config_json, sentiment_model **out_model, char **out_json);
    ("sentiment_model_load", [c_char_p, _out, _out], c_int32),
    # int32_t sentiment_model_info(const sentiment_model *model, char **out_json);
    ("sentiment_model_info", [c_void_p, _out], c_int32),
    # int32_t sentiment_tokenize(const sentiment_model *model, const char *request_json, char **out_json);
    ("sentiment_tokenize", [c_void_p, c_char_p, _out], c_int32),
    # int32_t sentiment_classify(const sentiment_model *model, const char *request_json, char **out_json);
    ("sentiment_classify", [c_void_p, c_char_p, _out], c_int32),
    # int32_t sentiment_evaluate(const sentiment_model *model, const char *request_json,
    #                            sentiment_progress_fn cb, void *user_data, char **out_json);
    ("sentiment_evaluate", [c_void_p, c_char_p, PROGRESS_FN, c_void_p, _out], c_int32),
    # int32_t sentiment_model_save(const sentiment_model *model, const char *config_json, char **out_json);
    ("sentiment_model_save", [c_void_p, c_char_p, _out], c_int32),
    # void sentiment_model_free(sentiment_model *model);
    ("sentiment_model_free", [c_void_p], None),
    # int32_t sentiment_train(const char *config_json, sentiment_progress_fn cb, void *user_data,
    #                         char **out_json);
    ("sentiment_train", [c_char_p, PROGRESS_FN, c_void_p, _out], c_int32),
    # int32_t sentiment_train_distributed(const char *config_json, int32_t rank, int32_t world_size,
    #                                     sentiment_allreduce_fn allreduce, void *allreduce_data,
    #                                     sentiment_progress_fn cb, void *user_data, char **out_json);
    ("sentiment_train_distributed",
     [c_char_p, c_int32, c_int32, ALLREDUCE_FN, c_void_p, PROGRESS_FN, c_void_p, _out], c_int32),
)


def candidate_paths():
    """Where the library is looked for, in order.

    $SENTIMENT_LIBRARY, when set, is the only candidate: an explicit choice never
    silently falls back to another build.
    """
    override = os.environ.get("SENTIMENT_LIBRARY")
    if override:
        return [Path(override)]
    here = Path(__file__).resolve().parent
    paths = [here / "lib" / LIBRARY_NAME]
    # An editable install or a source checkout: the repository root holds Package.swift.
    root = next((p for p in here.parents if (p / "Package.swift").is_file()), None)
    if root is not None:
        paths += [root / d / LIBRARY_NAME for d in _BUILD_DIRS]
    return paths


def _load():
    # A library built with the shared Swift runtime (SENTIMENT_DYNAMIC_STDLIB=1) would
    # otherwise install crash handlers for SIGSEGV & co. over the host's.
    os.environ.setdefault("SWIFT_BACKTRACE", "enable=no")
    tried = []
    for path in candidate_paths():
        if not path.is_file():
            tried.append(f"{path}: not found")
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        try:
            _declare(library)
        except AttributeError as e:
            raise LibraryError(f"{path} is not a compatible libsentiment: {e}") from None
        found = library.sentiment_abi_version()
        if found != ABI_VERSION:
            raise LibraryError(
                f"{path} has ABI version {found}, but this sentiment package needs {ABI_VERSION}; "
                "rebuild the library or install the matching package"
            )
        library.path = str(path)
        return library
    raise LibraryError(
        "cannot load libsentiment.so (set SENTIMENT_LIBRARY to its path, or run "
        "`swift build -c release` in the repository). Tried:\n  " + "\n  ".join(tried)
    )


def _declare(library):
    for name, argtypes, restype in _PROTOTYPES:
        fn = getattr(library, name)
        fn.argtypes = argtypes
        fn.restype = restype


_loaded = None
_load_lock = threading.Lock()


def lib():
    """The loaded library, loaded on first use and never unloaded (reloading a Swift library can crash)."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded


def take_string(library, pointer):
    """Decodes and frees a string the library returned through out_json (None for NULL)."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode("utf-8")
    finally:
        library.sentiment_string_free(pointer)


def call(fn, *args):
    """Calls `fn(*args, char **out_json) -> int32_t` and returns the parsed result document.

    A failed status raises the matching SentimentError subclass.
    """
    library = lib()
    out = c_void_p()
    status = fn(*args, ctypes.byref(out))
    return _result(library, status, take_string(library, out.value))


def call_with_progress(fn, *args, progress):
    """Like call() for `fn(*args, sentiment_progress_fn cb, void *user_data, char **out_json)`.

    `progress` is a Python callable taking the event dict, or None. An exception raised
    by it cancels the call and is re-raised here, in place of the CANCELLED error.
    """
    library = lib()
    out = c_void_p()
    trampoline = Progress(progress)
    status = fn(*args, trampoline.function, None, ctypes.byref(out))
    text = take_string(library, out.value)
    try:
        result = _result(library, status, text)
    finally:
        # Raised while the CANCELLED error propagates, it carries that error as __context__.
        trampoline.raise_pending()
    return result


def _result(library, status, text):
    if status == 0 and text is not None:
        return json.loads(text)
    raise error_from_document(status, text, library.sentiment_status_string(status))
