"""Every error path: status codes, exception classes, fields, callbacks that raise."""

import ctypes

import pytest

import sentiment
from sentiment import _errors, _lib
from sentiment._progress import PROGRESS_FN

ERROR_CLASSES = {
    1: sentiment.SentimentError,
    2: sentiment.InvalidArgumentError,
    3: sentiment.SentimentIOError,
    4: sentiment.FormatError,
    5: sentiment.CancelledError,
    6: sentiment.BusyError,
    7: sentiment.SentimentMemoryError,
    8: sentiment.MisuseError,
    9: sentiment.InternalError,
}


# --- exceptions built from error documents (no library needed) ---------------------------

@pytest.mark.parametrize("status", sorted(ERROR_CLASSES))
def test_error_document_maps_to_class(status):
    doc = '{"error": {"status": %d, "code": "c", "message": "went wrong", "field": "f"}}' % status
    error = _errors.error_from_document(status, doc)
    assert type(error) is ERROR_CLASSES[status]
    assert isinstance(error, sentiment.SentimentError)
    assert (error.status, error.code, error.message, error.field) == (status, "c", "went wrong", "f")
    assert str(error) == "went wrong"


def test_builtin_bases():
    assert issubclass(sentiment.InvalidArgumentError, ValueError)
    assert issubclass(sentiment.SentimentIOError, OSError)
    assert issubclass(sentiment.SentimentMemoryError, MemoryError)
    assert issubclass(sentiment.LibraryError, OSError)


def test_error_without_document():
    error = _errors.error_from_document(7, None, b"out of memory")
    assert type(error) is sentiment.SentimentMemoryError
    assert (error.message, error.code, error.field) == ("out of memory", "nomem", None)
    error = _errors.error_from_document(42, "not json", b"unknown status")
    assert type(error) is sentiment.SentimentError and error.status == 42 and "not json" in error.message


# --- load -------------------------------------------------------------------------------

def test_nonexistent_model_dir(library, tmp_path):
    path = tmp_path / "no-such-model"
    with pytest.raises(sentiment.SentimentIOError) as excinfo:
        sentiment.Model(path)
    error = excinfo.value
    assert isinstance(error, OSError)
    assert (error.status, error.code) == (3, "io")
    assert str(path) in error.message or error.field == str(path)


def test_unknown_load_key(model_dir):
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        sentiment.Model(model_dir, bogus_key=1)
    assert excinfo.value.field == "bogus_key" and "bogus_key" in excinfo.value.message
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize("key, value", [("max_length", "128"), ("threads", -1), ("precision", "fp64"),
                                        ("max_length", 1.5), ("max_length", 100000)])
def test_bad_load_values(model_dir, key, value):
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        sentiment.Model(model_dir, **{key: value})
    assert excinfo.value.field == key


# --- requests -------------------------------------------------------------------------------

@pytest.mark.parametrize("texts, batch_size, field", [
    ([1, 2], 32, "texts"),
    ([["nested"]], 32, "texts"),
    (["a"], 0, "batch_size"),
    (["a"], -3, "batch_size"),
    (["a"], "8", "batch_size"),
])
def test_bad_classify_requests(model, texts, batch_size, field):
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        model.classify(texts, batch_size=batch_size)
    assert excinfo.value.field == field


def test_lone_surrogate_is_rejected_before_the_call(model):
    with pytest.raises(sentiment.InvalidArgumentError):
        model.classify("bad \udcff text")


def test_nan_is_rejected_before_the_call(model):
    with pytest.raises(sentiment.InvalidArgumentError):
        model.evaluate(texts=["a"], labels=[float("nan")])


def raw_call(model, function, request):
    """Sends request bytes as they are (bypassing the Python-side JSON encoding)."""
    with model._use() as handle:
        return _lib.call(getattr(_lib.lib(), function), handle, request)


@pytest.mark.parametrize("request_bytes", [
    b'{"texts": ["bad \xff\xfe bytes"]}',
    b'{"texts": ["truncated \xc3"]}',
])
def test_invalid_utf8_is_rejected_by_the_library(model, request_bytes):
    with pytest.raises(sentiment.InvalidArgumentError):
        raw_call(model, "sentiment_classify", request_bytes)


