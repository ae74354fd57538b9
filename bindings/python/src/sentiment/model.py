"""Model: a loaded classifier, one sentiment_model handle."""

import ctypes
import json
import numbers
import os
import threading

from . import _data, _lib
from ._errors import InvalidArgumentError, MisuseError

_NOT_GIVEN = object()   # top_k's default: no list (None means all labels, as in transformers)


class Model:
    """A sentiment classifier loaded from a Hugging Face checkpoint folder.

        with sentiment.Model("path/to/model") as m:
            m.classify("a charming journey")  # [{'label': 'POSITIVE', 'score': 0.98, ...}]

    precision is "fp32", "int8" or "bf16" (bf16 needs a CPU with AVX512-BF16 or AMX; info["isa"]
    says what the library runs on). Keyword arguments beyond the named ones go into the load
    JSON unchanged (e.g. head="auto", seed=42; for int8, calibration_file="train.tsv" calibrates
    the quantization on its first calibration_samples=512 sentences, with smoothquant_alpha=0.4
    and outlier_channels=16). The model is immutable: its methods may be called from many
    threads at once. close() frees it; later calls raise MisuseError.

    A Model pickles as its load config (the folder path and options), so a worker process
    (multiprocessing, Spark, Ray) loads its own copy from the same folder when it unpickles;
    the folder must exist there. It also works in a child made by fork(2).
    """

    def __init__(self, model_dir, precision="fp32", max_length=128, threads=0, **extra):
        self._handle = None
        self._lock = threading.Lock()
        self._active = 0         # calls in flight; close() defers the free until they end
        self._closing = False
        lib = _lib.lib()
        # Captured now: at interpreter exit, module globals may already be gone in __del__.
        self._free = lib.sentiment_model_free
        config = {"model_dir": os.fspath(model_dir), "precision": precision, "max_length": max_length,
                  "threads": threads, **extra}
        self._config = config
        handle = ctypes.c_void_p()
        _lib.call(lib.sentiment_model_load, _encode(config), ctypes.byref(handle))
        self._handle = handle.value

    def __reduce__(self):
        config = dict(self._config)
        return (_from_config, (config,))

    @property
    def info(self):
        """Effective settings: model_type, hidden_size, layers, labels, precision, threads, ..."""
        with self._use() as handle:
            return _lib.call(_lib.lib().sentiment_model_info, handle)

    def classify(self, texts, batch_size=32, text_pairs=None, top_k=_NOT_GIVEN, long_text=None, stride=None):
        """Classifies a string or a list of strings (with text_pairs: sentence pairs).

        Returns one dict per text, like a transformers text-classification pipeline:
        {'label': 'POSITIVE', 'score': 0.99, 'label_id': 1, 'probabilities': [...],
        'logits': [...]}. A single string gives a list of one.

        top_k (a number, or None for all) adds 'labels': that many {'label', 'label_id',
        'score'} dicts, best first. long_text="window" reads a text longer than max_length in
        overlapping windows (stride tokens shared; default a quarter of a window) and averages
        their probabilities; each result then says how many 'windows' it used.
        """
        texts = _texts(texts)
        pairs = None if text_pairs is None else _texts(text_pairs)
        results = []
        # The library takes at most 100,000 texts and 16 MB per request: longer lists go in parts.
        for lo, hi in _parts(texts, pairs):
            request = _without_none({"texts": texts[lo:hi], "batch_size": batch_size,
                                     "text_pairs": None if pairs is None else pairs[lo:hi],
                                     "long_text": long_text, "stride": stride})
            if top_k is not _NOT_GIVEN:
                request["top_k"] = top_k
            with self._use() as handle:
                results += _lib.call(_lib.lib().sentiment_classify, handle, _encode(request))["results"]
        return results

    def tokenize(self, texts, max_length=None):
        """{'input_ids': [[101, ..., 102]], 'tokens': [['[CLS]', ..., '[SEP]']]} per text."""
        texts = _texts(texts)
        out = None
        for lo, hi in _parts(texts, None):
            request = _without_none({"texts": texts[lo:hi], "max_length": max_length})
            with self._use() as handle:
                part = _lib.call(_lib.lib().sentiment_tokenize, handle, _encode(request))
            out = part if out is None else {key: out[key] + part[key] for key in out}
        return out

    def evaluate(self, data_file=None, texts=None, labels=None, batch_size=None, progress=None,
                 format=None, text_column=None, label_column=None, text_pairs=None, text_pair_column=None):
        """Accuracy and loss on a data file or on texts with their labels:
        {'examples', 'accuracy', 'loss', 'macro_f1', 'mcc', 'per_label', 'confusion_matrix',
        'seconds'}, as scikit-learn defines them (see sentiment_evaluate in sentiment.h).

        A data file is TSV, CSV or JSON Lines (format defaults to the extension), with the text
        in text_column (default "sentence", else "text"), the second text of a pair in
        text_pair_column and the label in label_column (default "label"): integer ids or the
        model's label names. Bad rows raise FormatError naming the file and line.
        data_file may also be a pandas DataFrame or a list of dicts (read by the same column
        names) or of (text, label) / (text, text_pair, label) tuples.

        progress, if given, is called with each event dict, e.g.
        {'event': 'progress', 'examples': 256, 'total': 872}. If it raises, evaluation
        stops and the exception propagates from evaluate().
        """
        if _data.is_data(data_file):
            if texts is not None or labels is not None:
                raise InvalidArgumentError("give either data_file or texts+labels, not both", field="data_file")
            texts, text_pairs, labels = _data.lists(data_file, text_column, text_pair_column, label_column,
                                                    field="data_file")
            data_file = text_column = text_pair_column = label_column = None
        if texts is not None and len(_parts(_texts(texts), None if text_pairs is None else _texts(text_pairs))) > 1:
            # More than one request holds: evaluate them as a temporary JSON Lines file.
            with _data.rows_file(texts, text_pairs, labels) as (path, columns):
                return self.evaluate(path, batch_size=batch_size, progress=progress, format="jsonl", **columns)
        request = _without_none({
            "data_file": data_file,
            "texts": None if texts is None else _texts(texts),
            "text_pairs": None if text_pairs is None else _texts(text_pairs),
            "labels": None if labels is None else list(labels),
            "batch_size": batch_size,
            "format": format,
            "text_column": text_column,
            "text_pair_column": text_pair_column,
            "label_column": label_column,
        })
        with self._use() as handle:
            return _lib.call_with_progress(_lib.lib().sentiment_evaluate, handle, _encode(request),
                                           progress=progress)

    def save(self, output_dir, precision="fp32", **extra):
        """Writes a Hugging Face checkpoint folder; returns {'output_dir', 'files'}.

        precision "fp32", "bf16" (BF16 tensors, which transformers loads) or "int8" (this
        library's int8 checkpoint). An int8 save of a float model takes calibration_file (sentences
        for SmoothQuant), calibration_samples and smoothquant_alpha, as a load does."""
        request = {"output_dir": os.fspath(output_dir), "precision": precision, **extra}
        with self._use() as handle:
            return _lib.call(_lib.lib().sentiment_model_save, handle, _encode(request))

    @property
    def closed(self):
        return self._closing or self._handle is None

    def close(self):
        """Frees the model. Idempotent; calls still running finish first."""
        with self._lock:
            if self._closing or self._handle is None:
                return
            self._closing = True
            if self._active == 0:
                self._release_handle()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A partly constructed instance may lack attributes; never raise from here.
        if getattr(self, "_handle", None) is not None and getattr(self, "_free", None) is not None:
            handle, self._handle = self._handle, None
            self._free(handle)

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<sentiment.Model {state} at {id(self):#x}>"

    # Every C call on the handle goes through _use(), so close() never frees it mid-call.
    def _use(self):
        return _Use(self)

    def _release_handle(self):
        handle, self._handle = self._handle, None
        self._free(handle)


class _Use:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        m = self.model
        with m._lock:
            if m._closing or m._handle is None:
                raise MisuseError("the model is closed", status=8, code="misuse")
            m._active += 1
            return m._handle

    def __exit__(self, *exc):
        m = self.model
        with m._lock:
            m._active -= 1
            if m._closing and m._active == 0 and m._handle is not None:
                m._release_handle()


def _texts(texts):
    """A list of texts from one string or an iterable of strings."""
    return [texts] if isinstance(texts, str) else list(texts)


def _without_none(request):
    return {k: v for k, v in request.items() if v is not None}


def _json_default(value):
    # Paths, numpy scalars and arrays: the values users naturally pass.
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# The library's caps on one request (include/sentiment.h); parts stay well inside the byte cap.
_MAX_TEXTS = 100_000
_PART_BYTES = 8 << 20


def _parts(texts, pairs):
    """[(lo, hi)] ranges of texts (and pairs) that each fit in one request. Lists the library
    will refuse anyway (not strings, pairs of another length) stay whole, for its error."""
    if pairs is not None and len(pairs) != len(texts):
        return [(0, len(texts))]
    parts, lo, size = [], 0, 0
    for i, text in enumerate(texts):
        items = (text,) if pairs is None else (text, pairs[i])
        if not all(isinstance(t, str) for t in items):
            return [(0, len(texts))]
        cost = sum(len(t.encode("utf-8", "surrogatepass")) * 2 + 8 for t in items)   # JSON escapes at most double most text
        if i > lo and (i - lo >= _MAX_TEXTS or size + cost > _PART_BYTES):
            parts.append((lo, i))
            lo, size = i, 0
        size += cost
    parts.append((lo, len(texts)))
    return parts


def _encode(request):
    """The UTF-8 JSON bytes of a request."""
    try:
        text = json.dumps(request, ensure_ascii=False, allow_nan=False, default=_json_default)
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgumentError(f"text is not valid Unicode (lone surrogate?): {e}") from None
    except ValueError as e:
        raise InvalidArgumentError(str(e)) from None


def _from_config(config):
    """Unpickles a Model: loads it again from its load config."""
    config = dict(config)
    return Model(config.pop("model_dir"), **config)
