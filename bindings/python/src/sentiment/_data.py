"""Examples given as Python data: a pandas DataFrame, a list of dicts, or a list of tuples.

Evaluation passes them to the library as lists; training writes them to a temporary JSON Lines
file (the library trains from files) and removes it afterwards.
"""

import contextlib
import json
import os
import shutil
import tempfile

from ._errors import InvalidArgumentError


def is_data(value):
    """True for in-memory examples (anything but a path)."""
    return value is not None and not isinstance(value, (str, bytes, os.PathLike))


def rows(data, text_column=None, text_pair_column=None, label_column="label", field="data"):
    """Yields (text, pair or None, label) for each example of `data`.

    A DataFrame or a list of dicts is read by column name (text_column, default "sentence",
    else "text"; label_column, default "label"; text_pair_column when given). A list of tuples
    is (text, label) or (text, text_pair, label). pandas is not required.
    """
    label_column = label_column or "label"
    if hasattr(data, "columns") and hasattr(data, "itertuples"):   # a pandas DataFrame
        columns = [str(c) for c in data.columns]
        text = _pick(text_column, columns, field)
        wanted = [text, label_column] + ([text_pair_column] if text_pair_column else [])
        for name in wanted:
            if name not in columns:
                raise InvalidArgumentError(f"{field}: the DataFrame has no column '{name}' (columns: {columns})",
                                           field=field)
        index = {name: columns.index(name) for name in wanted}
        for i, row in enumerate(data.itertuples(index=False, name=None)):
            yield _checked(i, row[index[text]], row[index[text_pair_column]] if text_pair_column else None,
                           row[index[label_column]], field)
        return
    for i, item in enumerate(data):
        if isinstance(item, dict):
            text = _pick(text_column, list(item), field, row=i)
            for name in [label_column] + ([text_pair_column] if text_pair_column else []):
                if name not in item:
                    raise InvalidArgumentError(f"{field}[{i}] has no key '{name}'", field=field)
            yield _checked(i, item[text], item.get(text_pair_column) if text_pair_column else None,
                           item[label_column], field)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            yield _checked(i, item[0], item[1] if len(item) == 3 else None, item[-1], field)
        else:
            raise InvalidArgumentError(
                f"{field}[{i}] must be a dict or a (text, label) or (text, text_pair, label) tuple, "
                f"not {type(item).__name__}", field=field)


def _pick(text_column, columns, field, row=None):
    if text_column:
        if text_column not in columns:
            where = f"{field}[{row}]" if row is not None else f"{field}: the DataFrame"
            raise InvalidArgumentError(f"{where} has no column '{text_column}'", field=field)
        return text_column
    for name in ("sentence", "text"):
        if name in columns:
            return name
    where = f"{field}[{row}]" if row is not None else f"{field}: the DataFrame"
    raise InvalidArgumentError(f"{where} has no 'sentence' or 'text' column; name it with text_column",
                               field=field)


def _checked(i, text, pair, label, field):
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{field}[{i}]: the text is a {type(text).__name__}, not a string", field=field)
    if pair is not None and not isinstance(pair, str):
        raise InvalidArgumentError(f"{field}[{i}]: the text pair is a {type(pair).__name__}, not a string",
                                   field=field)
    if hasattr(label, "item"):      # numpy scalars
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise InvalidArgumentError(f"{field}[{i}]: the label is a {type(label).__name__}, not an integer or a name",
                                   field=field)
    return text, pair, label


def lists(data, text_column=None, text_pair_column=None, label_column=None, field="data"):
    """(texts, text_pairs or None, labels) of `data`."""
    texts, pairs, labels = [], [], []
    for text, pair, label in rows(data, text_column, text_pair_column, label_column, field):
        texts.append(text)
        pairs.append(pair)
        labels.append(label)
    return texts, (pairs if text_pair_column or any(p is not None for p in pairs) else None), labels


@contextlib.contextmanager
def training_files(config):
    """`config` with in-memory train_file / eval_file written to temporary JSON Lines files
    (keys "text", "text_pair", "label"; the config's column keys set to match)."""
    if not any(is_data(config.get(key)) for key in ("train_file", "eval_file")):
        yield config
        return
    config = dict(config)
    folder = tempfile.mkdtemp(prefix="sentiment-data-")
    try:
        columns = (config.get("text_column"), config.get("text_pair_column"), config.get("label_column"))
        paired = False
        for key in ("train_file", "eval_file"):
            if not is_data(config.get(key)):
                continue
            path = os.path.join(folder, key + ".jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for text, pair, label in rows(config[key], *columns, field=key):
                    record = {"text": text, "label": label}
                    if pair is not None:
                        record["text_pair"] = pair
                        paired = True
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
            config[key] = path
        for key in ("train_file", "eval_file"):
            if isinstance(config.get(key), str) and not config[key].startswith(folder):
                raise InvalidArgumentError(
                    f"give train_file and eval_file both as files or both as data ({key} is a path)", field=key)
        config.update({"format": "jsonl", "text_column": "text", "label_column": "label"})
        if paired:
            config["text_pair_column"] = "text_pair"
        else:
            config.pop("text_pair_column", None)
        yield config
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def rows_file(texts, pairs, labels):
    """texts (with pairs) and labels written to a temporary JSON Lines file; yields its path and
    the column keys that read it."""
    if labels is None or len(labels) != len(texts):
        raise InvalidArgumentError("texts and labels must have the same length", field="labels")
    folder = tempfile.mkdtemp(prefix="sentiment-data-")
    try:
        path = os.path.join(folder, "data.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i, (text, label) in enumerate(zip(texts, labels)):
                record = {"text": text, "label": label}
                if pairs is not None:
                    record["text_pair"] = pairs[i]
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        columns = {"text_column": "text", "label_column": "label"}
        if pairs is not None:
            columns["text_pair_column"] = "text_pair"
        yield path, columns
    finally:
        shutil.rmtree(folder, ignore_errors=True)
