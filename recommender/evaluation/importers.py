"""Importers for the public dataset formats in ../shared/datasets. Pure Python; no Django.

Every importer returns a `Dataset`: the interactions as an `InteractionData` over ALL the file's
interactions (per-user sequences in time order, item features, user groups), plus, for formats that ship
their own held-out part (session TSV), that part. The evaluation protocols (protocols.py) split it.

Formats
-------
* ``seq``     -- ``user item item ...`` per line, items in time order (Amazon Beauty / S3-Rec). Item
                 attributes from ``<stem>_item2attributes.json`` beside the file when present
                 (``{item: [attribute ids]}``) become ``ItemFeatures.attributes``.
* ``recbole`` -- RecBole atomic files: ``<name>.inter`` (user_id, item_id, [rating], [timestamp]) and,
                 when present, ``<name>.item`` (title, year, genres -> texts / attributes / category) and
                 ``<name>.user`` (gender, age, occupation -> user_groups). PATH is the .inter file or its folder.
* ``session`` -- session TSV with a header ``SessionId<TAB>ItemId<TAB>Time`` (YooChoose / session-rec),
                 ``*_train_full.txt`` + ``*_test.txt``. Each training session is one "user" sequence; the
                 test sessions are kept apart (only items seen in training, sessions of >= 2 clicks).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.engines.base import InteractionData, ItemFeatures

FORMATS = ("seq", "recbole", "session")


class DatasetFormatError(ValueError):
    """The file does not look like the announced format (message says what was expected and where)."""


@dataclass(frozen=True)
class Dataset:
    """An imported dataset. `data.user_ids` / `data.item_ids` hold the dataset's own ids (strings)."""

    name: str
    format: str
    data: InteractionData
    test_sessions: list[np.ndarray] | None = None  # session format: held-out sessions (item indices)
    test_session_ids: np.ndarray | None = None


def _sort_key(token: str) -> tuple[int, int | str]:
    """Numeric ids sort numerically, others lexicographically after them."""
    return (0, int(token)) if token.lstrip("-").isdigit() else (1, token)


def _vocab(tokens: Iterable[str]) -> tuple[np.ndarray, dict[str, int]]:
    ids = sorted(set(tokens), key=_sort_key)
    return np.asarray(ids, dtype=str), {t: i for i, t in enumerate(ids)}