@pytest.mark.parametrize("request_bytes", [b"", b"{", b"[]", b"null", b'{"texts": ["a"]} trailing',
                                           b'{"texts": ["a"], "texts": ["b"]}'])
def test_malformed_json(model, request_bytes):
    with pytest.raises(sentiment.InvalidArgumentError):
        raw_call(model, "sentiment_classify", request_bytes)


def test_unknown_request_key(model):
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        raw_call(model, "sentiment_classify", b'{"texts": ["a"], "bogus_key": true}')
    assert excinfo.value.field == "bogus_key"


def test_evaluate_needs_data(model):
    with pytest.raises(sentiment.InvalidArgumentError):
        model.evaluate()
    with pytest.raises(sentiment.InvalidArgumentError):
        model.evaluate(texts=["a", "b"], labels=[1])
    with pytest.raises(sentiment.InvalidArgumentError):
        model.evaluate(texts=["a"])


def test_evaluate_nonexistent_file(model, tmp_path):
    with pytest.raises(sentiment.SentimentIOError):
        model.evaluate(tmp_path / "missing.tsv")


def test_evaluate_malformed_file(model, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("no header here\n")
    with pytest.raises(sentiment.FormatError):
        model.evaluate(bad)


def test_save_to_unwritable_place(model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(sentiment.SentimentIOError):
        model.save(blocker / "out")


# --- closed models ---------------------------------------------------------------------------

def test_closed_model_raises_before_calling_c(model_dir):
    m = sentiment.Model(model_dir)
    m.close()
    for call in (lambda: m.info, lambda: m.classify("a"), lambda: m.tokenize("a"),
                 lambda: m.evaluate(texts=["a"], labels=[1]), lambda: m.save("/nonexistent")):
        with pytest.raises(sentiment.MisuseError) as excinfo:
            call()
        assert excinfo.value.status == 8 and excinfo.value.code == "misuse"


# --- progress callbacks ----------------------------------------------------------------------

TEXTS = ["good", "bad", "fine", "awful", "great", "dull"]
LABELS = [1, 0, 1, 0, 1, 0]


def test_raising_callback_cancels_and_reraises(model):
    calls = []
    failure = ValueError("stop here")

    def progress(event):
        calls.append(event)
        raise failure

    with pytest.raises(ValueError) as excinfo:
        model.evaluate(texts=TEXTS, labels=LABELS, batch_size=2, progress=progress)
    assert excinfo.value is failure
    assert len(calls) == 1  # cancelled at the first event
    cancelled = excinfo.value.__context__
    assert isinstance(cancelled, sentiment.CancelledError) and cancelled.status == 5


def test_keyboard_interrupt_in_callback_is_reraised(model):
    def progress(event):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.evaluate(texts=TEXTS, labels=LABELS, batch_size=2, progress=progress)


def test_model_still_works_after_a_cancel(model):
    with pytest.raises(RuntimeError):
        model.evaluate(texts=TEXTS, labels=LABELS, batch_size=2, progress=lambda e: (_ for _ in ()).throw(RuntimeError))
    assert model.evaluate(texts=TEXTS, labels=LABELS)["examples"] == len(TEXTS)


def test_nonzero_return_from_c_callback_is_cancelled(model):
    cancel = PROGRESS_FN(lambda event_json, user_data: 1)
    with model._use() as handle:
        with pytest.raises(sentiment.CancelledError) as excinfo:
            _lib.call(_lib.lib().sentiment_evaluate, handle, b'{"texts": ["a", "b"], "labels": [1, 0]}',
                      cancel, None)
    assert (excinfo.value.status, excinfo.value.code) == (5, "cancelled")


def test_returned_strings_are_freed_not_leaked(model):
    # c_void_p restype: the raw pointer comes back, and take_string frees it exactly once.
    out = ctypes.c_void_p()
    with model._use() as handle:
        assert _lib.lib().sentiment_model_info(handle, ctypes.byref(out)) == 0
    assert out.value
    assert _lib.take_string(_lib.lib(), out.value).startswith("{")
