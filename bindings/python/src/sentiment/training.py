"""Fine-tuning: sentiment.train(config, progress=..., distributed=...) over sentiment_train and
sentiment_train_distributed, with Ctrl-C support.

    result = sentiment.train({"model_dir": "models/minilm", "train_file": "train.tsv",
                              "eval_file": "dev.tsv", "output_dir": "out"},
                             progress=sentiment.TrainingProgress())
"""

import ctypes
import json
import shutil
import signal
import sys
import threading
import time

from . import _data, _lib, distributed as _distributed
from ._errors import CancelledError, error_from_document
from ._progress import Progress
from .model import _encode


def train(config, progress=None, distributed=None):
    """Fine-tunes a model; returns the result dict.

    config holds the keys of sentiment_train (include/sentiment.h): model_dir, train_file,
    eval_file, output_dir, learning_rate, train_batch_size, num_train_epochs, max_steps,
    save_strategy, bf16 (mixed precision, as TrainingArguments' bf16), labels,
    metric_for_best_model, ... An unknown or bad key raises InvalidArgumentError naming it in
    `field`. train_file and eval_file may also be pandas DataFrames or lists of dicts or of
    (text, label) / (text, text_pair, label) tuples (written to a temporary JSON Lines file). logging_steps defaults to 1: a step event every step keeps the progress display
    live and lets Ctrl-C stop within one step.

    The result: {'epochs': [{'epoch', 'step', 'train_loss', 'eval_loss', 'eval_accuracy',
    'eval_macro_f1', 'eval_mcc', 'seconds'}], 'best_epoch', 'output_dir', 'train_examples',
    'train_tokens_per_second', 'isa', 'bf16', 'cancelled', 'steps', 'labels', 'notes',
    'curve': {'steps', 'loss'}}.

    progress, if given, is called with each event dict ('step', 'eval', 'saved'; ignore
    others). If it raises, training stops and the exception propagates with the partial
    result as its `result` attribute (when it accepts one). A SentimentError raised after the
    first step (a failed save, a NaN loss, CancelledError) has the partial result as `result`
    too ('stop_reason': 'error' or 'cancelled'); before it, `result` is None.

    Ctrl-C: called from the main thread, train() installs a SIGINT handler for its
    duration that asks the library to stop after the current step, then raises
    KeyboardInterrupt with the partial result as `result` (checkpoints already saved stay).
    The previous handler is restored on return.

    distributed: run as one rank of a data-parallel run (see sentiment.distributed): "mpi",
    "torch", "auto" (whichever launcher started this process: torchrun or mpirun) or a
    communicator object. Every rank calls train() with the same config; train_batch_size is the
    global batch; rank 0 evaluates and saves; every rank returns the same result. A failed
    collective or another rank's failure raises DistributedError (field "allreduce").
    """
    comm = _distributed.communicator(distributed)
    with _data.training_files(config) as config:
        return _train(config, progress, comm)


def _train(config, progress, comm):
    library = _lib.lib()
    request = _encode(config)
    reducer = _Allreduce(comm) if comm is not None else None
    with _SigintFlag() as interrupted:
        trampoline = Progress(progress, stop=interrupted.is_set)
        out = ctypes.c_void_p()
        if reducer is None:
            status = library.sentiment_train(request, trampoline.function, None, ctypes.byref(out))
        else:
            status = library.sentiment_train_distributed(
                request, comm.rank, comm.world_size, reducer.function, None, trampoline.function, None,
                ctypes.byref(out))
    text = _lib.take_string(library, out.value)

    result = None
    error = None
    if status == 0 and text is not None:
        result = json.loads(text)
    else:
        error = error_from_document(status, text, library.sentiment_status_string(status))
        # A cancelled run, or one that failed after its first step, carries its partial result.
        result = _partial_result(text)
        error.result = result

    if trampoline.error is not None:
        _attach_result(trampoline.error, result)
        try:
            if error is not None:
                raise error
        finally:
            trampoline.raise_pending()   # raised here, it carries `error` as its __context__
    if interrupted.is_set():
        interrupt = KeyboardInterrupt("training interrupted by Ctrl-C")
        interrupt.result = result
        # A cancel is what Ctrl-C asked for; any other failure stays visible as the cause.
        raise interrupt from (None if isinstance(error, CancelledError) else error)
    if error is not None:
        if reducer is not None and reducer.error is not None:
            raise error from reducer.error   # the collective's own exception, as the cause
        raise error
    return result