def _binary_csr(rows: list[int], cols: list[int], shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    if m.nnz:
        m.data[:] = 1.0
    return m


# ---------------------------------------------------------------------------------------------- seq


def sequences_load(path: Path | str) -> Dataset:
    """Read a ``user item item ...`` file (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sequence file not found: {path}")
    users: list[str] = []
    raw: list[list[str]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DatasetFormatError(
                    f"{path}:{lineno}: expected 'user item item ...', got {line.strip()!r}"
                )
            users.append(parts[0])
            raw.append(parts[1:])
    if not users:
        raise DatasetFormatError(f"{path}: no interactions found (expected 'user item item ...' lines)")
    if len(set(users)) != len(users):
        raise DatasetFormatError(f"{path}: a user appears on more than one line")
    item_ids, item_index = _vocab(t for seq in raw for t in seq)
    sequences = [np.fromiter((item_index[t] for t in seq), dtype=np.int64, count=len(seq)) for seq in raw]

    attributes = None
    attr_path = path.with_name(f"{path.stem}_item2attributes.json")
    if attr_path.is_file():
        with open(attr_path, encoding="utf-8") as fh:
            item2attrs = json.load(fh)
        if not isinstance(item2attrs, dict):
            raise DatasetFormatError(f"{attr_path}: expected a JSON object {{item: [attribute ids]}}")
        attr_ids, attr_index = _vocab(str(a) for attrs in item2attrs.values() for a in attrs)
        rows, cols = [], []
        for item, attrs in item2attrs.items():
            i = item_index.get(str(item))
            if i is None:
                continue
            for a in attrs:
                rows.append(i)
                cols.append(attr_index[str(a)])
        attributes = _binary_csr(rows, cols, (len(item_ids), len(attr_ids)))

    data = InteractionData.from_sequences(
        sequences,
        len(item_ids),
        user_ids=np.asarray(users, dtype=str),
        item_ids=item_ids,
        item_features=ItemFeatures(attributes=attributes),
    )
    return Dataset(name=path.stem, format="seq", data=data)


# ------------------------------------------------------------------------------------------ recbole


def _read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header field names (without ``:type``) and the rows of a RecBole atomic file."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetFormatError(f"{path}: empty file") from None
        names = [h.split(":", 1)[0].strip() for h in header]
        rows = [r for r in reader if r and any(c.strip() for c in r)]
    for r in rows:
        if len(r) < len(names):
            r.extend([""] * (len(names) - len(r)))
    return names, rows


def _age_group(age: str) -> str:
    """MovieLens-style age bands."""
    try:
        a = int(float(age))
    except ValueError:
        return "unknown"
    for hi, label in ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55")):
        if a < hi:
            return label
    return "56+"


def recbole_load(path: Path | str) -> Dataset:
    """Read RecBole atomic files (see module docstring). Interactions of a user are ordered by timestamp."""
    path = Path(path)
    if path.is_dir():
        inters = sorted(path.glob("*.inter"))
        if len(inters) != 1:
            raise DatasetFormatError(f"{path}: expected exactly one *.inter file, found {len(inters)}")
        path = inters[0]
    if not path.is_file():
        raise FileNotFoundError(f"RecBole .inter file not found: {path}")
    if path.suffix != ".inter":
        raise DatasetFormatError(f"{path}: a RecBole dataset is read from its .inter file")
    names, rows = _read_atomic(path)
    if "user_id" not in names or "item_id" not in names:
        raise DatasetFormatError(f"{path}: header must name user_id and item_id fields, got {names}")
    ui, ii = names.index("user_id"), names.index("item_id")
    ti = names.index("timestamp") if "timestamp" in names else None
    if not rows:
        raise DatasetFormatError(f"{path}: no interactions")
    user_tok = [r[ui] for r in rows]
    item_tok = [r[ii] for r in rows]
    try:
        times = (
            np.asarray([float(r[ti]) for r in rows]) if ti is not None else np.arange(len(rows), dtype=float)
        )
    except ValueError as exc:
        raise DatasetFormatError(f"{path}: non-numeric timestamp ({exc})") from None
    user_ids, user_index = _vocab(user_tok)
    item_ids, item_index = _vocab(item_tok)
    u = np.fromiter((user_index[t] for t in user_tok), dtype=np.int64, count=len(rows))
    it = np.fromiter((item_index[t] for t in item_tok), dtype=np.int64, count=len(rows))
    order = np.lexsort((it, times, u))  # by user, then time, then item (deterministic ties)
    u, it, times = u[order], it[order], times[order]
    bounds = np.searchsorted(u, np.arange(len(user_ids) + 1))
    sequences = [it[bounds[k] : bounds[k + 1]] for k in range(len(user_ids))]
    timestamps = [times[bounds[k] : bounds[k + 1]] for k in range(len(user_ids))]

    features = ItemFeatures()
    item_file = path.with_suffix(".item")
    if item_file.is_file():
        features = _recbole_items(item_file, item_index)
    user_groups = None
    user_file = path.with_suffix(".user")
    if user_file.is_file():
        user_groups = _recbole_users(user_file, user_index)

    data = InteractionData.from_sequences(
        sequences,
        len(item_ids),
        timestamps=timestamps,
        user_ids=user_ids,
        item_ids=item_ids,
        item_features=features,
        user_groups=user_groups,
    )
    return Dataset(name=path.stem, format="recbole", data=data)


def _recbole_items(path: Path, item_index: dict[str, int]) -> ItemFeatures:
    names, rows = _read_atomic(path)
    if "item_id" not in names:
        raise DatasetFormatError(f"{path}: header must name an item_id field, got {names}")
    col = {n: names.index(n) for n in names}
    title_col = next((col[n] for n in ("movie_title", "title", "name") if n in col), None)
    genre_col = next((col[n] for n in ("class", "genre", "genres", "categories") if n in col), None)
    year_col = next((col[n] for n in ("release_year", "year") if n in col), None)
    n_items = len(item_index)
    texts = [""] * n_items
    tokens: list[list[str]] = [[] for _ in range(n_items)]
    first_genre: list[str | None] = [None] * n_items
    for r in rows:
        i = item_index.get(r[col["item_id"]])
        if i is None:
            continue
        title = r[title_col] if title_col is not None else ""
        genres = r[genre_col].split() if genre_col is not None else []
        year = r[year_col].strip() if year_col is not None else ""
        texts[i] = " ".join(p for p in (title, year, " ".join(genres)) if p)
        tokens[i] = [f"genre={g}" for g in genres]
        if year[:3].isdigit():
            tokens[i].append(f"decade={year[:3]}0s")
        first_genre[i] = genres[0] if genres else None
    attr_ids, attr_index = _vocab(t for ts in tokens for t in ts)
    rows_i = [i for i, ts in enumerate(tokens) for _ in ts]
    cols_i = [attr_index[t] for ts in tokens for t in ts]
    attributes = _binary_csr(rows_i, cols_i, (n_items, len(attr_ids)))
    genre_names = sorted({g for g in first_genre if g})
    genre_index = {g: k for k, g in enumerate(genre_names)}
    category = np.asarray([genre_index[g] if g else -1 for g in first_genre], dtype=np.int64)
    return ItemFeatures(texts=texts, attributes=attributes, category=category)


def _recbole_users(path: Path, user_index: dict[str, int]) -> dict[str, np.ndarray]:
    names, rows = _read_atomic(path)
    if "user_id" not in names:
        raise DatasetFormatError(f"{path}: header must name a user_id field, got {names}")
    col = {n: names.index(n) for n in names}
    n_users = len(user_index)
    groups: dict[str, np.ndarray] = {}
    for field, key, fn in (
        ("gender", "gender", lambda v: v or "unknown"),
        ("age", "age_group", _age_group),
        ("occupation", "occupation", lambda v: v or "unknown"),
    ):
        if field not in col:
            continue
        labels = np.full(n_users, "unknown", dtype=object)
        for r in rows:
            u = user_index.get(r[col["user_id"]])
            if u is not None:
                labels[u] = fn(r[col[field]].strip())
        groups[key] = labels.astype(str)
    return groups


# ------------------------------------------------------------------------------------------ session


def _session_files(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        trains = sorted(path.glob("*_train_full.txt"))
        if len(trains) != 1:
            raise DatasetFormatError(
                f"{path}: expected exactly one *_train_full.txt file, found {len(trains)}"
            )
        train = trains[0]
    else:
        train = path
    if not train.is_file():
        raise FileNotFoundError(f"session file not found: {train}")
    stem = train.name
    for suffix in ("_train_full.txt", "_train_tr.txt", "_test.txt", ".txt"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if train.name.endswith("_test.txt"):
        train = train.with_name(f"{stem}_train_full.txt")
        if not train.is_file():
            raise FileNotFoundError(f"training sessions not found beside the test file: {train}")
    test = train.with_name(f"{stem}_test.txt")
    return train, (test if test.is_file() else None)


def _read_session_tsv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        try:
            si, ii, ti = header.index("SessionId"), header.index("ItemId"), header.index("Time")
        except ValueError:
            raise DatasetFormatError(
                f"{path}: header must be SessionId<TAB>ItemId<TAB>Time, got {header}"
            ) from None
        s, it, t = [], [], []
        for lineno, line in enumerate(fh, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                if line.strip():
                    raise DatasetFormatError(f"{path}:{lineno}: expected 3 tab-separated columns")
                continue
            s.append(parts[si])
            it.append(parts[ii])
            try:
                t.append(float(parts[ti]))
            except ValueError:
                raise DatasetFormatError(
                    f"{path}:{lineno}: Time must be a number, got {parts[ti]!r}"
                ) from None
    return np.asarray(s, dtype=str), np.asarray(it, dtype=str), np.asarray(t, dtype=np.float64)


def _group_sessions(s: np.ndarray, it: np.ndarray, t: np.ndarray):
    """Sessions ordered by start time; clicks within a session by time (stable)."""
    order = np.lexsort((t, s))
    s, it, t = s[order], it[order], t[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    groups = [(s[a], it[a:b], t[a:b]) for a, b in zip(starts, ends)]
    groups.sort(key=lambda g: (g[2][0], _sort_key(str(g[0]))))
    return groups


def sessions_load(path: Path | str) -> Dataset:
    """Read session TSV files (see module docstring). PATH is the folder, the train_full file or the test file."""
    train_path, test_path = _session_files(Path(path))
    s, it, t = _read_session_tsv(train_path)
    if not len(s):
        raise DatasetFormatError(f"{train_path}: no clicks")
    item_ids, item_index = _vocab(it.tolist())
    groups = _group_sessions(s, it, t)
    sequences = [np.fromiter((item_index[x] for x in g[1]), dtype=np.int64, count=len(g[1])) for g in groups]
    timestamps = [g[2] for g in groups]
    data = InteractionData.from_sequences(
        sequences,
        len(item_ids),
        timestamps=timestamps,
        user_ids=np.asarray([g[0] for g in groups], dtype=str),
        item_ids=item_ids,
        sessions=sequences,
    )
    test_sessions, test_ids = None, None
    if test_path is not None:
        ts, tit, tt = _read_session_tsv(test_path)
        test_sessions, ids = [], []
        for sid, items, _times in _group_sessions(ts, tit, tt):
            known = np.fromiter((item_index[x] for x in items if x in item_index), dtype=np.int64)
            if len(known) >= 2:
                test_sessions.append(known)
                ids.append(sid)
        test_ids = np.asarray(ids, dtype=str)
    name = train_path.name.removesuffix("_train_full.txt")
    return Dataset(
        name=name, format="session", data=data, test_sessions=test_sessions, test_session_ids=test_ids
    )


def dataset_load(path: Path | str, fmt: str | None = None) -> Dataset:
    """Load `path` in format `fmt` (guessed from the path when None)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset path does not exist: {path}")
    fmt = fmt or format_guess(path)
    if fmt == "seq":
        return sequences_load(dataset_path_resolve(path, fmt))
    if fmt == "recbole":
        return recbole_load(path)
    if fmt == "session":
        return sessions_load(path)
    raise ValueError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")


def format_guess(path: Path) -> str:
    """'recbole' for .inter files / folders holding one, 'session' for *_train_full.txt, else 'seq'."""
    path = Path(path)
    if path.is_dir():
        if list(path.glob("*.inter")):
            return "recbole"
        if list(path.glob("*_train_full.txt")):
            return "session"
        txts = sorted(path.glob("*.txt"))
        if len(txts) == 1:
            return "seq"
        raise DatasetFormatError(f"{path}: cannot tell the format of this folder; pass --format")
    if path.suffix == ".inter":
        return "recbole"
    if path.name.endswith(("_train_full.txt", "_test.txt")):
        return "session"
    return "seq"


def dataset_path_resolve(path: Path, fmt: str) -> Path:
    """For a `seq` folder holding exactly one .txt, that file; otherwise `path` unchanged."""
    if fmt == "seq" and path.is_dir():
        txts = sorted(path.glob("*.txt"))
        if len(txts) != 1:
            raise DatasetFormatError(f"{path}: expected exactly one .txt sequence file, found {len(txts)}")
        return txts[0]
    return path