class _Allreduce:
    """Wraps a communicator's allreduce as a sentiment_allreduce_fn (keep the instance alive
    for the C call). An exception is stored and reported to the library as a failure."""

    def __init__(self, comm):
        import numpy  # mpi4py and torch both need it

        self._as_array = numpy.ctypeslib.as_array
        self.comm = comm
        self.error = None
        self.function = _lib.ALLREDUCE_FN(self._call)

    def _call(self, buffer, count, _user_data):
        if self.error is not None:
            return 1
        try:
            self.comm.allreduce(self._as_array(buffer, shape=(count,)))
            return 0
        except BaseException as e:  # noqa: B036 -- must not cross into C
            self.error = e
            return 1


def _partial_result(text):
    try:
        result = json.loads(text).get("result")
    except (TypeError, ValueError, AttributeError):
        return None
    return result if isinstance(result, dict) else None


def _attach_result(exception, result):
    try:
        exception.result = result
    except (AttributeError, TypeError):  # exceptions with __slots__ or read-only attributes
        pass


class _SigintFlag:
    """For the duration of a `with` block in the main thread, Ctrl-C sets a flag instead
    of raising KeyboardInterrupt. Elsewhere (other threads; SIGINT ignored, or handled by
    a handler not installed from Python) it does nothing."""

    def __init__(self):
        self._event = threading.Event()
        self._previous = None
        self._installed = False

    def is_set(self):
        return self._event.is_set()

    def _handler(self, _signum, _frame):
        self._event.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not None and previous is not signal.SIG_IGN:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


class TrainingProgress:
    """A progress display for train(): one updating line on a terminal, plain lines otherwise.

        step 120/1320   9% | epoch 1 | loss 0.4123 | lr 1.82e-05 | 410 ex/s | ETA 1:02:03

    Eval events print the epoch's metrics on a line of their own, saved events the path.
    Not a terminal (a log file, a pipe): a step line every `interval` seconds and at the
    last step of the run. Writes to `stream` (default: sys.stderr).
    """

    def __init__(self, stream=None, interval=30.0):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        isatty = getattr(self.stream, "isatty", None)
        self.on_terminal = bool(isatty and isatty())
        self._start = None          # (time, step) of the first step event
        self._last_plain = None
        self._line_open = False

    def __call__(self, event):
        kind = event.get("event")
        if kind == "step":
            self._step(event)
        elif kind == "eval":
            self._print(format_epoch(event))
        elif kind == "saved":
            self._print(f"saved {event.get('path')}")

    def close(self):
        """Ends an open progress line (call once training returns)."""
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False

    def _step(self, event):
        now = time.monotonic()
        step, total = event.get("step", 0), event.get("total_steps", 0)
        if self._start is None:
            self._start = (now, step)
        line = format_step(event, eta_seconds=self._eta(now, step, total))
        if self.on_terminal:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
            self._line_open = True
            self.stream.flush()
        elif self._last_plain is None or now - self._last_plain >= self.interval or step >= total:
            self._last_plain = now
            self._print(line)

    def _eta(self, now, step, total):
        start_time, start_step = self._start
        if total and step >= total:
            return 0.0
        if step <= start_step:
            return None
        return (total - step) * (now - start_time) / (step - start_step)

    def _print(self, line):
        self.close()
        self.stream.write(line + "\n")
        self.stream.flush()


def format_step(event, eta_seconds=None):
    """One step event as a line: step/total, percent, epoch, loss, lr, examples/s, ETA."""
    step, total = event.get("step", 0), event.get("total_steps", 0)
    percent = 100.0 * step / total if total else 0.0
    parts = [f"step {step}/{total} {percent:3.0f}%", f"epoch {event.get('epoch', '?')}",
             f"loss {_number(event.get('loss'), '.4f')}", f"lr {_number(event.get('learning_rate'), '.2e')}",
             f"{_number(event.get('examples_per_second'), '.0f')} ex/s"]
    if eta_seconds is not None:
        parts.append(f"ETA {format_duration(eta_seconds)}")
    return " | ".join(parts)


def format_epoch(event):
    """An eval event (or a result's epoch row) as a line."""
    line = (f"epoch {event.get('epoch')}: step {event.get('step')}, "
            f"train loss {_number(event.get('train_loss'), '.4f')}")
    if event.get("eval_loss") is not None:
        line += f", eval loss {_number(event.get('eval_loss'), '.4f')}"
    if event.get("eval_accuracy") is not None:
        line += f", accuracy {_number(event.get('eval_accuracy'), '.4f')}"
    if event.get("eval_macro_f1") is not None:
        line += f", macro F1 {_number(event.get('eval_macro_f1'), '.4f')}"
    return line + f" ({format_duration(event.get('seconds') or 0)})"


def format_duration(seconds):
    """1:02:03, 4:05 or 12s."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes}:{secs:02d}"
    return f"{secs}s"


def _number(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "-"
